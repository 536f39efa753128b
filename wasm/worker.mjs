// The edge worker: I/O only. Every decision (routing, errors, keys, flights,
// headers, 304s, what is cached) is made by the C++ core in nic_edge.wasm
// (wasm/edge.cpp); this module fetches, reads and writes caches.default,
// keeps the followers' promises and timers, and builds Responses.
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

function reply(r, body) {
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
// leader's own request), share the result as bytes, store 200s.
function lead(d, j, ctx) {
  const flight = (async () => {
    let shared;
    try {
      const res = await fetch(d.origin, { headers: d.fwd, signal: AbortSignal.timeout(j.wait) });
      const bytes = await res.arrayBuffer();
      const r = core('nic_result', message(res.status, res.headers), j.flight);
      shared = { ok: true, head: message(r.status, r.headers), bytes };
      // Stored before the flight lands, so no request falls between the two.
      if (r.store) await store(d, new Response(bytes, { status: r.status, headers: r.headers }));
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
    ].join('\0');

    const d = core('nic_decide', input);
    if (d.do === 'respond') return reply(d);
    if (d.do === 'forward') return fetch(new Request(d.url, request));

    const cached = await caches.default.match(d.cache);
    if (cached) {
      const r = core('nic_respond', `${input}\0${message(cached.status, cached.headers)}`, HIT, d.vary ? 1 : 0);
      return reply(r, cached.body);
    }

    const j = core('nic_join', d.key, d.vary ? 1 : 0, Date.now());
    if (j.leader) wake(j.wake, { ok: false, reason: 'AbandonedFlight' });
    const shared = await (j.leader ? lead(d, j, ctx) : follow(j));
    if (!shared.ok) return reply(core('nic_error', `${input}\0${shared.reason}\0${d.key}`));
    const r = core('nic_respond', `${input}\0${shared.head}`, j.leader ? LEADER : FOLLOWER, d.vary ? 1 : 0);
    return reply(r, shared.bytes);
  },
};
