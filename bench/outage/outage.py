#!/usr/bin/env python3
"""Issue 8's figures: nic-origin on its worst day, each next to a baseline
measured in the same run.

1. Stored-hit latency while Notion is down: 5 hot sources past SOURCE_TTL_SECONDS,
   8 client threads asking for their stored variants. MEMORY_CACHE_BYTES=0 so every
   answer is a STORAGE hit (the path that used to share a pool with Notion calls).
   Baseline: the same load with Notion healthy (revalidations succeed), then the
   same load for OUTAGE seconds with Notion answering 500 to everything. Every
   answer must be a 200 with X-Cache: HIT (STORAGE, or COALESCED behind a STORAGE leader).
2. Notion calls per minute per hot source during that outage (fake Notion's counter).
3. Peak RSS (VmHWM) of 16 concurrent transforms of a 40-megapixel PNG (16 widths)
   under TRANSFORM_MEMORY_BYTES = room for two, next to the same herd with a budget
   that admits all 16 (the baseline).

Usage: NIC_ORIGIN_BIN=build/h/native/origin/nic-origin python3 bench/outage/outage.py [--outage 30]
Prints a markdown table (paste into bench/README.md).
"""

import argparse
import os
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e"))
import harness as h  # noqa: E402
from test_outage import flat_png, peak_rss_bytes  # noqa: E402


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def load(o, targets, seconds, threads=8):
    lat, bad = [], []
    lock = threading.Lock()
    end = time.time() + seconds

    def run(i):
        n = i
        while time.time() < end:
            t = targets[n % len(targets)]
            n += 1
            t0 = time.perf_counter()
            r = o.get(t)
            dt = (time.perf_counter() - t0) * 1000
            with lock:
                lat.append(dt)
                # A stored answer: STORAGE, or a follower of a STORAGE leader (both X-Cache: HIT).
                if r.status != 200 or r.header("x-cache") != "HIT":
                    bad.append((r.status, r.header("x-cache-tier")))

    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return lat, bad


def outage_figures(fakes, seconds):
    fakes.reset()
    o = h.Origin(fakes, SOURCE_TTL_SECONDS=1, MEMORY_CACHE_BYTES=0)
    try:
        targets = []
        for i in range(5):
            ws, block, _, name = fakes.image(h.png(640, 480, seed=i))
            t = f"/img/{ws}/{block}/{name}?w=320"
            assert o.get(t).status == 200
            targets.append(t)
        o.metrics()  # storage writes landed
        time.sleep(1.1)
        normal, bad_n = load(o, targets, seconds)
        fakes.faults(notion={"status": 500, "count": -1})
        before = fakes.counters()["notion_calls"]
        down, bad_d = load(o, targets, seconds)
        calls = fakes.counters()["notion_calls"] - before
        fakes.faults(notion={"status": 0, "count": 0})
        return normal, down, calls, bad_n, bad_d
    finally:
        o.stop()


def rss_figures(fakes):
    w, hgt = 8000, 5000
    data = flat_png(w, hgt, (200, 120, 40))
    widths = [48, 64, 96, 128, 256, 320, 384, 480, 640, 750, 800, 828, 1024, 1080, 1200, 1600]
    rows = []
    for label, budget in (("room for all 16 (baseline)", 16 * 200 * 1024 * 1024),
                          ("room for two", 2 * (w * hgt * 4) + 64 * 1024 * 1024)):
        fakes.reset()
        ws, block, _, name = fakes.image(data, name="big.png")
        o = h.Origin(fakes, TRANSFORM_MEMORY_BYTES=budget, TRANSFORM_CONCURRENCY=2, MAX_INPUT_PIXELS=50000000,
                     MEMORY_CACHE_BYTES=16 * 1024 * 1024, FOLLOWER_TIMEOUT_MS=120000, UPSTREAM_TIMEOUT_MS=60000)
        try:
            assert o.get(f"/img/{ws}/{block}/{name}?w=32").status == 200
            replies = h.concurrently(lambda t: h.request(o.port, "GET", t, timeout=600),
                                     [(f"/img/{ws}/{block}/{name}?w={x}",) for x in widths])
            ok = sum(r.status == 200 for r in replies)
            refused = sum(r.status == 503 for r in replies)
            stats = o.get("/api/v1/stats", {"X-API-Key": h.API_KEY}).json()
            rows.append((label, budget, ok, refused, stats["transformMemory"]["peak"], peak_rss_bytes(o.proc.pid)))
        finally:
            o.stop()
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--outage", type=float, default=30.0, help="seconds of Notion outage (and of the baseline)")
    args = ap.parse_args()
    fakes = h.Fakes()
    try:
        load_start = os.getloadavg()
        normal, down, calls, bad_n, bad = outage_figures(fakes, args.outage)
        rss = rss_figures(fakes) if not os.environ.get("NIC_BENCH_SKIP_RSS") else []
        load_end = os.getloadavg()
    finally:
        fakes.stop()
    mb = 1024 * 1024
    print(f"Outage benchmark, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, load average "
          f"{' '.join(f'{x:.2f}' for x in load_start)} at the start, {' '.join(f'{x:.2f}' for x in load_end)} at the end.")
    print()
    print(f"Stored (STORAGE-tier) hits, 5 hot sources past their TTL, 8 client threads, {args.outage:.0f} s each:")
    print()
    print("| Notion | requests | p50 ms | p99 ms | max ms | not a 200 HIT | Notion calls | calls/min/source |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| healthy (baseline) | {len(normal)} | {statistics.median(normal):.2f} | {pct(normal, 99):.2f} | "
          f"{max(normal):.2f} | {len(bad_n)} | - | - |")
    print(f"| down (500 to every call) | {len(down)} | {statistics.median(down):.2f} | {pct(down, 99):.2f} | "
          f"{max(down):.2f} | {len(bad)} | {calls} | {calls / (args.outage / 60) / 5:.2f} |")
    print()
    print("16 concurrent transforms of one 8000x5000 PNG (16 widths), TRANSFORM_CONCURRENCY=2:")
    print()
    print("| budget | TRANSFORM_MEMORY_BYTES MB | 200 | 503 | peak charged MB | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, budget, ok, refused, peak, vmhwm in rss:
        print(f"| {label} | {budget / mb:.0f} | {ok} | {refused} | {peak / mb:.0f} | {vmhwm / mb:.0f} |")


if __name__ == "__main__":
    main()
