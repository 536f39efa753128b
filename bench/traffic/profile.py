#!/usr/bin/env python3
"""Where the origin's instructions go for a memory hit and for a cold miss,
from valgrind's callgrind (instruction counts do not depend on what else the
machine is doing, unlike times).

Each case runs nic-origin under callgrind twice, the second run doing the same
plus the work being measured (N memory hits, or one cold miss); the difference
per request, function by function, is the cost of that work alone (start-up,
the warm-up transform and shutdown cancel out).

  python3 bench/traffic/profile.py --origin build/o/native/origin/nic-origin \\
      --loadgen build/o/loadgen [--hits 4000] [--top 25] [--accept 'image/avif,...']

Prints, for the hit and for the miss: instructions per request (user space
only; the kernel's share is not counted) and the functions with the most
inclusive instructions per request.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "bench", "herd"))
import harness as h  # noqa: E402
import herd  # noqa: E402


def run_case(binary, loadgen, out, fakes, data, mode, n, accept):
    ws, block, _, name = fakes.image(data, "photo.jpg", "image/jpeg")
    target = f"/img/{ws}/{block}/{name}?w=640"
    headers = {"Accept": accept} if accept else {}
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as w:
        w.write(f"#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file={out} {binary}\n")
    os.chmod(w.name, 0o755)
    h.ORIGIN_BIN = w.name
    o = h.Origin(fakes, WORKER_THREADS=2, TRANSFORM_CONCURRENCY=2, LOG_LEVEL="error")
    try:
        if mode == "hit":
            assert o.get(target, headers).status == 200  # the cold transform, in both runs
            for _ in range(20):
                o.get(target, headers)
            if n:
                with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as u:
                    u.write(target + "\n")
                args = [loadgen, "open", "--port", str(o.port), "--seconds", str(n / 500),
                        "--stream", f"hit:500:{u.name}:16"]
                for k, v in headers.items():
                    args += ["--header", f"{k}: {v}"]
                subprocess.run(args, check=True, capture_output=True)
                os.unlink(u.name)
        else:
            assert o.get("/health").status == 200
            if n:
                assert o.get(target, headers).status == 200
    finally:
        o.stop()
        os.unlink(w.name)


def functions(path, inclusive):
    out = subprocess.run(["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}", "--threshold=100",
                          "--auto=no", path], capture_output=True, text=True, check=True).stdout
    d = {}
    total = 0
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(.*)$", line)
        if not m:
            continue
        if "PROGRAM TOTALS" in m.group(2):
            total = int(m.group(1).replace(",", ""))
        elif ":" in m.group(2):
            name = re.sub(r"\s*\[[^\]]*\]$", "", m.group(2).split(":", 1)[1]).strip()
            v = int(m.group(1).replace(",", ""))
            # A function shows up once per source file it has code from (inlined
            # headers): self costs add up, inclusive ones are the largest.
            d[name] = max(d.get(name, 0), v) if inclusive else d.get(name, 0) + v
    return total, d


def short(name):
    """A C++ signature without its template arguments and parameters."""
    out, depth = [], 0
    for c in name:
        if c in "<(":
            depth += 1
        elif c in ">)":
            depth -= 1
        elif depth == 0:
            out.append(c)
    return "".join(out).strip()[:110]


def report(title, a, b, n, top):
    ta, fa = functions(a, True)
    tb, fb = functions(b, True)
    _, sa = functions(a, False)
    _, sb = functions(b, False)
    per = (tb - ta) / n
    print(f"\n{title}: {per:,.0f} instructions per request (user space)\n")
    print("| inclusive / request | self / request | function |")
    print("|---:|---:|---|")
    skip = ("main", "start_thread", "(below main)", "std::thread::_State_impl", "__libc_start")
    rows = sorted(((fb.get(k, 0) - fa.get(k, 0)) / n, k) for k in set(fa) | set(fb)
                  if short(k) and not k.startswith("0x") and not any(short(k).startswith(x) for x in skip))
    for v, k in reversed(rows[-top:]):
        s = (sb.get(k, 0) - sa.get(k, 0)) / n
        print(f"| {v:,.0f} | {s:,.0f} | `{short(k)}` |")
    return per


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--origin", required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--hits", type=int, default=4000)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--accept", default="", help="Accept header (default none: the miss makes a JPEG)")
    ap.add_argument("--work", default=tempfile.gettempdir())
    args = ap.parse_args()
    path = os.path.join(args.work, "nic-profile-photo.jpg")
    data = open(path, "rb").read() if os.path.exists(path) else herd.make_jpeg(
        os.path.join(os.path.dirname(args.origin), "..", "nic"), path)
    fakes = h.Fakes()
    outs = [os.path.join(args.work, f"nic-callgrind-{k}.out") for k in ("hit0", "hitN", "miss0", "miss1")]
    try:
        run_case(args.origin, args.loadgen, outs[0], fakes, data, "hit", 0, args.accept)
        run_case(args.origin, args.loadgen, outs[1], fakes, data, "hit", args.hits, args.accept)
        run_case(args.origin, args.loadgen, outs[2], fakes, data, "miss", 0, args.accept)
        run_case(args.origin, args.loadgen, outs[3], fakes, data, "miss", 1, args.accept)
    finally:
        fakes.stop()
    report(f"memory hit ({args.hits} requests, 18 KB JPEG variant)", outs[0], outs[1], args.hits, args.top)
    report(f"cold miss (4000x3000 JPEG of {len(data) / 1e6:.1f} MB -> ?w=640 "
           f"{'with Accept: ' + args.accept if args.accept else 'JPEG'})", outs[2], outs[3], 1, args.top)


if __name__ == "__main__":
    main()
