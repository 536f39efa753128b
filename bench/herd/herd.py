#!/usr/bin/env python3
"""The herd benchmark: N concurrent requests for one uncached 12-megapixel JPEG
(~5 MB) behind 300 ms of fake S3 latency, with request coalescing on and off;
then cache-hit throughput with wrk next to nginx serving the same bytes.

Run through bench/herd/run.sh. Prints a Markdown table and writes it into the
"Herd" section of bench/README.md (other sections are left as they are).
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness as h  # noqa: E402

BEGIN = "<!-- herd:begin -->"
END = "<!-- herd:end -->"
RSS_GUARD = 8 * 1024 ** 3  # the baseline is stopped beyond this (shared machine)


def make_jpeg(nic, path):
    """A 4000x3000 JPEG of about 5 MB: low-amplitude noise over a gradient."""
    width, height = 4000, 3000
    tmp_png = path + ".png"
    table = bytes((76 + b % 100) for b in range(256))
    import struct
    import zlib
    comp = zlib.compressobj(1)
    chunks = []
    for y in range(height):
        row = bytearray(os.urandom(width * 3).translate(table))
        shade = y * 64 // height
        row[0::3] = bytes((v + shade) & 255 for v in row[0::3])
        chunks.append(comp.compress(b"\x00" + bytes(row)))
    chunks.append(comp.flush())
    idat = b"".join(chunks)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(tmp_png, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    subprocess.run([nic, "transform", tmp_png, path, "--fmt", "jpeg", "--q", "85"], check=True)
    os.unlink(tmp_png)
    with open(path, "rb") as f:
        return f.read()


def peak_rss(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def current_rss(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def percentile(values, p):
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


async def _one_get(port, target, connected, start, timeout):
    """One reader: connect, wait for the start, send a GET, read the whole answer.
    Returns (status, seconds from sending to the last byte, body bytes)."""
    import asyncio
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    except (OSError, asyncio.TimeoutError):
        connected()
        return 0, float("nan"), 0
    connected()
    await start.wait()
    t0 = time.perf_counter()
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await asyncio.wait_for(reader.readexactly(length), timeout)
        elapsed = time.perf_counter() - t0
    except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.TimeoutError):
        return 0, time.perf_counter() - t0, 0
    finally:
        writer.close()
    return status, elapsed, len(body)


def herd_get(port, target, n, timeout=300):
    """N readers at once from one asyncio event loop (one thread): all N
    connections are opened first, then every request is sent in one sweep of
    the loop. Latency runs from a reader's own send to its last byte."""
    import asyncio

    async def run():
        start = asyncio.Event()
        remaining = [n]
        all_connected = asyncio.Event()

        def connected():
            remaining[0] -= 1
            if remaining[0] == 0:
                all_connected.set()

        tasks = [asyncio.create_task(_one_get(port, target, connected, start, timeout)) for _ in range(n)]
        await all_connected.wait()
        start.set()
        return await asyncio.gather(*tasks)

    return [(status, t) for status, t, _ in asyncio.run(run())]


def curl_herd_get(port, target, n, timeout=300):
    """The same herd from curl's parallel mode (one C process, libcurl's multi
    interface): a cross-check of the asyncio client's floor. Latency includes
    each transfer's own connect (curl starts it when the transfer starts).
    curl 7.88 (Debian 12) caps --parallel-max at 300: beyond that, the rest
    start only as earlier ones finish (memory hits by then), so it is no herd
    client for N > 300."""
    url = f"http://127.0.0.1:{port}{target}"
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as cfg:
        for _ in range(n):
            cfg.write(f'url = "{url}"\noutput = "/dev/null"\n')
    try:
        out = subprocess.run(["curl", "-s", "--parallel", "--parallel-immediate", "--parallel-max", str(n),
                              "-m", str(timeout), "-w", "%{http_code} %{time_total}\n", "-K", cfg.name],
                             capture_output=True, text=True).stdout
    finally:
        os.unlink(cfg.name)
    rows = [line.split() for line in out.splitlines() if line.strip()]
    return [(int(code), float(t)) for code, t in rows]


def timed_get(port, target):
    t0 = time.perf_counter()
    try:
        r = h.request(port, "GET", target, timeout=300)
        status = r.status
    except Exception:  # noqa: BLE001 - counted as a failure
        status = 0
    return status, time.perf_counter() - t0


CLIENT = None  # herd_get or curl_herd_get, chosen in main()
CLIENT_NOTE = ""


def run_herd(fakes, data, n, coalescing, env):
    ws, block, file_id = h.new_id(), h.new_id(), h.new_id()
    fakes.add_file(ws, file_id, "photo.jpg", data, "image/jpeg")
    fakes.add_block(block, ws, file_id, "photo.jpg")
    o = h.Origin(fakes, NIC_COALESCING="on" if coalescing else "off", **env)
    killed = threading.Event()
    done = threading.Event()

    def guard():
        while not done.is_set():
            if current_rss(o.proc.pid) > RSS_GUARD:
                killed.set()
                o.proc.kill()
                return
            time.sleep(0.05)

    threading.Thread(target=guard, daemon=True).start()
    base = h.Fakes.counters(fakes)
    target = f"/img/{ws}/{block}/photo.jpg?w=640"
    t0 = time.perf_counter()
    results = CLIENT(o.port, target, n)
    wall = time.perf_counter() - t0
    done.set()
    c = fakes.counters()
    row = {
        "n": n,
        "coalescing": "on" if coalescing else "off",
        "ok": sum(1 for s, _ in results if s == 200),
        "notion": c["notion_calls"] - base["notion_calls"],
        "downloads": c["s3_downloads"] - base["s3_downloads"],
        "p50": statistics.median(t for _, t in results),
        "p99": percentile([t for _, t in results], 99),
        "wall": wall,
        "killed": killed.is_set(),
    }
    if not killed.is_set():
        row["rss"] = peak_rss(o.proc.pid)
        # The client's floor: the same herd for the variant just made, now a
        # memory hit (same bytes to read back, no fetch, no transform).
        floor = CLIENT(o.port, target, n)
        row["floor_p99"] = percentile([t for _, t in floor], 99)
        row["transforms"] = int(o.metric_sum("nic_transforms_total"))
        m = o.metrics()
        row["writes"] = int(m.get('nic_storage_writes_total{kind="variant"}', 0))
        row["source_writes"] = int(m.get('nic_storage_writes_total{kind="source"}', 0))
    else:
        row.update(rss=RSS_GUARD, transforms=-1, writes=-1, source_writes=-1, floor_p99=float("nan"))
    o.stop()
    return row


def cold_single(fakes, data, env):
    ws, block, file_id = h.new_id(), h.new_id(), h.new_id()
    fakes.add_file(ws, file_id, "photo.jpg", data, "image/jpeg")
    fakes.add_block(block, ws, file_id, "photo.jpg")
    o = h.Origin(fakes, **env)
    times = []
    for i in range(3):
        # A new width each time: cold variant; the first also fetches the source.
        [(status, t)] = herd_get(o.port, f"/img/{ws}/{block}/photo.jpg?w=640&q={[60, 75, 85][i]}", 1)
        assert status == 200
        times.append(t)
    rss = peak_rss(o.proc.pid)
    o.stop()
    return times[0], rss


def cpu_seconds(pids):
    """User + system CPU time of these processes so far."""
    total = 0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def wrk(url, seconds, connections, pids=()):
    """(requests/s, p99 ms, server CPU microseconds per request)."""
    c0 = cpu_seconds(pids)
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pids) - c0
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw error answers from {url}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    n = int(re.search(r"(\d+) requests in", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1000.0}
    return (rps, float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan"),
            cpu * 1e6 / n if n and pids else float("nan"))


def throughput(fakes, data, env, seconds=10, connections=64, rounds=5):
    """wrk against nic-origin (memory hits) and nginx (the same bytes as a
    static file), both up at once and measured in turns, `rounds` times each;
    the median of each is reported."""
    if not shutil.which("wrk") or not shutil.which("nginx"):
        return None
    ws, block, file_id = h.new_id(), h.new_id(), h.new_id()
    fakes.add_file(ws, file_id, "photo.jpg", data, "image/jpeg")
    fakes.add_block(block, ws, file_id, "photo.jpg")
    o = h.Origin(fakes, **env)
    target = f"/img/{ws}/{block}/photo.jpg?w=640"
    first = o.get(target)
    assert first.status == 200
    body = first.body

    prefix = tempfile.mkdtemp(prefix="nic-nginx-")
    # nginx's workers run as nobody when started by root: with mkdtemp's 0700
    # they answered every request 403 (tables before 2026-12-01 measured that).
    os.chmod(prefix, 0o755)
    os.makedirs(os.path.join(prefix, "www"))
    os.makedirs(os.path.join(prefix, "logs"))
    with open(os.path.join(prefix, "www", "photo.jpg"), "wb") as f:
        f.write(body)
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes {env.get('WORKER_THREADS', 2)};
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log error;
daemon off;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  types {{ image/jpeg jpg; }}
  server {{
    listen 127.0.0.1:{port};
    root {prefix}/www;
    location / {{ add_header Cache-Control "public, max-age=3600"; etag on; }}
  }}
}}
""")
    nginx = subprocess.Popen(["nginx", "-c", conf, "-p", prefix], stderr=subprocess.DEVNULL)
    origin_runs, nginx_runs = [], []
    try:
        assert h.wait_until(lambda: _up(port), 5)
        check = h.request(port, "GET", "/photo.jpg")
        assert check.status == 200 and check.body == body, f"nginx answers {check.status}, not the variant"
        for _ in range(rounds):
            origin_runs.append(wrk(f"http://127.0.0.1:{o.port}{target}", seconds, connections, [o.proc.pid]))
            workers = subprocess.run(["pgrep", "-P", str(nginx.pid)], capture_output=True, text=True).stdout.split()
            nginx_runs.append(wrk(f"http://127.0.0.1:{port}/photo.jpg", seconds, connections,
                                  [nginx.pid] + [int(w) for w in workers]))
            print(f"wrk: nic-origin {origin_runs[-1][0]:.0f}/s ({origin_runs[-1][2]:.1f} us CPU/request), "
                  f"nginx {nginx_runs[-1][0]:.0f}/s ({nginx_runs[-1][2]:.1f} us CPU/request)", flush=True)
    finally:
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(timeout=10)
        shutil.rmtree(prefix, ignore_errors=True)
        o.stop()

    def median(values):
        return sorted(values)[len(values) // 2]

    return {"bytes": len(body), "connections": connections, "seconds": seconds, "rounds": rounds,
            "origin_rps": median([r[0] for r in origin_runs]), "origin_p99": median([r[1] for r in origin_runs]),
            "origin_cpu": median([r[2] for r in origin_runs]),
            "nginx_rps": median([r[0] for r in nginx_runs]), "nginx_p99": median([r[1] for r in nginx_runs]),
            "nginx_cpu": median([r[2] for r in nginx_runs]),
            # Each round's two runs are back to back: their ratio is the least disturbed by other load.
            "ratios": [a[0] / b[0] for a, b in zip(origin_runs, nginx_runs)],
            "origin_all": [r[0] for r in origin_runs], "nginx_all": [r[0] for r in nginx_runs]}


def _up(port):
    try:
        h.request(port, "GET", "/", timeout=1)
        return True
    except OSError:
        return False


def mb(v):
    return f"{v / 1024 / 1024:.0f} MB"


def ms(v):
    return f"{v * 1000:.0f} ms"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--origin", required=True)
    ap.add_argument("--nic", required=True)
    ap.add_argument("--ns", default="100,500,1000")
    ap.add_argument("--modes", default="on,off")
    # Without coalescing every reader holds a 5 MB source: N=1000 needs ~7 GB on
    # a shared machine, so the baseline stops at 500 unless asked.
    ap.add_argument("--off-ns", default="100,500")
    ap.add_argument("--readme", default=os.path.join(ROOT, "bench", "README.md"))
    ap.add_argument("--client", choices=("asyncio", "curl"), default="asyncio",
                    help="the herd client: one asyncio loop (default) or curl --parallel")
    ap.add_argument("--throughput-only", action="store_true",
                    help="only the wrk comparison; prints it, leaves README.md alone")
    args = ap.parse_args()
    h.ORIGIN_BIN = args.origin
    global CLIENT
    CLIENT = curl_herd_get if args.client == "curl" else herd_get
    global CLIENT_NOTE
    CLIENT_NOTE = ("Latencies from `curl --parallel --parallel-immediate` (one C process; each includes its "
                   "own connect)." if args.client == "curl" else
                   "Latencies from one asyncio event loop in one thread (all N connections opened first, then "
                   "every request sent in one sweep; each latency runs from that reader's send to its last byte).")

    work = tempfile.mkdtemp(prefix="nic-herd-")
    data = make_jpeg(args.nic, os.path.join(work, "photo.jpg"))
    print(f"source: 4000x3000 JPEG, {len(data)} bytes", flush=True)
    env = {"WORKER_THREADS": 2, "TRANSFORM_CONCURRENCY": 2, "TRANSFORM_QUEUE": 2000, "FETCH_CONCURRENCY": 16,
           "FOLLOWER_TIMEOUT_MS": 120000, "UPSTREAM_TIMEOUT_MS": 110000, "LOG_LEVEL": "error",
           "MEMORY_CACHE_BYTES": 64 * 1024 * 1024}
    fakes = h.Fakes()
    if args.throughput_only:
        try:
            print(throughput(fakes, data, env), flush=True)
        finally:
            fakes.stop()
            shutil.rmtree(work, ignore_errors=True)
        return
    try:
        fakes.faults(s3={"latency_ms": 300})
        cold, cold_rss = cold_single(fakes, data, env)
        print(f"single cold request: {ms(cold)}, peak RSS {mb(cold_rss)}", flush=True)
        rows = []
        for mode in args.modes.split(","):
            ns = args.ns if mode == "on" else args.off_ns
            for n in [int(x) for x in ns.split(",")]:
                row = run_herd(fakes, data, n, mode == "on", env)
                print(row, flush=True)
                rows.append(row)
        fakes.faults(s3={"latency_ms": 0})
        tp = throughput(fakes, data, env)
    finally:
        fakes.stop()
        shutil.rmtree(work, ignore_errors=True)

    cpu = ""
    try:
        cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read()).group(1)
    except (OSError, AttributeError):
        pass
    lines = [BEGIN, "## Herd: one new image, N readers at once (nic-origin)", "",
             f"Measured by `bench/herd/run.sh` on {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores ({cpu}), "
             "the origin with WORKER_THREADS=2, TRANSFORM_CONCURRENCY=2. Source: one 4000x3000 JPEG of "
             f"{len(data) / 1e6:.1f} MB behind 300 ms of fake S3 latency; every reader asks for `?w=640` "
             "(a JPEG). " + CLIENT_NOTE + " Counts come from the fakes (Notion calls, downloads) and from `/metrics` "
             "(transforms, variant writes; the source is written once more, not counted here). "
             "`coalescing off` is `NIC_COALESCING=off`: every request that missed at arrival does the whole work. "
             "*Floor*: the same herd again right after, now all memory hits (same bytes to read back, no "
             "fetch, no transform): what N readers at once cost the client and the server's hit path on these "
             "2 shared cores. p99 minus the floor is roughly what the cold work and the followers' wake-up add.",
             "",
             f"Baseline in the same run: a single cold request took **{ms(cold)}** "
             f"(peak RSS {mb(cold_rss)}).", "",
             "| N | coalescing | 200s | Notion calls | downloads | transforms | writes | peak RSS | p50 | p99 "
             "| floor p99 |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        rss = mb(r["rss"]) if not r["killed"] else f"> {mb(RSS_GUARD)} (stopped)"
        lines.append(f"| {r['n']} | {r['coalescing']} | {r['ok']} | {r['notion']} | {r['downloads']} | "
                     f"{r['transforms']} | {r['writes']} | {rss} | {ms(r['p50'])} | {ms(r['p99'])} | {ms(r['floor_p99'])} |")
    lines.append("")
    if tp:
        lines += ["### Cache hits: nic-origin next to nginx serving the same bytes",
                  "",
                  f"`wrk -t2 -c{tp['connections']} -d{tp['seconds']}s`, one {tp['bytes']}-byte JPEG variant "
                  "(memory tier) vs the same bytes as a static file from nginx (worker_processes = WORKER_THREADS "
                  "= 2, sendfile, access_log off), both on 127.0.0.1 and up at once, measured in turns "
                  f"{tp['rounds']} times each; medians (all runs: nic-origin "
                  f"{', '.join(f'{v:.0f}' for v in tp['origin_all'])}; nginx "
                  f"{', '.join(f'{v:.0f}' for v in tp['nginx_all'])} requests/s; ratio per round "
                  f"{', '.join(f'{v:.2f}' for v in tp['ratios'])}). "
                  "wrk shares the 2 cores with the server, and the machine is shared with other work, so "
                  "requests/s move by tens of percent between runs; *CPU/request* (the server's user + system "
                  "time over the run, from /proc, divided by the requests wrk counted) is the steadier measure.",
                  "",
                  "| server | requests/s | p99 | CPU/request | ratio (median of rounds) |",
                  "|---|---:|---:|---:|---:|",
                  f"| nginx | {tp['nginx_rps']:.0f} | {tp['nginx_p99']:.2f} ms | {tp['nginx_cpu']:.1f} us | 1.00 |",
                  f"| nic-origin | {tp['origin_rps']:.0f} | {tp['origin_p99']:.2f} ms | {tp['origin_cpu']:.1f} us | "
                  f"{sorted(tp['ratios'])[len(tp['ratios']) // 2]:.2f} |", ""]
    else:
        lines += ["(wrk or nginx missing: cache-hit throughput not measured)", ""]
    lines.append(END)
    section = "\n".join(lines)
    print(section)

    text = open(args.readme).read() if os.path.exists(args.readme) else "# Benchmarks\n"
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + section + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(args.readme, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
