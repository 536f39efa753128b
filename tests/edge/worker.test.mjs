// The edge worker in workerd (miniflare) against a scripted counting origin:
// every decision of wasm/edge.cpp seen from outside, with exact counts.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { startEdge, startFakeOrigin, until } from './harness.mjs';

const WS = '0f1e2d3c4b5a69788796a5b4c3d2e1f0';
const ID = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d';
const ID_HEX = ID.replaceAll('-', '');
const img = (name, query = '') => `/img/${WS}/${ID}/${name}${query ? `?${query}` : ''}`;
// What the fake origin answers for a path and an Accept header (the client's
// fetch sends "*/*" when the test gives none).
const bytesFor = (path, accept = '*/*') => `bytes:${path}|${accept}`;

// The fake origin answers an image whose bytes name the request, so each
// variant is recognisable: "bytes:<path>?<query>|<accept>".
function imageOrigin(overrides = {}) {
  return startFakeOrigin((req) => {
    const special = overrides[new URL(req.url, 'http://x').pathname];
    if (special) return special(req);
    const body = bytesFor(req.url, req.headers.accept ?? '');
    return {
      status: 200,
      headers: {
        'content-type': 'image/webp',
        etag: `"${Buffer.from(body).toString('hex').slice(0, 32)}"`,
        'x-cache': 'MISS',
        'x-cache-tier': 'ORIGIN',
        'x-request-id': req.headers['x-request-id'] ?? '',
        // nic-origin names the variant it made; this one agrees with the edge (EDGE_DEBUG_STATS tells it the key).
        'x-cache-key': req.headers['x-nic-edge-key'],
      },
      body,
    };
  });
}

describe('edge: answers bad requests itself', () => {
  let origin;
  let edge;
  before(async () => {
    origin = await imageOrigin();
    edge = await startEdge({ ORIGIN_URL: origin.url, HMAC_SECRET: 'edge-test-secret' });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  const cases = [
    ['bad id', 'GET', `/img/${WS}/not-an-id/a.png`, 400, 'INVALID_PATH'],
    ['dot-dot filename', 'GET', `/img/${WS}/${ID}/..`, 400, 'INVALID_PATH'],
    ['bad percent escape', 'GET', `/img/${WS}/${ID}/a%zz.png`, 400, 'INVALID_PATH'],
    ['missing filename', 'GET', `/img/${WS}/${ID}`, 400, 'INVALID_PATH'],
    ['w=0', 'GET', img('a.png', 'w=0'), 400, 'INVALID_PARAM'],
    ['fit=stretch', 'GET', img('a.png', 'fit=stretch'), 400, 'INVALID_PARAM'],
    ['fmt=bmp', 'GET', img('a.png', 'fmt=bmp'), 400, 'INVALID_PARAM'],
    ['q twice', 'GET', img('a.png', 'q=50&q=60'), 400, 'INVALID_PARAM'],
    ['no signature', 'GET', img('a.png', 'w=100'), 403, 'INVALID_SIGNATURE'],
    ['wrong signature', 'GET', img('a.png', 'w=100&sig=AAAA'), 403, 'INVALID_SIGNATURE'],
    ['unknown path', 'GET', '/nothing-here', 404, 'NOT_FOUND'],
    ['POST an image', 'POST', img('a.png'), 405, 'METHOD_NOT_ALLOWED'],
    ['target too long', 'GET', img('a.png', `x=${'a'.repeat(9000)}`), 414, 'URL_TOO_LONG'],
  ];
  for (const [name, method, path, status, code] of cases) {
    it(`${name} -> ${status} ${code}`, async () => {
      const res = await edge.fetch(path, { method });
      assert.equal(res.status, status);
      assert.equal(res.headers.get('content-type'), 'application/json');
      assert.equal(res.headers.get('cache-control'), 'no-store');
      const body = await res.json();
      assert.equal(body.error.status, status);
      assert.equal(body.error.code, code);
      assert.equal(typeof body.error.message, 'string');
      assert.equal(body.error.requestId, res.headers.get('x-request-id'));
    });
  }

  it('OPTIONS (a CORS preflight) is answered at the edge on any path, not forwarded', async () => {
    for (const path of ['/nothing-here', img('a.png', 'w=100'), '/api/v1/cache?url=x']) {
      const res = await edge.fetch(path, { method: 'OPTIONS', headers: { origin: 'https://app.example' } });
      assert.equal(res.status, 204, path);
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      assert.equal(res.headers.get('access-control-allow-methods'), 'GET, HEAD, DELETE, OPTIONS');
      assert.equal(res.headers.get('access-control-max-age'), '86400');
      assert.equal(await res.text(), '');
    }
  });

  it('none of them reached the origin', () => {
    assert.equal(origin.requests.length, 0);
  });

  it('a correctly signed URL passes (signature over path + sorted params)', async () => {
    const path = `/img/${WS}/${ID}/a.png`;
    const sig = createHmac('sha256', 'edge-test-secret').update(`${path}?q=80&w=100`).digest('base64url');
    const res = await edge.fetch(`${path}?w=100&q=80&sig=${sig}`);
    assert.equal(res.status, 200);
    assert.equal(origin.requests.length, 1);
    assert.equal(origin.requests[0].url, `${path}?w=100&q=80&sig=${sig}`);
  });
});

describe('edge: cache hits, variants, conditional requests', () => {
  let origin;
  let edge;
  before(async () => {
    origin = await imageOrigin();
    edge = await startEdge({ ORIGIN_URL: origin.url, CACHE_TTL_SECONDS: '600' });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('a miss goes to the origin once, then the edge serves hits', async () => {
    const path = img('photo.jpg', 'w=300&fmt=webp&utm_source=x');
    const first = await edge.fetch(path);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-cache'), 'MISS');
    assert.equal(first.headers.get('x-cache-tier'), 'ORIGIN');
    const key = first.headers.get('x-cache-key');
    assert.equal(key, `v1/${WS}/${ID_HEX}/photo.jpg?fmt=webp&w=320`);
    assert.equal(first.headers.get('cache-control'), 'public, max-age=3600, s-maxage=600, stale-while-revalidate=3600');
    assert.equal(first.headers.get('vary'), null, 'explicit fmt does not vary on Accept');
    const bytes = await first.text();
    assert.equal(bytes, bytesFor(path));
    assert.equal(origin.requests.length, 1);
    // The origin is asked with the original path + query; x-request-id matches the client's.
    assert.equal(origin.requests[0].url, path);
    assert.equal(origin.requests[0].headers['x-request-id'], first.headers.get('x-request-id'));

    for (let i = 0; i < 3; i++) {
      const hit = await edge.fetch(path);
      assert.equal(hit.status, 200);
      assert.equal(hit.headers.get('x-cache'), 'HIT');
      assert.equal(hit.headers.get('x-cache-tier'), 'EDGE');
      assert.equal(hit.headers.get('x-cache-key'), key);
      assert.equal(hit.headers.get('content-type'), 'image/webp');
      assert.equal(await hit.text(), bytes);
    }
    assert.equal(origin.requests.length, 1);

    // Another URL that normalises to the same key (w=301 snaps to 320, unknown params ignored).
    const same = await edge.fetch(img('photo.jpg', 'fmt=webp&w=301'));
    assert.equal(same.headers.get('x-cache'), 'HIT');
    assert.equal(same.headers.get('x-cache-key'), key);
    assert.equal(await same.text(), bytes);
    assert.equal(origin.requests.length, 1);
  });

  it('If-None-Match: 304 from a hit and from a miss, 200 for another tag', async () => {
    const path = img('etag.png', 'w=100&fmt=png');
    const before = origin.requests.length;
    const miss = await edge.fetch(path, { headers: { 'if-none-match': '"nope"' } });
    assert.equal(miss.status, 200);
    const etag = miss.headers.get('etag');
    await miss.arrayBuffer();
    assert.ok(etag);

    const notModified = await edge.fetch(path, { headers: { 'if-none-match': etag } });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.headers.get('etag'), etag);
    assert.equal(notModified.headers.get('x-cache'), 'HIT');
    assert.ok(notModified.headers.get('x-cache-key'));
    assert.equal(await notModified.text(), '');

    const weak = await edge.fetch(path, { headers: { 'if-none-match': `"x", W/${etag}` } });
    assert.equal(weak.status, 304);
    const star = await edge.fetch(path, { headers: { 'if-none-match': '*' } });
    assert.equal(star.status, 304);
    const other = await edge.fetch(path, { headers: { 'if-none-match': '"other"' } });
    assert.equal(other.status, 200);
    await other.arrayBuffer();

    // A miss whose tag matches is a 304 too (the leader still stores the 200).
    const fresh = img('etag2.png', 'fmt=png');
    const body = bytesFor(fresh);
    const tag = `"${Buffer.from(body).toString('hex').slice(0, 32)}"`;
    const conditionalMiss = await edge.fetch(fresh, { headers: { 'if-none-match': tag } });
    assert.equal(conditionalMiss.status, 304);
    assert.equal(conditionalMiss.headers.get('x-cache'), 'MISS');
    const after = await edge.fetch(fresh);
    assert.equal(after.headers.get('x-cache'), 'HIT');
    assert.equal(await after.text(), body);
    assert.equal(origin.requests.length - before, 2);
  });

  it('fmt=auto: each Accept gets its own variant and key, with Vary: Accept', async () => {
    const path = img('negotiate.jpg', 'w=640');
    const accepts = {
      avif: 'image/avif,image/webp,*/*;q=0.8',
      webp: 'image/webp,*/*',
      plain: '*/*',
      avifRefused: 'image/avif;q=0,image/webp;q=0.5',
    };
    const keys = {};
    const before = origin.requests.length;
    for (const [name, accept] of Object.entries(accepts)) {
      const res = await edge.fetch(path, { headers: { accept } });
      assert.equal(res.status, 200);
      // avifRefused resolves to the webp variant, already cached by then.
      assert.equal(res.headers.get('x-cache'), name === 'avifRefused' ? 'HIT' : 'MISS', name);
      assert.equal(res.headers.get('vary'), 'Accept');
      keys[name] = res.headers.get('x-cache-key');
      assert.equal(await res.text(), bytesFor(path, name === 'avifRefused' ? accepts.webp : accept));
    }
    assert.match(keys.avif, /fmt=auto-avif/);
    assert.match(keys.webp, /fmt=auto-webp/);
    assert.equal(keys.avifRefused, keys.webp);
    assert.equal(new Set([keys.avif, keys.webp, keys.plain]).size, 3);
    assert.equal(origin.requests.length - before, 3);

    // Second round: every variant is a hit with its own bytes.
    for (const [name, accept] of Object.entries(accepts)) {
      const res = await edge.fetch(path, { headers: { accept } });
      assert.equal(res.headers.get('x-cache'), 'HIT', name);
      const expected = name === 'avifRefused' ? accepts.webp : accept;
      assert.equal(await res.text(), bytesFor(path, expected));
    }
    assert.equal(origin.requests.length - before, 3);
  });

  it('HEAD: headers only, from a miss and from a hit', async () => {
    const path = img('head.png', 'fmt=png');
    const miss = await edge.fetch(path, { method: 'HEAD' });
    assert.equal(miss.status, 200);
    assert.equal(miss.headers.get('x-cache'), 'MISS');
    assert.equal(await miss.text(), '');
    const hit = await edge.fetch(path, { method: 'HEAD' });
    assert.equal(hit.headers.get('x-cache'), 'HIT');
    assert.equal(await hit.text(), '');
    const get = await edge.fetch(path);
    assert.equal(await get.text(), bytesFor(path));
    assert.equal(origin.requests.filter((r) => r.url === path).length, 1);
    assert.ok(origin.requests.every((r) => r.method === 'GET'));
  });
});

describe('edge: coalescing', () => {
  let origin;
  let edge;
  before(async () => {
    origin = await imageOrigin();
    edge = await startEdge({ ORIGIN_URL: origin.url });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('200 concurrent misses -> 1 origin request; then 200 hits, 0 origin requests', async () => {
    const path = img('herd.jpg', 'w=800&fmt=avif');
    origin.hold();
    const before = await edge.stats();
    const pending = Array.from({ length: 200 }, () => edge.fetch(path));
    // Release the origin only once all 200 are in the flight (1 leader + 199 followers).
    await until(async () => {
      const s = await edge.stats();
      return s.followers - before.followers === 199;
    }, '199 followers');
    assert.equal(origin.requests.length, 1);
    origin.release();
    const responses = await Promise.all(pending);
    const tiers = {};
    for (const res of responses) {
      assert.equal(res.status, 200);
      assert.equal(await res.text(), bytesFor(path));
      tiers[res.headers.get('x-cache-tier')] = (tiers[res.headers.get('x-cache-tier')] ?? 0) + 1;
      assert.equal(res.headers.get('x-cache-key'), `v1/${WS}/${ID_HEX}/herd.jpg?fmt=avif&w=800`);
    }
    assert.deepEqual(tiers, { ORIGIN: 1, COALESCED: 199 });
    assert.equal(origin.requests.length, 1);
    const s = await edge.stats();
    assert.equal(s.flights - before.flights, 1);
    assert.equal(s.inflight, 0);

    const round2 = await Promise.all(Array.from({ length: 200 }, () => edge.fetch(path)));
    for (const res of round2) {
      assert.equal(res.headers.get('x-cache'), 'HIT');
      assert.equal(await res.text(), bytesFor(path));
    }
    assert.equal(origin.requests.length, 1);
  });

  it('followers give up after FOLLOWER_TIMEOUT_MS with 504, and nothing is cached', async () => {
    const slow = await imageOrigin();
    const e = await startEdge({ ORIGIN_URL: slow.url, FOLLOWER_TIMEOUT_MS: '300' });
    try {
      const path = img('slow.png', 'fmt=png');
      slow.hold();
      const pending = Array.from({ length: 5 }, () => e.fetch(path));
      const responses = await Promise.all(pending);
      for (const res of responses) {
        const text = await res.text();
        assert.equal(res.status, 504, text);
        assert.equal(res.headers.get('cache-control'), 'no-store');
        assert.equal(JSON.parse(text).error.code, 'UPSTREAM_TIMEOUT');
      }
      const s = await e.stats();
      assert.equal(s.inflight, 0);
      assert.equal(s.flights + s.followers, 5);
      assert.equal(slow.requests.length, s.flights);
      slow.release();
      const next = await e.fetch(path);
      assert.equal(next.status, 200);
      assert.equal(next.headers.get('x-cache'), 'MISS');
      assert.equal(slow.requests.length, s.flights + 1);
    } finally {
      await e.close();
      await slow.close();
    }
  });
});

describe('edge: origin errors pass through and are never cached', () => {
  let origin;
  let edge;
  let mode = 'error';
  before(async () => {
    origin = await imageOrigin({
      [`/img/${WS}/${ID}/flaky.png`]: (req) => {
        if (mode === 'error') {
          return {
            status: 404,
            headers: { 'content-type': 'application/json', 'cache-control': 'no-store', 'x-origin': 'yes' },
            body: JSON.stringify({ error: { status: 404, code: 'IMAGE_NOT_FOUND', message: 'gone', requestId: 'r1' } }),
          };
        }
        if (mode === 'reset') {
          req.socket.destroy();
          return new Promise(() => {});
        }
        return {
          status: 200,
          headers: { 'content-type': 'image/png', etag: '"abc"', 'x-cache-key': req.headers['x-nic-edge-key'] },
          body: 'png-bytes',
        };
      },
      [`/img/${WS}/${ID}/wrong-key.png`]: () => ({
        status: 200,
        headers: { 'content-type': 'image/png', 'x-cache-key': 'v1/someone/else' },
        body: 'other',
      }),
    });
    edge = await startEdge({ ORIGIN_URL: origin.url });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  it('an origin 404 is passed through unchanged, and retried next time', async () => {
    const path = img('flaky.png', 'fmt=png');
    for (let i = 1; i <= 2; i++) {
      const res = await edge.fetch(path);
      assert.equal(res.status, 404);
      assert.equal(res.headers.get('x-origin'), 'yes');
      assert.equal(res.headers.get('cache-control'), 'no-store');
      assert.ok(res.headers.get('x-cache-key'));
      assert.deepEqual(await res.json(), {
        error: { status: 404, code: 'IMAGE_NOT_FOUND', message: 'gone', requestId: 'r1' },
      });
      assert.equal(origin.requests.length, i);
    }
  });

  it('an origin that drops the connection -> 502 UPSTREAM_ERROR, retried next time', async () => {
    mode = 'reset';
    const path = img('flaky.png', 'fmt=png');
    const before = origin.requests.length;
    const res = await edge.fetch(path);
    assert.equal(res.status, 502);
    assert.equal((await res.json()).error.code, 'UPSTREAM_ERROR');
    assert.equal(origin.requests.length, before + 1);
    mode = 'ok';
    const ok = await edge.fetch(path);
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('x-cache'), 'MISS');
    assert.equal(await ok.text(), 'png-bytes');
    assert.equal(origin.requests.length, before + 2);
    const hit = await edge.fetch(path);
    assert.equal(hit.headers.get('x-cache'), 'HIT');
    assert.equal(origin.requests.length, before + 2);
  });

  it('an origin that is down -> 502 UPSTREAM_ERROR', async () => {
    const down = await startFakeOrigin(() => ({ status: 200 }));
    const url = down.url;
    await down.close();
    const e = await startEdge({ ORIGIN_URL: url });
    try {
      const res = await e.fetch(img('down.png'));
      assert.equal(res.status, 502);
      assert.equal((await res.json()).error.code, 'UPSTREAM_ERROR');
      assert.equal((await e.stats()).inflight, 0);
    } finally {
      await e.close();
    }
  });

  it('a 200 whose X-Cache-Key disagrees with the edge is served but not cached', async () => {
    const path = img('wrong-key.png', 'fmt=png');
    const before = origin.requests.length;
    for (let i = 1; i <= 2; i++) {
      const res = await edge.fetch(path);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-cache-key'), `v1/${WS}/${ID_HEX}/wrong-key.png?fmt=png`);
      assert.equal(await res.text(), 'other');
      assert.equal(origin.requests.length, before + i);
    }
  });
});

describe('edge: other routes go to the origin unchanged', () => {
  let origin;
  let edge;
  before(async () => {
    origin = await startFakeOrigin(async (req) => {
      let body = '';
      for await (const chunk of req) body += chunk;
      return {
        status: 207,
        headers: { 'content-type': 'text/plain', 'x-from': 'origin' },
        body: `${req.method} ${req.url} ${req.headers.authorization ?? ''} ${body}`,
      };
    });
    edge = await startEdge({ ORIGIN_URL: `${origin.url}/` });
  });
  after(async () => {
    await edge.close();
    await origin.close();
  });

  for (const [method, path, headers] of [
    ['GET', '/health', {}],
    ['GET', '/metrics', {}],
    ['GET', '/api/v1/stats', { authorization: 'Bearer k1' }],
    ['GET', '/api/v1/proxy?url=https%3A%2F%2Ffile.notion.so%2Ff%2Ff%2Fa&w=100', {}],
    ['DELETE', '/api/v1/cache?url=%2Fimg%2Fa%2Fb%2Fc', { authorization: 'Bearer k1' }],
  ]) {
    it(`${method} ${path.split('?')[0]}`, async () => {
      const before = origin.requests.length;
      const res = await edge.fetch(path, { method, headers });
      assert.equal(res.status, 207);
      assert.equal(res.headers.get('x-from'), 'origin');
      assert.equal(await res.text(), `${method} ${path} ${headers.authorization ?? ''} `);
      assert.equal(origin.requests.length, before + 1);
    });
  }
});

describe('edge: settings', () => {
  it('a bad setting answers 500 naming the variable, without touching the origin', async () => {
    const origin = await imageOrigin();
    const e = await startEdge({ ORIGIN_URL: origin.url, ALLOWED_WIDTHS: '32,abc' });
    try {
      const res = await e.fetch(img('a.png'));
      assert.equal(res.status, 500);
      assert.match((await res.json()).error.message, /ALLOWED_WIDTHS/);
      assert.equal(origin.requests.length, 0);
    } finally {
      await e.close();
      await origin.close();
    }
  });

  it('ALLOWED_WIDTHS and QUALITY_STEPS shape the key', async () => {
    const origin = await imageOrigin();
    const e = await startEdge({ ORIGIN_URL: origin.url, ALLOWED_WIDTHS: '100,500', QUALITY_STEPS: '50,90' });
    try {
      const res = await e.fetch(img('a.png', 'w=120&q=80&fmt=jpeg'));
      assert.equal(res.headers.get('x-cache-key'), `v1/${WS}/${ID_HEX}/a.png?fmt=jpeg&q=90&w=500`);
      await res.arrayBuffer();
    } finally {
      await e.close();
      await origin.close();
    }
  });
});
