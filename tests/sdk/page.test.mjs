// The CDN's own page, served by nic-origin (and passed through by the edge):
// it loads in headless Chromium, its try-it panel turns a Notion URL into a
// CDN URL with the SDK and shows the image from the test's fake Notion, its
// status panel follows /metrics. A screenshot is left in the build tree.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { dashed, png, startEdge, startFakes, startOrigin } from '../edge/harness.mjs';
import { launchChromium } from './harness.mjs';

const haveOrigin = Boolean(process.env.NIC_ORIGIN_BIN && existsSync(process.env.NIC_ORIGIN_BIN));
const artefacts = join(process.env.NIC_SDK_WORK || '.', 'artefacts');

describe('the page at /', { skip: !haveOrigin && 'NIC_ORIGIN_BIN not set' }, () => {
  let fakes;
  let origin;
  let browser;
  before(async () => {
    fakes = await startFakes();
    origin = await startOrigin(fakes);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await origin?.close();
    await fakes?.stop();
  });

  it('is served with its files, a strict CSP and nothing external', async () => {
    const res = await origin.fetch('/');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    assert.match(res.headers.get('content-security-policy'), /default-src 'none'/);
    const html = await res.text();
    assert.match(html, /Notion image CDN/);
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'no external assets');
    for (const [path, type] of [['/page/page.js', /javascript/], ['/page/page.css', /css/],
      ['/page/sdk/browser.mjs', /javascript/], ['/page/sdk/nic_sdk.wasm', /application\/wasm/]]) {
      const r = await origin.fetch(path);
      assert.equal(r.status, 200, path);
      assert.match(r.headers.get('content-type'), type, path);
      assert.ok((await r.arrayBuffer()).byteLength > 0, path);
    }
    const head = await origin.fetch('/', { method: 'HEAD' });
    assert.equal(head.status, 200);
    const missing = await origin.fetch('/page/nope.js');
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).error.code, 'NOT_FOUND');
    assert.equal((await origin.fetch('/', { method: 'POST' })).status, 405);
  });

  it('turns a Notion URL into an image from the fake Notion, then from memory', async () => {
    const img = await fakes.image(png(640, 480), 'sunset.png');
    const notionUrl = `https://file.notion.so/f/f/${dashed(img.ws)}/${dashed(img.file)}/${img.name}` +
      `?table=block&id=${dashed(img.block)}&spaceId=${dashed(img.ws)}&expirationTimestamp=1700000000000&signature=x`;
    const before = await fakes.counters();
    const page = await browser.newPage({ viewport: { width: 1100, height: 1400 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(`${origin.url}/`);
    await page.waitForSelector('body[data-status="live"]', { timeout: 20000 });
    // The width list comes from the SDK (the CDN's ALLOWED_WIDTHS).
    assert.equal(await page.locator('#width option').count(), 21);

    await page.fill('#src', notionUrl);
    await page.selectOption('#width', '320');
    await page.selectOption('#format', 'webp');
    await page.click('#go');
    await page.waitForSelector('body[data-loaded="1"]', { timeout: 30000 });
    const text = async (id) => (await page.locator(id).textContent()).trim();
    assert.equal(await page.locator('#error').isHidden(), true, await text('#error'));
    assert.equal(await text('#cdn-url'), `${origin.url}/img/${img.ws}/${img.block}/${img.name}?w=320&fmt=webp`);
    assert.equal(await text('#tier'), 'ORIGIN');
    assert.equal(await text('#format-out'), 'image/webp');
    assert.ok(Number((await text('#bytes')).replaceAll(',', '')) > 100);
    assert.match(await text('#time'), /^\d+\.\d ms$/);
    assert.equal(await text('#key-match'), 'same');
    assert.equal(await text('#key-server'), await text('#key-sdk'));
    await page.waitForFunction(() => document.getElementById('image').naturalWidth > 0);
    assert.equal(await text('#dimensions'), '320 x 240');

    const after1 = await fakes.counters();
    assert.equal(after1.notion_calls - before.notion_calls, 1);
    assert.equal(after1.s3_downloads - before.s3_downloads, 1);

    await page.click('#go');
    await page.waitForSelector('body[data-loaded="2"]', { timeout: 30000 });
    assert.equal(await text('#tier'), 'MEMORY');
    const after2 = await fakes.counters();
    assert.equal(after2.notion_calls, after1.notion_calls);
    assert.equal(after2.s3_downloads, after1.s3_downloads);

    // The status panel follows /metrics: one memory hit, one miss, one Notion call.
    await page.waitForFunction(() => document.getElementById('stat-memory').textContent === '1', null, { timeout: 10000 });
    assert.equal(await text('#stat-misses'), '1');
    assert.equal(await text('#stat-notion'), '1');
    await page.waitForFunction(() => document.querySelectorAll('#chart rect').length > 0, null, { timeout: 10000 });
    assert.deepEqual(errors, []);

    mkdirSync(artefacts, { recursive: true });
    const shot = join(artefacts, 'page.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`# screenshot: ${shot}`);
    await page.close();
  });

  it('shows the CDN\'s JSON error for a bad URL', async () => {
    const page = await browser.newPage();
    await page.goto(`${origin.url}/`);
    await page.fill('#src', '/img/ws/not-a-uuid/a.png');
    await page.click('#go');
    await page.waitForSelector('#error:not([hidden])', { timeout: 20000 });
    assert.match(await page.locator('#error').textContent(), /^400 INVALID_PATH: /);
    await page.close();
  });

  it('is passed through by the edge', { skip: !existsSync(process.env.NIC_EDGE_WASM || '/nonexistent') && 'no edge module' },
    async () => {
      const edge = await startEdge({ ORIGIN_URL: origin.url });
      try {
        for (const path of ['/', '/page/sdk/browser.mjs']) {
          const [viaEdge, direct] = [await edge.fetch(path), await origin.fetch(path)];
          assert.equal(viaEdge.status, 200, path);
          assert.equal(viaEdge.headers.get('content-type'), direct.headers.get('content-type'));
          assert.equal(await viaEdge.text(), await direct.text());
        }
      } finally {
        await edge.close();
      }
    });
});
