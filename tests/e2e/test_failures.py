"""Upstream failures: the contract's error, nothing cached, recovery afterwards;
expired signed URLs, 429 storms, follower deadlines, overload."""

import json
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

FAKES = None
setUpModule, tearDownModule = h.fakes_module_hooks(globals())


class Failures(h.OriginCase):

    def assert_error(self, reply, status, code):
        self.assertEqual(reply.status, status, reply.body)
        self.assertEqual(reply.header("content-type"), "application/json")
        self.assertEqual(reply.header("cache-control"), "no-store")
        self.assertTrue(reply.header("x-request-id"))
        err = reply.json()["error"]
        self.assertEqual((err["status"], err["code"]), (status, code))
        self.assertEqual(err["requestId"], reply.header("x-request-id"))
        self.assertTrue(err["message"])

    def fail_then_recover(self, fault, status, code, **env):
        ws, block, _, name = FAKES.image(h.png(320, 240))
        o = self.origin(**env)
        target = f"/img/{ws}/{block}/{name}?w=128"
        FAKES.faults(s3=dict(fault, count=-1))
        self.assert_error(o.get(target), status, code)
        # Errors are never stored: asking again goes upstream again.
        self.assert_error(o.get(target), status, code)
        self.assertEqual(o.metric_sum("nic_storage_writes_total"), 0)
        self.assertEqual(o.metric_sum("nic_transforms_total"), 0)
        FAKES.faults(s3={"mode": "none", "count": 0})
        ok = o.get(target)
        self.assertEqual(ok.status, 200, ok.body)
        self.assertEqual(h.measure(ok.body), ("png", 128, 96))
        self.assertEqual(ok.header("x-cache-tier"), "ORIGIN")
        return o

    def test_upstream_500(self):
        self.fail_then_recover({"mode": "500"}, 502, "UPSTREAM_ERROR")

    def test_upstream_hang(self):
        self.fail_then_recover({"mode": "hang"}, 504, "UPSTREAM_TIMEOUT", UPSTREAM_TIMEOUT_MS=500)

    def test_truncated_body(self):
        self.fail_then_recover({"mode": "truncate"}, 502, "UPSTREAM_ERROR")

    def test_not_an_image(self):
        self.fail_then_recover({"mode": "nonimage"}, 415, "UNSUPPORTED_FORMAT")

    def test_oversize_without_content_length(self):
        self.fail_then_recover({"mode": "oversize", "oversize_bytes": 4 * 1024 * 1024}, 413, "IMAGE_TOO_LARGE",
                               MAX_IMAGE_SIZE_BYTES=200000)

    def test_a_leaders_failure_reaches_all_followers(self):
        ws, block, _, name = FAKES.image(h.png(320, 240))
        FAKES.faults(s3={"mode": "500", "count": -1, "latency_ms": 300})
        o = self.origin()
        target = f"/img/{ws}/{block}/{name}?w=128"
        replies = h.concurrently(lambda: o.get(target), [()] * 50)
        for r in replies:
            self.assert_error(r, 502, "UPSTREAM_ERROR")
        # One download per flight; everyone else followed one of those flights.
        stats = o.get("/api/v1/stats", {"X-API-Key": h.API_KEY}).json()
        flights = stats["flights"]
        self.assertGreaterEqual(flights["variant"], 1)
        self.assertEqual(flights["source"], flights["variant"])
        self.assertEqual(FAKES.counters()["s3_requests"], flights["source"])
        self.assertEqual(o.metrics()["nic_coalesced_total"], 50 - flights["variant"])
        self.assertEqual(flights["failed"], 2 * flights["variant"])
        # The next request starts a fresh flight.
        FAKES.faults(s3={"mode": "none", "count": 0, "latency_ms": 0})
        self.assertEqual(o.get(target).status, 200)

    def test_a_slow_leader_is_cut_at_the_flights_deadline(self):
        """One deadline per flight (FOLLOWER_TIMEOUT_MS - 250 ms): a leader slower
        than that answers everyone 504 at once, and frees the key."""
        ws, block, _, name = FAKES.image(h.png(320, 240))
        FAKES.faults(s3={"latency_ms": 2500})
        o = self.origin(FOLLOWER_TIMEOUT_MS=1000, UPSTREAM_TIMEOUT_MS=500)
        target = f"/img/{ws}/{block}/{name}?w=128"
        replies = h.concurrently(lambda: o.get(target), [()] * 10)
        for r in replies:
            self.assert_error(r, 504, "UPSTREAM_TIMEOUT")
        self.assertEqual(FAKES.counters()["s3_requests"], 1)
        self.assertEqual(o.metric_sum("nic_storage_writes_total"), 0)
        FAKES.faults(s3={"latency_ms": 0})
        self.assertEqual(o.get(target).status, 200)

    def test_settings_where_followers_give_up_first_are_refused(self):
        bad = h.subprocess.run([h.ORIGIN_BIN, "--check-config"], capture_output=True, text=True,
                               env={"FOLLOWER_TIMEOUT_MS": "2000", "UPSTREAM_TIMEOUT_MS": "5000", "PATH": "/usr/bin"})
        self.assertEqual(bad.returncode, 2)
        self.assertIn("FOLLOWER_TIMEOUT_MS", bad.stderr + bad.stdout)

    def test_expired_signed_url_is_refreshed_once(self):
        ws, block, file_id, name = FAKES.image(h.png(320, 240))
        # Notion claims an hour, but the S3 signature lasts one second.
        FAKES.add_block(block, ws, file_id, name, url_expires=1, expiry_time_in=3600)
        o = self.origin()
        target = f"/img/{ws}/{block}/{name}?w=128"
        self.assertEqual(o.get(target).status, 200)
        time.sleep(2.1)
        purge = o.get(f"/api/v1/cache?url=/img/{ws}/{block}/{name}", {"X-API-Key": h.API_KEY}, method="DELETE")
        self.assertEqual(purge.status, 200, purge.body)
        again = o.get(target)
        self.assertEqual(again.status, 200, again.body)
        c = FAKES.counters()
        self.assertEqual(c["s3_by_status"].get("403"), 1, "the remembered URL had expired at S3")
        self.assertEqual(c["notion_calls"], 2, "one fresh Notion lookup")
        self.assertEqual(c["s3_downloads"], 2)

    def test_url_close_to_expiry_is_not_used(self):
        ws, block, file_id, name = FAKES.image(h.png(320, 240))
        FAKES.add_block(block, ws, file_id, name, expiry_time_in=30)  # inside the 60 s margin
        o = self.origin()
        self.assertEqual(o.get(f"/img/{ws}/{block}/{name}?w=128").status, 200)
        o.get(f"/api/v1/cache?url=/img/{ws}/{block}/{name}", {"X-API-Key": h.API_KEY}, method="DELETE")
        self.assertEqual(o.get(f"/img/{ws}/{block}/{name}?w=128").status, 200)
        c = FAKES.counters()
        self.assertEqual(c["notion_calls"], 2)
        self.assertNotIn("403", c["s3_by_status"])

    def test_429_storm_is_ridden_out(self):
        ws, block, _, name = FAKES.image(h.png(320, 240))
        FAKES.faults(notion={"rate_limit": 2, "retry_after": "1"})
        o = self.origin()
        r = o.get(f"/img/{ws}/{block}/{name}?w=128")
        self.assertEqual(r.status, 200, r.body)
        c = FAKES.counters()
        self.assertEqual(c["notion_by_status"], {"429": 2, "200": 1})
        m = o.metrics()
        self.assertEqual(m['nic_notion_api_calls_total{status="429"}'], 2)
        self.assertEqual(m['nic_notion_api_calls_total{status="200"}'], 1)

    def test_notion_errors(self):
        o = self.origin()
        ws = h.new_id()
        # Unknown block -> Notion 404 object_not_found.
        self.assert_error(o.get(f"/img/{ws}/{h.new_id()}/a.png"), 404, "IMAGE_NOT_FOUND")
        # A block that is not an image.
        para = h.new_id()
        FAKES.add_block(para, ws, h.new_id(), "x.png", kind="paragraph")
        self.assert_error(o.get(f"/img/{ws}/{para}/x.png"), 404, "IMAGE_NOT_FOUND")
        # Notion failing.
        ws2, block, _, name = FAKES.image(h.png(64, 64))
        FAKES.faults(notion={"status": 503, "count": 5})
        self.assert_error(o.get(f"/img/{ws2}/{block}/{name}"), 502, "NOTION_API_ERROR")
        FAKES.faults(notion={"status": 0, "count": 0})
        self.assertEqual(o.get(f"/img/{ws2}/{block}/{name}").status, 200)

    def test_wrong_token_is_a_notion_api_error(self):
        ws, block, _, name = FAKES.image(h.png(64, 64))
        o = self.origin(NOTION_TOKEN="secret_wrong")
        self.assert_error(o.get(f"/img/{ws}/{block}/{name}"), 502, "NOTION_API_ERROR")
        self.assertEqual(FAKES.counters()["notion_by_status"], {"401": 1})

    def test_workspace_token_from_notion_tokens(self):
        ws, block, _, name = FAKES.image(h.png(64, 64))
        o = self.origin(NOTION_TOKEN="secret_wrong", NOTION_TOKENS=f"{h.dashed(ws)}={h.TOKEN}")
        self.assertEqual(o.get(f"/img/{ws}/{block}/{name}").status, 200)

    def test_overloaded_when_the_queue_is_full(self):
        FAKES.faults(s3={"latency_ms": 1500})
        o = self.origin(FETCH_CONCURRENCY=1, TRANSFORM_QUEUE=0)
        ws, b1, _, n1 = FAKES.image(h.png(64, 64))
        _, b2, _, n2 = FAKES.image(h.png(64, 64))
        first = {}
        t = threading.Thread(target=lambda: first.setdefault("r", o.get(f"/img/{ws}/{b1}/{n1}")))
        t.start()
        self.assertTrue(h.wait_until(lambda: FAKES.counters()["s3_inflight"] >= 1))
        busy = o.get(f"/img/{ws}/{b2}/{n2}")
        self.assert_error(busy, 503, "OVERLOADED")
        self.assertTrue(busy.header("retry-after"))
        t.join()
        self.assertEqual(first["r"].status, 200)


class Revalidation(unittest.TestCase):
    def setUp(self):
        FAKES.reset()

    def test_changed_block_replaces_the_source_and_drops_old_variants(self):
        ws, block, _, name = FAKES.image(h.png(400, 300))
        o = h.Origin(FAKES, SOURCE_TTL_SECONDS=1)
        try:
            target = f"/img/{ws}/{block}/{name}?w=128"
            self.assertEqual(h.measure(o.get(target).body), ("png", 128, 96))
            # The block now points to a portrait image.
            new_file = h.new_id()
            FAKES.add_file(ws, new_file, "new.png", h.png(300, 400))
            FAKES.add_block(block, ws, new_file, "new.png")
            time.sleep(1.2)
            stale = o.get(target)  # served from what is stored; revalidation starts
            self.assertEqual(stale.status, 200)
            self.assertTrue(h.wait_until(lambda: h.measure(o.get(target).body) == ("png", 128, 171)),
                            "the new image replaces the old one")
            # (the new image can be seen a moment before the check counts itself done)
            self.assertTrue(h.wait_until(
                lambda: o.metrics().get('nic_source_revalidations_total{result="changed"}', 0) == 1))
        finally:
            o.stop()

    def test_stored_content_is_served_while_notion_fails(self):
        ws, block, _, name = FAKES.image(h.png(400, 300))
        o = h.Origin(FAKES, SOURCE_TTL_SECONDS=1)
        try:
            target = f"/img/{ws}/{block}/{name}?w=128"
            first = o.get(target)
            self.assertEqual(first.status, 200)
            FAKES.faults(notion={"status": 500, "count": 1000}, s3={"mode": "500", "count": -1})
            time.sleep(1.2)
            for _ in range(3):
                r = o.get(target)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, first.body)
            self.assertTrue(h.wait_until(
                lambda: o.metrics().get('nic_source_revalidations_total{result="error"}', 0) >= 1))
            # Another width still comes from the stored source.
            self.assertEqual(o.get(f"/img/{ws}/{block}/{name}?w=64").status, 200)
        finally:
            o.stop()


if __name__ == "__main__":
    unittest.main()
