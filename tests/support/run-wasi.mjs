// Runs a wasm32-wasi command module under Node's WASI, with the current
// directory and the repository root preopened, so tests can read tests/vectors.
import { WASI } from 'node:wasi';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import process from 'node:process';

process.removeAllListeners('warning'); // node:wasi prints an ExperimentalWarning
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const [wasmPath, ...args] = process.argv.slice(2);
const wasi = new WASI({
  version: 'preview1',
  args: [wasmPath, ...args],
  env: { NIC_SOURCE_DIR: root },
  preopens: { [root]: root, '.': process.cwd() },
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(wasmPath));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
