// tests/vectors/cache_keys.tsv through the edge worker: every vector's key
// (or error) as the edge computes it, and, with NIC_ORIGIN_BIN, the same
// target's X-Cache-Key (or error) from the real nic-origin.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { dashed, haveOrigin, png, root, startEdge, startFakeOrigin, startFakes, startOrigin } from './harness.mjs';

const vectors = readFileSync(join(root, 'tests/vectors/cache_keys.tsv'), 'utf8')
  .split('\n')
  .filter((line) => line && !line.startsWith('#'))
  .map((line) => {
    const [name, target, accept, settings, status, result, sha256, vary] = line.split('\t');
    return { name, target, accept, settings, status: Number(status), result, sha256, vary };
  });

// "widths=a,b;quality=c;secret=s" -> the worker's / origin's variables.
function settingsVars(settings) {
  const vars = {};
  if (settings === '-') return vars;
  for (const part of settings.split(';')) {
    const eq = part.indexOf('=');
    const name = { widths: 'ALLOWED_WIDTHS', quality: 'QUALITY_STEPS', secret: 'HMAC_SECRET' }[part.slice(0, eq)];
    vars[name] = part.slice(eq + 1);
  }
  return vars;
}

const groups = new Map();
for (const v of vectors) {
  if (!groups.has(v.settings)) groups.set(v.settings, []);
  groups.get(v.settings).push(v);
}

// The target exactly as written (no URL normalisation), to nic-origin.
function rawGet(port, target, accept) {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, path: target, headers: accept ? { accept } : {} }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', fail);
    req.end();
  });
}

// What the edge says for a vector: {status, result, vary} where result is
// the key (X-Cache-Key) for a 200 and the error code otherwise. The scripted
// origin echoes the edge's own key, so the key seen is the edge's.
async function edgeAnswer(edge, v) {
  const res = await edge.fetch(v.target, { headers: { accept: v.accept } });
  if (res.status === 200) {
    await res.arrayBuffer();
    return { status: 200, result: res.headers.get('x-cache-key'), vary: res.headers.get('vary') === 'Accept' ? 'vary' : '-' };
  }
  return { status: res.status, result: (await res.json()).error?.code, vary: '-' };
}

describe('cache-key vectors at the edge', () => {
  assert.ok(vectors.length > 100, `${vectors.length} vectors`);
  const edgeResults = new Map();
  let origin;
  before(async () => {
    // Answers with the key the edge expects (EDGE_DEBUG_STATS sends it), so 200s are stored.
    origin = await startFakeOrigin((req) => ({
      status: 200,
      headers: { 'content-type': 'image/png', 'x-cache-key': req.headers['x-nic-edge-key'] },
      body: 'x',
    }));
  });
  after(() => origin.close());

  // The URL parser of a worker's runtime (and of Cloudflare in front of it)
  // rewrites some targets before the worker sees them ("\" -> "/", dot
  // segments, spaces); those vectors are the core's (tests/unit), not the edge's.
  const reachable = (v) => {
    const u = new URL(v.target, 'https://cdn.test');
    return u.pathname + u.search === v.target || `${u.pathname}?` === v.target;
  };

  for (const [settings, list] of groups) {
    it(`settings ${settings}: ${list.length} vectors`, async () => {
      const edge = await startEdge({ ORIGIN_URL: origin.url, ...settingsVars(settings) });
      try {
        const before = origin.requests.length;
        const keys = new Set();
        for (const v of list.filter(reachable)) {
          const got = await edgeAnswer(edge, v);
          edgeResults.set(v.name, got);
          assert.deepEqual({ name: v.name, ...got }, { name: v.name, status: v.status, result: v.result, vary: v.vary });
          if (v.status === 200) keys.add(v.result);
        }
        // One origin request per distinct key (the rest are edge hits); errors never reach it.
        assert.equal(origin.requests.length - before, keys.size);
      } finally {
        await edge.close();
      }
    });
  }

  it('most vectors reach the worker unchanged', () => {
    const skipped = vectors.filter((v) => !reachable(v));
    assert.ok(skipped.length < vectors.length / 10, `${skipped.length} rewritten: ${skipped.map((v) => v.name)}`);
  });

  describe('and nic-origin agrees byte for byte', { skip: haveOrigin ? false : 'NIC_ORIGIN_BIN is not set' }, () => {
    let fakes;
    before(async () => {
      fakes = await startFakes();
      // Every block id the 200 vectors name, backed by one small PNG.
      const ids = new Set(vectors.filter((v) => v.status === 200).map((v) => v.result.split('/')[2]));
      const data = png(24, 16).toString('base64');
      for (const id of ids) {
        const file = `${id.slice(0, 31)}f`;
        const ws = 'e4a1c3b27f6d4e5c9b8a1d2c3b4a5f60';
        await fakes.control('files', { path: `/${dashed(ws)}/${dashed(file)}/photo.png`, data_b64: data });
        await fakes.control('blocks', { id, workspace: ws, file, name: 'photo.png' });
      }
    });
    after(() => fakes?.stop());

    for (const [settings, list] of groups) {
      it(`settings ${settings}`, async () => {
        // Hundreds of vectors ask for variants of a few sources: the per-source
        // variant cap (a defence against key-space floods) is off here.
        const o = await startOrigin(fakes, { ...settingsVars(settings), MAX_VARIANTS_PER_SOURCE: '0' });
        try {
          const port = Number(new URL(o.url).port);
          for (const v of list) {
            const edge = edgeResults.get(v.name);
            if (!edge) continue;
            const res = await rawGet(port, v.target, v.accept);
            const got =
              res.status === 200
                ? { status: 200, result: res.headers['x-cache-key'], vary: res.headers.vary === 'Accept' ? 'vary' : '-' }
                : { status: res.status, result: JSON.parse(res.body).error.code, vary: '-' };
            assert.deepEqual({ name: v.name, ...got }, { name: v.name, ...edge });
          }
        } finally {
          await o.close();
        }
      });
    }
  });
});
