"""Every route, header and error code of the contract, over HTTP."""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import unittest
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

FAKES = None
setUpModule, tearDownModule = h.fakes_module_hooks(globals())


def sign(secret, path, query):
    """The contract's signature, computed independently of the C++ code."""
    pairs = [p for p in query.split("&") if p and not p.startswith("sig=")]
    pairs.sort(key=lambda p: p.split("=", 1)[0])
    payload = path + "?" + "&".join(pairs)
    mac = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


class Routes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        FAKES.reset()
        cls.o = h.Origin(FAKES, CORS_ORIGINS="https://app.example")
        cls.ws, cls.block, cls.file_id, cls.name = FAKES.image(h.png(400, 300))

    @classmethod
    def tearDownClass(cls):
        cls.o.stop()

    def assert_error(self, reply, status, code):
        self.assertEqual(reply.status, status, reply.body)
        self.assertEqual(reply.header("content-type"), "application/json")
        self.assertEqual(reply.header("cache-control"), "no-store")
        self.assertTrue(reply.header("x-request-id"))
        err = reply.json()["error"]
        self.assertEqual((err["status"], err["code"]), (status, code))
        return err

    def img(self, query="w=128"):
        return f"/img/{self.ws}/{self.block}/{self.name}?{query}"

    def test_image_headers(self):
        r = self.o.get(self.img("w=200"))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "image/png")
        self.assertEqual(int(r.header("content-length")), len(r.body))
        self.assertRegex(r.header("etag"), r'^"[0-9a-f]{32}"$')
        self.assertEqual(r.header("cache-control"), "public, max-age=3600, s-maxage=86400, stale-while-revalidate=3600")
        # CORS_ORIGINS is a list here: every answer varies by Origin, also one asked without it.
        self.assertEqual(r.header("vary"), "Accept, Origin")
        self.assertEqual(r.header("x-content-type-options"), "nosniff")
        self.assertIsNone(r.header("content-security-policy"))
        self.assertIsNone(r.header("access-control-allow-origin"))
        self.assertIn(r.header("x-cache"), ("HIT", "MISS"))
        self.assertIn(r.header("x-cache-tier"), ("MEMORY", "STORAGE", "ORIGIN", "COALESCED"))
        self.assertEqual(int(r.header("x-optimized-size")), len(r.body))
        self.assertEqual(int(r.header("x-original-size")), len(h.png(400, 300)))
        self.assertEqual(r.header("x-cache-key"), f"v1/{self.ws}/{self.block}/{self.name}?fmt=original&w=256")
        self.assertRegex(r.header("x-request-id"), "^[0-9a-f]{16}$")
        self.assertEqual(h.measure(r.body), ("png", 256, 192))

    def test_request_id_from_the_front_is_kept_when_well_formed(self):
        given = "0f8c2a9e-1b7d-4c3a-9e5f-2d6b8a7c1e40"
        ok = self.o.get(self.img("w=256"), headers={"X-Request-Id": given})
        self.assertEqual(ok.header("x-request-id"), given)
        err = self.o.get(self.img("w=0"), headers={"X-Request-Id": given})
        self.assertEqual(err.json()["error"]["requestId"], given)
        for bad in ("has space", "x" * 65, "<script>", ""):
            r = self.o.get(self.img("w=256"), headers={"X-Request-Id": bad})
            self.assertRegex(r.header("x-request-id"), "^[0-9a-f]{16}$", bad)

    def test_memory_hits_carry_the_same_headers(self):
        """The first answer builds the entry; later ones are memory hits (their
        fixed headers precomputed, the request's preparation remembered)."""
        target = self.img("w=320&q=60")
        first = self.o.get(target)
        self.assertEqual(first.status, 200)
        before = self.o.metrics()
        hits = [self.o.get(target) for _ in range(3)]
        fixed = ("content-type", "content-length", "etag", "cache-control", "vary", "x-cache-key",
                 "x-original-size", "x-optimized-size", "x-content-type-options")
        for r in hits:
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("x-cache-tier"), "MEMORY")
            self.assertEqual(r.header("x-cache"), "HIT")
            self.assertEqual(r.body, first.body)
            self.assertEqual({k: r.header(k) for k in fixed}, {k: first.header(k) for k in fixed})
            self.assertNotEqual(r.header("x-request-id"), first.header("x-request-id"))
        after = self.o.metrics()
        key = 'nic_cache_hits_total{tier="memory"}'
        self.assertEqual(after[key] - before.get(key, 0), 3)
        key = 'nic_requests_total{route="image",status="200"}'
        self.assertEqual(after[key] - before[key], 3)
        head = self.o.get(target, method="HEAD")
        self.assertEqual((head.status, head.body, head.header("content-length")), (200, b"", first.header("content-length")))
        cors = self.o.get(target, {"Origin": "https://app.example"})
        self.assertEqual(cors.header("vary"), "Accept, Origin")
        self.assertEqual(cors.header("access-control-allow-origin"), "https://app.example")
        not_modified = self.o.get(target, {"If-None-Match": first.header("etag")})
        self.assertEqual((not_modified.status, not_modified.body), (304, b""))
        self.assertIsNone(not_modified.header("content-length"))
        # Same URL, another Accept: another variant, not the remembered one.
        webp = self.o.get(target, {"Accept": "image/webp"})
        self.assertEqual(webp.header("content-type"), "image/webp")
        self.assertEqual(self.o.get(target, {"Accept": "image/webp"}).header("x-cache-tier"), "MEMORY")
        self.assertEqual(self.o.get(target).header("content-type"), "image/png")

    def test_explicit_format_has_no_vary(self):
        r = self.o.get(self.img("w=128&fmt=webp"), {"Accept": "image/avif"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "image/webp")
        self.assertEqual(r.header("vary"), "Origin")
        self.assertEqual(h.measure(r.body), ("webp", 128, 96))

    def test_accept_negotiation(self):
        webp = self.o.get(self.img("w=64"), {"Accept": "image/webp,*/*"})
        self.assertEqual(webp.header("content-type"), "image/webp")
        self.assertIn("fmt=auto-webp", webp.header("x-cache-key"))
        avif = self.o.get(self.img("w=64"), {"Accept": "image/avif,image/webp;q=0.9"})
        self.assertEqual(avif.header("content-type"), "image/avif")
        self.assertEqual(h.measure(avif.body), ("avif", 64, 48))
        plain = self.o.get(self.img("w=64"), {"Accept": "*/*"})
        self.assertEqual(plain.header("content-type"), "image/png")
        self.assertEqual(webp.header("vary"), "Accept, Origin")

    def test_if_none_match_gives_304(self):
        first = self.o.get(self.img("w=96"))
        r = self.o.get(self.img("w=96"), {"If-None-Match": first.header("etag")})
        self.assertEqual(r.status, 304)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("etag"), first.header("etag"))
        self.assertEqual(r.header("vary"), "Accept, Origin")
        self.assertEqual(r.header("x-content-type-options"), "nosniff")
        self.assertIsNone(r.header("content-type"))
        self.assertIsNone(r.header("x-optimized-size"))
        other = self.o.get(self.img("w=96"), {"If-None-Match": '"0000"'})
        self.assertEqual(other.status, 200)

    def test_head(self):
        full = self.o.get(self.img("w=48"))
        head = self.o.get(self.img("w=48"), method="HEAD")
        self.assertEqual(head.status, 200)
        self.assertEqual(head.body, b"")
        self.assertEqual(head.header("content-length"), str(len(full.body)))
        self.assertEqual(head.header("etag"), full.header("etag"))

    def test_bad_requests(self):
        self.assert_error(self.o.get("/img/not%20a%20ws/x/y.png"), 400, "INVALID_PATH")
        self.assert_error(self.o.get(f"/img/{self.ws}/{self.block}/a%zz.png"), 400, "INVALID_PATH")
        self.assert_error(self.o.get(f"/img/{self.ws}/{self.block}/..?w=1"), 400, "INVALID_PATH")
        err = self.assert_error(self.o.get(self.img("w=0")), 400, "INVALID_PARAM")
        self.assertIn("w", err["message"])
        err = self.assert_error(self.o.get(self.img("fit=sideways")), 400, "INVALID_PARAM")
        self.assertIn("cover", err["message"])
        self.assert_error(self.o.get(self.img("q=101")), 400, "INVALID_PARAM")
        self.assert_error(self.o.get(self.img("fmt=bmp")), 400, "INVALID_PARAM")
        self.assert_error(self.o.get("/img/" + "a" * 9000), 414, "URL_TOO_LONG")
        self.assert_error(self.o.get("/nope"), 404, "NOT_FOUND")
        self.assert_error(self.o.get(self.img(), method="POST"), 405, "METHOD_NOT_ALLOWED")

    def test_unknown_params_do_not_change_the_key(self):
        a = self.o.get(self.img("w=128&utm_source=x"))
        b = self.o.get(self.img("w=128"))
        self.assertEqual(a.header("x-cache-key"), b.header("x-cache-key"))

    def test_health_metrics_stats(self):
        health = self.o.get("/health")
        self.assertEqual(health.status, 200)
        self.assertEqual(health.json()["status"], "ok")
        self.assertTrue(health.header("x-request-id"))
        metrics = self.o.get("/metrics")
        self.assertTrue(metrics.header("content-type").startswith("text/plain"))
        text = metrics.body.decode()
        for name in ("nic_requests_total", "nic_cache_hits_total", "nic_cache_misses_total", "nic_coalesced_total",
                     "nic_notion_api_calls_total", "nic_upstream_fetches_total", "nic_transforms_total",
                     "nic_storage_writes_total", "nic_inflight_flights", "nic_transform_seconds",
                     "nic_upstream_bytes_total", "process_resident_memory_bytes"):
            self.assertIn(f"# TYPE {name} ", text)
        self.assertIn('nic_transform_seconds_bucket{le="+Inf"}', text)
        self.assert_error(self.o.get("/api/v1/stats"), 401, "MISSING_API_KEY")
        self.assert_error(self.o.get("/api/v1/stats", {"X-API-Key": "wrong"}), 401, "INVALID_API_KEY")
        stats = self.o.get("/api/v1/stats", {"Authorization": f"Bearer {h.API_KEY}"})
        self.assertEqual(stats.status, 200)
        self.assertIn("transforms", stats.json())
        self.assertEqual(self.o.get("/api/v1/stats", {"X-API-Key": h.API_KEY}).status, 200)

    def test_cors(self):
        r = self.o.get(self.img(), {"Origin": "https://app.example"})
        self.assertEqual(r.header("access-control-allow-origin"), "https://app.example")
        self.assertEqual(r.header("vary"), "Accept, Origin")
        self.assertIsNone(self.o.get(self.img(), {"Origin": "https://evil.example"}).header("access-control-allow-origin"))
        self.assertIn("X-Cache-Tier", r.header("access-control-expose-headers"))
        refused = self.o.get(self.img(), {"Origin": "https://evil.example"})
        self.assertEqual(refused.header("vary"), "Accept, Origin")
        err = self.o.get(self.img("w=0"), {"Origin": "https://app.example"})
        self.assertEqual((err.status, err.header("access-control-allow-origin")), (400, "https://app.example"))
        pre = self.o.get(self.img(), {"Origin": "https://app.example"}, method="OPTIONS")
        self.assertEqual(pre.status, 204)
        self.assertEqual(pre.header("access-control-allow-methods"), "GET, HEAD, DELETE, OPTIONS")
        self.assertEqual(pre.header("access-control-allow-headers"), "Authorization, X-API-Key, If-None-Match")
        self.assertEqual(pre.header("access-control-allow-origin"), "https://app.example")
        self.assertEqual(pre.header("vary"), "Origin")

    def test_proxy(self):
        self.assert_error(self.o.get("/api/v1/proxy"), 400, "MISSING_URL")
        evil = quote("https://evil.example.com/" + h.dashed(self.ws) + "/" + h.dashed(h.new_id()) + "/a.png", safe="")
        self.assert_error(self.o.get(f"/api/v1/proxy?url={evil}"), 403, "DOMAIN_NOT_ALLOWED")
        # A real proxy round trip through a signed fake-S3 URL.
        file_id = h.new_id()
        path = FAKES.add_file(self.ws, file_id, "proxied.png", h.png(200, 100))
        before = FAKES.counters()["s3_downloads"]
        r = self.o.get("/api/v1/proxy?url=" + quote(FAKES.sign(path), safe="") + "&w=64")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(h.measure(r.body), ("png", 64, 32))
        self.assertTrue(r.header("content-location").startswith(f"/img/{self.ws}/{file_id}/proxied.png"))
        # The file id path now serves it (remembered URL / stored source).
        again = self.o.get(f"/img/{self.ws}/{file_id}/proxied.png?w=128")
        self.assertEqual(again.status, 200)
        self.assertEqual(h.measure(again.body), ("png", 128, 64))
        self.assertEqual(FAKES.counters()["s3_downloads"] - before, 1)

    def test_purge(self):
        # An image of its own: exactly its source and one variant are stored.
        ws, block, _, name = FAKES.image(h.png(400, 300))
        target = f"/img/{ws}/{block}/{name}?w=320"
        self.assertEqual(self.o.get(target).status, 200)
        self.assertEqual(self.o.get(target).header("x-cache-tier"), "MEMORY")
        self.o.metrics()  # waits until the storage writes have landed
        purge_url = f"/api/v1/cache?url={quote('http://cdn.example/img/%s/%s/%s' % (ws, block, name))}"
        self.assert_error(self.o.get(purge_url, method="DELETE"), 401, "MISSING_API_KEY")
        self.assert_error(self.o.get(purge_url, {"X-API-Key": "nope"}, method="DELETE"), 401, "INVALID_API_KEY")
        self.assert_error(self.o.get("/api/v1/cache", {"X-API-Key": h.API_KEY}, method="DELETE"), 400, "MISSING_URL")
        r = self.o.get(purge_url, {"Authorization": "Bearer " + h.API_KEY}, method="DELETE")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["removed"], 2)  # the source and the variant
        self.assertEqual(r.json()["prefixes"], [f"v1/*/{block}/"])  # its source group
        self.assertEqual(r.json()["purged"], True)
        again = self.o.get(target)
        self.assertEqual(again.header("x-cache-tier"), "ORIGIN")


class Settings(unittest.TestCase):
    def setUp(self):
        FAKES.reset()

    def run_origin(self, args, **env):
        environ = {k: v for k, v in os.environ.items()}
        environ.update(env)
        return subprocess.run([h.ORIGIN_BIN] + args, env=environ, capture_output=True, text=True, timeout=10)

    def test_cli(self):
        self.assertEqual(self.run_origin(["--version"]).returncode, 0)
        self.assertIn("--check-config", self.run_origin(["--help"]).stdout)
        ok = self.run_origin(["--check-config"], HMAC_SECRET="topsecret", API_KEYS="k1,k2", NOTION_TOKEN="secret_abc")
        self.assertEqual(ok.returncode, 0)
        self.assertNotIn("topsecret", ok.stdout)
        self.assertNotIn("secret_abc", ok.stdout)
        self.assertIn("PORT=3002", ok.stdout)
        for name, value in (("PORT", "http"), ("ALLOWED_WIDTHS", "10,abc"), ("QUALITY_STEPS", "0"),
                            ("MAX_IMAGE_SIZE_BYTES", "-1"), ("STORAGE_BACKEND", "ftp"), ("LOG_LEVEL", "loud"),
                            ("NOTION_TOKENS", "nope"), ("NOTION_API_BASE", "ftp://x"), ("FOLLOWER_TIMEOUT_MS", "0"),
                            ("NIC_COALESCING", "maybe"), ("ALLOWED_DOMAINS", "http://")):
            bad = self.run_origin(["--check-config"], **{name: value})
            self.assertEqual(bad.returncode, 2, name)
            self.assertIn(name, bad.stderr)
        s3 = self.run_origin(["--check-config"], STORAGE_BACKEND="s3")
        self.assertEqual(s3.returncode, 2)
        self.assertIn("S3_BUCKET: required with STORAGE_BACKEND=s3", s3.stderr)  # test_s3.py has the rest

    def test_signatures(self):
        ws, block, _, name = FAKES.image(h.png(100, 100))
        o = h.Origin(FAKES, HMAC_SECRET="s3cr3t")
        try:
            path = f"/img/{ws}/{block}/{name}"
            self.assertEqual(o.get(f"{path}?w=64").json()["error"]["code"], "INVALID_SIGNATURE")
            self.assertEqual(o.get(f"{path}?w=64&sig=AAAA").status, 403)
            good = o.get(f"{path}?w=64&sig={sign('s3cr3t', path, 'w=64')}")
            self.assertEqual(good.status, 200, good.body)
            cli = os.environ.get("NIC_CLI")
            if cli:
                out = subprocess.run([cli, "sign", f"{path}?w=64"], env=dict(os.environ, HMAC_SECRET="s3cr3t"),
                                     capture_output=True, text=True, check=True).stdout.strip()
                self.assertEqual(o.get(out).status, 200)
                unset = subprocess.run([cli, "sign", f"{path}?w=64"], capture_output=True,
                                       env={k: v for k, v in os.environ.items() if k != "HMAC_SECRET"})
                self.assertEqual(unset.returncode, 2)
        finally:
            o.stop()

    def test_rate_limit(self):
        ws, block, _, name = FAKES.image(h.png(64, 64))
        o = h.Origin(FAKES, RATE_LIMIT_IMAGE=3)
        try:
            statuses = [o.get(f"/img/{ws}/{block}/{name}").status for _ in range(3)]
            self.assertEqual(statuses, [200] * 3)
            r = o.get(f"/img/{ws}/{block}/{name}")
            self.assertEqual(r.status, 429)
            self.assertEqual(r.json()["error"]["code"], "RATE_LIMITED")
            self.assertGreaterEqual(int(r.header("retry-after")), 1)
            self.assertEqual(o.get("/health").status, 200)  # health is never limited
        finally:
            o.stop()

    def test_private_host_refused(self):
        o = h.Origin(FAKES, ALLOWED_DOMAINS=f"http://127.0.0.1:{FAKES.s3_port},http://localhost:{FAKES.s3_port},"
                                            "prod-files-secure.s3.us-west-2.amazonaws.com")
        try:
            plain = quote("http://prod-files-secure.s3.us-west-2.amazonaws.com/" + h.dashed(h.new_id()) + "/" +
                          h.dashed(h.new_id()) + "/a.png", safe="")
            r = o.get(f"/api/v1/proxy?url={plain}")
            self.assertEqual((r.status, r.json()["error"]["code"]), (403, "HTTPS_REQUIRED"))
            path = FAKES.add_file(h.new_id(), h.new_id(), "a.png", h.png(10, 10))
            url = FAKES.sign(path).replace("127.0.0.1", "localhost")
            r = o.get("/api/v1/proxy?url=" + quote(url, safe=""))
            self.assertEqual(r.status, 403, r.body)
            self.assertEqual(r.json()["error"]["code"], "PRIVATE_HOST")
            self.assertEqual(FAKES.counters()["s3_requests"], 0)
        finally:
            o.stop()

    def test_cache_ttl_sets_s_maxage(self):
        ws, block, _, name = FAKES.image(h.png(64, 64))
        o = h.Origin(FAKES, CACHE_TTL_SECONDS=600)
        try:
            r = o.get(f"/img/{ws}/{block}/{name}")
            self.assertEqual(r.header("cache-control"), "public, max-age=3600, s-maxage=600, stale-while-revalidate=3600")
        finally:
            o.stop()

    def test_default_cors_is_star_and_svg_is_sandboxed(self):
        svg = (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
               b'<rect width="10" height="10" fill="red"/></svg>')
        ws, block, _, name = FAKES.image(svg, name="logo.svg", content_type="image/svg+xml")
        o = h.Origin(FAKES)
        try:
            for headers in ({}, {"Origin": "https://any.example"}):
                r = o.get(f"/img/{ws}/{block}/{name}?w=64", headers)
                self.assertEqual(r.status, 200, r.body)
                self.assertEqual(r.header("content-type"), "image/svg+xml")
                self.assertEqual(r.body, svg)
                self.assertEqual(r.header("content-security-policy"),
                                 "default-src 'none'; style-src 'unsafe-inline'; sandbox")
                self.assertEqual(r.header("x-content-type-options"), "nosniff")
                # `*`: the same answer for every page, so nothing varies by Origin.
                self.assertEqual(r.header("access-control-allow-origin"), "*")
                self.assertNotIn("Origin", r.header("vary") or "")
        finally:
            o.stop()

    def test_graceful_shutdown_finishes_inflight_requests(self):
        ws, block, _, name = FAKES.image(h.png(64, 64))
        FAKES.faults(s3={"latency_ms": 800})
        o = h.Origin(FAKES)
        try:
            import threading
            out = {}
            t = threading.Thread(target=lambda: out.setdefault("r", o.get(f"/img/{ws}/{block}/{name}")))
            t.start()
            self.assertTrue(h.wait_until(lambda: FAKES.counters()["s3_inflight"] >= 1))
            self.assertEqual(o.stop(remove=False), 0)
            t.join()
            self.assertEqual(out["r"].status, 200)
        finally:
            o.stop()


if __name__ == "__main__":
    unittest.main()
