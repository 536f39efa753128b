"""The fleet over Redis (REDIS_URL): three nic-origin processes sharing one S3
bucket (s3rver behind the SigV4 gate of s3_harness.py) and one Debian
redis-server, a herd spread round-robin over the three.

With Redis: one Notion call, one download, one transform, one write of the
variant and one of the source for the whole fleet. Without it (the contrast):
each instance does the work once, three of each. Redis killed in the middle
of a herd: every request answered 200 with the right image."""

import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import redis_harness as rh  # noqa: E402
import s3_harness as s3  # noqa: E402

FAKES = None
S3RVER = None
GATE = None
HERD = 60


def setUpModule():
    global FAKES, S3RVER, GATE
    if not s3.available():
        raise unittest.SkipTest(f"s3rver is not installed in {s3.NODE_MODULES} (run `npm ci` at the repository root)")
    if not rh.available():
        raise unittest.SkipTest("redis-server is not installed (scripts/deps.sh installs it)")
    FAKES, S3RVER, GATE = s3.start_stack(h.Fakes)


def tearDownModule():
    s3.stop_all(GATE, S3RVER, FAKES)


def total(origins, name, labels=None):
    """A metric summed over the instances (and over its labels unless given)."""
    out = 0
    for o in origins:
        for k, v in o.metrics().items():
            if (labels is None and (k == name or k.startswith(name + "{"))) or k == f"{name}{{{labels}}}":
                out += v
    return int(out)


class Fleet(unittest.TestCase):
    def setUp(self):
        FAKES.reset()
        GATE.reset()
        self.redis = rh.Redis()
        self.origins = []

    def tearDown(self):
        for o in self.origins:
            o.stop()
        self.redis.stop()
        self.assertEqual(GATE.rejected, [], "every request the origins sent was correctly signed")

    def fleet(self, redis=True, n=3, **extra):
        env = {
            "STORAGE_BACKEND": "s3",
            "S3_BUCKET": s3.BUCKET,
            "S3_REGION": s3.REGION,
            "S3_ENDPOINT": GATE.endpoint,
            "S3_ACCESS_KEY": s3.ACCESS_KEY,
            "S3_SECRET_KEY": s3.SECRET_KEY,
        }
        if redis:
            env["REDIS_URL"] = self.redis.url
        env.update(extra)
        origins = [h.Origin(FAKES, **env) for _ in range(n)]
        self.origins.extend(origins)
        if redis:
            # Wake-ups need every instance's subscription live (PUBSUB NUMSUB).
            self.assertTrue(h.wait_until(lambda: self.redis.numsub("nic:fleet:done") == n, timeout=10))
        return origins

    def herd(self, origins, target, n=HERD):
        """n concurrent GETs of target, request i to origin i % len(origins)."""
        return h.concurrently(lambda i: origins[i % len(origins)].get(target), [(i,) for i in range(n)])

    def assert_all_ok(self, replies, size):
        errors = [r for r in replies if isinstance(r, Exception)]
        self.assertEqual(errors, [])
        self.assertEqual([r.status for r in replies], [200] * len(replies))
        self.assertEqual(len({r.body for r in replies}), 1, "every instance serves the same bytes")
        self.assertEqual(h.measure(replies[0].body), size)

    def test_herd_over_three_instances_costs_one_of_each_with_redis(self):
        ws, block, _, name = FAKES.image(h.png(800, 600))
        FAKES.faults(s3={"latency_ms": 300})  # keeps the leader busy while the herd arrives everywhere
        origins = self.fleet(redis=True)
        GATE.reset()  # start-up's bucket checks are not part of the herd
        replies = self.herd(origins, f"/img/{ws}/{block}/{name}?w=320")
        self.assert_all_ok(replies, ("png", 320, 240))
        c = FAKES.counters()
        self.assertEqual((c["notion_calls"], c["s3_downloads"]), (1, 1))
        self.assertEqual(total(origins, "nic_notion_api_calls_total"), 1)
        self.assertEqual(total(origins, "nic_upstream_fetches_total"), 1)
        self.assertEqual(total(origins, "nic_transforms_total"), 1)
        self.assertEqual(total(origins, "nic_storage_writes_total", 'kind="variant"'), 1)
        self.assertEqual(total(origins, "nic_storage_writes_total", 'kind="source"'), 1)
        self.assertEqual(GATE.count("PUT", "object"), 2, "one PUT of the variant, one of the source")
        # One instance led both leases (the variant's, then its source's); the
        # other two followed the variant's and read it from S3.
        self.assertEqual(total(origins, "nic_fleet_leases_total", 'outcome="led"'), 2)
        self.assertEqual(total(origins, "nic_fleet_leases_total", 'outcome="followed"'), 2)
        self.assertEqual(total(origins, "nic_fleet_leases_total", 'outcome="fallback"'), 0)
        self.assertEqual(total(origins, "nic_fleet_leases_total", 'outcome="takeover"'), 0)
        self.assertEqual(total(origins, "nic_fleet_redis_errors_total"), 0)
        self.assertGreaterEqual(total(origins, "nic_fleet_wakeups_total"), 1, "followers woken by pub/sub")
        tiers = [r.header("x-cache-tier") for r in replies]
        self.assertEqual(tiers.count("ORIGIN"), 1)
        self.assertEqual(tiers.count("STORAGE"), 2, "each follower instance's leader read it from S3")
        self.assertEqual(tiers.count("COALESCED"), HERD - 3)
        # Every lease was released: no lease key left in Redis.
        self.assertEqual(self.redis.command("KEYS", "nic:lease:*"), "*0")

    def test_other_widths_on_other_instances_share_one_download(self):
        ws, block, _, name = FAKES.image(h.png(800, 600))
        FAKES.faults(s3={"latency_ms": 300})
        origins = self.fleet(redis=True)
        widths = [64, 128, 256]
        replies = h.concurrently(lambda i: origins[i % 3].get(f"/img/{ws}/{block}/{name}?w={widths[i % 3]}"),
                                 [(i,) for i in range(30)])
        self.assertEqual([getattr(r, "status", r) for r in replies], [200] * 30)
        for i, r in enumerate(replies):
            self.assertEqual(h.measure(r.body)[1], widths[i % 3])
        c = FAKES.counters()
        self.assertEqual((c["notion_calls"], c["s3_downloads"]), (1, 1), "one source flight for the fleet")
        self.assertEqual(total(origins, "nic_transforms_total"), 3)
        self.assertEqual(total(origins, "nic_storage_writes_total", 'kind="source"'), 1)
        self.assertEqual(total(origins, "nic_storage_writes_total", 'kind="variant"'), 3)
        self.assertEqual(total(origins, "nic_fleet_leases_total", 'outcome="fallback"'), 0)

    def test_without_redis_each_instance_does_the_work_once(self):
        # The contrast: per-process coalescing only. Each of the three makes
        # its own Notion call, download and transform; the store's conditional
        # PUTs still let only one copy of each object in (412 for the others).
        ws, block, _, name = FAKES.image(h.png(800, 600))
        FAKES.faults(s3={"latency_ms": 300})
        origins = self.fleet(redis=False)
        replies = self.herd(origins, f"/img/{ws}/{block}/{name}?w=320")
        self.assert_all_ok(replies, ("png", 320, 240))
        c = FAKES.counters()
        self.assertEqual((c["notion_calls"], c["s3_downloads"]), (3, 3))
        self.assertEqual(total(origins, "nic_transforms_total"), 3)
        self.assertEqual(total(origins, "nic_fleet_leases_total"), 0)  # no fleet metrics without REDIS_URL
        for o in origins:
            self.assertEqual(total([o], "nic_transforms_total"), 1)
            self.assertEqual(total([o], "nic_upstream_fetches_total"), 1)

    def test_rate_limit_per_client_is_the_fleets(self):
        # RATE_LIMIT_PER_MINUTE=10 for one client whose requests go round-robin
        # over three instances. Each instance sends its hits to Redis as they
        # come (nic_fleet_rate_unsent goes back to 0); it judges a hit on the
        # total its last send returned, so it may not have seen the other two
        # instances' latest hits: the fleet admits 10 to 12, not 30.
        ws, block, _, name = FAKES.image(h.png(200, 100))
        for redis, expected in ((True, range(10, 13)), (False, range(30, 31))):
            with self.subTest(redis=redis):
                if not redis:
                    for o in self.origins:
                        o.stop()
                    self.origins = []
                origins = self.fleet(redis=redis, RATE_LIMIT_PER_MINUTE=10)
                # Limits count per calendar minute (unix time / 60): 30 requests that
                # straddle a minute's end would start a fresh count halfway.
                if time.time() % 60 > 45:
                    time.sleep(60.5 - time.time() % 60)
                statuses = []
                for i in range(30):
                    o = origins[i % 3]
                    statuses.append(o.get(f"/img/{ws}/{block}/{name}?w=64").status)
                    if redis:
                        self.assertTrue(h.wait_until(lambda: o.metrics(settled=False)["nic_fleet_rate_unsent"] == 0))
                admitted = statuses.count(200)
                self.assertEqual(statuses.count(429), 30 - admitted)
                self.assertIn(admitted, expected)

    def test_notion_budget_is_per_token_across_the_fleet(self):
        # NOTION_RPS=0.2: one Notion call every 5 s for the token, fleet-wide.
        # Three new images at once, one per instance, each flight with 7.75 s
        # (FOLLOWER_TIMEOUT_MS - 250 ms): slots at 0 and 5 s fit, the third's
        # (10 s) does not: 503 OVERLOADED at once. Without Redis each instance
        # has its own budget: three calls, three 200s.
        for redis, calls, ok in ((True, 2, 2), (False, 3, 3)):
            with self.subTest(redis=redis):
                for o in self.origins:
                    o.stop()
                self.origins = []
                self.redis.restart()  # the token's slot starts afresh
                FAKES.reset()
                images = [FAKES.image(h.png(120, 80, seed=i)) for i in range(3)]
                origins = self.fleet(redis=redis, NOTION_RPS="0.2", FOLLOWER_TIMEOUT_MS=8000,
                                     UPSTREAM_TIMEOUT_MS=5000)
                replies = h.concurrently(lambda i: origins[i].get("/img/{}/{}/{}?w=64".format(*images[i][:2],
                                                                                            images[i][3])),
                                         [(i,) for i in range(3)])
                statuses = sorted(r.status for r in replies)
                self.assertEqual(statuses, sorted([200] * ok + [503] * (3 - ok)))
                self.assertEqual(FAKES.counters()["notion_calls"], calls)
                for r in replies:
                    if r.status == 503:
                        self.assertEqual(r.json()["error"]["code"], "OVERLOADED")

    def test_a_leader_killed_mid_flight_is_taken_over(self):
        # Instance A leads an image (its download is slow); instance B's readers
        # of the same image follow A's lease. A is SIGKILLed mid-download: its
        # leases stop being renewed and expire (10 s), B takes them over, makes
        # the image itself and answers every reader 200. Nothing of A's is left:
        # no lease in Redis, no partial object in S3.
        import signal
        ws, block, _, name = FAKES.image(h.png(800, 600))
        FAKES.faults(s3={"latency_ms": 1500})
        a, b = self.fleet(redis=True, n=2)
        target = f"/img/{ws}/{block}/{name}?w=320"
        lost = []

        def lead_request():
            try:
                lost.append(a.get(target))
            except OSError as e:  # the connection dies with A
                lost.append(e)

        lead = threading.Thread(target=lead_request)
        lead.start()
        self.assertTrue(h.wait_until(lambda: FAKES.counters()["s3_requests"] >= 1, timeout=30, step=0.01))
        replies = [None] * 10

        def read(i):
            replies[i] = b.get(target)

        readers = [threading.Thread(target=read, args=(i,)) for i in range(10)]
        for t in readers:
            t.start()
        # B's readers are waiting on A's lease (B asked Redis, found it held).
        self.assertTrue(h.wait_until(lambda: self.redis.command("KEYS", "nic:lease:*") != "*0", timeout=5))
        time.sleep(0.3)
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(timeout=10)
        for t in readers:
            t.join(timeout=60)
        lead.join(timeout=10)
        self.assertIsInstance(lost[0], OSError, "A's own reader lost its connection")
        self.assert_all_ok(replies, ("png", 320, 240))
        self.assertGreaterEqual(total([b], "nic_fleet_leases_total", 'outcome="takeover"'), 1)
        self.assertEqual(total([b], "nic_transforms_total"), 1)
        self.assertEqual(total([b], "nic_storage_writes_total", 'kind="variant"'), 1)
        self.assertEqual(FAKES.counters()["notion_calls"], 2, "A's call, then B's after the takeover")
        self.assertEqual(self.redis.command("KEYS", "nic:lease:*"), "*0")
        self.assertEqual(GATE.rejected, [])

    def test_redis_killed_in_the_middle_of_a_herd(self):
        ws, block, _, name = FAKES.image(h.png(800, 600))
        FAKES.faults(s3={"latency_ms": 500})
        origins = self.fleet(redis=True)
        # SIGKILL as soon as the leader's download is under way (the fake file
        # host counts it as it starts): the other instances are waiting then.
        killed = threading.Event()

        def killer():
            if h.wait_until(lambda: FAKES.counters()["s3_requests"] >= 1, timeout=30, step=0.01):
                self.redis.kill()
            killed.set()

        t = threading.Thread(target=killer)
        t.start()
        replies = self.herd(origins, f"/img/{ws}/{block}/{name}?w=320")
        t.join()
        self.assertTrue(killed.is_set())
        self.assertIsNotNone(self.redis.proc.poll(), "redis was killed during the herd")
        self.assert_all_ok(replies, ("png", 320, 240))
        # The followers elsewhere lost Redis: they made the image themselves.
        self.assertGreaterEqual(total(origins, "nic_fleet_leases_total", 'outcome="fallback"'), 1)
        self.assertGreaterEqual(total(origins, "nic_fleet_redis_errors_total"), 1)
        downloads = FAKES.counters()["s3_downloads"]
        self.assertTrue(1 <= downloads <= 3, downloads)

        # Redis still down: a new herd is answered by per-process coalescing.
        ws2, block2, _, name2 = FAKES.image(h.png(640, 480, seed=3))
        before = FAKES.counters()["s3_downloads"]
        replies = self.herd(origins, f"/img/{ws2}/{block2}/{name2}?w=256")
        self.assert_all_ok(replies, ("png", 256, 192))
        self.assertTrue(1 <= FAKES.counters()["s3_downloads"] - before <= 3)

        # Redis back on the same port: the fleet coalesces again.
        self.redis.start()
        self.assertTrue(h.wait_until(lambda: self.redis.numsub("nic:fleet:done") == 3, timeout=15))
        ws3, block3, _, name3 = FAKES.image(h.png(640, 480, seed=5))
        # Each instance's breaker refuses Redis commands for 1 s after its last failure.
        time.sleep(1.2)
        before = FAKES.counters()
        replies = self.herd(origins, f"/img/{ws3}/{block3}/{name3}?w=256")
        self.assert_all_ok(replies, ("png", 256, 192))
        c = FAKES.counters()
        self.assertEqual((c["notion_calls"] - before["notion_calls"], c["s3_downloads"] - before["s3_downloads"]),
                         (1, 1))


if __name__ == "__main__":
    # CTest reports exit code 77 as skipped (SKIP_RETURN_CODE).
    if not s3.available():
        print(f"SKIPPED: s3rver is not installed in {s3.NODE_MODULES}; run `npm ci` at the repository root")
        sys.exit(77)
    if not rh.available():
        print("SKIPPED: redis-server is not installed (scripts/deps.sh installs it)")
        sys.exit(77)
    unittest.main(verbosity=2)
