// The deployable shape: wrangler.toml bundles wasm/worker.mjs with the built
// module (offline, --dry-run) and its KV binding; the module imports nothing
// and exports exactly what the worker calls.
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
      for (const name of ['ORIGIN_URL', 'ALLOWED_WIDTHS', 'QUALITY_STEPS', 'FOLLOWER_TIMEOUT_MS', 'CACHE_TTL_SECONDS',
        'STALE_IF_ERROR_SECONDS', 'PURGE_CHECK_SECONDS', 'CORS_ORIGINS', 'NIC_PURGE']) {
        assert.match(log, new RegExp(`env\\.${name} `), name);
      }
      assert.match(log, /env\.NIC_PURGE \([0-9a-f]{32}\)\s+KV Namespace/);
      const files = readdirSync(out);
      const wasm = files.find((f) => f.endsWith('.wasm'));
      assert.ok(wasm, `bundle: ${files}`);
      assert.ok(readFileSync(join(out, wasm)).equals(readFileSync(join(root, 'wasm/dist/nic_edge.wasm'))));
      assert.match(readFileSync(join(out, 'worker.js'), 'utf8'), new RegExp(wasm.replace('.', '\\.')));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('the module imports nothing, and exports exactly the entry points the worker calls', () => {
    const module = new WebAssembly.Module(readFileSync(wasmPath()));
    assert.deepEqual(WebAssembly.Module.imports(module), []);
    const exports = WebAssembly.Module.exports(module).map((e) => e.name).sort();
    // The entry points wasm/worker.mjs names: core('nic_...') calls and x.nic_... buffer accessors.
    const worker = readFileSync(join(root, 'wasm/worker.mjs'), 'utf8');
    const called = new Set([...worker.matchAll(/core\('(nic_\w+)'|x\.(nic_\w+)|call\('(nic_\w+)'/g)].map((m) => m[1] ?? m[2] ?? m[3]));
    // nic_stats is the benchmark's (bench/edge/cpu.mjs); memory and _initialize are the reactor's.
    assert.deepEqual(exports, [...called, 'nic_stats', 'memory', '_initialize'].sort());
    assert.deepEqual([...called].sort(), [
      'nic_complete', 'nic_decide', 'nic_error', 'nic_expire', 'nic_fail', 'nic_forwarded', 'nic_init', 'nic_input',
      'nic_join', 'nic_output', 'nic_respond', 'nic_result',
    ]);
  });
});
