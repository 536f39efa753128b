// Issue 11 against a scripted counting origin: purge across locations (KV
// generations), errors by the contract on every route, CORS, Range,
// stale-if-error, the client address for the origin, the image header policy.
// Every count is exact.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEdge, startFakeOrigin, until } from './harness.mjs';

const WS = '0f1e2d3c4b5a69788796a5b4c3d2e1f0';
const ID = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d';
const ID_HEX = ID.replaceAll('-', '');
const OTHER = 'b1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d';
const img = (name, query = '', id = ID) => `/img/${WS}/${id}/${name}${query ? `?${query}` : ''}`;
const BODY = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));

// An origin whose answers the test scripts by path: `mode[path]` is a
// function of the request, else a nic-like 200 image (bytes BODY + version).
function scriptedOrigin() {
  const mode = {};
  let version = 0;
  const origin = startFakeOrigin(async (req) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (mode[path]) return mode[path](req);
    if (!path.startsWith('/img/') && req.method === 'GET') return { status: 200, headers: { 'content-type': 'text/plain' }, body: 'ok' };
    if (req.method === 'DELETE') {
      const url = decodeURIComponent(new URL(req.url, 'http://x').searchParams.get('url'));
      const id = url.split('/')[3].replaceAll('-', '');
      return {
        status: 200,
        headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
        body: JSON.stringify({ purged: true, removed: 1, prefixes: [`v1/${WS}/${id}/`] }),
      };
    }
    const body = Buffer.concat([BODY, Buffer.from(`v${version}`)]);
    return {
      status: 200,
      headers: {
        'content-type': path.endsWith('.svg') ? 'image/svg+xml' : 'image/png',
        'content-length': String(body.length),
        etag: `"v${version}"`,
        'x-cache-key': req.headers['x-nic-edge-key'],
        'access-control-allow-origin': 'https://from-the-origin.example',
      },
      body,
    };
  });
  return origin.then((o) => Object.assign(o, { mode, bump: () => (version += 1) }));
}

const nicError = (status, code) => ({
  status,
  headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
  body: JSON.stringify({ error: { status, code, message: 'from the origin', requestId: 'origin-id' } }),
});
const count = (origin, path) => origin.requests.filter((r) => r.url.split('?')[0] === path.split('?')[0]).length;

describe('edge: purge reaches every location (KV generations)', () => {
  let origin;
  let kvDir;
  let edgeA;
  let edgeB;
  before(async () => {
    origin = await scriptedOrigin();
    kvDir = mkdtempSync(join(tmpdir(), 'nic-edge-kv-'));
    // Two data centres: separate caches, one KV namespace.
    edgeA = await startEdge({ ORIGIN_URL: origin.url }, { kvPersist: kvDir });
    edgeB = await startEdge({ ORIGIN_URL: origin.url }, { kvPersist: kvDir });
  });
  after(async () => {
    await edgeA.close();
    await edgeB.close();
    await origin.close();
    rmSync(kvDir, { recursive: true, force: true });
  });

  it('a purge through one edge stops both from serving every variant of the source; other sources stay', async () => {
    const variants = [img('p.png', 'w=64&fmt=png'), img('p.png', 'w=128&fmt=webp'), img('p.png', 'fmt=auto')];
    const kept = img('k.png', 'fmt=png', OTHER);
    for (const edge of [edgeA, edgeB]) {
      for (const path of [...variants, kept]) {
        const miss = await edge.fetch(path);
        assert.equal(miss.headers.get('x-cache'), 'MISS');
        await miss.arrayBuffer();
        const hit = await edge.fetch(path);
        assert.equal(hit.headers.get('x-cache'), 'HIT');
        // The edge's own headers only: the stored copy carries no generation, tag or origin CORS.
        for (const h of ['x-nic-generation', 'x-nic-fresh-until', 'cache-tag', 'access-control-allow-origin']) {
          assert.equal(hit.headers.get(h), null, h);
        }
        await hit.arrayBuffer();
      }
    }
    const before = origin.requests.length;
    assert.equal(before, 8);
    const purge = await edgeA.fetch(`/api/v1/cache?url=${encodeURIComponent(img('p.png'))}`, {
      method: 'DELETE',
      headers: { authorization: 'Bearer k' },
    });
    assert.equal(purge.status, 200);
    assert.equal(purge.headers.get('x-edge-purged'), ID_HEX);
    assert.equal((await purge.json()).purged, true);
    assert.equal(origin.requests.length, before + 1);
    origin.bump();

    for (const edge of [edgeA, edgeB]) {
      for (const path of variants) {
        const after = await edge.fetch(path);
        assert.equal(after.headers.get('x-cache'), 'MISS', path);
        assert.equal(after.headers.get('etag'), '"v1"');
        await after.arrayBuffer();
        const again = await edge.fetch(path);
        assert.equal(again.headers.get('x-cache'), 'HIT');
        assert.equal(again.headers.get('etag'), '"v1"');
        await again.arrayBuffer();
      }
      const other = await edge.fetch(kept);
      assert.equal(other.headers.get('x-cache'), 'HIT');
      assert.equal(other.headers.get('etag'), '"v0"');
      await other.arrayBuffer();
    }
    // 1 purge + 3 variants refetched at each of the 2 edges.
    assert.equal(origin.requests.length, before + 1 + 6);
  });

  it('a flight in the air during a purge: its old bytes are never served after it', async () => {
    const path = img('race.png', 'fmt=png');
    origin.hold();
    const before = await edgeA.stats();
    const old = edgeA.fetch(path); // leader under the old generation
    await until(async () => (await edgeA.stats()).flights - before.flights === 1, 'the flight');
    // The purge is answered while the flight waits.
    origin.release();
    origin.hold();
    const purging = edgeA.fetch(`/api/v1/cache?url=${encodeURIComponent(path)}`, { method: 'DELETE' });
    await until(() => origin.requests.some((r) => r.method === 'DELETE' && r.url.includes('race.png')), 'purge sent');
    const oldRes = await old;
    assert.equal(oldRes.headers.get('x-cache'), 'MISS');
    await oldRes.arrayBuffer();
    origin.release();
    assert.equal((await purging).status, 200);
    const reqs = count(origin, path);
    const next = await edgeA.fetch(path);
    assert.equal(next.headers.get('x-cache'), 'MISS', 'the copy stored under the old generation is not served');
    await next.arrayBuffer();
    assert.equal(count(origin, path), reqs + 1);
  });

  it('a failed purge at the origin changes nothing at the edge', async () => {
    const path = img('kept.png', 'fmt=png');
    await (await edgeA.fetch(path)).arrayBuffer();
    origin.mode['/api/v1/cache'] = () => nicError(401, 'MISSING_API_KEY');
    try {
      const res = await edgeA.fetch(`/api/v1/cache?url=${encodeURIComponent(path)}`, { method: 'DELETE' });
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('x-edge-purged'), null);
      assert.equal((await res.json()).error.code, 'MISSING_API_KEY');
    } finally {
      delete origin.mode['/api/v1/cache'];
    }
    const hit = await edgeA.fetch(path);
    assert.equal(hit.headers.get('x-cache'), 'HIT');
    await hit.arrayBuffer();
  });

  it('without the KV binding the purge answer says the edge was not purged', async () => {
    const e = await startEdge({ ORIGIN_URL: origin.url });
    try {
      const res = await e.fetch(`/api/v1/cache?url=${encodeURIComponent(img('x.png'))}`, { method: 'DELETE' });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-edge-purged'), 'none (no NIC_PURGE KV binding)');
      await res.arrayBuffer();
    } finally {
      await e.close();
    }
  });
});

describe('edge: errors by the contract on every route', () => {
  let origin;
  let edge;
  before(async () => {
    origin = await scriptedOrigin();
    edge = await startEdge({ ORIGIN_URL: origin.url, FOLLOWER_TIMEOUT_MS: '500', STALE_IF_ERROR_SECONDS: '0' });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  const assertContractError = async (res, status, code) => {
    const text = await res.text();
    assert.equal(res.status, status, text);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(res.headers.get('expires'), null);
    const body = JSON.parse(text);
    assert.equal(body.error.status, status);
    assert.equal(body.error.code, code);
    assert.equal(body.error.requestId, res.headers.get('x-request-id'));
    assert.match(body.error.requestId, /^[0-9a-f-]{36}$/);
    return body;
  };

  const loadBalancer500 = () => ({
    status: 500,
    headers: { 'content-type': 'text/html', 'cache-control': 'public, max-age=600', expires: 'Thu, 01 Jan 2099 00:00:00 GMT' },
    body: '<html>Internal Server Error</html>',
  });

  for (const path of ['/health', '/metrics', '/api/v1/stats', '/api/v1/proxy']) {
    it(`${path}: a load balancer's 500 -> 502 UPSTREAM_ERROR; a gateway 504 -> 504; a hang -> 504`, async () => {
      origin.mode[path] = loadBalancer500;
      const body = await assertContractError(await edge.fetch(path), 502, 'UPSTREAM_ERROR');
      assert.match(body.error.message, /500 \(text\/html\)/);
      origin.mode[path] = () => ({ status: 504, headers: { 'content-type': 'text/plain' }, body: 'gateway timeout' });
      await assertContractError(await edge.fetch(path), 504, 'UPSTREAM_TIMEOUT');
      origin.mode[path] = () => new Promise(() => {});
      await assertContractError(await edge.fetch(path), 504, 'UPSTREAM_TIMEOUT');
      delete origin.mode[path];
    });
  }

  it('the purge route: a non-nic 403 -> 502; the contract error of the origin passes with no-store', async () => {
    origin.mode['/api/v1/cache'] = () => ({ status: 403, headers: { 'content-type': 'text/html' }, body: 'denied' });
    await assertContractError(await edge.fetch('/api/v1/cache?url=x', { method: 'DELETE' }), 502, 'UPSTREAM_ERROR');
    origin.mode['/api/v1/cache'] = () => ({ ...nicError(401, 'INVALID_API_KEY'), headers: { 'content-type': 'application/json', 'cache-control': 'max-age=60' } });
    const res = await edge.fetch('/api/v1/cache?url=x', { method: 'DELETE' });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal((await res.json()).error.requestId, 'origin-id');
    delete origin.mode['/api/v1/cache'];
  });

  it('/health: the origin\'s own 503 report passes through, no-store', async () => {
    origin.mode['/health'] = () => ({ status: 503, headers: { 'content-type': 'application/json' }, body: '{"status":"down"}' });
    const res = await edge.fetch('/health');
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.deepEqual(await res.json(), { status: 'down' });
    delete origin.mode['/health'];
  });

  it('an image: a non-nic 500 with max-age=600 -> 502, never cached; the next request asks again', async () => {
    const path = img('lb.png', 'fmt=png');
    origin.mode[path.split('?')[0]] = loadBalancer500;
    for (let i = 1; i <= 2; i++) {
      const body = await assertContractError(await edge.fetch(path), 502, 'UPSTREAM_ERROR');
      assert.match(body.error.message, /the origin answered 500/);
      assert.equal(count(origin, path), i);
    }
    origin.mode[path.split('?')[0]] = () => ({ status: 200, headers: { 'content-type': 'image/png' }, body: 'no key' });
    for (let i = 3; i <= 4; i++) {
      const res = await edge.fetch(path);
      assert.equal(res.status, 200, 'a 200 without X-Cache-Key is served');
      assert.equal(await res.text(), 'no key');
      assert.equal(count(origin, path), i, 'but never stored');
    }
    delete origin.mode[path.split('?')[0]];
  });

  it('an image: a hanging origin -> 504 for the leader and its followers', async () => {
    const path = img('hang.png', 'fmt=png');
    origin.mode[path.split('?')[0]] = () => new Promise(() => {});
    const all = await Promise.all([edge.fetch(path), edge.fetch(path), edge.fetch(path)]);
    for (const res of all) await assertContractError(res, 504, 'UPSTREAM_TIMEOUT');
    assert.equal(count(origin, path), 1);
    delete origin.mode[path.split('?')[0]];
  });

  it('the origin down: 502 on every route', async () => {
    const down = await startFakeOrigin(() => ({ status: 200 }));
    const url = down.url;
    await down.close();
    const e = await startEdge({ ORIGIN_URL: url });
    try {
      for (const [method, path] of [['GET', '/health'], ['GET', '/metrics'], ['GET', '/api/v1/stats'],
        ['GET', '/api/v1/proxy?url=x'], ['DELETE', '/api/v1/cache?url=x'], ['GET', img('d.png')]]) {
        await assertContractError(await e.fetch(path, { method }), 502, 'UPSTREAM_ERROR');
      }
    } finally {
      await e.close();
    }
  });
});

describe('edge: CORS from CORS_ORIGINS', () => {
  let origin;
  const APP = 'https://app.example';
  before(async () => {
    origin = await scriptedOrigin();
  });
  after(() => origin.close());

  it('a list: the listed origin on miss, hit, 304, edge errors and forwarded routes; others get none', async () => {
    const e = await startEdge({ ORIGIN_URL: origin.url, CORS_ORIGINS: `${APP}, https://other.example` });
    try {
      const path = img('cors.png', 'fmt=auto');
      const check = async (res, tier) => {
        assert.equal(res.headers.get('access-control-allow-origin'), APP, tier);
        assert.match(res.headers.get('vary'), /Origin/, tier);
        await res.arrayBuffer();
      };
      const miss = await e.fetch(path, { headers: { origin: APP } });
      assert.equal(miss.headers.get('vary'), 'Accept, Origin');
      await check(miss, 'miss');
      const hit = await e.fetch(path, { headers: { origin: APP } });
      assert.equal(hit.headers.get('x-cache'), 'HIT');
      await check(hit, 'hit');
      await check(await e.fetch(path, { headers: { origin: APP, 'if-none-match': '"v0"' } }), '304');
      await check(await e.fetch(img('c.png', 'w=0'), { headers: { origin: APP } }), 'edge error');
      await check(await e.fetch('/health', { headers: { origin: APP } }), 'forwarded');
      const preflight = await e.fetch(path, { method: 'OPTIONS', headers: { origin: APP } });
      assert.equal(preflight.status, 204);
      await check(preflight, 'preflight');
      for (const other of ['https://evil.example', '']) {
        const res = await e.fetch(path, { headers: other ? { origin: other } : {} });
        assert.equal(res.headers.get('access-control-allow-origin'), null, other);
        await res.arrayBuffer();
      }
    } finally {
      await e.close();
    }
  });

  it('"*" (the default): any origin, hit and miss; unreachable origin errors too', async () => {
    const e = await startEdge({ ORIGIN_URL: origin.url });
    try {
      for (const expect of ['MISS', 'HIT']) {
        const res = await e.fetch(img('star.png', 'fmt=png'), { headers: { origin: 'https://x.example' } });
        assert.equal(res.headers.get('x-cache'), expect);
        assert.equal(res.headers.get('access-control-allow-origin'), '*');
        assert.equal(res.headers.get('vary'), null);
        await res.arrayBuffer();
      }
    } finally {
      await e.close();
    }
    const down = await startEdge({ ORIGIN_URL: 'http://127.0.0.1:1' });
    try {
      const res = await down.fetch('/metrics', { headers: { origin: 'https://x.example' } });
      assert.equal(res.status, 502);
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      await res.arrayBuffer();
    } finally {
      await down.close();
    }
  });

  it('a bad CORS_ORIGINS entry stops the worker with a 500 naming it', async () => {
    const e = await startEdge({ ORIGIN_URL: origin.url, CORS_ORIGINS: 'app.example' });
    try {
      const res = await e.fetch(img('a.png'));
      assert.equal(res.status, 500);
      assert.match((await res.json()).error.message, /CORS_ORIGINS/);
    } finally {
      await e.close();
    }
  });
});

describe('edge: Range on hits (and misses)', () => {
  let origin;
  let edge;
  const path = img('range.png', 'fmt=png');
  let full;
  before(async () => {
    origin = await scriptedOrigin();
    edge = await startEdge({ ORIGIN_URL: origin.url });
    const first = await edge.fetch(path, { headers: { range: 'bytes=0-9' } });
    assert.equal(first.headers.get('x-cache'), 'MISS');
    assert.equal(first.status, 206);
    assert.equal((await first.arrayBuffer()).byteLength, 10);
    full = Buffer.from(await (await edge.fetch(path)).arrayBuffer());
    assert.equal(full.length, 1002);
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  for (const [range, first, last] of [
    ['bytes=0-99', 0, 99],
    ['bytes=900-', 900, 1001],
    ['bytes=-10', 992, 1001],
    ['bytes=1000-5000', 1000, 1001],
    ['bytes=-5000', 0, 1001],
  ]) {
    it(`${range} -> 206 bytes ${first}-${last}/1002`, async () => {
      const res = await edge.fetch(path, { headers: { range } });
      assert.equal(res.status, 206);
      assert.equal(res.headers.get('x-cache'), 'HIT');
      assert.equal(res.headers.get('content-range'), `bytes ${first}-${last}/1002`);
      assert.equal(res.headers.get('content-length'), String(last - first + 1));
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(full.subarray(first, last + 1)));
    });
  }

  for (const range of ['bytes=1002-', 'bytes=5000-6000', 'bytes=-0']) {
    it(`${range} -> 416 with Content-Range: bytes */1002`, async () => {
      const res = await edge.fetch(path, { headers: { range } });
      assert.equal(res.status, 416);
      assert.equal(res.headers.get('content-range'), 'bytes */1002');
      assert.equal(res.headers.get('cache-control'), 'no-store');
      assert.equal((await res.json()).error.code, 'RANGE_NOT_SATISFIABLE');
    });
  }

  for (const [name, headers] of [
    ['several ranges', { range: 'bytes=0-1,5-6' }],
    ['another unit', { range: 'items=0-1' }],
    ['malformed', { range: 'bytes=9-2' }],
    ['If-Range with another ETag', { range: 'bytes=0-1', 'if-range': '"old"' }],
  ]) {
    it(`${name} -> 200, the whole image`, async () => {
      const res = await edge.fetch(path, { headers });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('accept-ranges'), 'bytes');
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(full));
    });
  }

  it('If-Range with the ETag -> 206; If-None-Match wins over Range (304)', async () => {
    const res = await edge.fetch(path, { headers: { range: 'bytes=0-1', 'if-range': '"v0"' } });
    assert.equal(res.status, 206);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(full.subarray(0, 2)));
    const nm = await edge.fetch(path, { headers: { range: 'bytes=0-1', 'if-none-match': '"v0"' } });
    assert.equal(nm.status, 304);
    await nm.arrayBuffer();
    assert.equal(count(origin, path), 1);
  });
});

describe('edge: stale-if-error', () => {
  let origin;
  let edge;
  before(async () => {
    origin = await scriptedOrigin();
    // TTL 0: every stored copy is stale at once, so each request asks the origin.
    edge = await startEdge(
      { ORIGIN_URL: origin.url, CACHE_TTL_SECONDS: '0', FOLLOWER_TIMEOUT_MS: '500' },
      { kv: true },
    );
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  const failures = {
    'a non-nic 500': () => ({ status: 500, headers: { 'content-type': 'text/html' }, body: 'oops' }),
    'the contract\'s 503': () => nicError(503, 'OVERLOADED'),
    'the contract\'s 502': () => nicError(502, 'NOTION_API_ERROR'),
    'a hang (timeout)': () => new Promise(() => {}),
    'a dropped connection': (req) => {
      req.socket.destroy();
      return new Promise(() => {});
    },
  };

  it('a stored copy past its TTL stands in for each kind of origin failure, marked X-Cache-Stale', async () => {
    const path = img('stale.png', 'fmt=png');
    const fresh = await edge.fetch(path);
    assert.equal(fresh.status, 200);
    assert.equal(fresh.headers.get('x-cache-stale'), null);
    const bytes = Buffer.from(await fresh.arrayBuffer());
    let asked = count(origin, path);
    for (const [name, fail] of Object.entries(failures)) {
      origin.mode[path.split('?')[0]] = fail;
      const res = await edge.fetch(path, { headers: { range: 'bytes=0-3' } });
      assert.equal(res.status, 206, name);
      assert.equal(res.headers.get('x-cache'), 'HIT');
      assert.equal(res.headers.get('x-cache-tier'), 'EDGE');
      assert.match(res.headers.get('x-cache-stale'), /^\d+$/);
      assert.equal(res.headers.get('cache-control'), 'public, max-age=60');
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(bytes.subarray(0, 4)), name);
      assert.equal(count(origin, path), (asked += 1), `${name}: the origin was asked`);
    }
    // A 404 is an answer, not a failure: it passes.
    origin.mode[path.split('?')[0]] = () => nicError(404, 'IMAGE_NOT_FOUND');
    assert.equal((await edge.fetch(path)).status, 404);
    delete origin.mode[path.split('?')[0]];
    const back = await edge.fetch(path);
    assert.equal(back.status, 200);
    assert.equal(back.headers.get('x-cache-stale'), null);
    await back.arrayBuffer();
  });

  it('a purged copy never stands in', async () => {
    const path = img('purged.png', 'fmt=png', OTHER);
    await (await edge.fetch(path)).arrayBuffer();
    const purge = await edge.fetch(`/api/v1/cache?url=${encodeURIComponent(path)}`, { method: 'DELETE' });
    assert.equal(purge.status, 200);
    await purge.arrayBuffer();
    origin.mode[path.split('?')[0]] = () => nicError(503, 'OVERLOADED');
    const res = await edge.fetch(path);
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('x-cache-stale'), null);
    await res.arrayBuffer();
    delete origin.mode[path.split('?')[0]];
  });

  it('STALE_IF_ERROR_SECONDS=0: no stand-in, the error', async () => {
    const e = await startEdge({ ORIGIN_URL: origin.url, CACHE_TTL_SECONDS: '0', STALE_IF_ERROR_SECONDS: '0' });
    try {
      const path = img('nostale.png', 'fmt=png');
      await (await e.fetch(path)).arrayBuffer();
      origin.mode[path.split('?')[0]] = failures['a non-nic 500'];
      const res = await e.fetch(path);
      assert.equal(res.status, 502);
      assert.equal((await res.json()).error.code, 'UPSTREAM_ERROR');
      delete origin.mode[path.split('?')[0]];
    } finally {
      await e.close();
    }
  });
});

describe('edge: what the origin is told, and image headers', () => {
  let origin;
  let edge;
  before(async () => {
    origin = await scriptedOrigin();
    edge = await startEdge({ ORIGIN_URL: origin.url, EDGE_SECRET: 'edge-origin-secret' });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('the client address with EDGE_SECRET, on image misses and forwarded routes; a client cannot spoof either', async () => {
    const spoof = { 'cf-connecting-ip': '203.0.113.7', 'x-client-ip': '10.0.0.1', 'x-edge-secret': 'guess' };
    const res = await edge.fetch(img('ip.png', 'fmt=png'), { headers: spoof });
    await res.arrayBuffer();
    await (await edge.fetch('/metrics', { headers: spoof })).arrayBuffer();
    const seen = origin.requests.slice(-2);
    assert.equal(seen.length, 2);
    for (const r of seen) {
      assert.equal(r.headers['x-client-ip'], '203.0.113.7', r.url);
      assert.equal(r.headers['x-edge-secret'], 'edge-origin-secret', r.url);
    }
    const plain = await startEdge({ ORIGIN_URL: origin.url });
    try {
      await (await plain.fetch('/metrics', { headers: spoof })).arrayBuffer();
      const r = origin.requests.at(-1);
      assert.equal(r.headers['x-edge-secret'], undefined);
      assert.equal(r.headers['x-client-ip'], '203.0.113.7');
    } finally {
      await plain.close();
    }
  });

  it('nosniff on every image answer; SVG also gets the sandboxing CSP, on a miss and a hit', async () => {
    for (const expect of ['MISS', 'HIT']) {
      const svg = await edge.fetch(img('logo.svg', 'fmt=original'));
      assert.equal(svg.headers.get('x-cache'), expect);
      assert.equal(svg.headers.get('content-type'), 'image/svg+xml');
      assert.equal(svg.headers.get('content-security-policy'), "default-src 'none'; style-src 'unsafe-inline'; sandbox");
      assert.equal(svg.headers.get('x-content-type-options'), 'nosniff');
      await svg.arrayBuffer();
      const png = await edge.fetch(img('plain.png', 'fmt=png'));
      assert.equal(png.headers.get('x-cache'), expect);
      assert.equal(png.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(png.headers.get('content-security-policy'), null);
      await png.arrayBuffer();
    }
  });
});

describe('edge: herd memory', () => {
  it('100 followers of a 2 MB image share one copy: workerd grows by less than 25 copies', async () => {
    const SIZE = 2 * 1024 * 1024;
    const body = Buffer.alloc(SIZE, 3);
    const origin = await startFakeOrigin((req) => ({
      status: 200,
      headers: { 'content-type': 'image/avif', 'content-length': String(SIZE), 'x-cache-key': req.headers['x-nic-edge-key'] },
      body,
    }));
    const edge = await startEdge({ ORIGIN_URL: origin.url });
    try {
      await (await edge.fetch(img('warm.png', 'fmt=png'))).arrayBuffer();
      const before = edge.peakRss();
      const path = img('big.avif', 'fmt=avif');
      origin.hold();
      const pending = Array.from({ length: 100 }, () => edge.fetch(path));
      await until(async () => (await edge.stats()).followers === 99, '99 followers');
      origin.release();
      const sizes = await Promise.all((await Promise.all(pending)).map(async (r) => (await r.arrayBuffer()).byteLength));
      assert.deepEqual(new Set(sizes), new Set([SIZE]));
      assert.equal(count(origin, path), 1);
      // One copy per follower (the old worker) would add ~200 MB; measured now: one Blob plus buffers.
      const grew = edge.peakRss() - before;
      assert.ok(grew < 25 * SIZE, `workerd grew by ${(grew / 1048576).toFixed(0)} MB`);
    } finally {
      await edge.close();
      await origin.close();
    }
  });
});
