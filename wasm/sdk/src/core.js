// The SDK's API over the core's WebAssembly exports (wasm/sdk/sdk.cpp).
// This file is a body, not a module: wasm/sdk/build.mjs wraps it for ESM, CJS
// and workerd, and gives it `wasm` (the instance's exports) before it runs.
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// One call through the ABI of sdk.cpp: NUL-separated fields in, one string out.
function call(entry, ...fields) {
  const bytes = encoder.encode(fields.join('\0'));
  const at = wasm.nic_sdk_input(bytes.length);
  new Uint8Array(wasm.memory.buffer, at, bytes.length).set(bytes);
  const n = wasm[entry](bytes.length);
  const len = n < 0 ? -n : n;
  const text = decoder.decode(new Uint8Array(wasm.memory.buffer, wasm.nic_sdk_output(), len));
  if (n >= 0) return { ok: text };
  const [field, code, message] = text.split('\0');
  return { field, code, message };
}

const PARAM_OF = { width: 'w', height: 'h', fit: 'fit', format: 'fmt', quality: 'q', dpr: 'dpr' };
const OPTION_OF = { w: 'width', h: 'height', fit: 'fit', fmt: 'format', q: 'quality', dpr: 'dpr' };

function optionError(name, message) {
  const e = new TypeError(`notion-image-cdn: ${message}`);
  e.option = name;
  return e;
}

// A failure of the core, re-worded with the option's name (w -> width).
function coreOptionError(r) {
  const option = OPTION_OF[r.field] || r.field;
  let message = r.message.replace(/^invalid parameter [a-z]+/, `invalid option ${option}`);
  if (!message.includes(option)) message = `invalid option ${option}: ${message}`;
  return optionError(option, message);
}

function plainString(value, name) {
  if (typeof value !== 'string') throw optionError(name, `${name} must be a string, got ${typeof value}`);
  if (value.includes('\0')) throw optionError(name, `${name} must not contain NUL`);
  return value;
}

let settings = { widths: '', qualities: '' };

function listSetting(value, name) {
  if (value === undefined || value === null) return '';
  if (!Array.isArray(value) || value.length === 0) throw optionError(name, `${name} must be a non-empty array of integers`);
  return value.map((v) => (typeof v === 'number' ? String(v) : 'x')).join(',');
}

function effective(widths, qualities) {
  const r = call('nic_sdk_settings', widths, qualities);
  if (r.ok === undefined) throw coreOptionError(r);
  const [w, q] = r.ok.split('\0');
  return { allowedWidths: w.split(',').map(Number), qualitySteps: q.split(',').map(Number) };
}

const DEFAULTS = effective('', '');
/** The CDN's default ALLOWED_WIDTHS: the widths every image width snaps up to. */
const ALLOWED_WIDTHS = Object.freeze(DEFAULTS.allowedWidths.slice());
/** The CDN's default QUALITY_STEPS. */
const QUALITY_STEPS = Object.freeze(DEFAULTS.qualitySteps.slice());
let current = DEFAULTS;

/**
 * Tell the SDK the CDN's ALLOWED_WIDTHS / QUALITY_STEPS when they are not the
 * defaults, so the URLs it builds are already the ones the CDN snaps to.
 */
function configure(options = {}) {
  if (options === null || typeof options !== 'object') throw optionError('options', 'configure() takes an object');
  const widths = listSetting(options.allowedWidths, 'allowedWidths');
  const qualities = listSetting(options.qualitySteps, 'qualitySteps');
  current = effective(widths, qualities);
  settings = { widths, qualities };
  return { allowedWidths: current.allowedWidths.slice(), qualitySteps: current.qualitySteps.slice() };
}

// The options' transform parameters, validated and normalised by the core:
// "w=828&fmt=webp" (already snapped, as the CDN would).
function transformQuery(o) {
  const parts = [];
  for (const [option, param] of Object.entries(PARAM_OF)) {
    const v = o[option];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' && typeof v !== 'string') {
      throw optionError(option, `invalid option ${option}: expected a number or a string, got ${typeof v}`);
    }
    parts.push(`${param}=${encodeURIComponent(String(v))}`);
  }
  const r = call('nic_sdk_params', parts.join('&'), settings.widths, settings.qualities);
  if (r.ok === undefined) throw coreOptionError(r);
  return r.ok;
}

function checkOptions(options, fn) {
  if (options === null || typeof options !== 'object') {
    throw optionError('options', `${fn}() needs an options object with cdnBaseUrl`);
  }
  if (options.cdnBaseUrl === undefined) throw optionError('cdnBaseUrl', 'cdnBaseUrl is required');
  plainString(options.cdnBaseUrl, 'cdnBaseUrl');
  return options;
}

function domains(o) {
  const d = o && o.allowedDomains;
  if (d === undefined || d === null) return '';
  if (Array.isArray(d)) return plainString(d.join(','), 'allowedDomains');
  return plainString(d, 'allowedDomains');
}

function rewrite(url, options, blockId, fn) {
  const o = checkOptions(options, fn);
  const query = transformQuery(o);
  const allowed = domains(o);
  if (typeof url !== 'string' || url.includes('\0')) return url;
  const r = call('nic_sdk_url', url, o.cdnBaseUrl, query, blockId, allowed);
  if (r.ok !== undefined) return r.ok;
  if (r.field === 'url') return url; // not a Notion file URL: left as it is
  throw coreOptionError(r);
}

/**
 * A Notion file URL (any of the four forms) -> the CDN's permanent URL,
 * {cdnBaseUrl}/img/{workspace}/{block id or file id}/{filename}?w=&h=&fit=&fmt=&q=.
 * Anything else is returned unchanged. Bad options throw a TypeError naming the option.
 */
function getOptimizedUrl(url, options) {
  return rewrite(url, options, '', 'getOptimizedUrl');
}

/** What the core reads from a Notion file URL, or null when it is not one. */
function parseNotionUrl(url, options = {}) {
  if (typeof url !== 'string' || url.includes('\0')) return null;
  const r = call('nic_sdk_parse', url, domains(options));
  if (r.ok === undefined) {
    if (r.field === 'url') return null;
    throw coreOptionError(r);
  }
  const [workspaceId, fileId, blockId, filename, expires] = r.ok.split('\0');
  return { workspaceId, fileId, blockId: blockId || null, filename, expiresAt: expires ? Number(expires) : null };
}

/** True for a file URL on one of Notion's four hosts that the CDN can serve. */
function isNotionImageUrl(url, options) {
  return parseNotionUrl(url, options) !== null;
}

// The file URL of a Notion API image block, and whether it is an external one.
function blockSource(block) {
  if (block === null || typeof block !== 'object' || block.type !== 'image' || block.image === null ||
      typeof block.image !== 'object') {
    throw optionError('block', 'block must be a Notion image block ({type: "image", image: {...}})');
  }
  const image = block.image;
  const external = image.type === 'external';
  const source = external ? image.external : image.file;
  if (!source || typeof source.url !== 'string') {
    throw optionError('block', `block.image.${external ? 'external' : 'file'}.url is missing`);
  }
  return { url: source.url, external };
}

/**
 * A Notion API image block -> its CDN URL, by the block's id: the CDN asks
 * Notion for a fresh file URL whenever it needs one, so nothing expires.
 * An external image is returned as getOptimizedUrl() returns it.
 */
function fromNotionBlock(block, options) {
  const { url, external } = blockSource(block);
  if (external) return getOptimizedUrl(url, options);
  const id = block.id === undefined ? '' : plainString(block.id, 'block.id');
  return rewrite(url, options, id, 'fromNotionBlock');
}

/** createNotionImagePlugin({cdnBaseUrl, defaultFormat, defaultQuality, defaultWidth}) -> src => url */
function createNotionImagePlugin(options) {
  const o = checkOptions(options, 'createNotionImagePlugin');
  const base = { ...o, format: o.defaultFormat, quality: o.defaultQuality, width: o.defaultWidth };
  delete base.defaultFormat;
  delete base.defaultQuality;
  delete base.defaultWidth;
  try {
    transformQuery(base); // bad defaults fail now, not at the first image
  } catch (e) {
    const name = { format: 'defaultFormat', quality: 'defaultQuality', width: 'defaultWidth' }[e.option];
    if (!name) throw e;
    throw optionError(name, e.message.replace(`notion-image-cdn: invalid option ${e.option}`, `invalid option ${name}`));
  }
  return (src) => getOptimizedUrl(src, base);
}

function snappedWidth(width) {
  const q = transformQuery({ width });
  return Number(/(?:^|&)w=(\d+)/.exec(q)[1]);
}

/**
 * A srcset over the CDN's ALLOWED_WIDTHS (the widths it would snap to anyway):
 * all of them, or with `width` those up to twice it (for 2x screens).
 * `source` is a Notion file URL or a Notion API image block (then by block id,
 * as fromNotionBlock). Empty for anything the CDN does not serve.
 */
function srcSet(source, options) {
  const o = checkOptions(options, 'srcSet');
  transformQuery(o);
  const block = source !== null && typeof source === 'object';
  const original = block ? blockSource(source).url : source;
  const build = block ? (one) => fromNotionBlock(source, one) : (one) => getOptimizedUrl(source, one);
  if (build(o) === original) return '';
  const hasWidth = o.width !== undefined && o.width !== null;
  const cap = hasWidth ? snappedWidth(Math.min(2 * Number(o.width), 8192)) : Infinity;
  const entries = [];
  for (const w of current.allowedWidths) {
    if (w > cap) break;
    const one = { ...o, width: w, dpr: undefined };
    if (hasWidth && o.height !== undefined && o.height !== null) {
      one.height = Math.max(1, Math.round((Number(o.height) * w) / Number(o.width)));
    }
    entries.push(`${build(one)} ${w}w`);
  }
  return entries.join(', ');
}

/** A `sizes` attribute for srcSet(): the image's CSS width, capped by the viewport. */
function sizes(options = {}) {
  if (options === null || typeof options !== 'object') throw optionError('options', 'sizes() takes an object');
  if (options.width === undefined || options.width === null) return '100vw';
  transformQuery({ width: options.width });
  const w = Number(options.width);
  return `(max-width: ${w}px) 100vw, ${w}px`;
}

function keyError(r) {
  const e = new Error(`notion-image-cdn: ${r.message}`);
  e.code = r.code;
  return e;
}

/**
 * The canonical cache key of an /img path (or full CDN URL) for an Accept
 * header, exactly as the edge and the origin compute it:
 * {key, hash (SHA-256 hex, the storage name), vary (the answer depends on Accept)}.
 */
function cacheKeyInfo(path, accept = '', options = {}) {
  plainString(path, 'path');
  plainString(accept, 'accept');
  const widths = options.allowedWidths ? listSetting(options.allowedWidths, 'allowedWidths') : settings.widths;
  const qualities = options.qualitySteps ? listSetting(options.qualitySteps, 'qualitySteps') : settings.qualities;
  const secret = options.secret === undefined ? '' : plainString(options.secret, 'secret');
  const r = call('nic_sdk_key', path, accept, widths, qualities, secret);
  if (r.ok === undefined) {
    if (r.field === 'allowedWidths' || r.field === 'qualitySteps') throw coreOptionError(r);
    throw keyError(r);
  }
  const [key, hash, vary] = r.ok.split('\0');
  return { key, hash, vary: vary === '1' };
}

/** The canonical cache key string: `v1/{workspace}/{id}/{filename}?...`. */
function cacheKey(path, accept = '', options = {}) {
  return cacheKeyInfo(path, accept, options).key;
}

/**
 * Server-side only (the secret must never reach a browser): the URL with its
 * `sig` parameter, the same as `nic sign` prints.
 */
function signUrl(url, secret) {
  plainString(url, 'url');
  if (typeof secret !== 'string' || secret === '') throw optionError('secret', 'secret must be a non-empty string');
  plainString(secret, 'secret');
  const r = call('nic_sdk_sign', url, secret);
  if (r.ok === undefined) throw r.field === 'secret' ? coreOptionError(r) : keyError(r);
  return r.ok;
}
