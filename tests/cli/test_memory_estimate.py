#!/usr/bin/env python3
"""The transform's memory estimate (what nic-origin charges to
TRANSFORM_MEMORY_BYTES before a transform starts) against what `nic transform`
really holds at its peak, over a matrix of sources (baseline and progressive
JPEG, PNG plain and interlaced, WebP lossy and lossless, AVIF) and outputs
(AVIF, WebP, JPEG, PNG; small to large).

Peak = what `nic transform --memory` reports: the process's peak resident
set (VmHWM) less what it held before reading the source (the program and its
libraries). The estimate must be at least that (else the budget would let
more work in than fits), and not wildly above it (else it would admit fewer
transforms than fit). Skipped under sanitizers (their shadow memory and
quarantine are not the program's)."""
import os
import struct
import subprocess
import tempfile
import unittest
import zlib

NIC = os.environ.get("NIC_CLI", "nic")
MiB = 1 << 20


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def photo_rows(width, height):
    """RGB rows with photo-like variety (smooth ramps plus noise), quick to make
    at 12 MP: a few random rows, shifted per line."""
    pool = []
    for k in range(7):
        noise = bytearray(os.urandom(width * 3))
        for i in range(0, len(noise), 3):
            x = i // 3
            noise[i] = (noise[i] % 24 + (x * 200) // width + 16 * k) & 0xFF
            noise[i + 1] = (noise[i + 1] % 24 + 60 + 20 * k) & 0xFF
            noise[i + 2] = (noise[i + 2] % 24 + 255 - (x * 200) // width) & 0xFF
        pool.append(bytes(noise))
    return [pool[(y * 5 + y // 64) % 7][(y % 97) * 3:] + pool[(y * 5 + y // 64) % 7][:(y % 97) * 3]
            for y in range(height)]


def png(width, height, interlaced=False):
    rows = photo_rows(width, height)
    if not interlaced:
        raw = b"".join(b"\x00" + r for r in rows)
    else:  # Adam7: seven reduced images, each row filtered with type 0
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        parts = []
        for x0, y0, dx, dy in passes:
            if x0 >= width or y0 >= height:
                continue
            for y in range(y0, height, dy):
                r = rows[y]
                parts.append(b"\x00" + b"".join(r[3 * x:3 * x + 3] for x in range(x0, width, dx)))
        raw = b"".join(parts)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1 if interlaced else 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 1))
            + chunk(b"IEND", b""))


def measure(args):
    """Runs `nic transform ARGS --memory`: (bytes it really used at its peak, its estimate)."""
    r = subprocess.run([NIC, "transform", *args, "--memory"], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"nic transform {args} failed: {r.stderr}")
    words = r.stdout.split("memory estimate ")[1].split()
    return int(words[3]), int(words[0])


@unittest.skipIf(os.environ.get("NIC_SANITIZE"), "peak memory under sanitizers is not the program's")
class MemoryEstimate(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.src = {}

        def put(name, data):
            path = os.path.join(d, name)
            with open(path, "wb") as f:
                f.write(data)
            return path

        big = put("big.png", png(4000, 3000))
        cls.src["png 4000x3000"] = big
        cls.src["png 1200x900 interlaced"] = put("interlaced.png", png(1200, 900, interlaced=True))

        def made(name, src, *flags):
            path = os.path.join(d, name)
            subprocess.run([NIC, "transform", src, path, *flags], check=True, stdout=subprocess.DEVNULL)
            return path

        # Our JPEG encoder writes progressive files; cjpeg (when present) a baseline one.
        cls.src["jpeg 4000x3000 progressive"] = made("prog.jpg", big, "--fmt", "jpeg", "--q", "90")
        ppm = os.path.join(d, "big.ppm")
        try:
            subprocess.run(["djpeg", "-outfile", ppm, cls.src["jpeg 4000x3000 progressive"]], check=True)
            subprocess.run(["cjpeg", "-quality", "90", "-outfile", os.path.join(d, "base.jpg"), ppm], check=True)
            cls.src["jpeg 4000x3000 baseline"] = os.path.join(d, "base.jpg")
        except (OSError, subprocess.CalledProcessError):
            pass
        cls.src["webp 2048x1536"] = made("lossy.webp", big, "--fmt", "webp", "--w", "2048")
        cls.src["avif 1600x1200"] = made("photo.avif", big, "--fmt", "avif", "--w", "1600")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check(self, source, width, fmt):
        out = os.path.join(self.tmp.name, f"out.{fmt}")
        used, estimate = measure([self.src[source], out, "--w", str(width), "--fmt", fmt])
        print(f"{source:28} -> {fmt:4} w={width:<5} used {used / MiB:7.1f} MiB, estimate {estimate / MiB:7.1f} MiB")
        self.assertGreaterEqual(estimate, used, f"{source} -> {fmt} w={width}: estimate below the real peak")
        self.assertLessEqual(estimate, 3 * used + 24 * MiB, f"{source} -> {fmt} w={width}: estimate far above")

    def test_every_source_to_every_format(self):
        for source in self.src:
            for fmt in ("avif", "webp", "jpeg", "png"):
                with self.subTest(source=source, fmt=fmt):
                    self.check(source, 800, fmt)

    def test_large_outputs(self):
        for source, width, fmt in (("png 4000x3000", 2048, "avif"), ("png 4000x3000", 3840, "webp"),
                                   ("jpeg 4000x3000 progressive", 1920, "avif"),
                                   ("jpeg 4000x3000 progressive", 3840, "png"),
                                   ("avif 1600x1200", 1600, "jpeg"), ("webp 2048x1536", 2048, "avif")):
            with self.subTest(source=source, width=width, fmt=fmt):
                self.check(source, width, fmt)


if __name__ == "__main__":
    unittest.main(verbosity=2)
