// Shared by the SDK's tests: the package as a user gets it (`npm pack`, then
// unpacked into a node_modules of a scratch project), and Chromium.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const packageDir = process.env.NIC_SDK_PACKAGE;
if (!packageDir || !existsSync(join(packageDir, 'dist/index.mjs'))) {
  throw new Error(`NIC_SDK_PACKAGE must name the built package (wasm/sdk), got ${packageDir}`);
}

// A scratch project with notion-image-cdn installed from its `npm pack` tarball
// (so the tests see exactly the published files) and react from the repository.
export function scratchProject(prefix = 'nic-sdk-') {
  const dir = mkdtempSync(join(process.env.NIC_SDK_WORK || tmpdir(), prefix));
  const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', dir],
    { cwd: packageDir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }));
  const tarball = join(dir, packed[0].filename);
  const target = join(dir, 'node_modules/notion-image-cdn');
  mkdirSync(target, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', target, '--strip-components=1']);
  for (const dep of ['react', 'react-dom', 'scheduler']) {
    if (existsSync(join(root, 'node_modules', dep))) symlinkSync(join(root, 'node_modules', dep), join(dir, 'node_modules', dep));
  }
  writeFileSync(join(dir, 'package.json'), '{"name": "scratch", "private": true, "type": "module"}\n');
  writeFileSync(join(dir, 'sdk.mjs'), "export * from 'notion-image-cdn';\n");
  writeFileSync(join(dir, 'react.mjs'), "export * from 'notion-image-cdn/react';\n");
  return {
    dir,
    pack: packed[0],
    esm: () => import(pathToFileURL(join(dir, 'sdk.mjs')).href),
    esmReact: () => import(pathToFileURL(join(dir, 'react.mjs')).href),
    require: createRequire(join(dir, 'index.cjs')),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function vectors() {
  return readFileSync(join(root, 'tests/vectors/cache_keys.tsv'), 'utf8')
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const [name, target, accept, settings, status, result, sha256, vary] = line.split('\t');
      return { name, target, accept, settings, status: Number(status), result, sha256, vary };
    });
}

// "widths=a,b;quality=c;secret=s" -> cacheKeyInfo's options.
export function keyOptions(settings) {
  const o = {};
  if (settings === '-') return o;
  for (const part of settings.split(';')) {
    const eq = part.indexOf('=');
    const [name, value] = [part.slice(0, eq), part.slice(eq + 1)];
    if (name === 'widths') o.allowedWidths = value.split(',').map(Number);
    if (name === 'quality') o.qualitySteps = value.split(',').map(Number);
    if (name === 'secret') o.secret = value;
  }
  return o;
}

export const CHROMIUM = process.env.NIC_CHROMIUM || '/usr/bin/chromium';

// Debian's Chromium, headless, on a fresh profile, without reaching out to
// anything (this machine's network is closed; the flags keep it quiet).
export async function launchChromium() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}
