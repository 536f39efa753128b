"""Thundering herds: one Notion call, one download, one transform, one write."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

FAKES = None
setUpModule, tearDownModule = h.fakes_module_hooks(globals())


class Herd(h.OriginCase):

    def test_500_concurrent_requests_for_one_uncached_variant(self):
        ws, block, _, name = FAKES.image(h.png(800, 600))
        # Latency keeps the flight in the air while the herd arrives.
        FAKES.faults(s3={"latency_ms": 300})
        o = self.origin(WORKER_THREADS=2)
        target = f"/img/{ws}/{block}/{name}?w=320"
        replies = h.concurrently(lambda: o.get(target), [()] * 500)
        errors = [r for r in replies if isinstance(r, Exception)]
        self.assertEqual(errors, [])
        self.assertEqual([r.status for r in replies], [200] * 500)
        bodies = {r.body for r in replies}
        self.assertEqual(len(bodies), 1, "every reader gets the same bytes")
        self.assertEqual(h.measure(next(iter(bodies))), ("png", 320, 240))
        tiers = [r.header("x-cache-tier") for r in replies]
        self.assertEqual(tiers.count("ORIGIN"), 1)
        self.assertEqual(tiers.count("ORIGIN") + tiers.count("COALESCED") + tiers.count("MEMORY"), 500)

        c = FAKES.counters()
        self.assertEqual(c["notion_calls"], 1)
        self.assertEqual(c["s3_downloads"], 1)
        self.assertEqual(c["s3_requests"], 1)
        m = o.metrics()
        self.assertEqual(o.metric_sum("nic_notion_api_calls_total"), 1)
        self.assertEqual(o.metric_sum("nic_upstream_fetches_total"), 1)
        self.assertEqual(o.metric_sum("nic_transforms_total"), 1)
        self.assertEqual(m['nic_storage_writes_total{kind="variant"}'], 1)
        self.assertEqual(m['nic_storage_writes_total{kind="source"}'], 1)
        self.assertEqual(m["nic_coalesced_total"], tiers.count("COALESCED"))
        self.assertEqual(m['nic_requests_total{route="image",status="200"}'], 500)
        self.assertEqual(m["nic_inflight_flights"], 0)

    def test_twenty_widths_of_one_new_image_download_it_once(self):
        ws, block, _, name = FAKES.image(h.png(800, 600))
        FAKES.faults(s3={"latency_ms": 200})
        widths = [32, 48, 64, 96, 128, 256, 320, 384, 480, 640, 750, 800, 828, 1024, 1080, 1200, 1600, 1920,
                  2048, 3840]
        o = self.origin(TRANSFORM_CONCURRENCY=2)
        replies = h.concurrently(lambda w: o.get(f"/img/{ws}/{block}/{name}?w={w}"), [(w,) for w in widths])
        self.assertEqual([r.status for r in replies], [200] * 20)
        for w, r in zip(widths, replies):
            # fit=inside never enlarges: widths past 800 give the source's size.
            self.assertEqual(h.measure(r.body), ("png", min(w, 800), int(min(w, 800) * 600 / 800 + 0.5)))
        c = FAKES.counters()
        self.assertEqual(c["s3_downloads"], 1)
        self.assertEqual(c["notion_calls"], 1)
        m = o.metrics()
        self.assertEqual(o.metric_sum("nic_transforms_total"), 20)
        self.assertEqual(m['nic_storage_writes_total{kind="variant"}'], 20)
        self.assertEqual(m['nic_storage_writes_total{kind="source"}'], 1)

    def test_restart_on_the_same_cache_dir_serves_from_disk_without_upstream_traffic(self):
        ws, block, _, name = FAKES.image(h.png(400, 300))
        first = self.origin()
        a = first.get(f"/img/{ws}/{block}/{name}?w=256")
        self.assertEqual(a.status, 200)
        self.assertEqual(a.header("x-cache-tier"), "ORIGIN")
        cache_dir = first.cache_dir
        first.stop(remove=False)
        FAKES.reset()  # counters to zero, and the image is gone upstream

        second = h.Origin(FAKES, cache_dir=cache_dir)
        self.origins.append(second)
        b = second.get(f"/img/{ws}/{block}/{name}?w=256")
        self.assertEqual(b.status, 200)
        self.assertEqual(b.header("x-cache-tier"), "STORAGE")
        self.assertEqual(b.header("x-cache"), "HIT")
        self.assertEqual(b.body, a.body)
        self.assertEqual(b.header("etag"), a.header("etag"))
        # A new width of the same image comes from the stored source.
        c = second.get(f"/img/{ws}/{block}/{name}?w=128")
        self.assertEqual(c.status, 200)
        self.assertEqual(h.measure(c.body), ("png", 128, 96))
        counters = FAKES.counters()
        self.assertEqual(counters["notion_calls"], 0)
        self.assertEqual(counters["s3_requests"], 0)
        second.stop()
        import shutil
        shutil.rmtree(cache_dir, ignore_errors=True)

    def test_memory_tier_answers_repeats(self):
        ws, block, _, name = FAKES.image(h.png(300, 200))
        o = self.origin()
        first = o.get(f"/img/{ws}/{block}/{name}?w=128")
        second = o.get(f"/img/{ws}/{block}/{name}?w=128")
        self.assertEqual((first.header("x-cache"), first.header("x-cache-tier")), ("MISS", "ORIGIN"))
        self.assertEqual((second.header("x-cache"), second.header("x-cache-tier")), ("HIT", "MEMORY"))
        self.assertEqual(first.body, second.body)


if __name__ == "__main__":
    unittest.main()
