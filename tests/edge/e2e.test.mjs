// End to end: the edge worker (workerd via miniflare) in front of the real
// nic-origin, which reads images from the fake Notion API and S3. Between the
// edge and the origin sits a counting proxy, so "requests that reach the
// origin" is an exact number.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
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
