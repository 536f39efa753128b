// notion-image-cdn's API, from the packed package, in Node (ESM and CJS):
// every cache-key vector of tests/vectors/ (the SDK's key is the core's), the
// Notion URL forms, options and their errors, srcset, signatures (as `nic sign`).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { keyOptions, scratchProject, vectors } from './harness.mjs';

const WS = 'e4a1c3b2-7f6d-4e5c-9b8a-1d2c3b4a5f60';
const FILE = '9c8b7a6f-5e4d-4c3b-a2f1-0e9d8c7b6a54';
const BLOCK = '11112222-3333-4444-5555-666677778888';
const ws = WS.replaceAll('-', '');
const file = FILE.replaceAll('-', '');
const block = BLOCK.replaceAll('-', '');
const AMZ = 'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20240101%2Fus-west-2%2Fs3%2Faws4_request' +
  '&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-Signature=abc123&X-Amz-SignedHeaders=host';
const FORMS = {
  s3: `https://prod-files-secure.s3.us-west-2.amazonaws.com/${WS}/${FILE}/My%20Photo.jpg?${AMZ}`,
  s3path: `https://s3.us-west-2.amazonaws.com/prod-files-secure/${WS}/${FILE}/My%20Photo.jpg?${AMZ}`,
  file: `https://file.notion.so/f/f/${WS}/${FILE}/My%20Photo.jpg?table=block&id=${BLOCK}&spaceId=${WS}` +
    '&expirationTimestamp=1704070800000&signature=xyz',
  img: `https://img.notionusercontent.com/s3/prod-files-secure%2F${WS}%2F${FILE}%2FMy%2520Photo.jpg/size/w=2000` +
    `?exp=1704070800&sig=xyz&id=${BLOCK}&table=block`,
};
const CDN = 'https://images.example.com';

let project;
let esm;
let cjs;
before(async () => {
  project = scratchProject();
  esm = await project.esm();
  cjs = project.require('notion-image-cdn');
});
after(() => project.remove());

describe('package', () => {
  it('packs dist/ with ESM, CJS, workerd and browser entries and the types', () => {
    const files = project.pack.files.map((f) => f.path).sort();
    for (const f of ['dist/index.mjs', 'dist/index.cjs', 'dist/browser.mjs', 'dist/workerd.mjs', 'dist/nic_sdk.wasm',
      'dist/index.d.ts', 'dist/react.mjs', 'dist/react.cjs', 'dist/react.d.ts', 'package.json', 'README.md']) {
      assert.ok(files.includes(f), `${f} in ${files.join(', ')}`);
    }
  });
  it('ESM and CJS export the same API', () => {
    assert.deepEqual(Object.keys(esm).sort(), Object.keys(cjs).sort());
    assert.equal(esm.getOptimizedUrl(FORMS.file, { cdnBaseUrl: CDN, width: 700 }),
      cjs.getOptimizedUrl(FORMS.file, { cdnBaseUrl: CDN, width: 700 }));
  });
});

describe('cacheKey: every vector of tests/vectors/cache_keys.tsv', () => {
  const all = vectors();
  it(`has the vectors (${all.length})`, () => assert.ok(all.length > 100));
  for (const sdk of ['esm', 'cjs']) {
    it(`${sdk}: the key, its SHA-256 and Vary, or the error code, of every vector`, () => {
      const api = sdk === 'esm' ? esm : cjs;
      let checked = 0;
      for (const v of all) {
        const options = keyOptions(v.settings);
        if (v.status === 200) {
          const info = api.cacheKeyInfo(v.target, v.accept, options);
          assert.equal(info.key, v.result, v.name);
          assert.equal(info.hash, v.sha256, v.name);
          assert.equal(info.vary, v.vary === 'vary', v.name);
          assert.equal(api.cacheKey(v.target, v.accept, options), v.result, v.name);
        } else {
          assert.throws(() => api.cacheKeyInfo(v.target, v.accept, options), (e) => e.code === v.result, v.name);
        }
        checked += 1;
      }
      assert.equal(checked, all.length);
    });
  }
});

describe('getOptimizedUrl', () => {
  it('rewrites the four Notion forms, preferring the block id, dropping the signature', () => {
    const o = { cdnBaseUrl: `${CDN}//`, width: 800, format: 'webp', quality: 75 };
    const byFile = `${CDN}/img/${ws}/${file}/My%20Photo.jpg?w=800&fmt=webp&q=75`;
    const byBlock = `${CDN}/img/${ws}/${block}/My%20Photo.jpg?w=800&fmt=webp&q=75`;
    assert.equal(esm.getOptimizedUrl(FORMS.s3, o), byFile);
    assert.equal(esm.getOptimizedUrl(FORMS.s3path, o), byFile);
    assert.equal(esm.getOptimizedUrl(FORMS.file, o), byBlock);
    assert.equal(esm.getOptimizedUrl(FORMS.img, o), byBlock);
  });
  it('emits the normalised parameters: the URL the CDN would snap to', () => {
    const url = esm.getOptimizedUrl(FORMS.file, { cdnBaseUrl: CDN, width: 700, height: 350, quality: 80, fit: 'cover' });
    assert.equal(url, `${CDN}/img/${ws}/${block}/My%20Photo.jpg?w=750&h=375&fit=cover&q=85`);
    // dpr folds into the width; the default fit and format are left out.
    assert.equal(esm.getOptimizedUrl(FORMS.file, { cdnBaseUrl: '', width: 400, dpr: 2, fit: 'inside', format: 'auto' }),
      `/img/${ws}/${block}/My%20Photo.jpg?w=800`);
    assert.equal(esm.getOptimizedUrl(FORMS.file, { cdnBaseUrl: CDN }), `${CDN}/img/${ws}/${block}/My%20Photo.jpg`);
  });
  it('builds URLs whose cache key equals the one of the request as written', () => {
    const accept = 'image/avif,image/webp,*/*';
    for (const o of [{ width: 700 }, { width: 333, height: 111, fit: 'cover' }, { width: 8000, quality: 99, dpr: 1.5 },
      { height: 500 }, { format: 'png', quality: 1 }, {}]) {
      const url = esm.getOptimizedUrl(FORMS.file, { cdnBaseUrl: '', ...o });
      const q = new URLSearchParams();
      for (const [k, p] of [['width', 'w'], ['height', 'h'], ['fit', 'fit'], ['format', 'fmt'], ['quality', 'q'], ['dpr', 'dpr']]) {
        if (o[k] !== undefined) q.set(p, String(o[k]));
      }
      const naive = `/img/${WS}/${BLOCK}/My%20Photo.jpg?${q}`;
      assert.equal(esm.cacheKey(url, accept), esm.cacheKey(naive, accept), JSON.stringify(o));
    }
  });
  it('returns anything else unchanged', () => {
    const o = { cdnBaseUrl: CDN, width: 800 };
    for (const other of ['https://example.com/a/b/c.png', '/images/a.png', 'not a url', '', 'https://file.notion.so/x',
      `http://prod-files-secure.s3.us-west-2.amazonaws.com/${WS}/${FILE}/a.png`, `https://evil.com/${WS}/${FILE}/a.png`]) {
      assert.equal(esm.getOptimizedUrl(other, o), other);
    }
    assert.equal(esm.getOptimizedUrl(undefined, o), undefined);
    assert.equal(esm.getOptimizedUrl(null, o), null);
  });
  it('reads other hosts like the S3 form with allowedDomains (an S3 mirror)', () => {
    const mirror = `http://127.0.0.1:9002/${WS}/${FILE}/a.png?X-Amz-Date=20240101T000000Z`;
    assert.equal(esm.getOptimizedUrl(mirror, { cdnBaseUrl: CDN }), mirror);
    assert.equal(esm.getOptimizedUrl(mirror, { cdnBaseUrl: CDN, allowedDomains: ['http://127.0.0.1:9002'] }),
      `${CDN}/img/${ws}/${file}/a.png`);
  });
  it('agrees with `nic url` on the cache key', { skip: !process.env.NIC_CLI || !existsSync(process.env.NIC_CLI) }, () => {
    for (const form of Object.values(FORMS)) {
      const cli = execFileSync(process.env.NIC_CLI, ['url', form, '--cdn', CDN, '--w', '700', '--fmt', 'webp'],
        { encoding: 'utf8', env: { PATH: process.env.PATH } }).trim();
      const sdk = esm.getOptimizedUrl(form, { cdnBaseUrl: CDN, width: 700, format: 'webp' });
      assert.equal(sdk.split('?')[0], cli.split('?')[0]);
      assert.equal(esm.cacheKey(sdk, ''), esm.cacheKey(cli, ''));
    }
  });
});

describe('invalid options: a TypeError naming the option, never a broken URL', () => {
  const cases = [
    [undefined, 'options'],
    [{}, 'cdnBaseUrl'],
    [{ cdnBaseUrl: 42 }, 'cdnBaseUrl'],
    [{ cdnBaseUrl: 'ftp://cdn.example.com' }, 'cdnBaseUrl'],
    [{ cdnBaseUrl: 'images.example.com' }, 'cdnBaseUrl'],
    [{ cdnBaseUrl: 'https://cdn.example.com/?x=1' }, 'cdnBaseUrl'],
    [{ cdnBaseUrl: CDN, width: 0 }, 'width'],
    [{ cdnBaseUrl: CDN, width: 8193 }, 'width'],
    [{ cdnBaseUrl: CDN, width: 1.5 }, 'width'],
    [{ cdnBaseUrl: CDN, width: NaN }, 'width'],
    [{ cdnBaseUrl: CDN, width: '80px' }, 'width'],
    [{ cdnBaseUrl: CDN, width: {} }, 'width'],
    [{ cdnBaseUrl: CDN, height: -1 }, 'height'],
    [{ cdnBaseUrl: CDN, quality: 101 }, 'quality'],
    [{ cdnBaseUrl: CDN, format: 'bmp' }, 'format'],
    [{ cdnBaseUrl: CDN, format: 'WEBP' }, 'format'],
    [{ cdnBaseUrl: CDN, fit: 'crop' }, 'fit'],
    [{ cdnBaseUrl: CDN, dpr: 5 }, 'dpr'],
    [{ cdnBaseUrl: CDN, dpr: 1.25 }, 'dpr'],
    [{ cdnBaseUrl: CDN, allowedDomains: 'http://' }, 'allowedDomains'],
  ];
  for (const [options, option] of cases) {
    it(`${JSON.stringify(options)} -> ${option}`, () => {
      for (const url of [FORMS.file, 'https://example.com/a.png']) {
        assert.throws(() => esm.getOptimizedUrl(url, options), (e) => {
          assert.ok(e instanceof TypeError, e);
          assert.equal(e.option, option);
          assert.match(e.message, new RegExp(option));
          return true;
        });
      }
      assert.throws(() => cjs.getOptimizedUrl(FORMS.file, options), TypeError);
    });
  }
  it('srcSet, fromNotionBlock and createNotionImagePlugin check theirs too', () => {
    assert.throws(() => esm.srcSet(FORMS.file, { cdnBaseUrl: CDN, width: 0 }), { name: 'TypeError', option: 'width' });
    assert.throws(() => esm.createNotionImagePlugin({ cdnBaseUrl: CDN, defaultFormat: 'gif' }),
      { name: 'TypeError', option: 'defaultFormat' });
    assert.throws(() => esm.createNotionImagePlugin({ cdnBaseUrl: CDN, defaultQuality: 0 }),
      { name: 'TypeError', option: 'defaultQuality' });
    assert.throws(() => esm.fromNotionBlock({ type: 'paragraph' }, { cdnBaseUrl: CDN }), { name: 'TypeError', option: 'block' });
    assert.throws(() => esm.fromNotionBlock({ id: 'nope', type: 'image', image: { type: 'file', file: { url: FORMS.s3 } } },
      { cdnBaseUrl: CDN }), { name: 'TypeError', option: 'block.id' });
    assert.throws(() => esm.configure({ allowedWidths: [0, 10] }), { name: 'TypeError', option: 'allowedWidths' });
    assert.throws(() => esm.signUrl(`/img/${WS}/${FILE}/a.png`, ''), { name: 'TypeError', option: 'secret' });
  });
});

describe('isNotionImageUrl and parseNotionUrl', () => {
  it('knows the four hosts and nothing else', () => {
    for (const form of Object.values(FORMS)) assert.equal(esm.isNotionImageUrl(form), true, form);
    for (const other of ['https://example.com/a.png', '/img/a/b/c', 'https://www.notion.so/page-123', 42, '']) {
      assert.equal(esm.isNotionImageUrl(other), false, String(other));
    }
  });
  it('reads workspace, file, block, name and expiry', () => {
    assert.deepEqual(esm.parseNotionUrl(FORMS.file),
      { workspaceId: ws, fileId: file, blockId: block, filename: 'My Photo.jpg', expiresAt: 1704070800 });
    assert.equal(esm.parseNotionUrl(FORMS.s3).blockId, null);
    assert.equal(esm.parseNotionUrl(FORMS.s3).expiresAt, 1704067200 + 3600);
  });
});

describe('fromNotionBlock', () => {
  it('uses the block id, so the URL never expires and needs no registration', () => {
    const b = { object: 'block', id: BLOCK, type: 'image',
      image: { type: 'file', caption: [], file: { url: FORMS.s3, expiry_time: '2024-01-01T01:00:00.000Z' } } };
    assert.equal(esm.fromNotionBlock(b, { cdnBaseUrl: CDN, width: 640 }), `${CDN}/img/${ws}/${block}/My%20Photo.jpg?w=640`);
  });
  it('leaves an external image alone', () => {
    const b = { id: BLOCK, type: 'image', image: { type: 'external', external: { url: 'https://example.com/x.png' } } };
    assert.equal(esm.fromNotionBlock(b, { cdnBaseUrl: CDN }), 'https://example.com/x.png');
  });
});

describe('createNotionImagePlugin', () => {
  it('applies its defaults to Notion URLs only', () => {
    const plugin = esm.createNotionImagePlugin({ cdnBaseUrl: CDN, defaultFormat: 'avif', defaultQuality: 60, defaultWidth: 1000 });
    assert.equal(plugin(FORMS.img), `${CDN}/img/${ws}/${block}/My%20Photo.jpg?w=1024&fmt=avif&q=60`);
    assert.equal(plugin('/local.png'), '/local.png');
  });
});

describe('srcSet and sizes', () => {
  it('lists ALLOWED_WIDTHS up to twice the width, each URL at its own width', () => {
    const set = esm.srcSet(FORMS.file, { cdnBaseUrl: CDN, width: 400, height: 300, format: 'webp' });
    const entries = set.split(', ');
    const widths = esm.ALLOWED_WIDTHS.filter((w) => w <= 800);
    assert.equal(entries.length, widths.length);
    entries.forEach((entry, i) => {
      const [url, descriptor] = entry.split(' ');
      assert.equal(descriptor, `${widths[i]}w`);
      const q = new URL(url).searchParams;
      assert.equal(q.get('w'), String(widths[i]));
      assert.equal(q.get('h'), String(Math.round((300 * widths[i]) / 400)));
      assert.equal(q.get('fmt'), 'webp');
    });
  });
  it('lists every width without one, and nothing for a non-Notion URL', () => {
    assert.equal(esm.srcSet(FORMS.s3, { cdnBaseUrl: CDN }).split(', ').length, esm.ALLOWED_WIDTHS.length);
    assert.equal(esm.srcSet('https://example.com/a.png', { cdnBaseUrl: CDN, width: 100 }), '');
  });
  it('takes a Notion API image block, by block id like fromNotionBlock', () => {
    const b = { id: BLOCK, type: 'image', image: { type: 'file', file: { url: FORMS.s3 } } };
    // width 100: up to twice it, 200, snapped up to 256.
    assert.equal(esm.srcSet(b, { cdnBaseUrl: CDN, width: 100 }), [32, 48, 64, 96, 128, 256]
      .map((w) => `${CDN}/img/${ws}/${block}/My%20Photo.jpg?w=${w} ${w}w`).join(', '));
    const external = { id: BLOCK, type: 'image', image: { type: 'external', external: { url: 'https://example.com/x.png' } } };
    assert.equal(esm.srcSet(external, { cdnBaseUrl: CDN }), '');
    assert.throws(() => esm.srcSet({ type: 'image', image: {} }, { cdnBaseUrl: CDN }), { name: 'TypeError', option: 'block' });
  });
  it('sizes', () => {
    assert.equal(esm.sizes({ width: 640 }), '(max-width: 640px) 100vw, 640px');
    assert.equal(esm.sizes(), '100vw');
  });
  it('follows configure() (the CDN\'s own ALLOWED_WIDTHS)', () => {
    try {
      assert.deepEqual(cjs.configure({ allowedWidths: [500, 100, 1000] }).allowedWidths, [100, 500, 1000]);
      assert.equal(cjs.getOptimizedUrl(FORMS.file, { cdnBaseUrl: '', width: 101 }), `/img/${ws}/${block}/My%20Photo.jpg?w=500`);
      assert.equal(cjs.srcSet(FORMS.file, { cdnBaseUrl: '' }).split(', ').length, 3);
    } finally {
      cjs.configure({});
    }
    assert.equal(cjs.getOptimizedUrl(FORMS.file, { cdnBaseUrl: '', width: 101 }), `/img/${ws}/${block}/My%20Photo.jpg?w=128`);
  });
});

describe('signUrl (server-side)', () => {
  const path = `/img/${WS}/${FILE}/My%20Photo.jpg?w=800&fmt=webp`;
  it('signs so that the core verifies, and only with that secret', () => {
    const signed = esm.signUrl(path, 'k3y');
    assert.match(signed, /&sig=[A-Za-z0-9_-]{43}$/);
    assert.equal(esm.cacheKey(signed, '', { secret: 'k3y' }), esm.cacheKey(path, ''));
    assert.throws(() => esm.cacheKey(signed, '', { secret: 'other' }), { code: 'INVALID_SIGNATURE' });
    assert.throws(() => esm.cacheKey(path, '', { secret: 'k3y' }), { code: 'INVALID_SIGNATURE' });
    assert.equal(esm.signUrl(`${CDN}${path}`, 'k3y'), `${CDN}${signed}`);
    assert.throws(() => esm.signUrl('/nope', 'k3y'), { code: 'NOT_FOUND' });
  });
  it('gives the sig `nic sign` prints', { skip: !process.env.NIC_CLI || !existsSync(process.env.NIC_CLI) }, () => {
    for (const p of [path, `/img/${WS}/${BLOCK}/a.png`, `/img/ws/${FILE}/b%2Bc.png?q=80&w=10&x=%20y&sig=old`]) {
      const cli = execFileSync(process.env.NIC_CLI, ['sign', p],
        { encoding: 'utf8', env: { PATH: process.env.PATH, HMAC_SECRET: 's3cr3t' } }).trim();
      assert.equal(esm.signUrl(p, 's3cr3t'), cli);
      assert.equal(cjs.signUrl(p, 's3cr3t'), cli);
    }
  });
});
