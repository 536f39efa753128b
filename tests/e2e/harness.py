"""Shared pieces of the end-to-end tests: the fakes, nic-origin processes, a
small HTTP client, test images and their measured sizes. Python stdlib only.

Environment (set by CTest): NIC_ORIGIN_BIN (the built nic-origin) and
NIC_FAKES (tests/fakes/fakes.py).
"""

import base64
import http.client
import json
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import unittest
import tempfile
import threading
import time
import uuid
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ORIGIN_BIN = os.environ.get("NIC_ORIGIN_BIN", "")
FAKES = os.environ.get("NIC_FAKES", os.path.join(HERE, "..", "fakes", "fakes.py"))
TOKEN = "secret_test_token"
API_KEY = "test-api-key"


# ---------------------------------------------------------------- HTTP

class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        return json.loads(self.body)


def request(port, method, target, headers=None, body=None, timeout=60):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Reply(r.status, r.getheaders(), data)
    finally:
        conn.close()


def concurrently(fn, args_list):
    """Runs fn(*args) for every args in parallel threads, released together."""
    results = [None] * len(args_list)
    barrier = threading.Barrier(len(args_list))

    def run(i, args):
        try:
            barrier.wait()
            results[i] = fn(*args)
        except Exception as e:  # noqa: BLE001 - reported by the test
            results[i] = e

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# ---------------------------------------------------------------- fakes

class Fakes:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, FAKES], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        ports = json.loads(line)
        self.notion_port = ports["notion"]
        self.s3_port = ports["s3"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()

    def control(self, name, body=None):
        r = request(self.s3_port, "POST", "/_control/" + name, {"Content-Type": "application/json"},
                    json.dumps(body or {}))
        assert r.status == 200, r.body

    def reset(self):
        self.control("reset")

    def counters(self):
        return request(self.s3_port, "GET", "/_control/counters").json()

    def add_file(self, ws, file_id, name, data, content_type="image/png"):
        path = f"/{dashed(ws)}/{dashed(file_id)}/{name}"
        self.control("files", {"path": path, "data_b64": base64.b64encode(data).decode(),
                               "content_type": content_type})
        return path

    def add_block(self, block_id, ws, file_id, name, **extra):
        body = {"id": block_id, "workspace": ws, "file": file_id, "name": name}
        body.update(extra)
        self.control("blocks", body)

    def sign(self, path, expires=3600):
        from urllib.parse import quote
        return request(self.s3_port, "GET", f"/_control/sign?path={quote(path)}&expires={expires}").json()["url"]

    def faults(self, s3=None, notion=None):
        body = {}
        if s3 is not None:
            body["s3"] = s3
        if notion is not None:
            body["notion"] = notion
        self.control("faults", body)

    def image(self, data, name="photo.png", content_type="image/png"):
        """A new image behind a new block: returns (workspace, block id, file id, name)."""
        ws, block, file_id = new_id(), new_id(), new_id()
        self.add_file(ws, file_id, name, data, content_type)
        self.add_block(block, ws, file_id, name)
        return ws, block, file_id, name


def dashed(h):
    h = h.replace("-", "")
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def new_id():
    return uuid.uuid4().hex


# ---------------------------------------------------------------- origin

class Origin:
    def __init__(self, fakes, cache_dir=None, **env):
        self.fakes = fakes
        self.own_dir = cache_dir is None
        self.cache_dir = cache_dir or tempfile.mkdtemp(prefix="nic-e2e-")
        base = {
            "PORT": "0",
            "HOST": "127.0.0.1",
            "LOG_LEVEL": os.environ.get("NIC_E2E_LOG_LEVEL", "error"),
            "CACHE_DIR": self.cache_dir,
            "ALLOWED_DOMAINS": f"http://127.0.0.1:{fakes.s3_port}",
            "NOTION_API_BASE": f"http://127.0.0.1:{fakes.notion_port}",
            "NOTION_TOKEN": TOKEN,
            "NOTION_RPS": "1000",
            "API_KEYS": API_KEY,
            "WORKER_THREADS": "2",
            "TRANSFORM_CONCURRENCY": "2",
            "UPSTREAM_TIMEOUT_MS": "5000",
            "FOLLOWER_TIMEOUT_MS": "20000",
            "SHUTDOWN_TIMEOUT_MS": "5000",
        }
        base.update({k: str(v) for k, v in env.items()})
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("NOTION_", "RATE_LIMIT"))}
        environ.update(base)
        self.proc = subprocess.Popen([ORIGIN_BIN], env=environ, stdout=subprocess.PIPE, stderr=None, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline() if ready else ""
        m = re.search(r"listening on [^:]+:(\d+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"nic-origin did not start: {line!r} (exit {self.proc.poll()})")
        self.port = int(m.group(1))

    def get(self, target, headers=None, method="GET"):
        return request(self.port, method, target, headers)

    def metrics(self, settled=True):
        """Prometheus text -> {'name{labels}': value}. Storage writes land after
        the answer (write-behind): by default this waits (at most 10 s) until
        none is pending, so write counts are exact."""
        end = time.time() + 10
        while True:
            text = self.get("/metrics").body.decode()
            out = {}
            for line in text.splitlines():
                if not line or line.startswith("#"):
                    continue
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
            if not settled or out.get("nic_write_behind_pending", 0) == 0 or time.time() > end:
                return out
            time.sleep(0.02)

    def metric_sum(self, name):
        return sum(v for k, v in self.metrics().items() if k == name or k.startswith(name + "{"))

    def stop(self, remove=True):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        if remove and self.own_dir:
            shutil.rmtree(self.cache_dir, ignore_errors=True)
        return self.proc.returncode


# ---------------------------------------------------------------- images

def png(width, height, seed=0, alpha=False):
    """A gradient PNG (so resizes are measurable), 8-bit RGB or RGBA."""
    channels = 4 if alpha else 3
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        for x in range(width):
            px = [(x * 255 // max(1, width - 1) + seed) & 255, (y * 255 // max(1, height - 1)) & 255, (seed * 7) & 255]
            if alpha:
                px.append(255)
            rows.extend(px)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6 if alpha else 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(rows), 6))
            + chunk(b"IEND", b""))


def measure(data):
    """(format, width, height) read from the encoded bytes' headers."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        w, h = struct.unpack(">II", data[16:24])
        return "png", w, h
    if data[:2] == b"\xff\xd8":
        i = 2
        while i < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            length = struct.unpack(">H", data[i + 2:i + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                h, w = struct.unpack(">HH", data[i + 5:i + 9])
                return "jpeg", w, h
            i += 2 + length
        return "jpeg", 0, 0
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = data[12:16]
        if kind == b"VP8 ":
            w, h = struct.unpack("<HH", data[26:30])
            return "webp", w & 0x3FFF, h & 0x3FFF
        if kind == b"VP8L":
            b = data[21:25]
            w = 1 + (((b[1] & 0x3F) << 8) | b[0])
            h = 1 + (((b[3] & 0xF) << 10) | (b[2] << 2) | ((b[1] & 0xC0) >> 6))
            return "webp", w, h
        if kind == b"VP8X":
            w = 1 + int.from_bytes(data[24:27], "little")
            h = 1 + int.from_bytes(data[27:30], "little")
            return "webp", w, h
    if data[4:12] in (b"ftypavif", b"ftypavis"):
        i = data.find(b"ispe")
        if i > 0:
            w, h = struct.unpack(">II", data[i + 8:i + 16])
            return "avif", w, h
        return "avif", 0, 0
    return "unknown", 0, 0


def decode_png_pixel(data, x, y):
    """The RGB(A) value at (x, y) of a non-interlaced 8-bit PNG (any filter)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w, h, ctype = 8, b"", 0, 0, 0
    while pos < len(data):
        n = struct.unpack(">I", data[pos:pos + 4])[0]
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    bpp = {2: 3, 6: 4, 0: 1, 4: 2}[ctype]
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    for row in range(y + 1):
        f = raw[row * (stride + 1)]
        line = bytearray(raw[row * (stride + 1) + 1:(row + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        prev = line
    return tuple(prev[x * bpp:(x + 1) * bpp])


def wait_until(predicate, timeout=10.0, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


# ---------------------------------------------------------------------------
# Test-module plumbing shared by the e2e files: one set of fakes per module
# (the module global FAKES), a fresh origin per test.

def fakes_module_hooks(namespace):
    """setUpModule/tearDownModule that keep one Fakes in namespace["FAKES"]."""

    def set_up():
        namespace["FAKES"] = Fakes()

    def tear_down():
        if namespace.get("FAKES"):
            namespace["FAKES"].stop()

    return set_up, tear_down


class OriginCase(unittest.TestCase):
    """Resets the module's fakes before each test and stops its origins after."""

    @property
    def fakes(self):
        return sys.modules[type(self).__module__].FAKES

    def setUp(self):
        self.fakes.reset()
        self.origins = []

    def tearDown(self):
        for o in self.origins:
            o.stop()

    def origin(self, **env):
        o = Origin(self.fakes, **env)
        self.origins.append(o)
        return o
