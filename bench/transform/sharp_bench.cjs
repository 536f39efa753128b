// Sharp's side of the transform benchmark (run by run.sh):
//   node sharp_bench.cjs SHARP_DIR IN FMT WIDTH REPS OUT
// Single-threaded (concurrency 1, UV_THREADPOOL_SIZE=1 from run.sh), no
// operation cache, the same qualities as our defaults.
'use strict';
const fs = require('fs');
const path = require('path');

const [sharpDir, input, fmt, width, reps, out] = process.argv.slice(2);
const sharp = require(path.join(sharpDir, 'node_modules', 'sharp'));
sharp.concurrency(1);
sharp.cache(false);

const source = fs.readFileSync(input);
function pipeline() {
  const p = sharp(source).resize(Number(width));
  switch (fmt) {
    case 'webp': return p.webp({ quality: 80, effort: 4 }).toBuffer();
    case 'avif': return p.avif({ quality: 50, effort: 4 }).toBuffer();
    case 'jpeg': return p.jpeg({ quality: 80, progressive: true }).toBuffer();
    case 'png': return p.png({ compressionLevel: 6 }).toBuffer();
    default: throw new Error(`unknown format ${fmt}`);
  }
}

(async () => {
  let result = await pipeline();  // warm-up
  const times = [];
  const cpu = [];
  for (let i = 0; i < Number(reps); i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    result = await pipeline();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const c = process.cpuUsage(c0);  // all threads of the process, microseconds
    cpu.push((c.user + c.system) / 1000);
  }
  times.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  fs.writeFileSync(out, result);
  const rss = process.resourceUsage().maxRSS;  // kilobytes
  console.log(`cpu=${cpu[cpu.length >> 1].toFixed(1)} ms=${times[0].toFixed(1)} median=${times[times.length >> 1].toFixed(1)} bytes=${result.length} rss_kb=${rss}`);
})().catch((e) => {
  console.error(String(e));
  process.exit(1);
});
