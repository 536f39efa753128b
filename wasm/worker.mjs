// The edge worker: I/O only. Every decision (routing, errors, keys, flights,
// headers, 304s, ranges, CORS, staleness, purges, what is cached) is made by
// the C++ core in nic_edge.wasm (wasm/edge.cpp); this module fetches, reads
// and writes caches.default and the NIC_PURGE KV namespace, keeps the
// followers' promises and timers, and builds Responses.
import wasm from './dist/nic_edge.wasm';

const HIT = 0;
const LEADER = 1;
const FOLLOWER = 2;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

let core = null; // one instance per isolate
const waiting = new Map(); // follower waiter id -> resolve(shared result)

// Instantiates the module and hands it the worker's string settings.
function load(env) {
  // The core does no I/O; any WASI import it still names answers ENOSYS.
  const imports = {};
  for (const i of WebAssembly.Module.imports(wasm)) {
    (imports[i.module] ??= {})[i.name] = () => 52;
  }
  const x = new WebAssembly.Instance(wasm, imports).exports;
  x._initialize();
  const call = (fn, text, ...args) => {
    const capacity = text.length * 3 + 1;
    const ptr = x.nic_input(capacity);
    const { written } = encoder.encodeInto(text, new Uint8Array(x.memory.buffer, ptr, capacity));
    const len = x[fn](written, ...args);
    return JSON.parse(decoder.decode(new Uint8Array(x.memory.buffer, x.nic_output(), len)));
  };
  const settings = Object.entries(env)
    .filter(([, v]) => typeof v === 'string')
    .map(([k, v]) => `${k}=${v}`);
  if (env.NIC_PURGE) settings.push('NIC_PURGE_KV=1');
  const init = call('nic_init', settings.join('\n'));
  if (!init.ok) console.error(`nic edge: bad setting: ${init.error}`);
  return call;
}

// "status\nname: value\n..." for the core.
function message(status, headers) {
  const lines = [String(status)];
  for (const [k, v] of headers) lines.push(`${k}: ${v}`);
  return lines.join('\n');
}

// The core's answer as a Response; `body` (a Blob or a stream) when it says
// so, or the [a, b) slice of it it names.
async function send(r, body) {
  if (r.range && body) body = (await new Response(body).blob()).slice(r.range[0], r.range[1]);
  return new Response(r.text ?? (r.body ? body : null), { status: r.status, headers: r.headers });
}

function wake(ids, shared) {
  for (const id of ids) {
    const resolve = waiting.get(id);
    if (resolve) {
      waiting.delete(id);
      resolve(shared);
    }
  }
}

// The leader: fetch from the origin under waitUntil (the flight outlives the
// leader's own request), share the result as one Blob (every requester's
// Response reads that one copy), store 200s.
function lead(d, j, ctx) {
  const flight = (async () => {
    let shared;
    try {
      const res = await fetch(d.origin, { headers: d.fwd, signal: AbortSignal.timeout(j.wait) });
      const blob = await res.blob();
      const head = message(res.status, res.headers);
      let r = core('nic_result', head, j.flight, Date.now());
      if (r.inspect) r = core('nic_result', `${head}\0${await blob.text()}`, j.flight, Date.now());
      shared = { ok: true, head: message(r.status, r.headers), blob };
      // Stored before the flight lands, so no request falls between the two.
      if (r.store) await store(d, new Response(blob, { status: r.status, headers: r.headers }));
      wake(core('nic_complete', '', j.flight).waiters, shared);
    } catch (e) {
      shared = { ok: false, reason: e?.name ?? 'Error' };
      wake(core('nic_fail', '', j.flight).waiters, shared);
    }
    return shared;
  })();
  ctx.waitUntil(flight);
  return flight;
}

async function store(d, response) {
  try {
    await caches.default.put(d.cache, response);
  } catch (e) {
    console.error(`nic edge: cache put failed for ${d.key}: ${e}`);
  }
}

// A follower: wait for the leader's bytes, at most FOLLOWER_TIMEOUT_MS. The
// timer lives in the follower's own request and stays armed until the result
// has arrived here: workerd delivers a promise resolved from another request
// only while this one still has something pending, else it cancels it as hung.
function follow(j) {
  let timer;
  let settled = false;
  const expire = () => {
    const x = core('nic_expire', '', Date.now());
    wake(x.expired, { ok: false, reason: 'TimeoutError' });
    if (!settled) timer = setTimeout(expire, x.next > 0 ? x.next : 1);
  };
  return new Promise((resolve) => {
    waiting.set(j.waiter, resolve);
    timer = setTimeout(expire, j.wait);
  }).finally(() => {
    settled = true;
    clearTimeout(timer);
  });
}

// The source's purge generation ("" when never purged, "?" when KV failed).
async function generation(env, d) {
  if (!d.gen) return '';
  try {
    return (await env.NIC_PURGE.get(d.gen, { cacheTtl: d.genTtl })) ?? '';
  } catch (e) {
    console.error(`nic edge: KV read failed for ${d.gen}: ${e}`);
    return '?';
  }
}

// A route the origin answers (/health, /metrics, /api/v1/...).
async function forward(d, request, input, env) {
  const headers = new Headers(request.headers);
  for (const name of d.drop) headers.delete(name);
  for (const [k, v] of d.set) headers.set(k, v);
  let res;
  let r;
  try {
    const init = { method: request.method, headers, body: request.body, redirect: 'manual' };
    res = await fetch(d.url, { ...init, signal: AbortSignal.timeout(d.wait) });
    const head = message(res.status, res.headers);
    r = core('nic_forwarded', `${input}\0${head}`);
    if (r.inspect) r = core('nic_forwarded', `${input}\0${head}\0${await res.text()}`);
  } catch (e) {
    return send(core('nic_error', `${input}\0${e?.name ?? 'Error'}\0\0\0`, 0, Date.now()));
  }
  try {
    for (const [key, value] of r.bump ?? []) await env.NIC_PURGE.put(key, value);
  } catch (e) {
    return send(core('nic_error', `${input}\0PurgeNotRecordedAtTheEdge: ${e}\0\0\0`, 0, Date.now()));
  }
  return send(r, res.body);
}

export default {
  async fetch(request, env, ctx) {
    core ??= load(env);
    const h = request.headers;
    const input = [
      request.method,
      request.url,
      h.get('accept') ?? '',
      h.get('if-none-match') ?? '',
      crypto.randomUUID(),
      h.get('origin') ?? '',
      h.get('range') ?? '',
      h.get('if-range') ?? '',
      h.get('cf-connecting-ip') ?? '',
    ].join('\0');

    const d = core('nic_decide', input);
    if (d.do === 'forward') return forward(d, request, input, env);
    if (d.do !== 'lookup') return send(d);

    const gen = await generation(env, d);
    const cached = await caches.default.match(d.cache);
    let stale = ''; // a stored copy past its TTL, which may stand in if the origin fails
    if (cached) {
      const head = message(cached.status, cached.headers);
      const r = core('nic_respond', `${input}\0${gen}\0${head}\0`, HIT, d.vary ? 1 : 0, Date.now());
      if (r.use !== 'miss') return send(r, cached.body);
      if (r.stale) stale = head;
    }

    const j = core('nic_join', `${d.key}\0${gen}`, Date.now());
    if (j.leader) wake(j.wake, { ok: false, reason: 'AbandonedFlight' });
    const shared = await (j.leader ? lead(d, j, ctx) : follow(j));
    const r = shared.ok
      ? core('nic_respond', `${input}\0${gen}\0${shared.head}\0${stale}`, j.leader ? LEADER : FOLLOWER, d.vary ? 1 : 0, Date.now())
      : core('nic_error', `${input}\0${shared.reason}\0${d.key}\0${gen}\0${stale}`, d.vary ? 1 : 0, Date.now());
    return send(r, r.use === 'stale' ? cached.body : shared.blob);
  },
};
