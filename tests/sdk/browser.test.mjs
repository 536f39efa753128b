// The package in a browser: a page bundled by Vite (which takes the "browser"
// entry: nic_sdk.wasm as an asset) and run by headless Chromium; its results
// must be the ones Node computes. And in Cloudflare's runtime: a worker bundled
// by wrangler (which takes the "workerd" entry: Workers compile no code from
// bytes, so the module is uploaded beside the script) run by workerd.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { launchChromium, root, scratchProject } from './harness.mjs';

const WS = 'e4a1c3b2-7f6d-4e5c-9b8a-1d2c3b4a5f60';
const FILE = '9c8b7a6f-5e4d-4c3b-a2f1-0e9d8c7b6a54';
const BLOCK = '11112222-3333-4444-5555-666677778888';
const SRC = `https://file.notion.so/f/f/${WS}/${FILE}/photo.jpg?table=block&id=${BLOCK}&expirationTimestamp=1&signature=s`;
const S3 = `https://prod-files-secure.s3.us-west-2.amazonaws.com/${WS}/${FILE}/a%20b.png?X-Amz-Date=20240101T000000Z`;
const CDN = 'https://images.example.com';
const ACCEPT = 'image/avif,image/webp,*/*;q=0.8';
const KEY_PATH = `/img/${WS}/${FILE}/photo.jpg?w=700&q=80&fit=cover&h=100`;

// The same computations in both places; `sdk` is the package's namespace.
const PROGRAM = `
  const results = {
    url: sdk.getOptimizedUrl(SRC, { cdnBaseUrl: CDN, width: 700, format: 'webp' }),
    s3: sdk.getOptimizedUrl(S3, { cdnBaseUrl: CDN, height: 100 }),
    other: sdk.getOptimizedUrl('https://example.com/a.png', { cdnBaseUrl: CDN }),
    isNotion: sdk.isNotionImageUrl(SRC),
    key: sdk.cacheKeyInfo(KEY_PATH, ACCEPT),
    srcset: sdk.srcSet(SRC, { cdnBaseUrl: CDN, width: 300 }),
    widths: [...sdk.ALLOWED_WIDTHS],
    error: (() => { try { sdk.getOptimizedUrl(SRC, { cdnBaseUrl: CDN, fit: 'crop' }); } catch (e) { return [e.name, e.option]; } })(),
  };
`;
const CONSTANTS = `const SRC = ${JSON.stringify(SRC)}; const S3 = ${JSON.stringify(S3)}; const CDN = ${JSON.stringify(CDN)};
const ACCEPT = ${JSON.stringify(ACCEPT)}; const KEY_PATH = ${JSON.stringify(KEY_PATH)};`;

let project;
let expected;
before(async () => {
  project = scratchProject('nic-sdk-vite-');
  const sdk = await project.esm();
  expected = new Function('sdk', `${CONSTANTS}\n${PROGRAM}\nreturn results;`)(sdk);
});
after(() => project.remove());

describe('Vite bundle in headless Chromium', () => {
  let server;
  let browser;
  let out;
  before(async () => {
    const dir = project.dir;
    writeFileSync(join(dir, 'index.html'), '<!doctype html><html><head><meta charset="utf-8"><title>sdk</title></head>' +
      '<body><div id="root"></div><script type="module" src="/main.js"></script></body></html>\n');
    writeFileSync(join(dir, 'main.js'), `import * as sdk from 'notion-image-cdn';
import { NotionImage } from 'notion-image-cdn/react';
import { createElement } from 'react';
import { flushSync } from 'react-dom';
import { createRoot } from 'react-dom/client';
${CONSTANTS}
${PROGRAM}
const root = createRoot(document.getElementById('root'));
flushSync(() => root.render(createElement(NotionImage, { src: SRC, cdnBaseUrl: CDN, alt: 'x', width: 300, height: 200 })));
window.__results = results;
document.body.dataset.ready = '1';
`);
    const { build } = await import('vite');
    out = join(dir, 'dist');
    await build({ root: dir, configFile: false, logLevel: 'warn', build: { outDir: out, emptyOutDir: true } });
    const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };
    server = createServer((req, res) => {
      const path = req.url === '/' ? '/index.html' : req.url.split('?')[0];
      try {
        const body = readFileSync(join(out, path));
        res.writeHead(200, { 'content-type': types[extname(path)] || 'application/octet-stream' });
        res.end(body);
      } catch {
        res.writeHead(404).end();
      }
    });
    await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    server?.close();
  });

  it('bundles the wasm as its own asset (the "browser" entry), not as base64', () => {
    const assets = readdirSync(join(out, 'assets'));
    const wasm = assets.filter((f) => f.endsWith('.wasm'));
    assert.equal(wasm.length, 1, assets.join(', '));
    const js = assets.filter((f) => f.endsWith('.js')).map((f) => readFileSync(join(out, 'assets', f), 'utf8')).join('');
    assert.ok(!js.includes('WASM_BASE64'), 'the embedded module was bundled');
    const gz = gzipSync(readFileSync(join(out, 'assets', wasm[0])), { level: 9 }).length;
    console.log(`# bundled nic_sdk.wasm: ${readFileSync(join(out, 'assets', wasm[0])).length} B, ${gz} B gzipped`);
  });

  it('computes in Chromium what Node computes, and renders <NotionImage>', async () => {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.waitForSelector('body[data-ready="1"]', { timeout: 20000 });
    assert.deepEqual(errors, []);
    const got = await page.evaluate(() => window.__results);
    assert.deepEqual(got, expected);
    assert.equal(got.url, `${CDN}/img/${WS.replaceAll('-', '')}/${BLOCK.replaceAll('-', '')}/photo.jpg?w=750&fmt=webp`);
    assert.deepEqual(got.error, ['TypeError', 'fit']);
    const img = await page.evaluate(() => {
      const i = document.querySelector('#root img');
      return { src: i.getAttribute('src'), srcset: i.getAttribute('srcset'), width: i.getAttribute('width'),
        height: i.getAttribute('height'), decoding: i.getAttribute('decoding'), loading: i.getAttribute('loading') };
    });
    assert.equal(img.src, `${CDN}/img/${WS.replaceAll('-', '')}/${BLOCK.replaceAll('-', '')}/photo.jpg?w=320&h=213`); // 300x200 at the snapped 320
    assert.equal(img.srcset.split(', ').length, expected.widths.filter((w) => w <= 640).length);
    assert.deepEqual([img.width, img.height, img.decoding, img.loading], ['300', '200', 'async', 'lazy']);
    await page.close();
  });
});

describe('Cloudflare Workers (wrangler\'s bundle run by workerd through miniflare)', () => {
  it('wrangler takes the "workerd" entry, and the module answers synchronously', async () => {
    const dir = join(project.dir, 'worker');
    mkdirSync(dir);
    writeFileSync(join(dir, 'worker.mjs'), `import * as sdk from 'notion-image-cdn';
${CONSTANTS}
export default { fetch() { ${PROGRAM} return Response.json(results); } };`);
    writeFileSync(join(dir, 'wrangler.toml'), 'name = "sdk-test"\nmain = "worker.mjs"\ncompatibility_date = "2026-04-01"\n');
    // What `wrangler deploy` would upload, bundled offline.
    execFileSync(join(root, 'node_modules/.bin/wrangler'), ['deploy', '--dry-run', '--outdir', 'out'],
      { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } });
    const out = join(dir, 'out');
    const wasm = readdirSync(out).filter((f) => f.endsWith('.wasm'));
    assert.equal(wasm.length, 1, 'the module is uploaded beside the script');
    const script = readFileSync(join(out, 'worker.js'), 'utf8');
    assert.ok(!script.includes('WASM_BASE64'), 'the embedded (Node) entry was bundled');
    const { Miniflare } = await import('miniflare');
    const mf = new Miniflare({
      modulesRoot: out,
      modules: [
        { type: 'ESModule', path: join(out, 'worker.js'), contents: script },
        { type: 'CompiledWasm', path: join(out, wasm[0]), contents: readFileSync(join(out, wasm[0])) },
      ],
      compatibilityDate: '2026-04-01',
    });
    try {
      const res = await mf.dispatchFetch('https://worker.test/');
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), JSON.parse(JSON.stringify(expected)));
    } finally {
      await mf.dispose();
    }
  });
});
