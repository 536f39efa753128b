#!/usr/bin/env python3
"""The fleet benchmark (issue 10 item 5): three nic-origin instances behind
HAProxy (round robin), one shared S3 bucket (s3rver behind the SigV4-checking
gate of tests/e2e/s3_harness.py, which counts the PUTs), Debian's redis-server,
the fake Notion API and file host with 300 ms of latency on every download.

Rows: herds of N readers at once through HAProxy for one new image, with
REDIS_URL and without; a herd with Redis SIGKILLed as soon as the leader's
download starts. Baseline in the same run: a single cold request through the
same fleet. Counts: Notion calls and downloads from the fakes, transforms and
storage writes summed over the three instances' /metrics, object PUTs at the
S3 gate. Peak RSS is each instance's VmHWM (a fresh fleet per row).

Run through bench/fleet/run.sh. Prints a Markdown table and writes it into the
"Fleet" section of bench/README.md (other sections are left as they are).
"""

import argparse
import os
import re
import shutil
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
import redis_harness as rh  # noqa: E402
import s3_harness as s3  # noqa: E402
from herd import herd_get, peak_rss, percentile  # noqa: E402

BEGIN = "<!-- fleet:begin -->"
END = "<!-- fleet:end -->"


class HAProxy:
    def __init__(self, ports):
        self.dir = tempfile.mkdtemp(prefix="nic-haproxy-")
        self.port = rh.free_port()
        servers = "\n".join(f"    server o{i} 127.0.0.1:{p}" for i, p in enumerate(ports))
        cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(f"""global
    maxconn 8192
defaults
    mode http
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    maxconn 8192
frontend fe
    bind 127.0.0.1:{self.port}
    default_backend origins
backend origins
    balance roundrobin
{servers}
""")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", cfg], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        if not h.wait_until(lambda: self._up(), timeout=10):
            raise RuntimeError("haproxy did not start")

    def _up(self):
        try:
            return h.request(self.port, "GET", "/health?probe=live", timeout=2).status == 200
        except OSError:
            return False

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Fleet:
    def __init__(self, fakes, gate, redis, n=3):
        env = {"STORAGE_BACKEND": "s3", "S3_BUCKET": s3.BUCKET, "S3_REGION": s3.REGION,
               "S3_ENDPOINT": gate.endpoint, "S3_ACCESS_KEY": s3.ACCESS_KEY, "S3_SECRET_KEY": s3.SECRET_KEY,
               "RATE_LIMIT_IMAGE_MISS": "0", "FOLLOWER_TIMEOUT_MS": "60000", "UPSTREAM_TIMEOUT_MS": "15000",
               "WORKER_THREADS": "2", "TRANSFORM_CONCURRENCY": "2"}
        if redis:
            env["REDIS_URL"] = redis.url
        self.origins = [h.Origin(fakes, **env) for _ in range(n)]
        if redis:
            h.wait_until(lambda: redis.numsub("nic:fleet:done") == n, timeout=10)
        self.lb = HAProxy([o.port for o in self.origins])

    def total(self, name, labels=None):
        out = 0
        for o in self.origins:
            for k, v in o.metrics().items():
                if (labels is None and (k == name or k.startswith(name + "{"))) or k == f"{name}{{{labels}}}":
                    out += v
        return int(out)

    def stop(self):
        self.lb.stop()
        for o in self.origins:
            o.stop()


def new_image(fakes, data):
    ws, block, file_id = h.new_id(), h.new_id(), h.new_id()
    fakes.add_file(ws, file_id, "photo.jpg", data, "image/jpeg")
    fakes.add_block(block, ws, file_id, "photo.jpg")
    return f"/img/{ws}/{block}/photo.jpg?w=640"


def run_row(fakes, gate, data, n, with_redis, kill_redis=False):
    redis = rh.Redis() if with_redis else None
    fleet = Fleet(fakes, gate, redis)
    try:
        target = new_image(fakes, data)
        base = fakes.counters()
        gate.reset()
        killer = None
        if kill_redis:
            def kill():
                if h.wait_until(lambda: fakes.counters()["s3_requests"] > base["s3_requests"], timeout=60, step=0.01):
                    redis.kill()
            killer = threading.Thread(target=kill)
            killer.start()
        results = herd_get(fleet.lb.port, target, n)
        if killer:
            killer.join()
        c = fakes.counters()
        h.wait_until(lambda: all(o.metrics(settled=False).get("nic_write_behind_pending", 0) == 0
                                 for o in fleet.origins), timeout=30)
        times = [t for s, t in results]
        row = {
            "n": n,
            "redis": "killed mid-herd" if kill_redis else ("yes" if with_redis else "no"),
            "ok": sum(1 for s, _ in results if s == 200),
            "notion": c["notion_calls"] - base["notion_calls"],
            "downloads": c["s3_downloads"] - base["s3_downloads"],
            "transforms": fleet.total("nic_transforms_total"),
            "puts": gate.count("PUT", "object"),
            "p50": statistics.median(times),
            "p99": percentile(times, 99),
            "rss": [peak_rss(o.proc.pid) for o in fleet.origins],
            "fallbacks": fleet.total("nic_fleet_leases_total", 'outcome="fallback"') if with_redis else 0,
        }
    finally:
        fleet.stop()
        if redis:
            redis.stop()
    return row


def cold_single(fakes, gate, data):
    redis = rh.Redis()
    fleet = Fleet(fakes, gate, redis)
    try:
        [(status, t)] = herd_get(fleet.lb.port, new_image(fakes, data), 1)
        assert status == 200, status
        return t, [peak_rss(o.proc.pid) for o in fleet.origins]
    finally:
        fleet.stop()
        redis.stop()


def ms(x):
    return f"{x * 1000:.0f} ms"


def table(rows, cold, cold_rss, image_note):
    out = [f"Measured by `bench/fleet/run.sh` on {time.strftime('%Y-%m-%d')}, 2 shared cores: three `nic-origin` "
           "(WORKER_THREADS=2, TRANSFORM_CONCURRENCY=2, STORAGE_BACKEND=s3) behind HAProxy 2.6 (round robin), "
           "one s3rver bucket behind the SigV4 gate (counts object PUTs), Debian's redis-server, the fake Notion "
           f"and file host with 300 ms latency per download. {image_note} Every reader asks for `?w=640` through "
           "HAProxy; latencies from one asyncio loop (all N connections opened first, then every request sent "
           "at once; send to last byte). Counts: Notion calls and downloads from the fakes, transforms summed "
           "over the three `/metrics`, S3 writes = object PUTs at the gate (the source and the variant; without "
           "Redis the second and third PUT of an object are refused with 412 by the conditional write). A fresh "
           "fleet (and Redis) per row; peak RSS is each instance's VmHWM.",
           "",
           f"Baseline in the same run: a single cold request through the fleet took **{ms(cold)}** "
           f"(peak RSS per instance {', '.join(f'{r >> 20} MB' for r in cold_rss)}).",
           "",
           "| N | Redis | 200s | Notion calls | downloads | transforms | S3 writes | fallbacks | p50 | p99 | "
           "peak RSS per instance |",
           "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        out.append(f"| {r['n']} | {r['redis']} | {r['ok']} | {r['notion']} | {r['downloads']} | {r['transforms']} | "
                   f"{r['puts']} | {r['fallbacks']} | {ms(r['p50'])} | {ms(r['p99'])} | "
                   f"{' / '.join(f'{x >> 20} MB' for x in r['rss'])} |")
    return "\n".join(out)


def write_readme(path, text):
    with open(path) as f:
        readme = f.read()
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in readme:
        readme = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, readme, flags=re.S)
    else:
        readme = readme.rstrip() + "\n\n## Fleet: three origins behind HAProxy, Redis, shared S3 (`bench/fleet/run.sh`)\n\n" \
            + block + "\n"
    with open(path, "w") as f:
        f.write(readme)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--origin", required=True)
    ap.add_argument("--nic", required=True)
    ap.add_argument("--ns", default="300,1000")
    ap.add_argument("--readme", default=os.path.join(ROOT, "bench", "README.md"))
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()
    h.ORIGIN_BIN = args.origin
    os.environ["NIC_E2E_LOG_LEVEL"] = "error"
    if not s3.available():
        sys.exit(f"s3rver is not installed in {s3.NODE_MODULES}: run `npm ci`")
    fakes = h.Fakes()
    s3rver = s3.S3rver()
    gate = s3.Gate(s3rver.port)
    try:
        # A 1200x800 JPEG (a gradient), made with nic from a PNG.
        tmp = tempfile.mkdtemp(prefix="nic-fleet-")
        src = os.path.join(tmp, "src.png")
        with open(src, "wb") as f:
            f.write(h.png(1200, 800, seed=7))
        jpg = os.path.join(tmp, "photo.jpg")
        subprocess.run([args.nic, "transform", src, jpg, "--fmt", "jpeg", "--q", "90"], check=True)
        with open(jpg, "rb") as f:
            data = f.read()
        shutil.rmtree(tmp, ignore_errors=True)
        image_note = f"Source: one 1200x800 JPEG of {len(data) >> 10} KB."
        fakes.faults(s3={"latency_ms": 300})
        cold, cold_rss = cold_single(fakes, gate, data)
        rows = []
        for n in [int(x) for x in args.ns.split(",")]:
            for with_redis in (True, False):
                rows.append(run_row(fakes, gate, data, n, with_redis))
                print(rows[-1], file=sys.stderr, flush=True)
        rows.append(run_row(fakes, gate, data, int(args.ns.split(",")[0]), True, kill_redis=True))
        print(rows[-1], file=sys.stderr, flush=True)
        text = table(rows, cold, cold_rss, image_note)
        print(text)
        if not args.no_readme:
            write_readme(args.readme, text)
    finally:
        gate.stop()
        s3rver.stop()
        fakes.stop()


if __name__ == "__main__":
    main()
