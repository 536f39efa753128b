// The CDN's own page: the try-it panel (URLs built by the SDK, the same C++
// core as the CDN's, here as WebAssembly) and the status panel (/metrics).
import { ALLOWED_WIDTHS, cacheKeyInfo, getOptimizedUrl, isNotionImageUrl, parseNotionUrl } from '/page/sdk/browser.mjs';

const $ = (id) => document.getElementById(id);
// What an <img> of this browser would send; the server's key depends on it.
const ACCEPT = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8';

for (const w of ALLOWED_WIDTHS) $('width').add(new Option(`${w}px`, String(w)));
$('width').value = '640';

function showError(text) {
  $('error').textContent = text;
  $('error').hidden = false;
}

async function errorText(res) {
  try {
    const body = await res.json();
    return `${res.status} ${body.error.code}: ${body.error.message}`;
  } catch {
    return `${res.status} ${res.statusText}`;
  }
}

// The panel's choices as SDK options / query parameters.
function choices() {
  const o = {};
  if ($('width').value) o.width = Number($('width').value);
  if ($('format').value) o.format = $('format').value;
  if ($('fit').value) o.fit = $('fit').value;
  return o;
}

// -> {url, register}: the CDN URL to show and load, and the proxy call that
// must come first when the URL names a file id (the older form, which the
// CDN only knows once /api/v1/proxy has seen its signed URL).
function plan(input) {
  const o = choices();
  const here = location.origin;
  if (input.startsWith('/img/') || input.startsWith(`${here}/img/`)) {
    const u = new URL(input, here);
    for (const [option, param] of [['width', 'w'], ['format', 'fmt'], ['fit', 'fit']]) {
      if (o[option] !== undefined) u.searchParams.set(param, String(o[option]));
    }
    return { url: u.pathname + u.search };
  }
  const proxy = new URLSearchParams({ url: input });
  if (o.width) proxy.set('w', String(o.width));
  if (o.format) proxy.set('fmt', o.format);
  if (o.fit) proxy.set('fit', o.fit);
  if (isNotionImageUrl(input)) {
    const url = getOptimizedUrl(input, { cdnBaseUrl: '', ...o });
    return { url, register: parseNotionUrl(input).blockId ? null : `/api/v1/proxy?${proxy}` };
  }
  // Not a Notion host: the origin's ALLOWED_DOMAINS decide (an S3 mirror, say).
  return { url: `/api/v1/proxy?${proxy}` };
}

let objectUrl = null;

async function load(event) {
  event.preventDefault();
  $('error').hidden = true;
  const input = $('src').value.trim();
  if (!input) return showError('Paste a Notion image URL or an /img/ path first.');
  let p;
  try {
    p = plan(input);
  } catch (e) {
    return showError(e.message);
  }
  $('cdn-url').textContent = new URL(p.url, location.origin).href;
  $('result').hidden = false;
  $('go').disabled = true;
  try {
    if (p.register) {
      const r = await fetch(p.register, { headers: { accept: ACCEPT } });
      if (!r.ok) return showError(await errorText(r));
      await r.arrayBuffer();
    }
    const started = performance.now();
    const res = await fetch(p.url, { headers: { accept: ACCEPT }, cache: 'no-store' });
    const blob = await res.blob();
    const ms = performance.now() - started;
    if (!res.ok) return showError(await errorText(new Response(blob, res)));
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = URL.createObjectURL(blob);
    const image = $('image');
    image.onload = () => { $('dimensions').textContent = `${image.naturalWidth} x ${image.naturalHeight}`; };
    image.src = objectUrl;
    $('bytes').textContent = blob.size.toLocaleString('en');
    $('format-out').textContent = res.headers.get('content-type') || '?';
    $('tier').textContent = res.headers.get('x-cache-tier') || '?';
    $('time').textContent = `${ms.toFixed(1)} ms`;
    const serverKey = res.headers.get('x-cache-key') || '';
    $('key-server').textContent = serverKey || '(none)';
    let sdkKey = '';
    if (p.url.startsWith('/img/')) {
      try {
        sdkKey = cacheKeyInfo(p.url, ACCEPT).key;
      } catch (e) {
        sdkKey = e.message;
      }
    }
    $('key-sdk').textContent = sdkKey || '(not an /img URL)';
    const same = sdkKey && sdkKey === serverKey;
    $('key-match').textContent = sdkKey ? (same ? 'same' : 'different') : '';
    $('key-match').className = same ? 'ok' : 'bad';
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
    refresh();
  } catch (e) {
    showError(String(e && e.message ? e.message : e));
  } finally {
    $('go').disabled = false;
  }
}

$('try-form').addEventListener('submit', load);

// ---- status: /metrics (Prometheus text) -> counters and a bar chart

function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{([^}]*)\})? ([0-9.e+-]+)$/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] || '').matchAll(/([a-z_]+)="([^"]*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

const sum = (rows, name, where = () => true) =>
  rows.filter((r) => r.name === name && where(r.labels)).reduce((a, r) => a + r.value, 0);

function counters(rows) {
  return {
    requests: sum(rows, 'nic_requests_total'),
    memory: sum(rows, 'nic_cache_hits_total', (l) => l.tier === 'memory'),
    storage: sum(rows, 'nic_cache_hits_total', (l) => l.tier === 'storage'),
    misses: sum(rows, 'nic_cache_misses_total'),
    coalesced: sum(rows, 'nic_coalesced_total'),
    notion: sum(rows, 'nic_notion_api_calls_total'),
    rss: sum(rows, 'process_resident_memory_bytes'),
  };
}

const history = [];
let last = null;

function draw() {
  const svg = $('chart');
  const ns = 'http://www.w3.org/2000/svg';
  svg.replaceChildren();
  const slots = 30;
  const width = 300 / slots;
  const max = Math.max(1, ...history.map((h) => h.memory + h.storage + h.misses + h.other));
  history.slice(-slots).forEach((h, i) => {
    let y = 100;
    for (const kind of ['memory', 'storage', 'miss', 'other']) {
      const v = h[kind === 'miss' ? 'misses' : kind];
      if (!v) continue;
      const height = (v / max) * 95;
      y -= height;
      const rect = document.createElementNS(ns, 'rect');
      rect.setAttribute('x', String(i * width + 1));
      rect.setAttribute('y', String(y));
      rect.setAttribute('width', String(width - 2));
      rect.setAttribute('height', String(height));
      rect.setAttribute('class', kind);
      svg.append(rect);
    }
  });
}

async function refresh() {
  try {
    const res = await fetch('/metrics', { cache: 'no-store' });
    if (!res.ok) return;
    const c = counters(parseMetrics(await res.text()));
    $('stat-requests').textContent = c.requests.toLocaleString('en');
    $('stat-memory').textContent = c.memory.toLocaleString('en');
    $('stat-storage').textContent = c.storage.toLocaleString('en');
    $('stat-misses').textContent = c.misses.toLocaleString('en');
    $('stat-coalesced').textContent = c.coalesced.toLocaleString('en');
    $('stat-notion').textContent = c.notion.toLocaleString('en');
    $('stat-memory-bytes').textContent = `${(c.rss / 1048576).toFixed(1)} MiB`;
    if (last) {
      const d = (k) => Math.max(0, c[k] - last[k]);
      const hits = d('memory') + d('storage') + d('misses');
      // The status polls themselves are requests too; "other" is what is left.
      history.push({ memory: d('memory'), storage: d('storage'), misses: d('misses'),
        other: Math.max(0, d('requests') - hits) });
      if (history.length > 60) history.shift();
      draw();
    }
    last = c;
    document.body.dataset.status = 'live';
  } catch {
    document.body.dataset.status = 'down';
  }
}

refresh();
setInterval(refresh, 2000);
