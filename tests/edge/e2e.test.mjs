// End to end: the edge worker (workerd via miniflare) in front of the real
// nic-origin, which reads images from the fake Notion API and S3. Between the
// edge and the origin sits a counting proxy, so "requests that reach the
// origin" is an exact number.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  haveOrigin,
  measure,
  png,
  signed,
  startCountingProxy,
  startEdge,
  startFakes,
  startOrigin,
  until,
} from './harness.mjs';

const SECRET = 'e2e-edge-secret';
const skip = haveOrigin ? false : 'NIC_ORIGIN_BIN is not set to a built nic-origin';

describe('edge + nic-origin + fake Notion', { skip }, () => {
  let fakes;
  let origin;
  let proxy;
  let edge;
  let image;
  const sign = (name, query) => signed(SECRET, `/img/${image.ws}/${image.block}/${name}`, query);

  before(async () => {
    fakes = await startFakes();
    origin = await startOrigin(fakes, { HMAC_SECRET: SECRET });
    proxy = await startCountingProxy(origin.url);
    edge = await startEdge({ ORIGIN_URL: proxy.url, HMAC_SECRET: SECRET });
    image = await fakes.image(png(64, 48));
  });
  after(async () => {
    await edge?.close();
    await proxy?.close();
    await origin?.close();
    await fakes?.stop();
  });

  it('200 concurrent requests for one uncached image: 1 origin request, 1 S3 download; then all edge hits', async () => {
    const path = sign(image.name, 'w=32&fmt=webp');
    const before = { proxy: proxy.requests.length, s3: (await fakes.counters()).s3_downloads, stats: await edge.stats() };
    proxy.hold();
    const pending = Array.from({ length: 200 }, () => edge.fetch(path));
    await until(async () => (await edge.stats()).followers - before.stats.followers === 199, '199 followers');
    proxy.release();
    const responses = await Promise.all(pending);

    let first = null;
    const tiers = {};
    for (const res of responses) {
      assert.equal(res.status, 200);
      const bytes = Buffer.from(await res.arrayBuffer());
      first ??= bytes;
      assert.ok(bytes.equals(first), 'every requester gets the same bytes');
      tiers[res.headers.get('x-cache-tier')] = (tiers[res.headers.get('x-cache-tier')] ?? 0) + 1;
    }
    assert.deepEqual(measure(first), { format: 'webp', width: 32, height: 24 });
    assert.deepEqual(tiers, { ORIGIN: 1, COALESCED: 199 });
    assert.equal(proxy.requests.length - before.proxy, 1);
    assert.equal((await fakes.counters()).s3_downloads - before.s3, 1);

    const round2 = await Promise.all(Array.from({ length: 200 }, () => edge.fetch(path)));
    for (const res of round2) {
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-cache'), 'HIT');
      assert.equal(res.headers.get('x-cache-tier'), 'EDGE');
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(first));
    }
    assert.equal(proxy.requests.length - before.proxy, 1);
    assert.equal((await fakes.counters()).s3_downloads - before.s3, 1);
  });

  it('different Accept headers -> different cached variants, each with the right bytes', async () => {
    const path = sign(image.name, 'w=48');
    const variants = [
      ['image/avif,image/webp,*/*;q=0.8', 'avif', 'fmt=auto-avif'],
      ['image/webp,*/*;q=0.8', 'webp', 'fmt=auto-webp'],
      ['*/*', 'png', 'fmt=original'],
    ];
    const before = proxy.requests.length;
    const served = {};
    for (const [accept, format, token] of variants) {
      const res = await edge.fetch(path, { headers: { accept } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-cache'), 'MISS');
      assert.equal(res.headers.get('vary'), 'Accept');
      assert.ok(res.headers.get('x-cache-key').includes(token), res.headers.get('x-cache-key'));
      const bytes = Buffer.from(await res.arrayBuffer());
      assert.deepEqual(measure(bytes), { format, width: 48, height: 36 });
      served[format] = bytes;
    }
    assert.equal(proxy.requests.length - before, 3);
    for (const [accept, format] of variants) {
      const res = await edge.fetch(path, { headers: { accept } });
      assert.equal(res.headers.get('x-cache'), 'HIT');
      assert.equal(res.headers.get('content-type'), `image/${format}`);
      const bytes = Buffer.from(await res.arrayBuffer());
      assert.ok(bytes.equals(served[format]), format);
      // The contract's image headers survive the edge cache.
      assert.equal(res.headers.get('content-length'), String(bytes.length));
      assert.equal(res.headers.get('x-optimized-size'), String(bytes.length));
      assert.ok(Number(res.headers.get('x-original-size')) > 0);
      assert.match(res.headers.get('etag'), /^"[0-9a-f]{32}"$/);
      assert.equal(res.headers.get('cache-control'), 'public, max-age=3600, s-maxage=86400, stale-while-revalidate=3600');
      assert.ok(res.headers.get('x-request-id'));
    }
    assert.equal(proxy.requests.length - before, 3);
  });

  it('bad paths, parameters and signatures: the contract errors, the same as the origin, 0 origin requests', async () => {
    const base = `/img/${image.ws}/${image.block}`;
    const cases = [
      [`${base}/a%zz.png`, 400, 'INVALID_PATH'],
      [`/img/${image.ws}/not-a-uuid/x.png`, 400, 'INVALID_PATH'],
      [`${base}/..`, 400, 'INVALID_PATH'],
      [sign(image.name, 'w=99999'), 400, 'INVALID_PARAM'],
      [sign(image.name, 'fit=squash'), 400, 'INVALID_PARAM'],
      [sign(image.name, 'dpr=9'), 400, 'INVALID_PARAM'],
      [sign(image.name, 'q=abc'), 400, 'INVALID_PARAM'],
      [`${base}/${image.name}?w=32`, 403, 'INVALID_SIGNATURE'],
      [`${sign(image.name, 'w=32')}`.replace('w=32', 'w=64'), 403, 'INVALID_SIGNATURE'],
      [signed('another-secret', `${base}/${image.name}`, 'w=32'), 403, 'INVALID_SIGNATURE'],
    ];
    const before = proxy.requests.length;
    for (const [path, status, code] of cases) {
      const res = await edge.fetch(path);
      assert.equal(res.status, status, path);
      assert.equal((await res.json()).error.code, code, path);
      const direct = await origin.fetch(path);
      assert.equal(direct.status, status, `origin: ${path}`);
      assert.equal((await direct.json()).error.code, code, `origin: ${path}`);
    }
    assert.equal(proxy.requests.length - before, 0);
  });

  it('a failing origin: its error passes through, is not cached, and the next request tries again', async () => {
    const other = await fakes.image(png(40, 30));
    const path = signed(SECRET, `/img/${other.ws}/${other.block}/${other.name}`, 'w=32&fmt=png');
    await fakes.control('faults', { s3: { mode: '500', count: 100 } });
    const before = proxy.requests.length;
    const failed = await edge.fetch(path);
    const direct = await origin.fetch(path);
    const failedBody = await failed.json();
    assert.ok(failed.status >= 500, `status ${failed.status}`);
    assert.equal(failed.status, direct.status);
    assert.equal(failedBody.error.code, (await direct.json()).error.code);
    assert.equal(failed.headers.get('cache-control'), 'no-store');
    await fakes.control('faults', { s3: { mode: 'none', count: 0 } });
    const ok = await edge.fetch(path);
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('x-cache'), 'MISS');
    assert.deepEqual(measure(await ok.arrayBuffer()), { format: 'png', width: 32, height: 24 });
    assert.equal(proxy.requests.length - before, 2);
  });

  it('the origin down: 502 UPSTREAM_ERROR, not cached; back up: served', async () => {
    const other = await fakes.image(png(20, 20));
    const path = signed(SECRET, `/img/${other.ws}/${other.block}/${other.name}`, 'fmt=png');
    const direct = await startEdge({ ORIGIN_URL: origin.url, HMAC_SECRET: SECRET });
    try {
      await origin.stop();
      const down = await direct.fetch(path);
      assert.equal(down.status, 502);
      assert.equal((await down.json()).error.code, 'UPSTREAM_ERROR');
      await origin.restart();
      const up = await direct.fetch(path);
      assert.equal(up.status, 200);
      assert.equal(up.headers.get('x-cache'), 'MISS');
      assert.deepEqual(measure(await up.arrayBuffer()), { format: 'png', width: 20, height: 20 });
      const hit = await direct.fetch(path);
      assert.equal(hit.headers.get('x-cache'), 'HIT');
      await hit.arrayBuffer();
    } finally {
      await direct.close();
    }
  });
});

// Issue 11 with the real nic-origin: purge through the edge at two locations,
// CORS, Range, stale-if-error, errors when the origin is gone, SVG headers.
describe('edge + nic-origin: purge, CORS, Range, stale-if-error', { skip }, () => {
  const APP = 'https://app.example';
  let fakes;
  let origin;
  let proxy;
  let kvDir;
  let edgeA;
  let edgeB;
  before(async () => {
    fakes = await startFakes();
    origin = await startOrigin(fakes, { API_KEYS: 'k1', CORS_ORIGINS: APP });
    proxy = await startCountingProxy(origin.url);
    kvDir = mkdtempSync(join(tmpdir(), 'nic-edge-kv-'));
    const vars = { ORIGIN_URL: proxy.url, CORS_ORIGINS: APP };
    edgeA = await startEdge(vars, { kvPersist: kvDir });
    edgeB = await startEdge(vars, { kvPersist: kvDir });
  });
  after(async () => {
    await edgeA?.close();
    await edgeB?.close();
    await proxy?.close();
    await origin?.close();
    await fakes?.stop();
    rmSync(kvDir, { recursive: true, force: true });
  });

  it('DELETE /api/v1/cache through one edge: both edges stop serving every variant, and fetch anew once', async () => {
    const image = await fakes.image(png(64, 48));
    const base = `/img/${image.ws}/${image.block}/${image.name}`;
    const variants = [`${base}?w=32&fmt=webp`, `${base}?w=48&fmt=png`];
    for (const edge of [edgeA, edgeB]) {
      for (const path of variants) {
        await (await edge.fetch(path)).arrayBuffer();
        const hit = await edge.fetch(path);
        assert.equal(hit.headers.get('x-cache'), 'HIT');
        await hit.arrayBuffer();
      }
    }
    const s3 = (await fakes.counters()).s3_downloads;
    const before = proxy.requests.length;
    const purge = await edgeB.fetch(`/api/v1/cache?url=${encodeURIComponent(base)}`, {
      method: 'DELETE',
      headers: { authorization: 'Bearer k1' },
    });
    assert.equal(purge.status, 200);
    assert.equal(purge.headers.get('x-edge-purged'), image.block);
    assert.equal((await purge.json()).purged, true);
    for (const edge of [edgeA, edgeB]) {
      for (const path of variants) {
        const res = await edge.fetch(path);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('x-cache'), 'MISS', path);
        await res.arrayBuffer();
        const hit = await edge.fetch(path);
        assert.equal(hit.headers.get('x-cache'), 'HIT');
        await hit.arrayBuffer();
      }
    }
    // The purge + 2 variants at each edge (the second edge's are the origin's memory hits).
    assert.equal(proxy.requests.length - before, 1 + 4);
    assert.equal((await fakes.counters()).s3_downloads - s3, 1, 'the source was purged at the origin too');
    // A wrong key is the origin's 401, passed through, and purges nothing at the edge.
    const refused = await edgeA.fetch(`/api/v1/cache?url=${encodeURIComponent(base)}`, {
      method: 'DELETE',
      headers: { authorization: 'Bearer wrong' },
    });
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get('x-edge-purged'), null);
    assert.equal((await refused.json()).error.code, 'INVALID_API_KEY');
    const still = await edgeA.fetch(variants[0]);
    assert.equal(still.headers.get('x-cache'), 'HIT');
    await still.arrayBuffer();
  });

  it('CORS on a miss, a hit and an edge error; Range on a hit', async () => {
    const image = await fakes.image(png(40, 30));
    const path = `/img/${image.ws}/${image.block}/${image.name}?fmt=png`;
    const miss = await edgeA.fetch(path, { headers: { origin: APP } });
    assert.equal(miss.headers.get('access-control-allow-origin'), APP);
    const bytes = Buffer.from(await miss.arrayBuffer());
    const hit = await edgeA.fetch(path, { headers: { origin: APP, range: 'bytes=0-7' } });
    assert.equal(hit.status, 206);
    assert.equal(hit.headers.get('x-cache'), 'HIT');
    assert.equal(hit.headers.get('access-control-allow-origin'), APP);
    assert.equal(hit.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(hit.headers.get('content-range'), `bytes 0-7/${bytes.length}`);
    assert.ok(Buffer.from(await hit.arrayBuffer()).equals(bytes.subarray(0, 8)));
    const past = await edgeA.fetch(path, { headers: { range: `bytes=${bytes.length}-` } });
    assert.equal(past.status, 416);
    await past.arrayBuffer();
    const bad = await edgeA.fetch(`/img/${image.ws}/${image.block}/${image.name}?w=0`, { headers: { origin: APP } });
    assert.equal(bad.status, 400);
    assert.equal(bad.headers.get('access-control-allow-origin'), APP);
    await bad.arrayBuffer();
  });

  it('an SVG through the edge: the sandboxing CSP and nosniff on the hit', async () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>';
    const image = await fakes.image(Buffer.from(svg), 'logo.svg', 'image/svg+xml');
    const path = `/img/${image.ws}/${image.block}/${image.name}?fmt=original`;
    const miss = await edgeA.fetch(path);
    assert.equal(miss.status, 200, await miss.clone().text());
    await miss.arrayBuffer();
    const hit = await edgeA.fetch(path);
    assert.equal(hit.headers.get('x-cache'), 'HIT');
    assert.equal(hit.headers.get('content-type'), 'image/svg+xml');
    assert.equal(hit.headers.get('content-security-policy'), "default-src 'none'; style-src 'unsafe-inline'; sandbox");
    assert.equal(hit.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(await hit.text(), svg);
  });

  it('the origin gone: a stale copy stands in for images, every other route is the contract\'s 502', async () => {
    const image = await fakes.image(png(24, 24));
    const path = `/img/${image.ws}/${image.block}/${image.name}?fmt=png`;
    const edge = await startEdge({ ORIGIN_URL: origin.url, CACHE_TTL_SECONDS: '0' }, { kv: true });
    try {
      const fresh = await edge.fetch(path);
      assert.equal(fresh.status, 200);
      const bytes = Buffer.from(await fresh.arrayBuffer());
      await origin.stop();
      const stale = await edge.fetch(path);
      assert.equal(stale.status, 200);
      assert.match(stale.headers.get('x-cache-stale'), /^\d+$/);
      assert.ok(Buffer.from(await stale.arrayBuffer()).equals(bytes));
      for (const [method, route] of [['GET', '/health'], ['GET', '/metrics'], ['DELETE', '/api/v1/cache?url=x']]) {
        const res = await edge.fetch(route, { method });
        assert.equal(res.status, 502, route);
        assert.equal(res.headers.get('cache-control'), 'no-store');
        assert.equal((await res.json()).error.code, 'UPSTREAM_ERROR');
      }
      await origin.restart();
      const back = await edge.fetch(path);
      assert.equal(back.status, 200);
      assert.equal(back.headers.get('x-cache-stale'), null);
      await back.arrayBuffer();
    } finally {
      await edge.close();
    }
  });
});
