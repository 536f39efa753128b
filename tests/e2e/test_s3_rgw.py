"""STORAGE_BACKEND=s3 against a real S3 server: Ceph's radosgw from Debian,
started by the test (rgw_harness.py), with the fake Notion API and fake file
host of tests/fakes. radosgw verifies SigV4 and conditional PUTs itself;
writes are counted from its access log.

test_s3.py (s3rver behind a SigV4-checking gate) stays for what only a gate
can do: damaging object bodies on the way and recording every signature check.
"""

import hashlib
import os
import subprocess
import sys
import tempfile
import shutil
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import rgw_harness as rgw  # noqa: E402

FAKES = None
RGW = None


def setUpModule():
    global FAKES, RGW
    missing = rgw.available()
    if missing:
        raise unittest.SkipTest(missing)
    FAKES = h.Fakes()
    RGW = rgw.Rgw()


def tearDownModule():
    if RGW:
        RGW.stop()
    if FAKES:
        FAKES.stop()


def s3_env(**extra):
    env = {
        "STORAGE_BACKEND": "s3",
        "S3_BUCKET": rgw.BUCKET,
        "S3_REGION": rgw.REGION,
        "S3_ENDPOINT": RGW.endpoint,
        "S3_ACCESS_KEY": rgw.ACCESS_KEY,
        "S3_SECRET_KEY": rgw.SECRET_KEY,
    }
    env.update(extra)
    return env


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def object_path(hash_):
    return f"/{rgw.BUCKET}/{hash_[0:2]}/{hash_[2:4]}/{hash_}"


class Radosgw(unittest.TestCase):
    def setUp(self):
        FAKES.reset()
        if RGW.rgw is None:
            RGW.start_rgw()
        self.origins = []

    def tearDown(self):
        for o in self.origins:
            o.stop()

    def origin(self, **env):
        o = h.Origin(FAKES, **s3_env(**env))
        self.origins.append(o)
        return o

    def test_herd_of_100_makes_one_source_put_and_one_variant_put(self):
        ws, block, _, name = FAKES.image(h.png(800, 600))
        FAKES.faults(s3={"latency_ms": 300})
        o = self.origin()
        RGW.reset_log()  # start-up's bucket check is not part of the herd
        target = f"/img/{ws}/{block}/{name}?w=320"
        replies = h.concurrently(lambda: o.get(target), [()] * 100)
        self.assertEqual([getattr(r, "status", r) for r in replies], [200] * 100)
        self.assertEqual(len({r.body for r in replies}), 1)
        self.assertEqual(h.measure(replies[0].body), ("png", 320, 240))
        variant = sha(replies[0].header("x-cache-key"))
        source = sha(f"v1/*/{block}/source")
        # Storage writes happen after the answers (write-behind): wait for them to land.
        h.wait_until(lambda: RGW.count("PUT") >= 4, timeout=20, step=0.2)
        # radosgw's own log: one PUT of each object, each with its purge marker, nothing else written.
        self.assertEqual(RGW.count("PUT", "object", path=object_path(variant)), 1)
        self.assertEqual(RGW.count("PUT", "object", path=object_path(source)), 1)
        self.assertEqual(RGW.count("PUT", "object"), 2)
        self.assertEqual(RGW.count("PUT", "index"), 2)
        self.assertEqual(RGW.count("PUT"), 4)
        self.assertEqual(RGW.count("DELETE"), 0)
        c = FAKES.counters()
        self.assertEqual((c["notion_calls"], c["s3_downloads"]), (1, 1))
        names = set(RGW.list())
        self.assertIn(object_path(variant)[len(rgw.BUCKET) + 2:], names)
        self.assertIn(object_path(source)[len(rgw.BUCKET) + 2:], names)
        self.assertEqual(len(RGW.list(f"index/{sha(f'v1/*/{block}/')}/")), 2)
        # A second instance with empty memory serves it from radosgw.
        FAKES.reset()
        other = self.origin()
        r = other.get(target)
        self.assertEqual((r.status, r.header("x-cache-tier"), r.body), (200, "STORAGE", replies[0].body))
        self.assertEqual(FAKES.counters()["notion_calls"], 0)

    def test_two_instances_never_both_write_an_object(self):
        # Without a fleet-wide lease both instances fetch and transform (the
        # 300 ms download keeps both ahead of the other's write); the store's
        # conditional PUT (If-None-Match: *) lets exactly one write each object.
        ws, block, _, name = FAKES.image(h.png(640, 480, seed=3))
        FAKES.faults(s3={"latency_ms": 300})
        a, b = self.origin(), self.origin()
        RGW.reset_log()
        target = f"/img/{ws}/{block}/{name}?w=200"
        replies = h.concurrently(lambda o: o.get(target), [(a,)] * 20 + [(b,)] * 20)
        self.assertEqual([getattr(r, "status", r) for r in replies], [200] * 40)
        self.assertEqual(len({r.body for r in replies}), 1)
        self.assertEqual(FAKES.counters()["s3_downloads"], 2)  # one per instance: both raced to write
        variant = sha(replies[0].header("x-cache-key"))
        source = sha(f"v1/*/{block}/source")
        h.wait_until(lambda: RGW.count("PUT", "object") >= 4, timeout=20, step=0.2)  # written after the answers
        for obj in (variant, source):
            self.assertEqual(RGW.count("PUT", path=object_path(obj), status=200), 1, obj)
            self.assertEqual(RGW.count("PUT", path=object_path(obj), status=412), 1, obj)
        self.assertEqual(RGW.count("PUT", "object", status=200), 2)
        # Each instance still counts its write as done (the object is stored, verified by HEAD).
        for o in (a, b):
            m = o.metrics()
            self.assertEqual(m['nic_storage_writes_total{kind="variant"}'], 1)
            self.assertEqual(m['nic_storage_writes_total{kind="source"}'], 1)
            self.assertNotIn('nic_storage_write_failures_total{kind="source"}', m)

    def test_purge_lists_past_1000_markers(self):
        ws, block, _, name = FAKES.image(h.png(300, 200, seed=5))
        o = self.origin()
        for w in (64, 128):
            self.assertEqual(o.get(f"/img/{ws}/{block}/{name}?w={w}").status, 200)
        group = sha(f"v1/*/{block}/")
        o.metrics()  # waits until the write-behind has landed (the markers are written after the answers)
        self.assertEqual(len(RGW.list(f"index/{group}/")), 3)
        # 1100 more entries of the group (markers and their objects), as many
        # variants would leave: radosgw lists at most 1000 names a page.
        extra = [sha(f"extra-{group}-{i}") for i in range(1100)]
        RGW.put_many([f"index/{group}/{x}" for x in extra] + [f"{x[0:2]}/{x[2:4]}/{x}" for x in extra[:50]],
                     body=b"")
        self.assertEqual(len(RGW.list(f"index/{group}/")), 1103)
        other_ws, other_block, _, other_name = FAKES.image(h.png(100, 100, seed=9))
        self.assertEqual(o.get(f"/img/{other_ws}/{other_block}/{other_name}?w=64").status, 200)
        r = o.get(f"/api/v1/cache?url=/img/{ws}/{block}/{name}", {"X-API-Key": h.API_KEY}, method="DELETE")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["removed"], 1103)
        self.assertEqual(RGW.list(f"index/{group}/"), [])
        left = set(RGW.list())
        self.assertNotIn(object_path(sha(f"v1/*/{block}/source"))[len(rgw.BUCKET) + 2:], left)
        self.assertFalse([x for x in extra[:50] if f"{x[0:2]}/{x[2:4]}/{x}" in left])
        # The other image's group is untouched.
        self.assertEqual(len(RGW.list(f"index/{sha(f'v1/*/{other_block}/')}/")), 2)

    def test_wrong_secret_is_a_clear_start_up_error(self):
        env = dict(os.environ)
        env.update(s3_env(S3_SECRET_KEY="not-the-secret"))
        cache = tempfile.mkdtemp(prefix="nic-e2e-")
        env.update({"PORT": "0", "HOST": "127.0.0.1", "CACHE_DIR": cache})
        RGW.reset_log()
        try:
            p = subprocess.run([h.ORIGIN_BIN], env=env, capture_output=True, text=True, timeout=60)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("S3_ACCESS_KEY/S3_SECRET_KEY", p.stderr)
        self.assertIn("403 SignatureDoesNotMatch", p.stderr)
        self.assertEqual([s for _, _, s in RGW.requests()], [403])  # radosgw refused the one listing

        env["S3_ACCESS_KEY"] = "NOSUCHKEY"
        env["S3_SECRET_KEY"] = rgw.SECRET_KEY
        p = subprocess.run([h.ORIGIN_BIN], env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("InvalidAccessKeyId", p.stderr)

    def test_radosgw_down_mid_herd_every_request_answered(self):
        ws, block, _, name = FAKES.image(h.png(640, 480, seed=7))
        FAKES.faults(s3={"latency_ms": 1000})
        o = self.origin()
        self.assertEqual(o.get("/health").status, 200)
        target = f"/img/{ws}/{block}/{name}?w=256"
        results = []
        herd = threading.Thread(target=lambda: results.extend(h.concurrently(lambda: o.get(target), [()] * 50)))
        herd.start()
        # The herd's one download has started (so every store read missed): S3 goes away.
        self.assertTrue(h.wait_until(lambda: FAKES.counters()["s3_requests"] >= 1, timeout=30))
        RGW.stop_rgw()
        herd.join()
        self.assertEqual([getattr(r, "status", r) for r in results], [200] * 50)
        self.assertEqual(len({r.body for r in results}), 1)
        self.assertEqual(h.measure(results[0].body), ("png", 256, 192))
        self.assertEqual(FAKES.counters()["s3_downloads"], 1)
        m = o.metrics()
        self.assertEqual(m['nic_storage_write_failures_total{kind="variant"}'], 1)
        self.assertEqual(m['nic_storage_write_failures_total{kind="source"}'], 1)
        health = o.get("/health")
        self.assertEqual((health.status, health.json()["status"]), (200, "degraded"))  # still serving
        # Another width while S3 is down: served from upstream.
        FAKES.faults(s3={"latency_ms": 0})
        r = o.get(f"/img/{ws}/{block}/{name}?w=128")
        self.assertEqual((r.status, h.measure(r.body)), (200, ("png", 128, 96)))
        # radosgw back on the same port: health recovers (background probe), writes resume.
        RGW.start_rgw()
        self.assertTrue(h.wait_until(lambda: o.get("/health").json()["status"] == "ok", timeout=30))
        RGW.reset_log()
        self.assertEqual(o.get(f"/img/{ws}/{block}/{name}?w=64").status, 200)
        h.wait_until(lambda: RGW.count("PUT", "object", status=200) >= 2, timeout=20, step=0.2)
        self.assertEqual(RGW.count("PUT", "object", status=200), 2)  # the variant, and the source again


if __name__ == "__main__":
    if rgw.available():
        print(f"SKIPPED: {rgw.available()}")
        sys.exit(77)
    unittest.main()
