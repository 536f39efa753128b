"""Redirects from the file host: every hop is checked again against
ALLOWED_DOMAINS and the private-address rules, loops stop at the hop limit,
and a refused hop is the contract's error with nothing cached."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

FAKES = None
setUpModule, tearDownModule = h.fakes_module_hooks(globals())


class Redirects(h.OriginCase):

    def assert_error(self, reply, status, code):
        self.assertEqual(reply.status, status, reply.body)
        self.assertEqual(reply.header("content-type"), "application/json")
        self.assertEqual(reply.header("cache-control"), "no-store")
        err = reply.json()["error"]
        self.assertEqual((err["status"], err["code"]), (status, code), err["message"])

    def s3_url(self, host_port, path):
        """A validly signed fake-S3 URL for `path`, on another host:port."""
        signed = FAKES.sign(path)
        return signed.replace(f"127.0.0.1:{FAKES.s3_port}", host_port, 1)

    def refused_then_recover(self, o, fault, status, code, s3_requests_per_try):
        """The redirect is refused with (status, code); nothing is stored; the
        same request goes upstream again; once the host stops redirecting it works."""
        ws, block, _, name = FAKES.image(h.png(320, 240))
        target = f"/img/{ws}/{block}/{name}?w=128"
        before = FAKES.counters()
        m0 = o.metrics()
        writes0 = sum(v for k, v in m0.items() if k.startswith("nic_storage_writes_total"))
        transforms0 = sum(v for k, v in m0.items() if k.startswith("nic_transforms_total"))
        FAKES.faults(s3=dict(fault, mode="redirect", count=-1))
        self.assert_error(o.get(target), status, code)
        self.assert_error(o.get(target), status, code)
        c = FAKES.counters()
        self.assertEqual(c["s3_requests"] - before["s3_requests"], 2 * s3_requests_per_try,
                         "errors are not stored: the second request went upstream again")
        self.assertEqual(c["s3_downloads"], before["s3_downloads"])
        self.assertEqual(o.metric_sum("nic_storage_writes_total"), writes0)
        self.assertEqual(o.metric_sum("nic_transforms_total"), transforms0)
        FAKES.faults(s3={"mode": "none", "count": 0})
        ok = o.get(target)
        self.assertEqual(ok.status, 200, ok.body)
        self.assertEqual(ok.header("x-cache-tier"), "ORIGIN")
        self.assertEqual(h.measure(ok.body), ("png", 128, 96))
        # The recovered image is the only thing stored (source + variant).
        m = o.metrics()
        self.assertEqual(m['nic_storage_writes_total{kind="source"}'] - m0.get('nic_storage_writes_total{kind="source"}', 0), 1)
        self.assertEqual(m['nic_storage_writes_total{kind="variant"}'] - m0.get('nic_storage_writes_total{kind="variant"}', 0), 1)
        o.get(f"/api/v1/cache?url=/img/{ws}/{block}/{name}", {"X-API-Key": h.API_KEY}, method="DELETE")

    def test_redirect_to_another_allowed_path_is_followed(self):
        o = self.origin()
        cases = [(status, absolute) for status in (301, 302, 303, 307, 308) for absolute in (True, False)]
        for status, absolute in cases:
            with self.subTest(status=status, absolute=absolute):
                ws, block, _, name = FAKES.image(h.png(320, 240))
                # The file the redirect leads to is another image (200x100), so
                # the answer shows which one was served.
                moved = FAKES.add_file(ws, h.new_id(), "moved.png", h.png(200, 100, seed=3))
                location = FAKES.sign(moved)
                if not absolute:
                    location = location.replace(f"http://127.0.0.1:{FAKES.s3_port}", "", 1)
                before = FAKES.counters()
                FAKES.faults(s3={"mode": "redirect", "count": 1, "location": location, "redirect_status": status})
                r = o.get(f"/img/{ws}/{block}/{name}?w=128")
                self.assertEqual(r.status, 200, r.body)
                self.assertEqual(h.measure(r.body), ("png", 128, 64))
                c = FAKES.counters()
                self.assertEqual(c["s3_requests"] - before["s3_requests"], 2)
                self.assertEqual(c["s3_downloads"] - before["s3_downloads"], 1)
                self.assertEqual(c["s3_by_path"].get(moved), 1)
        m = o.metrics()
        self.assertEqual(m['nic_storage_writes_total{kind="source"}'], len(cases))
        self.assertEqual(m['nic_storage_writes_total{kind="variant"}'], len(cases))

    def test_redirect_to_a_host_or_port_not_allowed(self):
        o = self.origin()
        path = f"/{h.dashed(h.new_id())}/{h.dashed(h.new_id())}/x.png"
        not_allowed = [
            self.s3_url(f"127.0.0.1:{FAKES.notion_port}", path),  # another port on the same address
            self.s3_url(f"127.0.0.2:{FAKES.s3_port}", path),  # another loopback address, same port
            self.s3_url(f"localhost:{FAKES.s3_port}", path),  # a name for the allowed address
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",  # cloud metadata
            "https://evil.example.com/x.png",
            "//evil.example.com/x.png",  # scheme-relative: http, like the hop it came from
            f"https://127.0.0.1:{FAKES.s3_port}{path}",  # the allowed host:port, another scheme
            "ftp://127.0.0.1/x.png",
        ]
        for location in not_allowed:
            with self.subTest(location=location):
                before = FAKES.counters()["notion_calls"]
                self.refused_then_recover(o, {"location": location}, 403, "DOMAIN_NOT_ALLOWED", 1)
                # One block lookup; the refused hop to the other port (the fake
                # Notion API, which counts every request) was never made.
                self.assertEqual(FAKES.counters()["notion_calls"] - before, 1)

    def test_redirect_to_a_name_resolving_to_a_private_address(self):
        # `localhost` is allowed by name (not as a literal address), so its
        # loopback address is refused: only an entry naming an address
        # literally may reach a private one.
        o = self.origin(ALLOWED_DOMAINS=f"http://127.0.0.1:{FAKES.s3_port},http://localhost:{FAKES.s3_port}")
        ws, _, file_id, name = FAKES.image(h.png(320, 240))
        via_name = self.s3_url(f"localhost:{FAKES.s3_port}", f"/{h.dashed(ws)}/{h.dashed(file_id)}/{name}")
        self.refused_then_recover(o, {"location": via_name}, 403, "PRIVATE_HOST", 1)

    def test_private_name_is_refused_on_the_first_hop_too(self):
        o = self.origin(ALLOWED_DOMAINS=f"http://127.0.0.1:{FAKES.s3_port},http://localhost:{FAKES.s3_port}")
        ws, _, file_id, name = FAKES.image(h.png(320, 240))
        url = self.s3_url(f"localhost:{FAKES.s3_port}", f"/{h.dashed(ws)}/{h.dashed(file_id)}/{name}")
        from urllib.parse import quote
        r = o.get("/api/v1/proxy?url=" + quote(url, safe="") + "&w=128")
        self.assert_error(r, 403, "PRIVATE_HOST")
        self.assertEqual(FAKES.counters()["s3_requests"], 0)
        self.assertEqual(o.metric_sum("nic_storage_writes_total"), 0)

    def test_redirect_loop_stops_at_the_hop_limit(self):
        o = self.origin()
        # "self": every answer redirects to the same URL (relative Location).
        # One request plus five followed redirects, then UPSTREAM_ERROR.
        self.refused_then_recover(o, {"location": "self"}, 502, "UPSTREAM_ERROR", 6)

    def test_redirect_without_location(self):
        o = self.origin()
        self.refused_then_recover(o, {"location": ""}, 502, "UPSTREAM_ERROR", 1)


if __name__ == "__main__":
    unittest.main()
