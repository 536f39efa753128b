"""STORAGE_BACKEND=s3: nic-origin against s3rver (a real S3-compatible server,
npm) behind a SigV4-checking gate (s3_harness.py), and the fake Notion API and
fake S3 file host of tests/fakes."""

import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import s3_harness as s3  # noqa: E402

FAKES = None
S3RVER = None
GATE = None


def setUpModule():
    global FAKES, S3RVER, GATE
    if not s3.available():
        raise unittest.SkipTest(f"s3rver is not installed in {s3.NODE_MODULES} (run `npm ci` at the repository root)")
    FAKES, S3RVER, GATE = s3.start_stack(h.Fakes)


def tearDownModule():
    s3.stop_all(GATE, S3RVER, FAKES)


def s3_env(**extra):
    env = {
        "STORAGE_BACKEND": "s3",
        "S3_BUCKET": s3.BUCKET,
        "S3_REGION": s3.REGION,
        "S3_ENDPOINT": GATE.endpoint,
        "S3_ACCESS_KEY": s3.ACCESS_KEY,
        "S3_SECRET_KEY": s3.SECRET_KEY,
    }
    env.update(extra)
    return env


class S3Backend(unittest.TestCase):
    def setUp(self):
        FAKES.reset()
        if GATE.server is None:
            GATE.restart()
        GATE.reset()
        self.origins = []

    def tearDown(self):
        for o in self.origins:
            o.stop()
        self.assertEqual(GATE.rejected, [], "every request the origin sent was correctly signed")

    def origin(self, **env):
        o = h.Origin(FAKES, **s3_env(**env))
        self.origins.append(o)
        return o

    def objects_of(self, hashes):
        names = set(s3.list_bucket(GATE))
        return [x for x in hashes if f"{x[0:2]}/{x[2:4]}/{x}" in names]

    def test_herd_of_100_writes_the_variant_and_the_source_once(self):
        ws, block, _, name = FAKES.image(h.png(800, 600))
        FAKES.faults(s3={"latency_ms": 300})
        o = self.origin()
        target = f"/img/{ws}/{block}/{name}?w=320"
        GATE.reset()  # start-up's bucket check is not part of the herd
        replies = h.concurrently(lambda: o.get(target), [()] * 100)
        self.assertEqual([getattr(r, "status", r) for r in replies], [200] * 100)
        self.assertEqual(len({r.body for r in replies}), 1)
        self.assertEqual(h.measure(replies[0].body), ("png", 320, 240))
        # Storage writes happen after the answers (write-behind): wait for them to land.
        h.wait_until(lambda: GATE.count("PUT") >= 4, timeout=20, step=0.1)
        # Exactly one PUT of the variant's bytes and one of the source's, each
        # with its purge marker; nothing else written.
        self.assertEqual(GATE.count("PUT", "object"), 2)
        self.assertEqual(GATE.count("PUT", "index"), 2)
        self.assertEqual(GATE.count("PUT"), 4)
        c = FAKES.counters()
        self.assertEqual((c["notion_calls"], c["s3_downloads"]), (1, 1))
        m = o.metrics()
        self.assertEqual(m['nic_storage_writes_total{kind="variant"}'], 1)
        self.assertEqual(m['nic_storage_writes_total{kind="source"}'], 1)
        key = replies[0].header("x-cache-key")
        variant_hash = _sha(key)
        source_hash = _sha(f"v1/*/{block}/source")
        self.assertEqual(self.objects_of([variant_hash, source_hash]), [variant_hash, source_hash])
        self.assertEqual(len(s3.list_bucket(GATE, f"index/{_sha(f'v1/*/{block}/')}/")), 2)

    def test_restart_with_empty_cache_dir_and_memory_serves_from_s3(self):
        ws, block, _, name = FAKES.image(h.png(400, 300))
        first = self.origin()
        a = first.get(f"/img/{ws}/{block}/{name}?w=256")
        self.assertEqual((a.status, a.header("x-cache-tier")), (200, "ORIGIN"))
        first.stop()
        # The filesystem is not used with s3: the first origin's CACHE_DIR stays empty.
        self.assertEqual(_files_under(first.cache_dir), [])
        FAKES.reset()  # counters to zero, and the image is gone upstream
        GATE.reset()

        second = self.origin()  # a fresh, empty CACHE_DIR and an empty memory tier
        b = second.get(f"/img/{ws}/{block}/{name}?w=256")
        self.assertEqual((b.status, b.header("x-cache-tier"), b.header("x-cache")), (200, "STORAGE", "HIT"))
        self.assertEqual(b.body, a.body)
        self.assertEqual(b.header("etag"), a.header("etag"))
        self.assertEqual(b.header("content-type"), a.header("content-type"))
        self.assertEqual(b.header("x-original-size"), a.header("x-original-size"))
        # A new width comes from the stored source, still without upstream traffic.
        c = second.get(f"/img/{ws}/{block}/{name}?w=128")
        self.assertEqual((c.status, h.measure(c.body)), (200, ("png", 128, 96)))
        counters = FAKES.counters()
        self.assertEqual((counters["notion_calls"], counters["s3_requests"]), (0, 0))
        self.assertEqual(GATE.count("GET", "object"), 3)  # variant 256 hit; variant 128 miss; source hit
        h.wait_until(lambda: GATE.count("PUT", "object") >= 1, timeout=20, step=0.1)
        self.assertEqual(GATE.count("PUT", "object"), 1)  # only the new 128 variant
        d = second.get(f"/img/{ws}/{block}/{name}?w=256")
        self.assertEqual(d.header("x-cache-tier"), "MEMORY")

    def test_objects_over_one_mib_round_trip(self):
        data = _noise_png(900, 700)  # incompressible: the source and the variant are > 1 MiB
        self.assertGreater(len(data), 1 << 20)
        ws, block, _, name = FAKES.image(data)
        first = self.origin()
        a = first.get(f"/img/{ws}/{block}/{name}?w=1024&fmt=png")
        self.assertEqual((a.status, h.measure(a.body)), (200, ("png", 900, 700)))
        self.assertGreater(len(a.body), 1 << 20)
        first.stop()
        second = self.origin()
        b = second.get(f"/img/{ws}/{block}/{name}?w=1024&fmt=png")
        self.assertEqual((b.status, b.header("x-cache-tier")), (200, "STORAGE"))
        self.assertEqual(b.body, a.body)
        c = second.get(f"/img/{ws}/{block}/{name}?w=640&fmt=png")  # from the stored > 1 MiB source
        self.assertEqual((c.status, h.measure(c.body)), (200, ("png", 640, 498)))
        self.assertEqual(FAKES.counters()["s3_downloads"], 1)

    def test_purge_deletes_the_source_and_every_variant(self):
        ws, block, _, name = FAKES.image(h.png(300, 200))
        o = self.origin()
        for w in (64, 128, 256):
            self.assertEqual(o.get(f"/img/{ws}/{block}/{name}?w={w}").status, 200)
        group = _sha(f"v1/*/{block}/")
        h.wait_until(lambda: len(s3.list_bucket(GATE, f"index/{group}/")) >= 4, timeout=20, step=0.1)  # write-behind
        self.assertEqual(len(s3.list_bucket(GATE, f"index/{group}/")), 4)  # 3 variants + the source
        other_ws, other_block, _, other_name = FAKES.image(h.png(100, 100, seed=9))
        self.assertEqual(o.get(f"/img/{other_ws}/{other_block}/{other_name}?w=64").status, 200)
        other_group = _sha(f"v1/*/{other_block}/")
        h.wait_until(lambda: len(s3.list_bucket(GATE, f"index/{other_group}/")) >= 2, timeout=20, step=0.1)
        before = set(s3.list_bucket(GATE))

        r = o.get(f"/api/v1/cache?url=/img/{ws}/{block}/{name}", {"X-API-Key": h.API_KEY}, method="DELETE")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["removed"], 4)
        after = set(s3.list_bucket(GATE))
        self.assertEqual(len(before - after), 8)  # 4 objects and their 4 markers
        self.assertEqual(s3.list_bucket(GATE, f"index/{group}/"), [])
        self.assertTrue(all(not n.endswith(_sha(f"v1/*/{block}/source")) for n in after))
        # The other image is untouched; the purged one is fetched again.
        self.assertEqual(o.get(f"/img/{other_ws}/{other_block}/{other_name}?w=64").header("x-cache-tier"), "MEMORY")
        downloads = FAKES.counters()["s3_downloads"]
        again = o.get(f"/img/{ws}/{block}/{name}?w=64")
        self.assertEqual((again.status, again.header("x-cache-tier")), (200, "ORIGIN"))
        self.assertEqual(FAKES.counters()["s3_downloads"], downloads + 1)

    def test_store_down_images_still_served_health_degraded(self):
        o = self.origin()
        ws, block, _, name = FAKES.image(h.png(320, 240))
        self.assertEqual(o.get("/health").json()["status"], "ok")
        GATE.stop()
        r = o.get(f"/img/{ws}/{block}/{name}?w=128")
        self.assertEqual((r.status, h.measure(r.body)), (200, ("png", 128, 96)))
        self.assertEqual(r.header("x-cache-tier"), "ORIGIN")
        health = o.get("/health")
        self.assertEqual(health.status, 200)  # degraded, still serving: a load balancer keeps it
        self.assertEqual(health.json()["status"], "degraded")
        self.assertEqual(health.json()["storage"]["backend"], "s3")
        m = o.metrics()
        self.assertEqual(m['nic_storage_write_failures_total{kind="variant"}'], 1)
        self.assertEqual(m['nic_storage_write_failures_total{kind="source"}'], 1)
        self.assertNotIn('nic_storage_writes_total{kind="variant"}', m)
        # Repeats come from memory; another width from upstream again (nothing stored).
        self.assertEqual(o.get(f"/img/{ws}/{block}/{name}?w=128").header("x-cache-tier"), "MEMORY")
        self.assertEqual(o.get(f"/img/{ws}/{block}/{name}?w=64").status, 200)
        # Its write (after the answer, write-behind) fails too before the store comes back.
        self.assertTrue(h.wait_until(
            lambda: o.metrics()['nic_storage_write_failures_total{kind="variant"}'] == 2, timeout=15))
        # The store comes back: health recovers (background probe) and writes resume.
        GATE.restart()
        self.assertTrue(h.wait_until(lambda: o.get("/health").json()["status"] == "ok", timeout=15))
        self.assertEqual(o.get(f"/img/{ws}/{block}/{name}?w=32").status, 200)
        self.assertEqual(o.metrics()['nic_storage_writes_total{kind="variant"}'], 1)

    def test_damaged_objects_are_misses_never_served(self):
        data = h.png(400, 300)
        ws, block, file_id, name = FAKES.image(data)
        first = self.origin()
        good = first.get(f"/img/{ws}/{block}/{name}?w=256")
        self.assertEqual(good.status, 200)
        first.stop()
        for fault in ("truncate", "corrupt"):
            GATE.reset()
            GATE.fault = fault
            FAKES.reset()
            FAKES.add_file(ws, file_id, name, data)  # the upstream again
            FAKES.add_block(block, ws, file_id, name)
            o = self.origin()
            r = o.get(f"/img/{ws}/{block}/{name}?w=256")
            self.assertEqual(r.status, 200, fault)
            self.assertEqual(r.header("x-cache-tier"), "ORIGIN", fault)  # the stored copies were refused
            self.assertEqual(r.body, good.body, fault)
            self.assertEqual(FAKES.counters()["s3_downloads"], 1, fault)
            o.stop()
            self.origins.remove(o)

    def test_wrong_secret_is_a_clear_start_up_error(self):
        proc_env = dict(os.environ)
        proc_env.update({k: str(v) for k, v in s3_env(S3_SECRET_KEY="not-the-secret").items()})
        proc_env.update({"PORT": "0", "HOST": "127.0.0.1", "CACHE_DIR": tempfile.mkdtemp(prefix="nic-e2e-")})
        import subprocess
        p = subprocess.run([h.ORIGIN_BIN], env=proc_env, capture_output=True, text=True, timeout=30)
        shutil.rmtree(proc_env["CACHE_DIR"], ignore_errors=True)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("S3_ACCESS_KEY/S3_SECRET_KEY", p.stderr)
        self.assertIn("SignatureDoesNotMatch", p.stderr)
        self.assertEqual(len(GATE.rejected), 1)
        GATE.reset()  # the rejection was the point

        proc_env["S3_ACCESS_KEY"] = "NOSUCHKEY"
        proc_env["S3_SECRET_KEY"] = s3.SECRET_KEY
        p = subprocess.run([h.ORIGIN_BIN], env=proc_env, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("InvalidAccessKeyId", p.stderr)
        GATE.reset()

        proc_env.update({"S3_ACCESS_KEY": s3.ACCESS_KEY, "S3_BUCKET": "no-such-bucket"})
        p = subprocess.run([h.ORIGIN_BIN], env=proc_env, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("S3_BUCKET: no bucket 'no-such-bucket'", p.stderr)

        del proc_env["S3_BUCKET"]
        p = subprocess.run([h.ORIGIN_BIN, "--check-config"], env=proc_env, capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("S3_BUCKET", p.stderr)

    def test_check_config_masks_the_keys(self):
        proc_env = dict(os.environ)
        proc_env.update({k: str(v) for k, v in s3_env().items()})
        import subprocess
        p = subprocess.run([h.ORIGIN_BIN, "--check-config"], env=proc_env, capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"S3_ENDPOINT={GATE.endpoint}", p.stdout)
        self.assertNotIn(s3.SECRET_KEY, p.stdout)
        self.assertNotIn(f"S3_ACCESS_KEY={s3.ACCESS_KEY}", p.stdout)


def _sha(text):
    import hashlib
    return hashlib.sha256(text.encode()).hexdigest()


def _noise_png(width, height):
    import struct
    import zlib
    raw = b"".join(b"\x00" + os.urandom(width * 3) for _ in range(height))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b"")


def _files_under(path):
    out = []
    for root, _, files in os.walk(path):
        out.extend(os.path.join(root, f) for f in files)
    return out


if __name__ == "__main__":
    if not s3.available():
        # CTest reports exit code 77 as skipped (SKIP_RETURN_CODE).
        print(f"SKIPPED: s3rver is not installed in {s3.NODE_MODULES}; run `npm ci` at the repository root")
        sys.exit(77)
    unittest.main()
