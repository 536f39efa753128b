// Edge herd: N concurrent requests for one uncached image at one isolate ->
// how many reach the origin (which takes ORIGIN_MS to answer, like a
// transform), then a second round of N. Baseline, in the same run: a plain
// caching worker without coalescing (what a naive edge does).
import { Miniflare } from 'miniflare';
import { performance } from 'node:perf_hooks';
import { startEdge, startFakeOrigin } from '../../tests/edge/harness.mjs';

const ORIGIN_MS = 100;
const SIZES = [1, 10, 100, 500];

const naiveWorker = `
export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    const hit = await caches.default.match(request.url);
    if (hit) return hit;
    const res = await fetch(env.ORIGIN_URL + url.pathname + url.search);
    const bytes = await res.arrayBuffer();
    if (res.status === 200) {
      ctx.waitUntil(caches.default.put(request.url, new Response(bytes, { headers: res.headers })));
    }
    return new Response(bytes, res);
  },
};`;

async function startNaive(originUrl) {
  const mf = new Miniflare({
    modules: true,
    script: naiveWorker,
    compatibilityDate: '2026-04-01',
    bindings: { ORIGIN_URL: originUrl },
    cache: true,
  });
  await mf.ready;
  return { fetch: (path, init) => mf.dispatchFetch(`https://cdn.test${path}`, init), close: () => mf.dispose() };
}

const origin = await startFakeOrigin(async (req) => {
  await new Promise((r) => setTimeout(r, ORIGIN_MS));
  return {
    status: 200,
    // Like nic-origin, it names the variant it made (the edge stores only that; EDGE_DEBUG_STATS tells it the key).
    headers: { 'content-type': 'image/webp', 'cache-control': 'public, s-maxage=86400', etag: '"e"', 'x-cache-key': req.headers['x-nic-edge-key'] ?? 'none' },
    body: Buffer.alloc(20000, req.url.length),
  };
});

async function round(edge, path, n) {
  const before = origin.requests.length;
  const t0 = performance.now();
  const responses = await Promise.all(Array.from({ length: n }, () => edge.fetch(path)));
  let ok = 0;
  for (const r of responses) {
    try {
      await r.arrayBuffer();
      if (r.status === 200) ok += 1;
    } catch {
      // counted as not-OK: the 200s column shows it
    }
  }
  return { origin: origin.requests.length - before, ok, ms: performance.now() - t0 };
}

const edges = {
  'nic edge (coalescing)': await startEdge({ ORIGIN_URL: origin.url }),
  'baseline: caching worker, no coalescing': await startNaive(origin.url),
};
console.log(`origin answers after ${ORIGIN_MS} ms; one isolate; each row a new image`);
console.log('| worker | N concurrent | 200s | origin requests (cold) | origin requests (2nd round) | cold round ms |');
console.log('|---|---:|---:|---:|---:|---:|');
let image = 0;
for (const n of SIZES) {
  for (const [name, edge] of Object.entries(edges)) {
    image += 1;
    const path = `/img/0f1e2d3c4b5a69788796a5b4c3d2e1f0/a1b2c3d4e5f64a7b8c9d0e1f2a3b4c5d/herd${image}.jpg?w=640&fmt=webp`;
    const cold = await round(edge, path, n);
    // let the baseline's waitUntil(cache.put) land before the second round
    await new Promise((r) => setTimeout(r, 200));
    const warm = await round(edge, path, n);
    console.log(`| ${name} | ${n} | ${cold.ok} | ${cold.origin} | ${warm.origin} | ${cold.ms.toFixed(0)} |`);
  }
}
for (const edge of Object.values(edges)) await edge.close();
await origin.close();
