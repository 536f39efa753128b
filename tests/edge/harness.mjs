// Test harness for the edge worker: runs wasm/worker.mjs with the built
// nic_edge.wasm in workerd (through miniflare); a scripted counting origin on
// 127.0.0.1; and for the end-to-end tests the real nic-origin (NIC_ORIGIN_BIN)
// with the fake Notion API and S3 (tests/fakes/fakes.py).
import { spawn } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { deflateSync } from 'node:zlib';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Miniflare } from 'miniflare';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

// The module under test: NIC_EDGE_WASM (set by CTest to the wasm32-wasi
// sub-build's output), else the copy the build leaves in wasm/dist/.
export function wasmPath() {
  const path = process.env.NIC_EDGE_WASM || join(root, 'wasm/dist/nic_edge.wasm');
  if (!existsSync(path)) {
    throw new Error(`no edge module at ${path}: build the nic_edge target (toolchains/wasm32-wasi.cmake)`);
  }
  return path;
}

// The worker in its own workerd (one "data centre": its own cache). `opts.kv`:
// bind the NIC_PURGE KV namespace; `opts.kvPersist`: a directory, so that several
// edges share one KV namespace (as every Cloudflare location does);
// `opts.workerSource`: another worker.mjs text (the benchmarks' baselines).
export async function startEdge(vars, opts = {}) {
  const worker = join(root, 'wasm/worker.mjs');
  const known = new Set(workerdChildren());
  const kv = opts.kv || opts.kvPersist ? { kvNamespaces: ['NIC_PURGE'], kvPersist: opts.kvPersist ?? false } : {};
  const mf = new Miniflare({
    ...kv,
    modulesRoot: root,
    modules: [
      { type: 'ESModule', path: worker, contents: opts.workerSource ?? (await readFile(worker, 'utf8')) },
      // The worker imports ./dist/nic_edge.wasm; give it the module under test.
      { type: 'CompiledWasm', path: join(root, 'wasm/dist/nic_edge.wasm'), contents: await readFile(wasmPath()) },
    ],
    compatibilityDate: '2026-04-01',
    bindings: { EDGE_DEBUG_STATS: '1', ...vars },
    cache: true,
  });
  await mf.ready;
  const [pid] = workerdChildren().filter((p) => !known.has(p));
  return {
    mf,
    // Peak resident memory of this edge's workerd process (VmHWM), in bytes.
    peakRss: () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024,
    // Requests go to a public-looking host, as on Cloudflare.
    fetch: (path, init) => mf.dispatchFetch(`https://cdn.test${path}`, init),
    async stats() {
      const res = await mf.dispatchFetch('https://cdn.test/__nic/edge-stats');
      return res.json();
    },
    close: () => mf.dispose(),
  };
}

// The workerd processes miniflare started for this node process.
function workerdChildren() {
  const pids = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && stat.includes('(workerd)')) pids.push(pid);
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

// Resolves when `condition()` (sync or async) is truthy; polls, and gives up
// with an error after `limitMs` so a broken build fails instead of hanging.
export async function until(condition, what, limitMs = 20000) {
  const start = Date.now();
  for (;;) {
    if (await condition()) return;
    if (Date.now() - start > limitMs) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// A scripted origin: `handler(req, body)` returns {status, headers, body} (or
// a promise of it). Every request is recorded; `hold()` makes responses wait
// until `release()`.
export async function startFakeOrigin(handler) {
  const requests = [];
  let gate = null;
  let open = () => {};
  const server = createServer(async (req, res) => {
    requests.push({ method: req.method, url: req.url, headers: req.headers });
    if (gate) await gate;
    try {
      const r = await handler(req);
      res.writeHead(r.status, r.headers ?? {});
      res.end(r.body ?? '');
    } catch (e) {
      res.writeHead(599, { 'content-type': 'text/plain' });
      res.end(`fake origin handler failed: ${e.stack}`);
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    hold() {
      gate = new Promise((ok) => {
        open = ok;
      });
    },
    release() {
      gate = null;
      open();
    },
    close: () =>
      new Promise((ok) => {
        server.closeAllConnections();
        server.close(ok);
      }),
  };
}

// ---- the real origin and the fake Notion servers --------------------------


export const originBin = process.env.NIC_ORIGIN_BIN;
export const haveOrigin = Boolean(originBin && existsSync(originBin));
export const TOKEN = 'secret_test_token';

// First stdout line of a child that matches `pattern`, or an error.
function firstLine(child, pattern, what) {
  return new Promise((ok, fail) => {
    const lines = createInterface({ input: child.stdout });
    const timer = setTimeout(() => fail(new Error(`${what} did not start`)), 15000);
    lines.on('line', (line) => {
      const m = pattern.exec(line);
      if (m) {
        clearTimeout(timer);
        ok(m);
      }
    });
    child.on('exit', (code) => fail(new Error(`${what} exited with ${code}`)));
  });
}

async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((ok) => child.on('exit', ok));
  child.kill('SIGTERM');
  await exited;
}

export async function startFakes() {
  const child = spawn('python3', [join(root, 'tests/fakes/fakes.py')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const m = await firstLine(child, /^(\{.*\})$/, 'fakes.py');
  const ports = JSON.parse(m[1]);
  const s3 = `http://127.0.0.1:${ports.s3}`;
  const control = async (name, body) => {
    const res = await fetch(`${s3}/_control/${name}`, { method: 'POST', body: JSON.stringify(body ?? {}) });
    if (res.status !== 200) throw new Error(`fakes ${name}: ${res.status}`);
  };
  return {
    ports,
    control,
    async counters() {
      return (await fetch(`${s3}/_control/counters`)).json();
    },
    // A new image behind a new Notion block: {ws, block, file, name}.
    async image(bytes, name = 'photo.png', contentType = 'image/png') {
      const [ws, block, file] = [hexId(), hexId(), hexId()];
      await control('files', {
        path: `/${dashed(ws)}/${dashed(file)}/${name}`,
        data_b64: Buffer.from(bytes).toString('base64'),
        content_type: contentType,
      });
      await control('blocks', { id: block, workspace: ws, file, name });
      return { ws, block, file, name };
    },
    stop: () => stopChild(child),
  };
}

export const hexId = () => randomUUID().replaceAll('-', '');
export const dashed = (h) => `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;

// nic-origin on 127.0.0.1 (PORT 0 unless given), reading its port from stdout.
export async function startOrigin(fakes, env = {}) {
  const cacheDir = mkdtempSync(join(tmpdir(), 'nic-edge-e2e-'));
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('NOTION_') && !k.startsWith('RATE_LIMIT')),
  );
  const start = async (port) => {
    const child = spawn(originBin, [], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: {
        ...clean,
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'error',
        CACHE_DIR: cacheDir,
        ALLOWED_DOMAINS: `http://127.0.0.1:${fakes.ports.s3}`,
        NOTION_API_BASE: `http://127.0.0.1:${fakes.ports.notion}`,
        NOTION_TOKEN: TOKEN,
        NOTION_RPS: '1000',
        WORKER_THREADS: '2',
        TRANSFORM_CONCURRENCY: '2',
        UPSTREAM_TIMEOUT_MS: '5000',
        ...env,
      },
    });
    const m = await firstLine(child, /listening on [^:]+:(\d+)/, 'nic-origin');
    return { child, port: Number(m[1]) };
  };
  let proc = await start(0);
  const port = proc.port;
  return {
    url: `http://127.0.0.1:${port}`,
    fetch: (path, init) => fetch(`http://127.0.0.1:${port}${path}`, init),
    // Down and up again on the same port (the edge keeps its ORIGIN_URL).
    stop: () => stopChild(proc.child),
    async restart() {
      proc = await start(port);
    },
    async close() {
      await stopChild(proc.child);
      rmSync(cacheDir, { recursive: true, force: true });
    },
  };
}

// A pass-through proxy in front of the origin that counts requests and can
// hold them (so a herd is fully formed before the origin answers).
export async function startCountingProxy(target) {
  return startFakeOrigin(async (req) => {
    const headers = { ...req.headers };
    delete headers.host;
    const res = await fetch(`${target}${req.url}`, { method: req.method, headers });
    const out = {};
    res.headers.forEach((v, k) => {
      if (k !== 'content-length' && k !== 'transfer-encoding' && k !== 'connection') out[k] = v;
    });
    return { status: res.status, headers: out, body: Buffer.from(await res.arrayBuffer()) };
  });
}

// The contract's signature: base64url(HMAC-SHA256(secret, path + "?" + the
// other parameters sorted by name as k=v joined by &)).
export function signed(secret, path, query = '') {
  const pairs = query ? query.split('&').filter((p) => p && !p.startsWith('sig=')) : [];
  const sorted = [...pairs].sort((a, b) => {
    const [na, nb] = [a.split('=')[0], b.split('=')[0]];
    return na < nb ? -1 : na > nb ? 1 : 0;
  });
  const sig = createHmac('sha256', secret).update(`${path}?${sorted.join('&')}`).digest('base64url');
  return `${path}?${[...pairs, `sig=${sig}`].join('&')}`;
}

// ---- images: made here, measured from their headers -------------------------

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// An RGB gradient PNG.
export function png(width, height) {
  const rows = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const o = y * (width * 3 + 1);
    for (let x = 0; x < width; x++) {
      rows[o + 1 + x * 3] = (x * 255) / Math.max(1, width - 1);
      rows[o + 2 + x * 3] = (y * 255) / Math.max(1, height - 1);
      rows[o + 3 + x * 3] = 128;
    }
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// {format, width, height} read from PNG, WebP (VP8/VP8L/VP8X) or AVIF (ispe) headers.
export function measure(bytes) {
  const b = Buffer.from(bytes);
  if (b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) {
    return { format: 'png', width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
  }
  if (b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') {
    const kind = b.toString('latin1', 12, 16);
    if (kind === 'VP8 ') return { format: 'webp', width: b.readUInt16LE(26) & 0x3fff, height: b.readUInt16LE(28) & 0x3fff };
    if (kind === 'VP8L') {
      const bits = b.readUInt32LE(21);
      return { format: 'webp', width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
    }
    if (kind === 'VP8X') return { format: 'webp', width: b.readUIntLE(24, 3) + 1, height: b.readUIntLE(27, 3) + 1 };
  }
  if (b.toString('latin1', 4, 8) === 'ftyp' && /avi[fs]/.test(b.toString('latin1', 8, 12))) {
    const at = b.indexOf('ispe', 0, 'latin1');
    if (at > 0) return { format: 'avif', width: b.readUInt32BE(at + 8), height: b.readUInt32BE(at + 12) };
    return { format: 'avif', width: 0, height: 0 };
  }
  return { format: 'unknown', width: 0, height: 0 };
}
