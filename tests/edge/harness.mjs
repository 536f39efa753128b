// Test harness for the edge worker: runs wasm/worker.mjs with the built
// nic_edge.wasm in workerd (through miniflare), and a counting origin on
// 127.0.0.1 that the tests script and hold.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Miniflare } from 'miniflare';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

// The module under test: NIC_EDGE_WASM (set by CTest to the wasm32-wasi
// sub-build's output), else the copy the build leaves in wasm/dist/.
export function wasmPath() {
  const path = process.env.NIC_EDGE_WASM || join(root, 'wasm/dist/nic_edge.wasm');
  if (!existsSync(path)) {
    throw new Error(`no edge module at ${path}: build the nic_edge target (toolchains/wasm32-wasi.cmake)`);
  }
  return path;
}

export async function startEdge(vars) {
  const worker = join(root, 'wasm/worker.mjs');
  const mf = new Miniflare({
    modulesRoot: root,
    modules: [
      { type: 'ESModule', path: worker, contents: await readFile(worker, 'utf8') },
      // The worker imports ./dist/nic_edge.wasm; give it the module under test.
      { type: 'CompiledWasm', path: join(root, 'wasm/dist/nic_edge.wasm'), contents: await readFile(wasmPath()) },
    ],
    compatibilityDate: '2026-04-01',
    bindings: { EDGE_DEBUG_STATS: '1', ...vars },
    cache: true,
  });
  await mf.ready;
  return {
    mf,
    // Requests go to a public-looking host, as on Cloudflare.
    fetch: (path, init) => mf.dispatchFetch(`https://cdn.test${path}`, init),
    async stats() {
      const res = await mf.dispatchFetch('https://cdn.test/__nic/edge-stats');
      return res.json();
    },
    close: () => mf.dispose(),
  };
}

// Resolves when `condition()` (sync or async) is truthy; polls, and gives up
// with an error after `limitMs` so a broken build fails instead of hanging.
export async function until(condition, what, limitMs = 20000) {
  const start = Date.now();
  for (;;) {
    if (await condition()) return;
    if (Date.now() - start > limitMs) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// A scripted origin: `handler(req, body)` returns {status, headers, body} (or
// a promise of it). Every request is recorded; `hold()` makes responses wait
// until `release()`.
export async function startFakeOrigin(handler) {
  const requests = [];
  let gate = null;
  let open = () => {};
  const server = createServer(async (req, res) => {
    requests.push({ method: req.method, url: req.url, headers: req.headers });
    if (gate) await gate;
    try {
      const r = await handler(req);
      res.writeHead(r.status, r.headers ?? {});
      res.end(r.body ?? '');
    } catch (e) {
      res.writeHead(599, { 'content-type': 'text/plain' });
      res.end(`fake origin handler failed: ${e.stack}`);
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    hold() {
      gate = new Promise((ok) => {
        open = ok;
      });
    },
    release() {
      gate = null;
      open();
    },
    close: () =>
      new Promise((ok) => {
        server.closeAllConnections();
        server.close(ok);
      }),
  };
}
