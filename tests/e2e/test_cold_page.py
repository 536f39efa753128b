"""A cold page: a newly published Notion page brings many new images at once,
each read by many readers. Exactly one Notion call, one download, one transform
and one write per image, whatever the number of readers; the page read again
costs nothing upstream. (bench/traffic measures the same load's time and memory
on 2-5 MB images; here the images are small so the counts are checked fast.)"""

import os
import sys
import unittest
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

FAKES = None
setUpModule, tearDownModule = h.fakes_module_hooks(globals())

BROWSER_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
IMAGES = 40
READERS = 25


class ColdPage(h.OriginCase):

    def test_forty_new_images_with_twenty_five_readers_each(self):
        # Latency keeps every image's flight in the air while its readers arrive.
        FAKES.faults(s3={"latency_ms": 300})
        page = []
        for i in range(IMAGES):
            height = 64 + 2 * (i % 8)  # 128 wide: ?w=64 halves it exactly
            ws, block, file_id, name = FAKES.image(h.png(128, height, seed=i))
            page.append((f"/img/{ws}/{block}/{name}?w=64", block, f"/{h.dashed(ws)}/{h.dashed(file_id)}/{name}",
                         height // 2))
        o = self.origin(WORKER_THREADS=2, TRANSFORM_CONCURRENCY=2)
        jobs = [(target,) for target, _, _, _ in page for _ in range(READERS)]
        replies = h.concurrently(lambda t: o.get(t, {"Accept": BROWSER_ACCEPT}), jobs)

        errors = [r for r in replies if isinstance(r, Exception)]
        self.assertEqual(errors, [])
        self.assertEqual(Counter(r.status for r in replies), Counter({200: IMAGES * READERS}))
        for k, (target, _, _, half) in enumerate(page):
            mine = replies[k * READERS:(k + 1) * READERS]
            bodies = {r.body for r in mine}
            self.assertEqual(len(bodies), 1, f"every reader of {target} gets the same bytes")
            self.assertEqual(h.measure(next(iter(bodies))), ("avif", 64, half))
            tiers = Counter(r.header("x-cache-tier") for r in mine)
            self.assertEqual(tiers["ORIGIN"], 1, f"{target}: {tiers}")
            self.assertEqual(tiers["ORIGIN"] + tiers["COALESCED"] + tiers["MEMORY"], READERS)
            self.assertTrue(all("Accept" in (r.header("vary") or "") for r in mine))

        c = FAKES.counters()
        self.assertEqual(c["notion_calls"], IMAGES)
        self.assertEqual(sorted(c["notion_by_block"].values()), [1] * IMAGES)
        self.assertEqual(c["s3_downloads"], IMAGES)
        self.assertEqual(c["s3_requests"], IMAGES)
        self.assertEqual(sorted(c["s3_by_path"][path] for _, _, path, _ in page), [1] * IMAGES)
        m = o.metrics()
        self.assertEqual(o.metric_sum("nic_transforms_total"), IMAGES)
        self.assertEqual(m['nic_transforms_total{format="avif"}'], IMAGES)
        self.assertEqual(m['nic_storage_writes_total{kind="variant"}'], IMAGES)
        self.assertEqual(m['nic_storage_writes_total{kind="source"}'], IMAGES)
        self.assertEqual(o.metric_sum("nic_notion_api_calls_total"), IMAGES)
        self.assertEqual(o.metric_sum("nic_upstream_fetches_total"), IMAGES)
        self.assertEqual(m['nic_requests_total{route="image",status="200"}'], IMAGES * READERS)
        tiers = Counter(r.header("x-cache-tier") for r in replies)
        self.assertEqual(m["nic_coalesced_total"], tiers["COALESCED"])
        self.assertEqual(m["nic_inflight_flights"], 0)

        # The page read again: all memory hits, nothing upstream, no transform.
        again = h.concurrently(lambda t: o.get(t, {"Accept": BROWSER_ACCEPT}), jobs)
        self.assertEqual(Counter(r.status for r in again), Counter({200: IMAGES * READERS}))
        self.assertEqual(Counter(r.header("x-cache-tier") for r in again), Counter({"MEMORY": IMAGES * READERS}))
        self.assertEqual([r.body for r in again], [r.body for r in replies])
        c2 = FAKES.counters()
        self.assertEqual((c2["notion_calls"], c2["s3_requests"]), (IMAGES, IMAGES))
        self.assertEqual(o.metric_sum("nic_transforms_total"), IMAGES)


if __name__ == "__main__":
    unittest.main()
