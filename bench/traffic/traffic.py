#!/usr/bin/env python3
"""The traffic benchmark (issue 14): nic-origin under the traffic a published
Notion page brings, each part next to its floor or baseline measured in the
same run.

  cold   a cold page: 40 new 2-5 MB JPEGs and PNGs, 25 readers each (1000
         requests at once), 300 ms of fake S3 latency, fmt=auto with a
         browser's Accept. Floor: 300 ms + the 40 transforms' CPU time (nic
         transform on the same inputs, same run) / cores.
  mixed  hits at a fixed 5,000/s (open loop, bench/traffic/loadgen.cpp), then
         the same with misses for new images arriving at 20/s, then hits alone
         again: the hits' p99 with and without misses.
  herd   N=5,000 connections for one new image: counts, peak RSS and
         descriptors, p99 next to a single cold request and to the client's
         own floor (the same herd against the then cached image).
  hits   wrk against nic-origin and nginx serving the same bytes, memory tier
         and disk tier separately: requests/s and server CPU per request.

Run through bench/traffic/run.sh. Each part writes its own section of
bench/README.md (between <!-- traffic-PART:begin/end --> markers).
"""

import argparse
import glob
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "bench", "herd"))
import harness as h  # noqa: E402
import herd  # noqa: E402  (make_jpeg, peak_rss, cpu_seconds, wrk)

# What Chrome sends for an <img>: AVIF first.
BROWSER_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
WIDTH = 800  # a Notion page column at 1x; every cold-page reader asks for ?w=800
S3_LATENCY_MS = 300
CORPUS_SIZE = 40
READERS = 25
WALLPAPERS = ["/usr/share/backgrounds/mate", "/usr/share/backgrounds/gnome"]
ENV = {"WORKER_THREADS": 2, "TRANSFORM_CONCURRENCY": 2, "LOG_LEVEL": "error",
       "FOLLOWER_TIMEOUT_MS": 120000, "UPSTREAM_TIMEOUT_MS": 110000,
       # Notion allows an integration about 3 calls/s on average; the fake does
       # not limit, and the origin's own pacing (NOTION_RPS, default 3) would
       # make a 40-image page take >= 13 s of lookups alone: see the README.
       "NOTION_RPS": 1000}
LOADGEN = None


# ---------------------------------------------------------------- helpers

def loadgen(*args):
    out = subprocess.run([LOADGEN, *[str(a) for a in args]], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed: {out.stderr}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def write_lines(path, lines):
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def cpu_model():
    try:
        return re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read()).group(1)
    except (OSError, AttributeError):
        return "?"


class Sampler:
    """Samples a process's resident memory and open descriptors every 20 ms."""

    def __init__(self, pid):
        self.pid = pid
        self.max_fds = 0
        self.max_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.max_fds = max(self.max_fds, len(os.listdir(f"/proc/{self.pid}/fd")))
            except OSError:
                pass
            self.max_rss = max(self.max_rss, herd.current_rss(self.pid))
            time.sleep(0.02)

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def mb(v):
    return f"{v / 1024 / 1024:.0f} MB"


def ms(us):
    return f"{us / 1000:.1f} ms"


# ---------------------------------------------------------------- corpus

def _fits(size):
    return 2_000_000 <= size <= 5_000_000


def _png_option(nic, src, width, tag):
    """The source as a PNG, at its own size or the largest allowed width
    below it that lands in 2-5 MB (None when none does)."""
    for x in [None] + [x for x in (2048, 1920, 1600) if x < width]:
        out = f"{tag}-png-{x or 'full'}.png"
        if not os.path.exists(out):
            cmd = [nic, "transform", src, out, "--fmt", "png"] + (["--w", str(x)] if x else [])
            if subprocess.run(cmd, capture_output=True).returncode != 0:
                return None
        size = os.path.getsize(out)
        if _fits(size):
            return out
        os.unlink(out)
        if size < 2_000_000:
            return None  # smaller widths only get smaller
    return None


def _jpeg_option(nic, src, pixels, tag):
    """The source as a camera-sized JPEG: decoded by djpeg (scaled 1x, 1.5x or
    2x: a 12-16 MP picture, what a phone uploads) and encoded by cjpeg at q95
    or q98 4:4:4, the first that lands in 2-5 MB. The wallpapers are smooth,
    so at their own size they make JPEGs under 2 MB."""
    base = src
    if not src.lower().endswith((".jpg", ".jpeg")):
        base = f"{tag}-base.jpg"
        if not os.path.exists(base) and subprocess.run([nic, "transform", src, base, "--fmt", "jpeg", "--q", "95"],
                                                       capture_output=True).returncode != 0:
            return None
    scales = (["8/8"] if pixels >= 6_000_000 else []) + ["12/8", "16/8"]
    for scale in scales:
        m = int(scale.split("/")[0])
        if pixels * (m / 8) ** 2 > 24_000_000:
            break
        for q in (95, 98):
            out = f"{tag}-jpeg-{m}-q{q}.jpg"
            if not os.path.exists(out):
                with open(out, "wb") as f:
                    dj = subprocess.Popen(["djpeg", "-scale", scale, base], stdout=subprocess.PIPE)
                    cj = subprocess.run(["cjpeg", "-quality", str(q), "-sample", "1x1", "-optimize"], stdin=dj.stdout,
                                        stdout=f)
                    dj.stdout.close()
                    if dj.wait() != 0 or cj.returncode != 0:
                        os.unlink(out)
                        return None
            size = os.path.getsize(out)
            if _fits(size):
                return out
            os.unlink(out)
            if size > 5_000_000:
                return None  # every later option is larger
    return None


def build_corpus(nic, work):
    """40 distinct 2-5 MB images, 20 JPEG and 20 PNG, made from Debian's
    wallpaper photos and artwork (mate-backgrounds; gnome-backgrounds when
    present): PNGs by `nic transform` at the wallpaper's size or a smaller
    allowed width, JPEGs by djpeg | cjpeg (libjpeg-turbo-progs) at camera size.
    Deterministic for a given set of wallpapers; kept in `work` and reused."""
    manifest = os.path.join(work, "corpus.json")
    if os.path.exists(manifest):
        items = json.load(open(manifest))
        if len(items) == CORPUS_SIZE and all(os.path.exists(i["path"]) for i in items):
            return items
    os.makedirs(work, exist_ok=True)
    cands = []
    for d in WALLPAPERS:
        for p in sorted(glob.glob(os.path.join(d, "**", "*"), recursive=True)):
            if p.lower().endswith((".jpg", ".jpeg", ".png", ".webp")) and os.path.getsize(p) >= 100_000:
                cands.append(p)
    if not cands:
        raise SystemExit("no wallpapers under " + " or ".join(WALLPAPERS) +
                         ": install mate-backgrounds (bench/traffic/run.sh does as root)")
    half = CORPUS_SIZE // 2
    jpegs, pngs = [], []
    # JPEGs from the front of the list, PNGs from the back: as few wallpapers
    # twice as the set allows.
    for ci, src in enumerate(cands):
        if len(jpegs) >= half:
            break
        _, w, hgt = h.measure(open(src, "rb").read())
        out = _jpeg_option(nic, src, w * hgt, os.path.join(work, f"c{ci:02d}"))
        if out:
            jpegs.append({"path": out, "format": "jpeg", "bytes": os.path.getsize(out), "from": os.path.basename(src)})
            print(f"corpus: {os.path.basename(src)} -> {os.path.basename(out)} {os.path.getsize(out)}", flush=True)
    for ci in reversed(range(len(cands))):
        if len(pngs) >= CORPUS_SIZE - len(jpegs):
            break
        src = cands[ci]
        _, w, _ = h.measure(open(src, "rb").read())
        out = _png_option(nic, src, w, os.path.join(work, f"c{ci:02d}"))
        if out:
            pngs.append({"path": out, "format": "png", "bytes": os.path.getsize(out), "from": os.path.basename(src)})
            print(f"corpus: {os.path.basename(src)} -> {os.path.basename(out)} {os.path.getsize(out)}", flush=True)
    items = [x for pair in zip(jpegs, pngs) for x in pair] + jpegs[len(pngs):] + pngs[len(jpegs):]
    if len(items) < CORPUS_SIZE:
        raise SystemExit(f"only {len(items)} 2-5 MB images from {len(cands)} wallpapers; need {CORPUS_SIZE}")
    items = items[:CORPUS_SIZE]
    json.dump(items, open(manifest, "w"), indent=1)
    return items


def register(fakes, items, copies=1):
    """Registers the corpus files once and `copies` Notion blocks per file.
    Returns [(target path without query, item)]. Blocks of one file are still
    distinct images to the origin (their own source key, download, variants)."""
    files = []
    for idx, it in enumerate(items):
        ws, file_id = h.new_id(), h.new_id()
        name = f"img{idx:02d}." + ("jpg" if it["format"] == "jpeg" else "png")
        ctype = "image/jpeg" if it["format"] == "jpeg" else "image/png"
        fakes.add_file(ws, file_id, name, open(it["path"], "rb").read(), ctype)
        files.append((ws, file_id, name))
    out = []
    for c in range(copies):
        for (ws, file_id, name), it in zip(files, items):
            block = h.new_id()
            fakes.add_block(block, ws, file_id, name)
            out.append((f"/img/{ws}/{block}/{name}", it))
    return out


# ---------------------------------------------------------------- 1: cold page

def transforms_floor(nic, items, work):
    """CPU seconds of the 40 transforms the page needs, by `nic transform` on
    the same files with what fmt=auto picks for a browser (AVIF). Returns the
    CPU time, the wall time and the outputs' paths."""
    outs = [os.path.join(work, f"floor-{i:02d}.avif") for i in range(len(items))]
    c0, t0 = children_cpu(), time.perf_counter()
    for it, out in zip(items, outs):
        subprocess.run([nic, "transform", it["path"], out, "--w", str(WIDTH), "--fmt", "avif"], check=True,
                       stdout=subprocess.DEVNULL)
    return children_cpu() - c0, time.perf_counter() - t0, outs


def part_cold(ctx):
    items = ctx.corpus
    fakes = ctx.fakes
    if ctx.args.floor_cpu is not None:  # iterating: the floor's CPU time from an earlier run
        cpu, wall_seq, refs = ctx.args.floor_cpu, 0.0, []
    else:
        cpu, wall_seq, refs = transforms_floor(ctx.nic, items, ctx.work)
    cores = os.cpu_count()
    floor = S3_LATENCY_MS / 1000 + cpu / cores
    print(f"cold page floor: transforms {cpu:.2f} s CPU ({wall_seq:.2f} s wall, sequential) -> "
          f"{floor:.2f} s on {cores} cores", flush=True)

    fakes.reset()
    fakes.faults(s3={"latency_ms": S3_LATENCY_MS})
    targets = [t + f"?w={WIDTH}" for t, _ in register(fakes, items)]
    o = h.Origin(fakes, **ENV)
    ctx.origins.append(o)
    sampler = Sampler(o.proc.pid)
    urls = write_lines(os.path.join(ctx.work, "cold-urls.txt"),
                       [targets[j % len(targets)] for j in range(len(targets) * READERS)])
    load0 = loadavg()
    cpu0 = herd.cpu_seconds([o.proc.pid])
    [r] = loadgen("herd", "--port", o.port, "--n", len(targets) * READERS, "--urls", urls,
                  "--header", "Accept: " + BROWSER_ACCEPT)
    server_cpu = herd.cpu_seconds([o.proc.pid]) - cpu0
    sampler.stop()
    c = fakes.counters()
    m = o.metrics()
    transforms = int(o.metric_sum("nic_transforms_total"))
    avif = int(m.get('nic_transforms_total{format="avif"}', 0))
    writes = int(m.get('nic_storage_writes_total{kind="variant"}', 0))
    # The same work as the floor's? Compare each variant with nic transform's bytes.
    same = 0
    for t, ref in zip(targets, refs):
        same += o.get(t, {"Accept": BROWSER_ACCEPT}).body == open(ref, "rb").read()
    row = {"requests": r["issued"], "ok": r["statuses"].get("200", 0), "statuses": r["statuses"],
           "errors": r["errors"], "wall": r["seconds"],
           "p50": r["p50_us"], "p99": r["p99_us"], "max": r["max_us"],
           "notion": c["notion_calls"], "downloads": c["s3_downloads"], "transforms": transforms, "avif": avif,
           "writes": writes, "rss": herd.peak_rss(o.proc.pid),
           "charged_peak": m.get("nic_transform_memory_peak_bytes", 0), "fds": sampler.max_fds,
           "floor": floor, "floor_cpu": cpu, "server_cpu": server_cpu, "same": same,
           "bytes_in": sum(i["bytes"] for i in items), "jpeg": sum(i["format"] == "jpeg" for i in items),
           "load": (load0, loadavg())}
    print(row, flush=True)
    ctx.warm_origin = (o, targets)  # the mixed part may reuse it: every variant is in memory now
    return row


def other_answers(r):
    parts = [f"{n}x {code}" for code, n in sorted(r["statuses"].items()) if code != "200"]
    if r["errors"]:
        parts.append(f"{r['errors']} failed")
    return ", ".join(parts) or "none"


def section_cold(r):
    ratio = r["wall"] / r["floor"]
    return [
        "## Traffic: a cold page (`bench/traffic/run.sh cold`)", "",
        f"Measured on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores ({cpu_model()}), "
        f"load average {r['load'][0]} at the start, {r['load'][1]} at the end (the machine is shared: other "
        "work competes for both cores). nic-origin with WORKER_THREADS=2, TRANSFORM_CONCURRENCY=2, "
        "NOTION_RPS=1000 (see below), everything else default.",
        "",
        f"The page: {CORPUS_SIZE} new images ({r['jpeg']} JPEG, {CORPUS_SIZE - r['jpeg']} PNG, 2-5 MB each, "
        f"{r['bytes_in'] / 1e6:.0f} MB in all; Debian's wallpaper photos and artwork re-encoded by `nic transform`), "
        f"each behind its own Notion block, {S3_LATENCY_MS} ms of fake S3 latency. {READERS} readers per image, "
        f"{CORPUS_SIZE * READERS} connections opened first, then every request sent in one sweep "
        f"(`loadgen herd`, C++, one thread), each `?w={WIDTH}` with Chrome's Accept (`fmt=auto` -> AVIF). "
        "Wall = first send to last byte. Counts from the fakes (Notion calls, downloads) and `/metrics`.",
        "",
        f"*Floor*: {S3_LATENCY_MS} ms + the {CORPUS_SIZE} transforms' CPU time / {os.cpu_count()} cores = "
        f"{S3_LATENCY_MS / 1000:.1f} s + {r['floor_cpu']:.2f} s / {os.cpu_count()} = **{r['floor']:.2f} s**; the CPU "
        f"time is `nic transform IN OUT --w {WIDTH} --fmt avif` on the same {CORPUS_SIZE} files, one after another, "
        f"in the same run ({r['same']} of {CORPUS_SIZE} variants the origin served are byte-identical to it).",
        "",
        "| requests | 200s | other answers | Notion calls | downloads | transforms (avif) | variant writes | wall | floor "
        "| wall/floor | p50 | p99 | peak RSS | server CPU |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {r['requests']} | {r['ok']} | {other_answers(r)} | {r['notion']} | {r['downloads']} | {r['transforms']} ({r['avif']}) | "
        f"{r['writes']} | {r['wall']:.2f} s | {r['floor']:.2f} s | {ratio:.2f} | {ms(r['p50'])} | {ms(r['p99'])} | "
        f"{mb(r['rss'])} | {r['server_cpu']:.2f} s |",
        "",
        f"Targets: wall <= 1.3x floor: **{'met' if ratio <= 1.3 else 'not met'}** ({ratio:.2f}x); peak RSS < 128 MB: "
        f"**{'met' if r['rss'] < 128 * 2 ** 20 else 'not met'}** ({mb(r['rss'])}); exactly {CORPUS_SIZE} downloads and "
        f"{CORPUS_SIZE} transforms: **{'met' if r['downloads'] == CORPUS_SIZE and r['transforms'] == CORPUS_SIZE else 'not met'}**"
        " (also asserted by `tests/e2e/test_cold_page.py` on small images).",
        "",
    ]


# ---------------------------------------------------------------- 2: hits beside misses

def part_mixed(ctx):
    fakes = ctx.fakes
    if ctx.warm_origin:
        o, hot = ctx.warm_origin
    else:
        fakes.reset()
        fakes.faults(s3={"latency_ms": S3_LATENCY_MS})
        hot = [t + f"?w={WIDTH}" for t, _ in register(fakes, ctx.corpus)]
        o = h.Origin(fakes, **ENV)
        ctx.origins.append(o)
        for t in hot:
            assert o.get(t, {"Accept": BROWSER_ACCEPT}).status == 200
    for t in hot:  # every hot URL is a memory hit from here on
        assert o.get(t, {"Accept": BROWSER_ACCEPT}).header("x-cache-tier") == "MEMORY"
    fakes.faults(s3={"latency_ms": S3_LATENCY_MS})
    seconds = ctx.seconds
    n_miss = int(ctx.miss_rate * seconds) + 1
    copies = (n_miss + len(ctx.corpus) - 1) // len(ctx.corpus)
    misses = [t + f"?w={WIDTH}" for t, _ in register(fakes, ctx.corpus, copies)][:n_miss]
    hits_file = write_lines(os.path.join(ctx.work, "hits.txt"), hot)
    miss_file = write_lines(os.path.join(ctx.work, "misses.txt"), misses)
    hit_stream = f"hit:{ctx.hit_rate}:{hits_file}:512"
    accept = ["--header", "Accept: " + BROWSER_ACCEPT]
    rows = []
    for phase in ("hits alone", "hits + misses", "hits alone, after"):
        load0 = loadavg()
        cpu0 = herd.cpu_seconds([o.proc.pid])
        t0 = herd.peak_rss(o.proc.pid)
        before = o.metric_sum("nic_transforms_total")
        streams = ["--stream", hit_stream]
        if phase == "hits + misses":
            streams += ["--stream", f"miss:{ctx.miss_rate}:{miss_file}:1024"]
        res = loadgen("open", "--port", o.port, "--seconds", seconds, *accept, *streams)
        cpu = herd.cpu_seconds([o.proc.pid]) - cpu0
        by = {r["stream"]: r for r in res}
        row = {"phase": phase, "hit": by["hit"], "miss": by.get("miss"), "server_cpu": cpu,
               "transforms": o.metric_sum("nic_transforms_total") - before, "load": load0,
               "rss": herd.peak_rss(o.proc.pid), "rss_before": t0}
        print({k: v for k, v in row.items()}, flush=True)
        rows.append(row)
    return {"rows": rows, "seconds": seconds, "hot": len(hot)}


def section_mixed(r):
    rows = r["rows"]
    base = min(rows[0]["hit"]["p99_us"], rows[2]["hit"]["p99_us"])
    mixed = rows[1]["hit"]["p99_us"]
    lines = [
        "## Traffic: hits beside misses (`bench/traffic/run.sh mixed`)", "",
        f"Open loop (`loadgen open`, C++, one thread, epoll): request k of a stream is due at k / rate whatever "
        "happened before it, and its latency runs from that due time to its last byte (waiting for a free "
        f"connection counts). Hits: {r['hot']} AVIF variants in the memory tier, round robin, "
        f"{rows[0]['hit']['rate']:.0f}/s for {r['seconds']} s per phase. Misses: a new image each (own Notion block, "
        f"2-5 MB source, {S3_LATENCY_MS} ms S3 latency, `?w={WIDTH}` AVIF) at "
        f"{rows[1]['miss']['rate']:.0f}/s; the generator waits for every answer before the next phase. "
        "The machine is shared: load average at each phase's start is in the table.",
        "",
        "| phase | load avg | hits sent / answered | hit p50 | hit p99 | hit p99.9 | hit max | misses: 200 / 503 / other | "
        "miss p50 | transforms | server CPU | client CPU |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        hi, mi = row["hit"], row["miss"]
        if mi:
            st = mi["statuses"]
            other = mi["finished"] - st.get("200", 0) - st.get("503", 0)
            miss = f"{st.get('200', 0)} / {st.get('503', 0)} / {other}"
            mp50 = ms(mi["p50_us"])
        else:
            miss, mp50 = "-", "-"
        lines.append(f"| {row['phase']} | {row['load']} | {hi['issued']} / {hi['statuses'].get('200', 0)} | {ms(hi['p50_us'])} | {ms(hi['p99_us'])} | "
                     f"{ms(hi['p999_us'])} | {ms(hi['max_us'])} | {miss} | {mp50} | {int(row['transforms'])} | "
                     f"{row['server_cpu']:.2f} s | {hi['client_cpu_s']:.2f} s |")
    lines += ["", f"Target: hit p99 with misses within 1 ms of the hit p99 without (the better of the two hits-alone "
                  f"phases): {ms(mixed)} vs {ms(base)}: **{'met' if mixed - base <= 1000 else 'not met'}** "
                  f"({(mixed - base) / 1000:+.1f} ms).", ""]
    return lines


# ---------------------------------------------------------------- 3: bigger herd

def part_herd(ctx):
    fakes = ctx.fakes
    path = os.path.join(ctx.work, "herd.jpg")
    data = open(path, "rb").read() if os.path.exists(path) else herd.make_jpeg(ctx.nic, path)
    # MAX_CONNECTIONS defaults to 4096: beyond it the origin stops accepting
    # (the rest wait in the listen backlog until connections close).
    env = dict(ENV, TRANSFORM_QUEUE=2000, MEMORY_CACHE_BYTES=64 * 1024 * 1024,
               MAX_CONNECTIONS=max(ctx.herd_ns) + 100)
    fakes.reset()
    fakes.faults(s3={"latency_ms": S3_LATENCY_MS})

    def new_target():
        ws, block, _, name = fakes.image(data, "photo.jpg", "image/jpeg")
        return f"/img/{ws}/{block}/{name}?w=640"

    o = h.Origin(fakes, **env)
    [single] = loadgen("herd", "--port", o.port, "--n", 1, "--target", new_target())
    single_rss = herd.peak_rss(o.proc.pid)
    o.stop()
    rows = []
    for n in ctx.herd_ns:
        fakes.reset()
        fakes.faults(s3={"latency_ms": S3_LATENCY_MS})
        target = new_target()
        o = h.Origin(fakes, **env)
        sampler = Sampler(o.proc.pid)
        load0 = loadavg()
        [r] = loadgen("herd", "--port", o.port, "--n", n, "--target", target)
        sampler.stop()
        c = fakes.counters()
        m = o.metrics()
        rss = herd.peak_rss(o.proc.pid)
        [fl] = loadgen("herd", "--port", o.port, "--n", n, "--target", target)
        row = {"n": n, "ok": r["statuses"].get("200", 0), "errors": r["errors"], "notion": c["notion_calls"],
               "downloads": c["s3_downloads"], "transforms": int(o.metric_sum("nic_transforms_total")),
               "writes": int(m.get('nic_storage_writes_total{kind="variant"}', 0)), "rss": rss,
               "fds": sampler.max_fds, "p50": r["p50_us"], "p99": r["p99_us"], "max": r["max_us"],
               "floor_p99": fl["p99_us"], "floor_ok": fl["statuses"].get("200", 0), "load": load0,
               "client_cpu": r["client_cpu_s"]}
        print(row, flush=True)
        rows.append(row)
        o.stop()
    return {"single": single["p99_us"], "single_rss": single_rss, "rows": rows, "bytes": len(data),
            "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0], "cap": env["MAX_CONNECTIONS"]}


def section_herd(r):
    lines = [
        "## Traffic: a bigger herd (`bench/traffic/run.sh herd`)", "",
        f"One new 4000x3000 JPEG ({r['bytes'] / 1e6:.1f} MB, the Herd section's image) behind {S3_LATENCY_MS} ms "
        "of fake S3 latency, N connections opened first, then one `?w=640` request on each in one sweep "
        "(`loadgen herd`: C++, one thread, epoll; latency from each request's send to its last byte). "
        "*Client floor*: the same herd again right after, against the now cached variant (memory hits): what N "
        "requests at once cost this client and the hit path on these 2 shared cores. Peak descriptors: the "
        "origin's open files, sampled every 20 ms. Origin: WORKER_THREADS=2, TRANSFORM_CONCURRENCY=2, "
        f"MAX_CONNECTIONS={r['cap']} (default 4096), RLIMIT_NOFILE {r['nofile']} (run.sh raises the soft limit to "
        "the hard one).",
        "",
        f"Baseline, same run: a single cold request (same client, fresh origin) took **{ms(r['single'])}** "
        f"(peak RSS {mb(r['single_rss'])}).",
        "",
        "| N | load avg | 200s | Notion calls | downloads | transforms | writes | peak RSS | peak fds | p50 | p99 "
        "| p99 - single cold | client floor p99 |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for x in r["rows"]:
        lines.append(f"| {x['n']} | {x['load']} | {x['ok']} | {x['notion']} | {x['downloads']} | {x['transforms']} | "
                     f"{x['writes']} | {mb(x['rss'])} | {x['fds']} | {ms(x['p50'])} | {ms(x['p99'])} | "
                     f"{(x['p99'] - r['single']) / 1000:+.0f} ms | {ms(x['floor_p99'])} |")
    big = r["rows"][-1]
    lines += ["",
              f"Targets at N={big['n']}: 1 Notion call and 1 download: "
              f"**{'met' if big['notion'] == 1 and big['downloads'] == 1 else 'not met'}**; peak RSS < 64 MB: "
              f"**{'met' if big['rss'] < 64 * 2 ** 20 else 'not met'}** ({mb(big['rss'])}); p99 within 100 ms of a "
              f"single cold request: **{'met' if big['p99'] - r['single'] <= 100_000 else 'not met'}** "
              f"({(big['p99'] - r['single']) / 1000:+.0f} ms; the client's own floor for N={big['n']} is "
              f"{ms(big['floor_p99'])}).",
              "",
              f"Descriptors: the origin holds one per connection plus about {max(0, big['fds'] - big['n'])} of its own "
              "(listener, epoll, eventfds, the store, curl). To hold N connections it needs MAX_CONNECTIONS >= N "
              "(default 4096; past the cap it stops accepting and the rest wait in the kernel's listen backlog, "
              "`net.core.somaxconn`, until connections close) and a descriptor limit of N + 256 (`LimitNOFILE=` "
              "under systemd, `ulimit -n`; the origin raises its soft limit towards the hard one itself and lowers "
              "a default cap that does not fit).", ""]
    return lines


# ---------------------------------------------------------------- 4: hits vs nginx

def wrk(url, seconds, connections, pids):
    """(requests/s, p99 ms, server CPU us per request); refuses a run with any
    answer other than 2xx/3xx (wrk still counts those as requests)."""
    c0 = herd.cpu_seconds(pids)
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    cpu = herd.cpu_seconds(pids) - c0
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw error answers from {url}:\n{out}")
    if "Socket errors" in out:
        print(f"warning: {url}: " + re.search(r"Socket errors.*", out).group(0), flush=True)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    n = int(re.search(r"(\d+) requests in", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1000.0}
    return rps, float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan"), cpu * 1e6 / n


def part_hits(ctx):
    fakes = ctx.fakes
    fakes.reset()
    fakes.faults(s3={"latency_ms": 0})
    path = os.path.join(ctx.work, "herd.jpg")
    data = open(path, "rb").read() if os.path.exists(path) else herd.make_jpeg(ctx.nic, path)
    ws, block, _, name = fakes.image(data, "photo.jpg", "image/jpeg")
    target = f"/img/{ws}/{block}/{name}?w=640"
    mem = h.Origin(fakes, **ENV)
    ctx.origins.append(mem)
    disk = h.Origin(fakes, **dict(ENV, MEMORY_CACHE_BYTES=0))  # every hit read from the store
    ctx.origins.append(disk)
    body = mem.get(target).body
    assert mem.get(target).header("x-cache-tier") == "MEMORY"
    assert disk.get(target).body == body
    disk.metrics()  # waits for the write-behind: the variant is in the store
    assert disk.get(target).header("x-cache-tier") == "STORAGE"

    prefix = tempfile.mkdtemp(prefix="nic-nginx-")
    # nginx's workers run as nobody when started by root: mkdtemp's 0700 would
    # answer every request 403 (a few hundred bytes instead of the image).
    os.chmod(prefix, 0o755)
    for d in ("www/mem", "www/disk", "logs"):
        os.makedirs(os.path.join(prefix, d))
    for d in ("mem", "disk"):
        with open(os.path.join(prefix, "www", d, "photo.jpg"), "wb") as f:
            f.write(body)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes {ENV['WORKER_THREADS']};
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log error;
daemon off;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  types {{ image/jpeg jpg; }}
  server {{
    listen 127.0.0.1:{port};
    root {prefix}/www;
    add_header Cache-Control "public, max-age=3600";
    etag on;
    # memory tier: descriptors and stat results kept open; disk tier: open + fstat + close per request
    location /mem/ {{ open_file_cache max=64 inactive=60s; open_file_cache_valid 60s; }}
    location /disk/ {{ open_file_cache off; }}
  }}
}}
""")
    nginx = subprocess.Popen(["nginx", "-c", conf, "-p", prefix], stderr=subprocess.DEVNULL)
    runs = {k: [] for k in ("origin-mem", "nginx-mem", "origin-disk", "nginx-disk")}
    load0 = loadavg()
    try:
        assert h.wait_until(lambda: herd._up(port), 5)
        workers = [int(w) for w in subprocess.run(["pgrep", "-P", str(nginx.pid)], capture_output=True,
                                                  text=True).stdout.split()]
        npids = [nginx.pid] + workers
        for url in (f"http://127.0.0.1:{port}/mem/photo.jpg", f"http://127.0.0.1:{port}/disk/photo.jpg"):
            got = h.request(port, "GET", url.split(str(port), 1)[1])
            assert got.status == 200 and got.body == body, f"nginx does not serve the variant: {got.status}"
        for _ in range(ctx.rounds):
            for key, url, pids in (("origin-mem", f"http://127.0.0.1:{mem.port}{target}", [mem.proc.pid]),
                                   ("nginx-mem", f"http://127.0.0.1:{port}/mem/photo.jpg", npids),
                                   ("origin-disk", f"http://127.0.0.1:{disk.port}{target}", [disk.proc.pid]),
                                   ("nginx-disk", f"http://127.0.0.1:{port}/disk/photo.jpg", npids)):
                runs[key].append(wrk(url, ctx.wrk_seconds, 64, pids))
                print(f"wrk {key}: {runs[key][-1][0]:.0f}/s, {runs[key][-1][2]:.1f} us CPU/request", flush=True)
        head = {}
        for key, url in (("origin", f"http://127.0.0.1:{mem.port}{target}"), ("nginx", f"http://127.0.0.1:{port}/mem/photo.jpg")):
            raw = subprocess.run(["curl", "-s", "-D", "-", "-o", "/dev/null", url], capture_output=True).stdout
            head[key] = len(raw)
    finally:
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(timeout=10)
        shutil.rmtree(prefix, ignore_errors=True)

    def med(key, i):
        return statistics.median(r[i] for r in runs[key])

    return {"bytes": len(body), "runs": runs, "rounds": ctx.rounds, "seconds": ctx.wrk_seconds, "load": (load0, loadavg()),
            "head": head, "med": {k: (med(k, 0), med(k, 1), med(k, 2)) for k in runs},
            "ratios": {t: [a[0] / b[0] for a, b in zip(runs[f"origin-{t}"], runs[f"nginx-{t}"])] for t in ("mem", "disk")}}


def section_hits(r):
    lines = [
        "## Traffic: hits next to nginx, memory tier and disk tier (`bench/traffic/run.sh hits`)", "",
        f"`wrk -t2 -c64 -d{r['seconds']}s` against one {r['bytes']}-byte JPEG variant, {r['rounds']} rounds of four back-to-back "
        "runs (origin memory, nginx memory, origin disk, nginx disk); medians. Memory tier: nic-origin's memory LRU "
        "vs nginx with `open_file_cache` (no open/stat per request); disk tier: nic-origin with MEMORY_CACHE_BYTES=0 "
        "(each hit reads the store's file on the I/O thread: fstat + pread of a file kept open once its version was "
        "hashed, at most 64 such files, so closer to nginx's memory row) vs nginx without `open_file_cache` (open + "
        "fstat + sendfile + close per request). Both with 2 worker threads/processes, nginx with `sendfile on`, `access_log off`. Response heads: "
        f"nic-origin {r['head'].get('origin', 0)} bytes (its contract headers), nginx {r['head'].get('nginx', 0)} bytes. "
        "*CPU/request*: the server's user + system time over the run (from /proc) divided by the requests wrk "
        f"counted; wrk itself runs on the same 2 cores. Load average {r['load'][0]} at the start, {r['load'][1]} at "
        "the end.",
        "",
        "| tier | server | requests/s | p99 | CPU/request | requests/s vs nginx (median of rounds) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for tier in ("mem", "disk"):
        for srv in ("nginx", "origin"):
            rps, p99, cpu = r["med"][f"{srv}-{tier}"]
            ratio = statistics.median(r["ratios"][tier]) if srv == "origin" else 1.0
            lines.append(f"| {'memory' if tier == 'mem' else 'disk'} | {'nic-origin' if srv == 'origin' else 'nginx'} | "
                         f"{rps:.0f} | {p99:.2f} ms | {cpu:.1f} us | {ratio:.2f} |")
    lines.append("")
    lines.append("All runs (requests/s): " + "; ".join(
        f"{k} {', '.join(f'{x[0]:.0f}' for x in v)}" for k, v in r["runs"].items()) + ".")
    lines.append("CPU/request, nic-origin / nginx, per round: " + "; ".join(
        f"{'memory' if t == 'mem' else 'disk'} " + ", ".join(
            f"{a[2] / b[2]:.2f}" for a, b in zip(r["runs"][f"origin-{t}"], r["runs"][f"nginx-{t}"]))
        for t in ("mem", "disk")) + ".")
    for tier in ("mem", "disk"):
        o, n = r["med"][f"origin-{tier}"], r["med"][f"nginx-{tier}"]
        lines.append(f"Target ({'memory' if tier == 'mem' else 'disk'} tier): requests/s >= nginx's and CPU/request <= "
                     f"nginx's: **{'met' if statistics.median(r['ratios'][tier]) >= 1.0 and o[2] <= n[2] else 'not met'}** "
                     f"(ratio {statistics.median(r['ratios'][tier]):.2f}, CPU {o[2]:.1f} vs {n[2]:.1f} us).")
    lines.append("")
    return lines


# ---------------------------------------------------------------- main

def write_section(readme, name, lines):
    begin, end = f"<!-- traffic-{name}:begin -->", f"<!-- traffic-{name}:end -->"
    section = "\n".join([begin, *lines, end])
    text = open(readme).read() if os.path.exists(readme) else "# Benchmarks\n"
    if begin in text and end in text:
        text = text[:text.index(begin)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(readme, "w") as f:
        f.write(text)


class Ctx:
    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--origin", required=True)
    ap.add_argument("--nic", required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--parts", default="cold,mixed,herd,hits")
    ap.add_argument("--work", default=os.environ.get("NIC_TRAFFIC_DIR", "/tmp/nic-traffic"))
    ap.add_argument("--readme", default=os.path.join(ROOT, "bench", "README.md"))
    ap.add_argument("--no-readme", action="store_true", help="print the tables only")
    ap.add_argument("--seconds", type=float, default=10, help="mixed: length of each phase")
    ap.add_argument("--hit-rate", type=float, default=5000)
    ap.add_argument("--miss-rate", type=float, default=20)
    ap.add_argument("--herd-ns", default="5000")
    ap.add_argument("--floor-cpu", type=float, default=None,
                    help="cold: skip measuring the floor, use this CPU time (seconds) from an earlier run")
    ap.add_argument("--fakes-nice", type=int, default=0,
                    help="run the fake Notion and file host at this nice value (they stand for other machines)")
    ap.add_argument("--rounds", type=int, default=3, help="hits: wrk rounds")
    ap.add_argument("--wrk-seconds", type=int, default=10)
    args = ap.parse_args()
    global LOADGEN
    LOADGEN = args.loadgen
    h.ORIGIN_BIN = args.origin
    ctx = Ctx()
    ctx.args = args
    ctx.nic, ctx.work = args.nic, args.work
    ctx.seconds, ctx.hit_rate, ctx.miss_rate = args.seconds, args.hit_rate, args.miss_rate
    ctx.herd_ns = [int(x) for x in args.herd_ns.split(",")]
    ctx.rounds, ctx.wrk_seconds = args.rounds, args.wrk_seconds
    ctx.origins, ctx.warm_origin = [], None
    parts = args.parts.split(",")
    os.makedirs(ctx.work, exist_ok=True)
    ctx.corpus = build_corpus(args.nic, os.path.join(ctx.work, "corpus")) if {"cold", "mixed"} & set(parts) else []
    ctx.fakes = h.Fakes()
    if args.fakes_nice:
        # The fakes stand in for Notion and its file host, which run on other
        # machines: their CPU on these 2 cores is an artefact of the bench.
        os.setpriority(os.PRIO_PROCESS, ctx.fakes.proc.pid, args.fakes_nice)
    sections = []
    try:
        for part, run, render in (("cold", part_cold, section_cold), ("mixed", part_mixed, section_mixed),
                                  ("herd", part_herd, section_herd), ("hits", part_hits, section_hits)):
            if part not in parts:
                continue
            lines = render(run(ctx))
            print("\n".join(lines), flush=True)
            sections.append((part, lines))
    finally:
        for o in ctx.origins:
            o.stop()
        ctx.fakes.stop()
    if not args.no_readme:
        for part, lines in sections:
            write_section(args.readme, part, lines)


if __name__ == "__main__":
    main()
