#!/usr/bin/env python3
"""The real-photo corpus benchmark (run by `run.sh corpus`): our engine vs Sharp 0.33.5.

For every input and format, both engines resize to 800 wide (never enlarging) and
encode at a few qualities; each output is scored against a double-precision
Lanczos3 downscale of the source (PSNR on RGB, SSIM on luma, by nic_bench).
Per image and format:
  - time: CPU and wall ms of one transform at the default quality (median of REPS
    runs after a warm-up), ours / Sharp;
  - bytes at equal quality: BD-rate style, log(bytes) interpolated linearly against
    the metric (PSNR in dB, SSIM as -10 log10(1 - SSIM)) over the range both curves
    cover, the mean difference as a ratio (0.95 = ours needs 5% fewer bytes for the
    same quality). PNG is lossless: plain bytes, also against zlib level 6.
Then per format: the median and the worst (largest) ratio over the corpus.

usage: corpus.py BENCH SHARP_DIR WORK OUT_MD [--only a,b] [--formats f,g] [--reps N] [--reuse-sharp] [--rows F]
                 [--threads N]
       corpus.py --table ROWS.jsonl... OUT_MD  the table from the rows of earlier (maybe cut short or
                                               partial) runs; a later file's row replaces an earlier one
Each finished (input, format) row is appended to WORK/corpus-rows.jsonl as it completes.
"""
import argparse
import json
import glob
import math
import os
import statistics
import subprocess
import sys
import time

QUALITIES = {
    'jpeg': [60, 75, 85, 95],  # the default QUALITY_STEPS
    'webp': [60, 75, 85, 95],
    'avif': [35, 50, 65, 80],
}
WIDTH = 800

SYSTEM = [
    # Debian mate-backgrounds: photographs (JPEG) and artwork with alpha (PNG).
    '/usr/share/backgrounds/mate/nature/Aqua.jpg',
    '/usr/share/backgrounds/mate/nature/Blinds.jpg',
    '/usr/share/backgrounds/mate/nature/Dune.jpg',
    '/usr/share/backgrounds/mate/nature/FreshFlower.jpg',
    '/usr/share/backgrounds/mate/nature/Garden.jpg',
    '/usr/share/backgrounds/mate/nature/GreenMeadow.jpg',
    '/usr/share/backgrounds/mate/nature/LadyBird.jpg',
    '/usr/share/backgrounds/mate/nature/RainDrops.jpg',
    '/usr/share/backgrounds/mate/nature/Storm.jpg',
    '/usr/share/backgrounds/mate/nature/TwoWings.jpg',
    '/usr/share/backgrounds/mate/nature/Wood.jpg',
    '/usr/share/backgrounds/mate/nature/YellowFlower.jpg',
    '/usr/share/backgrounds/mate/abstract/Elephants.jpg',
    '/usr/share/backgrounds/mate/desktop/GreenTraditional.jpg',
    '/usr/share/backgrounds/mate/abstract/Arc-Colors-Transparent-Wallpaper.png',
    '/usr/share/backgrounds/mate/desktop/Stripes.png',
    # Debian gnome-backgrounds: rendered artwork shipped as WebP.
    '/usr/share/backgrounds/gnome/truchet-l.webp',
    '/usr/share/backgrounds/gnome/wood-d.webp',
]
GENERATED = ['gen-screenshot.png', 'gen-diagram.png', 'gen-cutout.png', 'gen-grey.jpg', 'gen-p3.jpg',
             'gen-untagged.jpg']


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def fields(line):
    return dict(part.split('=', 1) for part in line.split() if '=' in part)


def score(bench, source, outputs):
    """{path: (psnr, ssim)}"""
    result = {}
    for line in sh([bench, 'score', source] + outputs).splitlines():
        path, rest = line.split(' ', 1)
        f = fields(rest)
        result[path] = (float(f['psnr']), float(f.get('ssim', 'nan')))
    return result


def bd_ratio(ours, theirs):
    """ours/theirs: [(metric, bytes)]. Bytes ratio at equal metric over the overlap, or None."""
    def curve(points):
        pts = sorted((m, math.log(b)) for m, b in points if b > 0 and math.isfinite(m))
        # Keep it monotonic in the metric (a higher quality setting can score lower at the top).
        out = []
        for m, lb in pts:
            if not out or m > out[-1][0]:
                out.append((m, lb))
        return out

    a, b = curve(ours), curve(theirs)
    if len(a) < 2 or len(b) < 2:
        return None
    lo, hi = max(a[0][0], b[0][0]), min(a[-1][0], b[-1][0])
    if hi <= lo:
        return None

    def at(c, m):
        for (m0, l0), (m1, l1) in zip(c, c[1:]):
            if m0 <= m <= m1:
                return l0 + (l1 - l0) * (m - m0) / (m1 - m0)
        return None

    steps = 64
    diffs = []
    for i in range(steps + 1):
        m = lo + (hi - lo) * i / steps
        la, lb = at(a, m), at(b, m)
        if la is not None and lb is not None:
            diffs.append(la - lb)
    return math.exp(sum(diffs) / len(diffs)) if diffs else None


def ssim_db(s):
    return -10 * math.log10(max(1e-9, 1 - s))


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == '--table':
        meta, by_key = None, {}
        for path in sys.argv[2:-1]:
            rows = [json.loads(l) for l in open(path) if l.strip()]
            m = rows.pop(0)
            if meta is None:
                meta = m
            else:  # the span of all the runs
                meta['started'] = min(meta['started'], m['started'])
            for r in rows:
                by_key[(r['name'], r['fmt'])] = r
        return report(list(by_key.values()), meta, sys.argv[-1])
    ap = argparse.ArgumentParser()
    ap.add_argument('bench')
    ap.add_argument('sharp_dir')
    ap.add_argument('work')
    ap.add_argument('out_md')
    ap.add_argument('--only', default='')
    ap.add_argument('--formats', default='webp,avif,jpeg,png')
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--reuse-sharp', action='store_true',
                    help="keep Sharp's per-quality outputs of an earlier run in WORK (not its times)")
    ap.add_argument('--rows', default='corpus-rows.jsonl', help='the row log, in WORK')
    ap.add_argument('--threads', type=int, default=1,
                    help='our encoder threads (AVIF; Sharp runs with concurrency 1); 0 = idle cores')
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    sharp_js = os.path.join(here, 'sharp_bench.cjs')
    work = args.work
    os.makedirs(os.path.join(work, 'corpus-out'), exist_ok=True)

    sh([args.bench, 'gen-corpus', work, '/usr/share/backgrounds/mate/nature/LadyBird.jpg'])
    # The generated inputs first (one of each kind), then the photographs.
    inputs = [os.path.join(work, g) for g in GENERATED] + [p for p in SYSTEM if os.path.exists(p)]
    missing = [p for p in SYSTEM if not os.path.exists(p)]
    if missing:
        print('missing corpus files (install mate-backgrounds gnome-backgrounds):', missing, file=sys.stderr)
        return 1
    if args.only:
        keys = args.only.split(',')
        inputs = [p for p in inputs if any(k in os.path.basename(p) for k in keys)]
    formats = args.formats.split(',')
    env = dict(os.environ, UV_THREADPOOL_SIZE='1')
    meta = {'load_start': open('/proc/loadavg').read().split()[:3], 'started': time.time(), 'reps': args.reps,
            'threads': args.threads}
    log_path = os.path.join(work, args.rows)
    log = open(log_path, 'w')
    log.write(json.dumps(meta) + '\n')
    log.flush()
    all_rows = []
    for path in inputs:
        name = os.path.splitext(os.path.basename(path))[0]
        for fmt in formats:
            print(f'== {name} {fmt}', file=sys.stderr, flush=True)
            out = os.path.join(work, 'corpus-out', f'{name}.{fmt}')
            qs = QUALITIES.get(fmt, [])
            qarg = [','.join(map(str, qs)), out + '.ours'] if qs else []
            ours = fields(sh([args.bench, 'run', path, fmt, str(WIDTH), str(args.reps), out + '.ours.default'] + qarg,
                             env=dict(os.environ, NIC_THREADS=str(args.threads))))
            engines = [('sharp', fmt)] + ([('mozjpeg', 'mozjpeg')] if fmt == 'jpeg' else [])
            theirs = {}
            for label, sfmt in engines:
                # Sharp's outputs at each quality do not change between runs of the same
                # Sharp on the same input: with --reuse-sharp they are kept from an earlier
                # run in this WORK dir (its time is always measured again).
                have = qs and all(os.path.exists(f'{out}.{label}.q{q}') for q in qs)
                sarg = [','.join(map(str, qs)), f'{out}.{label}'] if qs and not (args.reuse_sharp and have) else []
                theirs[label] = fields(sh(['node', sharp_js, args.sharp_dir, path, sfmt, str(WIDTH), str(args.reps),
                                           f'{out}.{label}.default'] + sarg, env=env))
            row = {'name': name, 'ours_cpu': float(ours['cpu']), 'ours_wall': float(ours['median']),
                   'sharp_cpu': float(theirs['sharp']['cpu']), 'sharp_wall': float(theirs['sharp']['median'])}
            row['cpu'] = row['ours_cpu'] / row['sharp_cpu']
            row['wall'] = row['ours_wall'] / row['sharp_wall']
            if fmt == 'png':
                row['ours_bytes'] = int(ours['bytes'])
                row['sharp_bytes'] = int(theirs['sharp']['bytes'])
                row['zlib6'] = int(fields(sh([args.bench, 'zlib6', out + '.ours.default']))['bytes'])
                row['bytes_ssim'] = row['bytes_psnr'] = row['ours_bytes'] / row['sharp_bytes']
                row['vs_zlib6'] = row['ours_bytes'] / row['zlib6']
            else:
                files = {label: [f'{out}.{label}.q{q}' for q in qs] for label in ['ours'] + [e[0] for e in engines]}
                scores = score(args.bench, path, [f for fs in files.values() for f in fs])
                curves = {}
                for label, fs in files.items():
                    curves[label] = [(scores[f], os.path.getsize(f)) for f in fs]
                for metric, idx, tr in (('psnr', 0, lambda v: v), ('ssim', 1, ssim_db)):
                    pts = {label: [(tr(s[idx]), b) for s, b in c] for label, c in curves.items()}
                    row[f'bytes_{metric}'] = bd_ratio(pts['ours'], pts['sharp'])
                    if fmt == 'jpeg':
                        row[f'moz_{metric}'] = bd_ratio(pts['ours'], pts['mozjpeg'])
                # The points at the default quality, for the per-image table.
                d = qs.index(50) if 50 in qs else 1
                row['ours_q'] = curves['ours'][d]
                row['sharp_q'] = curves['sharp'][d]
            row['fmt'] = fmt
            all_rows.append(row)
            log.write(json.dumps(row) + '\n')
            log.flush()
    return report(all_rows, meta, args.out_md)


def report(all_rows, meta, out_md):
    formats = []
    for r in all_rows:
        if r['fmt'] not in formats:
            formats.append(r['fmt'])
    rows = {f: [r for r in all_rows if r['fmt'] == f] for f in formats}
    mozjpeg = rows.get('jpeg', [])
    names = sorted({r['name'] for r in all_rows})
    load_start, started = meta['load_start'], meta['started']

    class A:
        reps = meta['reps']
    args = A()
    inputs = names
    load_end = open('/proc/loadavg').read().split()[:3]
    cpu_name = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), '?')

    def fmt_ratio(v):
        return 'n/a' if v is None else f'{v:.2f}'

    lines = []
    lines.append(f'Corpus benchmark, {time.strftime("%Y-%m-%d", time.gmtime())}, {cpu_name}, {len(inputs)} inputs, '
                 f'{args.reps} timed runs after a warm-up, {int(time.time() - started)} s; load average '
                 f'{" ".join(load_start)} at the start, {" ".join(load_end)} at the end (a shared 2-core machine: '
                 'wall times include waiting for a core, CPU time is the steadier measure).')
    lines.append('')
    lines.append('Per format, over the corpus: median and worst (largest) of ours/Sharp. time = one transform at '
                 'the default quality (800 wide); bytes = at equal SSIM / equal PSNR (BD-rate style over qualities '
                 + ', '.join(f'{k} {"/".join(map(str, v))}' for k, v in QUALITIES.items()) +
                 '); PNG is lossless: plain bytes.')
    lines.append('')
    lines.append('| format | CPU median | CPU worst | wall median | wall worst | bytes@SSIM median | bytes@SSIM worst '
                 '| bytes@PSNR median | bytes@PSNR worst |')
    lines.append('|---|---:|---:|---:|---:|---:|---:|---:|---:|')
    for fmt in formats:
        rs = rows[fmt]
        if not rs:
            continue

        def med_worst(key):
            vals = [r[key] for r in rs if r.get(key) is not None]
            if not vals:
                return 'n/a', 'n/a'
            worst = max(vals)
            who = next(r['name'] for r in rs if r.get(key) == worst)
            return f'{statistics.median(vals):.2f}', f'{worst:.2f} ({who})'

        cells = [c for key in ('cpu', 'wall', 'bytes_ssim', 'bytes_psnr') for c in med_worst(key)]
        lines.append(f'| {fmt} | ' + ' | '.join(cells) + ' |')
    if mozjpeg:
        vals_s = [r['moz_ssim'] for r in mozjpeg if r.get('moz_ssim') is not None]
        vals_p = [r['moz_psnr'] for r in mozjpeg if r.get('moz_psnr') is not None]
        if vals_s and vals_p:
            lines.append(f'| jpeg vs Sharp `mozjpeg: true` | | | | | {statistics.median(vals_s):.2f} | {max(vals_s):.2f} '
                         f'| {statistics.median(vals_p):.2f} | {max(vals_p):.2f} |')
    if 'png' in rows and rows['png']:
        vz = [r['vs_zlib6'] for r in rows['png']]
        lines.append('')
        lines.append(f'PNG against zlib level 6 with adaptive filters on the same pixels: median {statistics.median(vz):.2f}, '
                     f'worst {max(vz):.2f}.')
    lines.append('')
    lines.append('<details><summary>Per image</summary>')
    lines.append('')
    lines.append('| input | format | CPU ours/Sharp ms | ratio | wall ratio | bytes@SSIM | bytes@PSNR | extra |')
    lines.append('|---|---|---:|---:|---:|---:|---:|---|')
    for fmt in formats:
        for r in rows[fmt]:
            extra = ''
            if fmt == 'png':
                extra = f'{r["ours_bytes"]} / {r["sharp_bytes"]} B, zlib6 {r["zlib6"]} B'
            elif fmt == 'jpeg':
                extra = f'vs mozjpeg {fmt_ratio(r.get("moz_ssim"))} / {fmt_ratio(r.get("moz_psnr"))}'
            lines.append(f'| {r["name"]} | {fmt} | {r["ours_cpu"]:.0f} / {r["sharp_cpu"]:.0f} | {r["cpu"]:.2f} | '
                         f'{r["wall"]:.2f} | {fmt_ratio(r.get("bytes_ssim"))} | {fmt_ratio(r.get("bytes_psnr"))} | {extra} |')
    lines.append('')
    lines.append('</details>')
    text = '\n'.join(lines) + '\n'
    with open(out_md, 'w') as f:
        f.write(text)
    print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
