// Herd memory at one isolate: N followers of one uncached SIZE-byte image.
// Measured as the workerd process's peak resident memory (VmHWM, a fresh
// workerd per row), before the herd and after every response was read.
// Baseline, same run: the worker as it was before issue 11, where each
// follower's Response was built from the shared ArrayBuffer (workerd copies
// an ArrayBuffer body into the Response); now every Response reads one Blob.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root, startEdge, startFakeOrigin, until } from '../../tests/edge/harness.mjs';

const N = Number(process.env.HERD ?? 300);
const SIZE = Number(process.env.SIZE ?? 2 * 1024 * 1024);

const current = readFileSync(join(root, 'wasm/worker.mjs'), 'utf8');
const blobLine = 'const blob = await res.blob();';
if (!current.includes(blobLine)) throw new Error('worker.mjs no longer shares a Blob: update this benchmark');
const perFollowerCopy = current.replace(blobLine, 'const blob = await res.arrayBuffer();');

const body = Buffer.alloc(SIZE, 7);
const origin = await startFakeOrigin((req) => ({
  status: 200,
  headers: { 'content-type': 'image/avif', 'content-length': String(SIZE), etag: '"m"', 'x-cache-key': req.headers['x-nic-edge-key'] },
  body,
}));

async function row(name, workerSource) {
  const edge = await startEdge({ ORIGIN_URL: origin.url }, { workerSource });
  // Warm up: the module, the cache, one small request.
  await (await edge.fetch('/img/0f1e2d3c4b5a69788796a5b4c3d2e1f0/a1b2c3d4e5f64a7b8c9d0e1f2a3b4c5d/warm.png?w=32&fmt=png')).arrayBuffer();
  const before = edge.peakRss();
  const path = `/img/0f1e2d3c4b5a69788796a5b4c3d2e1f0/a1b2c3d4e5f64a7b8c9d0e1f2a3b4c5d/herd-${name.length}.avif?w=640&fmt=avif`;
  const asked = origin.requests.length;
  origin.hold();
  const s0 = await edge.stats();
  const pending = Array.from({ length: N }, () => edge.fetch(path));
  await until(async () => (await edge.stats()).followers - s0.followers === N - 1, `${N - 1} followers`, 120000);
  origin.release();
  const responses = await Promise.all(pending);
  let ok = 0;
  await Promise.all(responses.map(async (r) => {
    if (r.status === 200 && (await r.arrayBuffer()).byteLength === SIZE) ok += 1;
  }));
  const peak = edge.peakRss();
  await edge.close();
  const mb = (b) => (b / 1048576).toFixed(0);
  return `| ${name} | ${N} | ${ok} | ${origin.requests.length - asked} | ${mb(before)} | ${mb(peak)} | ${mb(peak - before)} |`;
}

console.log(`${N} concurrent requests for one uncached ${(SIZE / 1048576).toFixed(1)} MB image at one isolate; workerd peak RSS (VmHWM)`);
console.log('| worker | requests | 200s with all bytes | origin requests | peak RSS before herd MB | peak RSS after MB | herd added MB |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
console.log(await row('baseline: ArrayBuffer per follower (before)', perFollowerCopy));
console.log(await row('nic edge: one shared Blob (now)', undefined));
await origin.close();
