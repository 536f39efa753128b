#!/usr/bin/env python3
"""`nic transform` end to end: exit codes, error codes on stderr, and the
output measured (format, dimensions, pixel colours), never compared by bytes.

The input PNG is written here with zlib; outputs are turned back into a PNG by
`nic transform OUT back.png --fmt png` and decoded here (every filter type)."""
import os
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

NIC = os.environ.get("NIC_CLI", "nic")


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def make_png(width, height, pixel, header_only_size=None):
    """An 8-bit RGB PNG; pixel(x, y) -> (r, g, b). header_only_size=(w, h)
    writes that size in IHDR over one row of data (a pixel bomb's header)."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            rows.extend(pixel(x, y))
    w, h = header_only_size or (width, height)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(rows))) + chunk(b"IEND", b""))


def decode_png(data):
    """Not interlaced; 8-bit grey, grey+alpha, RGB, RGBA, or a 1/2/4/8-bit palette
    (with tRNS) -> (w, h, channels (3 or 4), rows of RGB(A) bytes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    at, idat, ihdr, plte, trns = 8, b"", None, b"", b""
    while at < len(data):
        (n,) = struct.unpack(">I", data[at:at + 4])
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"PLTE":
            plte = body
        elif kind == b"tRNS":
            trns = body
        at += 12 + n
    w, h, depth, colour, _, _, interlace = ihdr
    samples = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    assert interlace == 0 and (depth == 8 or (colour == 3 and depth in (1, 2, 4))), ihdr
    bpp = max(1, samples * depth // 8)
    stride = (w * samples * depth + 7) // 8
    raw, rows, prev = zlib.decompress(idat), [], bytearray(stride)
    out_bpp = 4 if colour in (4, 6) or (colour == 3 and trns) else 3
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            else:
                assert f == 0, f"filter {f}"
        prev = line
        px = bytearray()
        for x in range(w):
            if colour == 3:
                bit = x * depth
                index = (line[bit // 8] >> (8 - depth - bit % 8)) & ((1 << depth) - 1)
                px += plte[index * 3:index * 3 + 3]
                if out_bpp == 4:
                    px.append(trns[index] if index < len(trns) else 255)
            elif colour in (0, 4):
                g = line[x * samples]
                px += bytes((g, g, g)) + (bytes((line[x * 2 + 1],)) if colour == 4 else b"")
            else:
                px += line[x * samples:(x + 1) * samples]
        rows.append(bytes(px))
    return w, h, out_bpp, rows


class TransformCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = cls.tmp.name
        # 120x80: red on the left half, blue on the right.
        cls.source = cls.path("source.png")
        with open(cls.source, "wb") as f:
            f.write(make_png(120, 80, lambda x, y: (220, 20, 20) if x < 60 else (20, 20, 220)))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    @classmethod
    def path(cls, name):
        return os.path.join(cls.dir, name)

    def nic(self, *args):
        return subprocess.run([NIC, "transform", *args], capture_output=True, text=True, timeout=60)

    def write(self, name, data):
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def back_to_png(self, out):
        back = out + ".back.png"
        r = self.nic(out, back, "--fmt", "png")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(back, "rb") as f:
            return decode_png(f.read())

    def test_each_format_resizes_and_keeps_colours(self):
        magic = {"webp": (8, b"WEBP"), "jpeg": (0, b"\xff\xd8\xff"), "png": (1, b"PNG"), "avif": (4, b"ftyp")}
        for fmt, (at, sig) in magic.items():
            with self.subTest(fmt=fmt):
                out = self.path(f"out.{fmt}")
                # 64 is in the default ALLOWED_WIDTHS (widths snap up to it).
                r = self.nic(self.source, out, "--w", "64", "--fmt", fmt)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stderr, "")
                self.assertIn("64x43", r.stdout)
                with open(out, "rb") as f:
                    data = f.read()
                self.assertEqual(data[at:at + len(sig)], sig)
                w, h, bpp, rows = self.back_to_png(out)
                self.assertEqual((w, h), (64, 43))
                left = rows[20][10 * bpp:10 * bpp + 3]
                right = rows[20][54 * bpp:54 * bpp + 3]
                self.assertTrue(left[0] > 170 and left[2] < 70, f"left pixel {tuple(left)}")
                self.assertTrue(right[2] > 170 and right[0] < 70, f"right pixel {tuple(right)}")

    def test_fit_modes_give_the_contract_sizes(self):
        # 120x80 into a 32x32 box (32 is an allowed width).
        for fit, size in {"cover": "32x32", "contain": "32x32", "fill": "32x32", "inside": "32x21",
                          "outside": "48x32"}.items():
            with self.subTest(fit=fit):
                out = self.path(f"fit-{fit}.png")
                r = self.nic(self.source, out, "--w", "32", "--h", "32", "--fit", fit, "--fmt", "png")
                self.assertEqual(r.returncode, 0, r.stderr)
                w, h, _, _ = self.back_to_png(out)
                self.assertEqual(f"{w}x{h}", size)

    def assert_refused(self, source_bytes, code):
        src = self.write("bad.bin", source_bytes)
        out = self.path("bad-out.webp")
        if os.path.exists(out):
            os.remove(out)
        r = self.nic(src, out, "--w", "64", "--fmt", "webp")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertTrue(r.stderr.startswith(code + ":"), r.stderr)
        self.assertFalse(os.path.exists(out), "no output is written for refused input")

    def test_garbage_is_unsupported(self):
        self.assert_refused(bytes((i * 37 + 11) % 256 for i in range(3000)), "UNSUPPORTED_FORMAT")
        self.assert_refused(b"", "UNSUPPORTED_FORMAT")

    def test_broken_png_is_corrupt(self):
        good = make_png(50, 50, lambda x, y: (x, y, 0))
        self.assert_refused(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "CORRUPT_IMAGE")
        self.assert_refused(good[: len(good) // 2], "CORRUPT_IMAGE")
        flipped = bytearray(good)
        flipped[good.index(b"IDAT") + 12] ^= 0xFF  # CRC no longer matches
        self.assert_refused(bytes(flipped), "CORRUPT_IMAGE")

    def test_pixel_bomb_is_refused_from_the_header(self):
        bomb = make_png(1, 1, lambda x, y: (0, 0, 0), header_only_size=(30000, 30000))
        self.assert_refused(bomb, "TOO_MANY_PIXELS")

    def test_bad_parameter_is_invalid_param(self):
        r = self.nic(self.source, self.path("p.webp"), "--w", "abc")
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith("INVALID_PARAM:"), r.stderr)

    def test_missing_input_file(self):
        r = self.nic(self.path("no-such-file.png"), self.path("x.webp"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot read", r.stderr)

    def test_usage_errors_exit_2(self):
        for args in ([], [self.source], [self.source, self.path("u.webp"), "--bogus", "1"],
                     [self.source, self.path("u.webp"), "--w"]):
            with self.subTest(args=args):
                r = self.nic(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("usage: nic transform", r.stderr)

    def test_help_exits_0(self):
        r = self.nic("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: nic transform", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
