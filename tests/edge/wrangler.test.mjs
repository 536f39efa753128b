// The deployable shape: wrangler.toml bundles wasm/worker.mjs with the built
// module (offline, --dry-run), the module imports nothing the worker does not
// give it, and the JS stays a thin I/O layer.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { root, wasmPath } from './harness.mjs';

describe('edge: deployable', () => {
  it('wrangler deploy --dry-run bundles the worker and the module', () => {
    const out = mkdtempSync(join(tmpdir(), 'nic-wrangler-'));
    try {
      const log = execFileSync(
        process.execPath,
        [join(root, 'node_modules/wrangler/bin/wrangler.js'), 'deploy', '--dry-run', '--outdir', out],
        { cwd: root, env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true' }, encoding: 'utf8' },
      );
      assert.match(log, /--dry-run: exiting now/);
      for (const name of ['ORIGIN_URL', 'ALLOWED_WIDTHS', 'QUALITY_STEPS', 'FOLLOWER_TIMEOUT_MS', 'CACHE_TTL_SECONDS']) {
        assert.match(log, new RegExp(`env\\.${name} `), name);
      }
      const files = readdirSync(out);
      const wasm = files.find((f) => f.endsWith('.wasm'));
      assert.ok(wasm, `bundle: ${files}`);
      assert.ok(readFileSync(join(out, wasm)).equals(readFileSync(join(root, 'wasm/dist/nic_edge.wasm'))));
      assert.match(readFileSync(join(out, 'worker.js'), 'utf8'), new RegExp(wasm.replace('.', '\\.')));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('the module imports nothing but the WASI stubs the worker answers, and exports the ABI', () => {
    const module = new WebAssembly.Module(readFileSync(wasmPath()));
    for (const i of WebAssembly.Module.imports(module)) {
      assert.equal(i.module, 'wasi_snapshot_preview1', `${i.module}.${i.name}`);
      assert.equal(i.kind, 'function');
    }
    const exports = WebAssembly.Module.exports(module).map((e) => e.name);
    for (const name of ['memory', '_initialize', 'nic_input', 'nic_output', 'nic_init', 'nic_decide', 'nic_join',
      'nic_complete', 'nic_fail', 'nic_expire', 'nic_respond', 'nic_error']) {
      assert.ok(exports.includes(name), name);
    }
  });

  it('worker.mjs stays under 200 lines', () => {
    const lines = readFileSync(join(root, 'wasm/worker.mjs'), 'utf8').split('\n').length;
    assert.ok(lines < 200, `${lines} lines`);
  });
});
