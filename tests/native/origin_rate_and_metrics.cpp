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

TEST_CASE("notion: calls per token are spaced, within bounds", "[origin][notion]") {
  constexpr std::int64_t kFar = 1'000'000;
  CallSpacer spacer(2.0, 8);  // 500 ms apart, at most 8 waiting
  CHECK(spacer.reserve("t", 1000, kFar) == 1000);
  CHECK(spacer.reserve("t", 1000, kFar) == 1500);
  CHECK(spacer.reserve("t", 1000, kFar) == 2000);
  CHECK(spacer.reserve("other", 1000, kFar) == 1000);
  CHECK(spacer.waiting("t", 1000) == 2);  // the first calls at once
  spacer.penalize("t", 10000);  // a 429 pushes the next slot back
  CHECK(spacer.wait_ms("t", 3000) == 7000);
  for (int i = 0; i < 8; ++i) CHECK(spacer.reserve("t", 3000, kFar) == 10000 + 500 * i);
  CHECK(spacer.reserve("t", 3000, kFar) == std::nullopt);  // 8 waiting: NOTION_QUEUE is full
  CHECK(spacer.waiting("t", 3000) == 8);
  CHECK(spacer.reserve("t", 10000, kFar) == 14000);  // the first has had its turn

  SECTION("a slot past the caller's deadline is refused, and not taken") {
    CallSpacer s(1.0, 100);
    CHECK(s.reserve("t", 0, 5000) == 0);
    CHECK(s.reserve("t", 0, 5000) == 1000);
    CHECK(s.reserve("t", 0, 1500) == std::nullopt);
    CHECK(s.reserve("t", 0, 2000) == 2000);  // the refused caller left no gap
  }
  SECTION("NOTION_QUEUE=0: only a free slot") {
    CallSpacer s(1.0, 0);
    CHECK(s.reserve("t", 0, kFar) == 0);
    CHECK(s.reserve("t", 0, kFar) == std::nullopt);
    CHECK(s.reserve("t", 1000, kFar) == 1000);
  }
}

namespace {
// A waiter that records (value or -code, leader) into a promise.
struct Recorded {
  std::promise<std::pair<int, bool>> p;
  Coalescer<int>::Waiter waiter() {
    return [this](const nic::Result<int>& r, bool leader) {
      p.set_value({r.ok() ? *r : -static_cast<int>(r.error().code), leader});
    };
  }
  std::pair<int, bool> get() {
    auto f = p.get_future();
    REQUIRE(f.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    return f.get();
  }
};
const int kTimeout = -static_cast<int>(nic::ErrorCode::UpstreamTimeout);
constexpr std::int64_t kLater = 1LL << 60;
}  // namespace

TEST_CASE("coalescer: one leader, followers share its result", "[origin][coalescer]") {
  Coalescer<int> c(10000, true);
  std::atomic<int> sum{0}, leaders{0};
  auto count = [&](const nic::Result<int>& r, bool leader) {
    sum += r.ok() ? *r : -100;
    leaders += leader;
  };
  auto lead = c.join("k", kLater, count);
  REQUIRE(lead.leader);
  for (int i = 0; i < 5; ++i) CHECK_FALSE(c.join("k", kLater, count).leader);
  CHECK(c.inflight() == 1);
  c.finish(lead.flight, 7);
  CHECK(sum == 42);  // the leader's waiter too
  CHECK(leaders == 1);
  CHECK(c.inflight() == 0);
  c.finish(lead.flight, 8);  // a second finish finds nobody
  CHECK(sum == 42);
  // A failure reaches the followers and is not kept: the next join leads.
  std::atomic<int> failed{0};
  auto fail_count = [&failed](const nic::Result<int>& r, bool) { failed += r.ok() ? 0 : 1; };
  auto lead2 = c.join("k", kLater, fail_count);
  REQUIRE(lead2.leader);
  c.join("k", kLater, fail_count);
  c.finish(lead2.flight, nic::make_error(nic::ErrorCode::UpstreamError, "x"));
  CHECK(failed == 2);
  auto lead3 = c.join("k", kLater, [](const nic::Result<int>&, bool) {});
  CHECK(lead3.leader);
  c.finish(lead3.flight, 1);
}

TEST_CASE("coalescer: cancel_all answers every waiter once and ignores late leaders", "[origin][coalescer]") {
  Coalescer<int> c(60000, true);
  Recorded a_lead, a_follow, b_lead, next;
  auto a = c.join("a", kLater, a_lead.waiter());
  c.join("a", kLater, a_follow.waiter());
  auto b = c.join("b", kLater, b_lead.waiter());
  CHECK(c.cancel_all(nic::make_error(nic::ErrorCode::Overloaded, "shutting down")) == 3);
  const int overloaded = -static_cast<int>(nic::ErrorCode::Overloaded);
  CHECK(a_lead.get() == std::pair{overloaded, true});
  CHECK(a_follow.get() == std::pair{overloaded, false});
  CHECK(b_lead.get() == std::pair{overloaded, true});
  CHECK(c.inflight() == 0);
  c.finish(a.flight, 1);  // late: nobody is called twice
  c.finish(b.flight, 2);
  CHECK(c.cancel_all(nic::make_error(nic::ErrorCode::Overloaded, "again")) == 0);
  auto fresh = c.join("a", kLater, next.waiter());
  REQUIRE(fresh.leader);
  c.finish(fresh.flight, 3);
  CHECK(next.get() == std::pair{3, true});
}

TEST_CASE("coalescer: followers time out with UPSTREAM_TIMEOUT", "[origin][coalescer]") {
  Coalescer<int> c(20, true);
  Recorded leader, follower;
  auto lead = c.join("k", kLater, leader.waiter());
  c.join("k", kLater, follower.waiter());
  CHECK(follower.get() == std::pair{kTimeout, false});
  c.finish(lead.flight, 1);  // the leader still gets its own answer
  CHECK(leader.get() == std::pair{1, true});
  CHECK(c.counts().table.timed_out == 1);
  CHECK(c.counts().replaced == 0);
}

TEST_CASE("coalescer: a flight past its deadline fails for everyone and frees its key", "[origin][coalescer]") {
  Coalescer<int> c(60000, true);
  Recorded leader, follower, next;
  auto stuck = c.join("k", steady_ms() + 30, leader.waiter());
  REQUIRE(stuck.leader);
  CHECK_FALSE(c.join("k", kLater, follower.waiter()).leader);
  CHECK(leader.get() == std::pair{kTimeout, true});
  CHECK(follower.get() == std::pair{kTimeout, false});
  CHECK(c.counts().replaced == 1);
  CHECK(c.inflight() == 0);
  auto fresh = c.join("k", kLater, next.waiter());
  REQUIRE(fresh.leader);  // a new leader replaces the stuck one
  c.finish(stuck.flight, 5);  // the stuck leader's late result is ignored
  c.finish(fresh.flight, 6);
  CHECK(next.get() == std::pair{6, true});
}

TEST_CASE("coalescer: followers that join while the timer sleeps still time out", "[origin][coalescer]") {
  // Only a join with an earlier deadline wakes the timer; later joiners are
  // found when it wakes for the first one.
  Coalescer<int> c(50, true);
  auto a = c.join("a", kLater, [](const nic::Result<int>&, bool) {});
  auto b = c.join("b", kLater, [](const nic::Result<int>&, bool) {});
  Recorded first, second, third;
  c.join("a", kLater, first.waiter());
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  c.join("b", kLater, second.waiter());
  c.join("a", kLater, third.waiter());
  for (auto* r : {&first, &second, &third}) CHECK(r->get() == std::pair{kTimeout, false});
  CHECK(c.counts().table.timed_out == 3);
  c.finish(a.flight, 1);
  c.finish(b.flight, 1);
}

TEST_CASE("coalescer: switched off, everyone leads", "[origin][coalescer]") {
  Coalescer<int> c(1000, false);
  std::atomic<int> answered{0};
  auto count = [&answered](const nic::Result<int>&, bool leader) { answered += leader; };
  auto a = c.join("k", kLater, count);
  auto b = c.join("k", kLater, count);
  CHECK(a.leader);
  CHECK(b.leader);
  CHECK(c.inflight() == 2);
  c.finish(a.flight, 1);
  c.finish(b.flight, 1);
  CHECK(c.inflight() == 0);
  CHECK(answered == 2);
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
