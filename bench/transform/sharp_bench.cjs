// Sharp's side of the transform benchmark (run by run.sh and corpus.py):
//   node sharp_bench.cjs SHARP_DIR IN FMT WIDTH REPS OUT [QUALITIES [PREFIX]]
// Times REPS runs (after one warm-up) at the default quality and writes the
// last result to OUT; with QUALITIES (comma-separated) also writes
// PREFIX.q<N> for each. FMT is webp, avif, jpeg, mozjpeg (Sharp's
// `mozjpeg: true`: trellis quantisation, its quant tables and scan
// optimisation) or png. Single-threaded unless SHARP_THREADS is set
// (concurrency 1, UV_THREADPOOL_SIZE=1 from the caller), no operation cache.
'use strict';
const fs = require('fs');
const path = require('path');

const [sharpDir, input, fmt, width, reps, out, qualities, prefix] = process.argv.slice(2);
const sharp = require(path.join(sharpDir, 'node_modules', 'sharp'));
sharp.concurrency(Number(process.env.SHARP_THREADS || 1));
sharp.cache(false);

const DEFAULT_Q = { webp: 80, avif: 50, jpeg: 80, mozjpeg: 80, png: 0 };
const source = fs.readFileSync(input);
function pipeline(q) {
  const p = sharp(source).resize(Number(width), null, { withoutEnlargement: true });
  switch (fmt) {
    case 'webp': return p.webp({ quality: q, effort: 4 }).toBuffer();
    case 'avif': return p.avif({ quality: q, effort: 4 }).toBuffer();
    case 'jpeg': return p.jpeg({ quality: q, progressive: true }).toBuffer();
    case 'mozjpeg': return p.jpeg({ quality: q, mozjpeg: true }).toBuffer();
    case 'png': return p.png({ compressionLevel: 6 }).toBuffer();
    default: throw new Error(`unknown format ${fmt}`);
  }
}

(async () => {
  const q0 = DEFAULT_Q[fmt];
  let result = await pipeline(q0);  // warm-up
  const times = [];
  const cpu = [];
  for (let i = 0; i < Number(reps); i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    result = await pipeline(q0);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const c = process.cpuUsage(c0);  // all threads of the process, microseconds
    cpu.push((c.user + c.system) / 1000);
  }
  times.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  fs.writeFileSync(out, result);
  if (qualities) {
    for (const q of qualities.split(',').map(Number)) fs.writeFileSync(`${prefix}.q${q}`, await pipeline(q));
  }
  const rss = process.resourceUsage().maxRSS;  // kilobytes
  const med = (a) => a[a.length >> 1];
  console.log(`cpu=${med(cpu).toFixed(1)} ms=${times[0].toFixed(1)} median=${med(times).toFixed(1)} bytes=${result.length} rss_kb=${rss}`);
})().catch((e) => {
  console.error(String(e));
  process.exit(1);
});
