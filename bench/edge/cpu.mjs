// CPU time per request spent in the edge worker's decision path: the same
// calls wasm/worker.mjs makes into nic_edge.wasm (plus its JSON glue), timed
// in Node's V8 (the engine workerd embeds). I/O (fetch, cache) is excluded:
// Workers bills CPU, not time waiting on the network.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const wasmPath = process.argv[2];
const module = new WebAssembly.Module(readFileSync(wasmPath));
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// The worker's glue, verbatim in behaviour (see wasm/worker.mjs load()).
function load(env) {
  const imports = {};
  for (const i of WebAssembly.Module.imports(module)) (imports[i.module] ??= {})[i.name] = () => 52;
  const x = new WebAssembly.Instance(module, imports).exports;
  x._initialize();
  const call = (fn, text, ...args) => {
    const capacity = text.length * 3 + 1;
    const ptr = x.nic_input(capacity);
    const { written } = encoder.encodeInto(text, new Uint8Array(x.memory.buffer, ptr, capacity));
    const len = x[fn](written, ...args);
    return JSON.parse(decoder.decode(new Uint8Array(x.memory.buffer, x.nic_output(), len)));
  };
  call('nic_init', Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n'));
  return call;
}

const WS = '0f1e2d3c4b5a69788796a5b4c3d2e1f0';
const ID = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d';
const ACCEPT = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8';
const input = (path, inm = '') =>
  ['GET', `https://cdn.example.com${path}`, ACCEPT, inm, '7d1c6a3e-5b1f-4a51-9a57-3f0f8c1d2e4b', 'https://app.example', '', '', '203.0.113.7'].join('\0');
const NOW = Date.now();
const GEN = 'a0b1c2d3';
const message = (status, headers) => [String(status), ...headers.map(([k, v]) => `${k}: ${v}`)].join('\n');

const stored = [
  ['content-type', 'image/avif'], ['content-length', '48213'], ['etag', '"0123456789abcdef0123456789abcdef"'],
  ['cache-control', 'public, max-age=3600, s-maxage=86400, stale-while-revalidate=3600'], ['vary', 'Accept'],
  ['x-cache-key', `v1/${WS}/${ID.replaceAll('-', '')}/photo.jpg?fmt=auto-avif&w=640`],
  ['x-original-size', '812345'], ['x-optimized-size', '48213'],
  ['x-nic-generation', GEN], ['x-nic-fresh-until', String(NOW + 1e9)],
];
const fromOrigin = [...stored, ['x-cache', 'MISS'], ['x-cache-tier', 'ORIGIN'], ['x-request-id', 'abc'], ['date', 'x']];

const plain = load({ ORIGIN_URL: 'https://origin.example.com' });
const signedCore = load({ ORIGIN_URL: 'https://origin.example.com', HMAC_SECRET: 'bench-secret-0123456789' });
const imgPath = (i) => `/img/${WS}/${ID}/photo${i % 64}.jpg?w=600&q=80`;
const signedPaths = Array.from({ length: 64 }, (_, i) => {
  const path = `/img/${WS}/${ID}/photo${i}.jpg`;
  const sig = createHmac('sha256', 'bench-secret-0123456789').update(`${path}?q=80&w=600`).digest('base64url');
  return `${path}?w=600&q=80&sig=${sig}`;
});

const scenarios = {
  // Baseline: the JS glue alone (encode a request-sized input, parse a
  // decision-sized JSON), no core call.
  'baseline: JS glue only': () => {
    const text = input(imgPath(1));
    encoder.encodeInto(text, new Uint8Array(4096));
    JSON.parse(JSON.stringify({ do: 'lookup', key: stored[5][1], vary: true, cache: 'https://cdn.example.com/__nic/edge-cache/0123', origin: 'https://origin.example.com/img', fwd: [['accept', ACCEPT]] }));
  },
  'bad request (400 at the edge)': (i) => plain('nic_decide', input(`/img/${WS}/${ID}/p.jpg?w=${-i}`)),
  'hit (decide + respond)': (i) => {
    const text = input(imgPath(i));
    const d = plain('nic_decide', text);
    const r = plain('nic_respond', `${text}\0${GEN}\0${message(200, stored)}\0`, 0, d.vary ? 1 : 0, NOW);
    if (r.status !== 200) throw new Error(`not a hit: ${JSON.stringify(r)}`);
  },
  'hit, 304 (If-None-Match)': (i) => {
    const text = input(imgPath(i), stored[2][1]);
    const d = plain('nic_decide', text);
    const r = plain('nic_respond', `${text}\0${GEN}\0${message(200, stored)}\0`, 0, d.vary ? 1 : 0, NOW);
    if (r.status !== 304) throw new Error(`not a 304: ${JSON.stringify(r)}`);
  },
  'hit, signed URL (+ HMAC-SHA256 check)': (i) => {
    const text = input(signedPaths[i % 64]);
    const d = signedCore('nic_decide', text);
    if (d.do !== 'lookup') throw new Error(`signed URL refused: ${JSON.stringify(d)}`);
    signedCore('nic_respond', `${text}\0${GEN}\0${message(200, stored)}\0`, 0, d.vary ? 1 : 0, NOW);
  },
  'miss, leader (decide + join + result + complete + respond)': (i) => {
    const text = input(imgPath(i));
    const d = plain('nic_decide', text);
    const j = plain('nic_join', `${d.key}\0${GEN}`, NOW + i);
    const r = plain('nic_result', message(200, fromOrigin), j.flight, NOW);
    plain('nic_complete', '', j.flight);
    plain('nic_respond', `${text}\0${GEN}\0${message(r.status, r.headers)}\0`, 1, d.vary ? 1 : 0, NOW);
  },
  'miss, herd of 100 (per request: 1 leader, 99 followers)': (i) => {
    const text = input(imgPath(i));
    const d = plain('nic_decide', text);
    const lead = plain('nic_join', `${d.key}\0${GEN}`, NOW + i);
    let head = '';
    for (let k = 1; k < 100; k++) {
      const dk = plain('nic_decide', text);
      plain('nic_join', `${dk.key}\0${GEN}`, NOW + i);
    }
    const r = plain('nic_result', message(200, fromOrigin), lead.flight, NOW);
    plain('nic_complete', '', lead.flight);
    head = message(r.status, r.headers);
    for (let k = 0; k < 100; k++) plain('nic_respond', `${text}\0${GEN}\0${head}\0`, k ? 2 : 1, 1, NOW);
  },
};
const perCall = { 'miss, herd of 100 (per request: 1 leader, 99 followers)': 100 };

function measure(fn, iterations) {
  for (let i = 0; i < iterations / 10; i++) fn(i); // warm-up (JIT, allocator)
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) fn(i);
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { wall, cpu: (cpu.user + cpu.system) / 1000 };
}

const rows = [];
for (const name of Object.keys(scenarios)) {
  const n = Math.round(20000 / (perCall[name] ?? 1));
  const r = measure(scenarios[name], n);
  const requests = n * (perCall[name] ?? 1);
  rows.push([name, (r.cpu * 1000 / requests).toFixed(1), (r.wall * 1000 / requests).toFixed(1), requests]);
}
console.log('| path through the worker | CPU µs / request | wall µs / request | requests |');
console.log('|---|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
