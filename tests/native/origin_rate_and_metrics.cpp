// Rate limits per client, the Prometheus text, the Notion block JSON, the
// call spacer, the coalescer and the bounded pool.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "coalescer.h"
#include "health.h"
#include "metrics.h"
#include "notion_client.h"
#include "rate_limiter.h"
#include "work_pool.h"

using namespace nic::origin;

TEST_CASE("rate limiter: per client, per window", "[origin][rate]") {
  RateLimiter limiter(3, 60);
  for (int i = 0; i < 3; ++i) CHECK(limiter.hit("1.2.3.4", 120).allowed);
  const auto refused = limiter.hit("1.2.3.4", 130);
  CHECK_FALSE(refused.allowed);
  CHECK(refused.retry_after_s == 50);
  CHECK(limiter.hit("5.6.7.8", 130).allowed);  // another client
  CHECK(limiter.hit("1.2.3.4", 180).allowed);  // the next window
  RateLimiter off(0, 60);
  for (int i = 0; i < 100; ++i) CHECK(off.hit("x", 0).allowed);
}

TEST_CASE("rate limiter: an IPv6 client is its /64", "[origin][rate]") {
  struct Case {
    const char* address;
    const char* key;
  };
  const Case cases[] = {
      {"203.0.113.7", "203.0.113.7"},
      {"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
      {"2001:db8:1:2::ffff", "2001:db8:1:2::/64"},
      {"2001:DB8:1:2::1", "2001:db8:1:2::/64"},
      {"::ffff:198.51.100.1", "198.51.100.1"},  // IPv4-mapped
      {"::1", "::/64"},
      {"not-an-address", "not-an-address"},
      {"", ""},
  };
  for (const auto& c : cases) {
    CAPTURE(c.address);
    CHECK(RateLimiter::client_key(c.address) == c.key);
  }
  // Rotating addresses inside one /64 does not buy a new budget.
  RateLimiter limiter(2, 60);
  CHECK(limiter.hit("2001:db8:1:2::1", 0).allowed);
  CHECK(limiter.hit("2001:db8:1:2::2", 0).allowed);
  CHECK_FALSE(limiter.hit("2001:db8:1:2:ffff::3", 0).allowed);
  CHECK(limiter.hit("2001:db8:1:3::1", 0).allowed);  // the next /64 is another client
}

TEST_CASE("rate limiter: bounded however many clients", "[origin][rate]") {
  RateLimiter limiter(5, 60);
  for (int i = 0; i < 200000; ++i) {
    const std::string ip = std::to_string(10 + i / 65536) + "." + std::to_string((i / 256) % 256) + "." +
                           std::to_string(i % 256) + ".1";
    (void)limiter.hit(ip, 30);
  }
  CHECK(limiter.clients() <= RateLimiter::kShards * RateLimiter::kMaxPerShard);
  // Past windows go first.
  RateLimiter later(5, 60);
  for (int i = 0; i < 20000; ++i) (void)later.hit("c" + std::to_string(i), 30);
  for (int i = 0; i < 20000; ++i) (void)later.hit("d" + std::to_string(i), 90);
  CHECK(later.clients() <= RateLimiter::kShards * RateLimiter::kMaxPerShard);
  CHECK(later.hit("d1", 90).allowed);  // still counted in its own window
}

TEST_CASE("health: liveness apart from readiness; a degraded store stays ready", "[origin][health]") {
  REQUIRE(parse_health_probe("").ok());
  CHECK(*parse_health_probe("") == HealthProbe::Full);
  CHECK(*parse_health_probe("probe=live") == HealthProbe::Live);
  CHECK(*parse_health_probe("x=1&probe=ready") == HealthProbe::Ready);
  const auto bad = parse_health_probe("probe=deep");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == nic::ErrorCode::InvalidParam);
  CHECK(bad.error().message.find("live or ready") != std::string::npos);

  struct Case {
    HealthProbe probe;
    bool writable;
    const char* state;
  };
  const Case cases[] = {
      {HealthProbe::Live, true, "ok"},       {HealthProbe::Live, false, "ok"},
      {HealthProbe::Ready, true, "ok"},      {HealthProbe::Ready, false, "degraded"},
      {HealthProbe::Full, true, "ok"},       {HealthProbe::Full, false, "degraded"},
  };
  for (const auto& c : cases) {
    CAPTURE(static_cast<int>(c.probe), c.writable);
    HealthInputs in;
    in.storage_writable = c.writable;
    in.storage_backend = "s3";
    in.storage_entries = 7;
    const auto a = health_answer(c.probe, in);
    CHECK(a.status == 200);  // a degraded store never makes the origin unready
    const auto doc = boost::json::parse(a.body).as_object();
    CHECK(doc.at("status").as_string() == c.state);
    CHECK(doc.contains("storage") == (c.probe == HealthProbe::Full));
    if (c.probe == HealthProbe::Full) {
      CHECK(doc.at("storage").at("writable").as_bool() == c.writable);
      CHECK(doc.at("storage").at("entries").to_number<std::uint64_t>() == 7);
      CHECK(doc.at("storage").at("backend").as_string() == "s3");
    }
  }
}

TEST_CASE("metrics: every contract name in Prometheus text", "[origin][metrics]") {
  Metrics m;
  m.request("image", 200);
  m.request("image", 200);
  m.request("proxy", 403);
  m.cache_hit("memory");
  m.cache_miss();
  m.coalesced();
  m.notion_call("200");
  m.upstream_fetch("200");
  m.transform("webp", 0.02);
  m.transform("avif", 3.0);
  m.storage_write("variant");
  m.upstream_bytes(1000);
  Metrics::Gauges g;
  g.inflight_flights = 2;
  const std::string text = m.prometheus(g);
  for (const char* name : {"nic_requests_total", "nic_cache_hits_total", "nic_cache_misses_total",
                           "nic_coalesced_total", "nic_notion_api_calls_total", "nic_upstream_fetches_total",
                           "nic_transforms_total", "nic_storage_writes_total", "nic_inflight_flights",
                           "nic_transform_seconds", "nic_upstream_bytes_total", "process_resident_memory_bytes"}) {
    INFO(name);
    CHECK(text.find(std::string("# TYPE ") + name + " ") != std::string::npos);
  }
  CHECK(text.find("nic_requests_total{route=\"image\",status=\"200\"} 2\n") != std::string::npos);
  CHECK(text.find("nic_requests_total{route=\"proxy\",status=\"403\"} 1\n") != std::string::npos);
  CHECK(text.find("nic_inflight_flights 2\n") != std::string::npos);
  CHECK(text.find("nic_upstream_bytes_total 1000\n") != std::string::npos);
  CHECK(text.find("nic_transform_seconds_bucket{le=\"0.025\"} 1\n") != std::string::npos);
  CHECK(text.find("nic_transform_seconds_bucket{le=\"+Inf\"} 2\n") != std::string::npos);
  CHECK(text.find("nic_transform_seconds_count 2\n") != std::string::npos);
  CHECK(m.total("nic_requests_total") == 3);
  CHECK(resident_memory_bytes() > 0);
}

TEST_CASE("notion: block JSON as the API returns it", "[origin][notion]") {
  const char* file_block = R"({"object":"block","id":"c02fc1d3-db8b-45c5-a222-27595b15aea7",
    "parent":{"type":"page_id","page_id":"59833787-2cf9-4fdf-8782-e53db20768a5"},
    "created_time":"2022-03-01T19:05:00.000Z","has_children":false,"archived":false,"type":"image",
    "image":{"caption":[],"type":"file","file":{"url":"https://prod-files-secure.s3.us-west-2.amazonaws.com/a/b/c.png?X-Amz-Expires=3600",
    "expiry_time":"2024-01-01T01:00:00.000Z"}}})";
  auto f = parse_block_json(file_block);
  REQUIRE(f.ok());
  CHECK(f->url.starts_with("https://prod-files-secure"));
  CHECK(f->expires_at == 1704070800);
  CHECK_FALSE(f->external);

  auto e = parse_block_json(
      R"({"object":"block","type":"image","image":{"caption":[],"type":"external","external":{"url":"https://example.com/x.jpg"}}})");
  REQUIRE(e.ok());
  CHECK(e->external);
  CHECK_FALSE(e->expires_at);

  auto para = parse_block_json(R"({"object":"block","type":"paragraph","paragraph":{"rich_text":[]}})");
  REQUIRE_FALSE(para.ok());
  CHECK(para.error().code == nic::ErrorCode::ImageNotFound);
  CHECK(parse_block_json("{not json").error().code == nic::ErrorCode::NotionApiError);
  CHECK(parse_block_json(R"({"object":"block","type":"image","image":{"type":"file"}})").error().code ==
        nic::ErrorCode::NotionApiError);
}

TEST_CASE("notion: ISO 8601 times", "[origin][notion]") {
  CHECK(parse_iso8601("1970-01-01T00:00:00.000Z") == 0);
  CHECK(parse_iso8601("2024-01-01T00:00:00Z") == 1704067200);
  CHECK(parse_iso8601("2024-01-01T02:00:00+02:00") == 1704067200);
  CHECK_FALSE(parse_iso8601("2024-01-01"));
  CHECK_FALSE(parse_iso8601("2024-13-01T00:00:00Z"));
  CHECK_FALSE(parse_iso8601("2024-01-01T00:00:00"));
}

TEST_CASE("notion: calls per token are spaced, not dropped", "[origin][notion]") {
  CallSpacer spacer(2.0);  // 500 ms apart
  CHECK(spacer.reserve("t", 1000) == 1000);
  CHECK(spacer.reserve("t", 1000) == 1500);
  CHECK(spacer.reserve("t", 1000) == 2000);
  CHECK(spacer.reserve("other", 1000) == 1000);
  spacer.penalize("t", 10000);  // a 429 pushes the next slot back
  CHECK(spacer.reserve("t", 3000) == 10000);
}

TEST_CASE("coalescer: one leader, followers share its result", "[origin][coalescer]") {
  Coalescer<int> c(10000, true);
  std::atomic<int> sum{0};
  auto lead = c.join("k", [](const nic::Result<int>&) { FAIL("the leader's waiter is not kept"); });
  REQUIRE(lead.leader);
  for (int i = 0; i < 5; ++i) {
    auto t = c.join("k", [&sum](const nic::Result<int>& r) { sum += r.ok() ? *r : -100; });
    CHECK_FALSE(t.leader);
  }
  CHECK(c.inflight() == 1);
  c.finish(lead.flight, 7);
  CHECK(sum == 35);
  CHECK(c.inflight() == 0);
  // A failure reaches the followers and is not kept: the next join leads.
  auto lead2 = c.join("k", nullptr);
  REQUIRE(lead2.leader);
  std::atomic<int> failed{0};
  c.join("k", [&failed](const nic::Result<int>& r) { failed += r.ok() ? 0 : 1; });
  c.finish(lead2.flight, nic::make_error(nic::ErrorCode::UpstreamError, "x"));
  CHECK(failed == 1);
  CHECK(c.join("k", nullptr).leader);
}

TEST_CASE("coalescer: followers time out with UPSTREAM_TIMEOUT", "[origin][coalescer]") {
  Coalescer<int> c(20, true);
  auto lead = c.join("k", nullptr);
  std::promise<nic::ErrorCode> p;
  c.join("k", [&p](const nic::Result<int>& r) { p.set_value(r.ok() ? nic::ErrorCode::Internal : r.error().code); });
  auto f = p.get_future();
  REQUIRE(f.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK(f.get() == nic::ErrorCode::UpstreamTimeout);
  c.finish(lead.flight, 1);  // nobody left to wake
  CHECK(c.counts().timed_out == 1);
}

TEST_CASE("coalescer: followers that join while the timer sleeps still time out", "[origin][coalescer]") {
  // Only a join with an earlier deadline wakes the timer; later joiners are
  // found when it wakes for the first one.
  Coalescer<int> c(50, true);
  auto a = c.join("a", nullptr);
  auto b = c.join("b", nullptr);
  std::promise<nic::ErrorCode> first, second, third;
  auto code = [](const nic::Result<int>& r) { return r.ok() ? nic::ErrorCode::Internal : r.error().code; };
  c.join("a", [&](const nic::Result<int>& r) { first.set_value(code(r)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  c.join("b", [&](const nic::Result<int>& r) { second.set_value(code(r)); });
  c.join("a", [&](const nic::Result<int>& r) { third.set_value(code(r)); });
  for (auto* p : {&first, &second, &third}) {
    auto f = p->get_future();
    REQUIRE(f.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    CHECK(f.get() == nic::ErrorCode::UpstreamTimeout);
  }
  CHECK(c.counts().timed_out == 3);
  c.finish(a.flight, 1);
  c.finish(b.flight, 1);
}

TEST_CASE("coalescer: switched off, everyone leads", "[origin][coalescer]") {
  Coalescer<int> c(1000, false);
  auto a = c.join("k", nullptr);
  auto b = c.join("k", nullptr);
  CHECK(a.leader);
  CHECK(b.leader);
  CHECK(c.inflight() == 2);
  c.finish(a.flight, 1);
  c.finish(b.flight, 1);
  CHECK(c.inflight() == 0);
}

TEST_CASE("work pool: bounded queue refuses instead of growing", "[origin][pool]") {
  WorkPool pool("test", 1, 2);
  std::promise<void> gate;
  auto open = gate.get_future().share();
  std::atomic<int> ran{0};
  auto job = [open, &ran] {
    open.wait();
    ++ran;
  };
  REQUIRE(pool.try_submit(job));  // taken by the idle worker (or queued while it wakes)
  // Wait until the worker holds it, so the queue is empty.
  for (int i = 0; i < 1000 && pool.running() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(pool.running() == 1);
  CHECK(pool.try_submit(job));
  CHECK(pool.try_submit(job));
  CHECK_FALSE(pool.try_submit(job));
  CHECK(pool.queued() == 2);
  gate.set_value();
  pool.stop();
  CHECK(ran == 3);
  CHECK_FALSE(pool.try_submit(job));
}
