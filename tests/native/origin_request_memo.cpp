// The memo of prepared /img requests, and the lock-free hot counters of Metrics.
#include <catch2/catch.hpp>

#include <string>

#include "metrics.h"
#include "request_memo.h"
#include "url_registry.h"

using namespace nic::origin;

namespace {
RequestMemo::Prepared prepared(const std::string& key) {
  auto r = std::make_shared<nic::ImageRequest>();
  r->key = key;
  return r;
}
}  // namespace

TEST_CASE("request memo: keyed by target and Accept", "[origin][memo]") {
  RequestMemo memo(64);
  CHECK(memo.get("/img/a/b/c.png?w=1", "image/webp") == nullptr);
  memo.put("/img/a/b/c.png?w=1", "image/webp", prepared("webp"));
  memo.put("/img/a/b/c.png?w=1", "*/*", prepared("any"));
  REQUIRE(memo.get("/img/a/b/c.png?w=1", "image/webp") != nullptr);
  CHECK(memo.get("/img/a/b/c.png?w=1", "image/webp")->key == "webp");
  CHECK(memo.get("/img/a/b/c.png?w=1", "*/*")->key == "any");
  CHECK(memo.get("/img/a/b/c.png?w=1", "") == nullptr);
  CHECK(memo.get("/img/a/b/c.png?w=2", "image/webp") == nullptr);
  memo.put("/img/a/b/c.png?w=1", "*/*", prepared("again"));
  CHECK(memo.get("/img/a/b/c.png?w=1", "*/*")->key == "again");
}

TEST_CASE("request memo: bounded by entries", "[origin][memo]") {
  RequestMemo memo(RequestMemo::kShards * 4);
  for (int i = 0; i < 1000; ++i) memo.put("/img/x/" + std::to_string(i), "", prepared(std::to_string(i)));
  int kept = 0;
  for (int i = 0; i < 1000; ++i) kept += memo.get("/img/x/" + std::to_string(i), "") != nullptr;
  CHECK(kept > 0);
  CHECK(kept <= static_cast<int>(RequestMemo::kShards * 4));
  // The most recent put is always there (a full shard is emptied before it).
  CHECK(memo.get("/img/x/999", "") != nullptr);
  RequestMemo off(0);
  off.put("/img/x", "", prepared("x"));
  CHECK(off.get("/img/x", "") == nullptr);
}

TEST_CASE("request memo: bounded in bytes, whatever the entry count", "[origin][memo]") {
  // Room for a million entries by count, 1 MiB by bytes (64 KiB a shard).
  RequestMemo memo(1u << 20, 1u << 20);
  const std::string accept(100, 'a');  // long but plausible Accept headers
  for (int i = 0; i < 5000; ++i) {
    memo.put("/img/x/" + std::to_string(i), accept + std::to_string(i), prepared(std::to_string(i)));
    REQUIRE(memo.bytes() <= (1u << 20));
  }
  CHECK(memo.bytes() > 0);
  CHECK(memo.get("/img/x/4999", accept + "4999") != nullptr);
  // An entry over 1/64 of a shard (1 KiB here): not kept at all.
  const std::string huge(30000, 'h');
  memo.put("/img/huge", huge, prepared("huge"));
  CHECK(memo.get("/img/huge", huge) == nullptr);
  // Replacing an entry does not count it twice.
  RequestMemo one(64, 1u << 20);
  one.put("/img/a", "", prepared("1"));
  const std::size_t single = one.bytes();
  for (int i = 0; i < 10; ++i) one.put("/img/a", "", prepared("1"));
  CHECK(one.bytes() == single);
}

TEST_CASE("url registry: bounded in bytes, least recently used go first", "[origin][registry]") {
  UrlRegistry reg(64 * 1024, 86400);
  const std::int64_t now = 1700000000;
  const std::string long_url = "https://prod-files-secure.s3.us-west-2.amazonaws.com/" + std::string(900, 'q');
  reg.put("ws", "keep", SignedUrl{long_url, now + 3600, "", false}, now);
  for (int i = 0; i < 2000; ++i) {
    reg.put("ws", "id" + std::to_string(i), SignedUrl{long_url, now + 3600, "", false}, now);
    if (i % 10 == 0) REQUIRE(reg.get_valid("ws", "keep", now));  // used: stays
    REQUIRE(reg.bytes() <= 64 * 1024);
  }
  CHECK(reg.size() < 100);
  CHECK(reg.get_valid("ws", "keep", now));
  CHECK(reg.get_valid("ws", "id1999", now));
  CHECK_FALSE(reg.get_valid("ws", "id0", now));
  // Bigger than the whole budget: never stored.
  reg.put("ws", "giant", SignedUrl{std::string(70 * 1024, 'g'), now + 3600, "", false}, now);
  CHECK_FALSE(reg.get_any("ws", "giant"));
}

TEST_CASE("url registry: URLs without an expiry go after max_age", "[origin][registry]") {
  UrlRegistry reg(1u << 20, 600);
  const std::int64_t t0 = 1700000000;
  reg.put("ws", "external", SignedUrl{"https://example.com/a.png", std::nullopt, "", false}, t0);
  reg.put("ws", "signed", SignedUrl{"https://s3/a?X-Amz-Expires=3600", t0 + 3600, "blk", false}, t0);
  CHECK(reg.get_valid("ws", "external", t0 + 100));
  // Within the margin of max_age: no longer handed out.
  CHECK_FALSE(reg.get_valid("ws", "external", t0 + 600 - UrlRegistry::kMarginSeconds));
  // A signed URL is served until its own expiry.
  CHECK(reg.get_valid("ws", "signed", t0 + 1200));
  CHECK_FALSE(reg.get_valid("ws", "signed", t0 + 3600 - UrlRegistry::kMarginSeconds));
  // The periodic sweep removes everything registered max_age ago or earlier.
  for (int i = 0; i < 1024; ++i) reg.put("ws", "new" + std::to_string(i), SignedUrl{"u", t0 + 9000, "", false}, t0 + 700);
  CHECK_FALSE(reg.get_any("ws", "external"));
  CHECK_FALSE(reg.get_any("ws", "signed"));
  CHECK(reg.size() == 1024);
  // forget keeps the block id, erase drops it.
  reg.put("ws", "f", SignedUrl{"u", t0 + 9000, "blk", false}, t0 + 700);
  reg.forget("ws", "f");
  CHECK_FALSE(reg.get_valid("ws", "f", t0 + 700));
  REQUIRE(reg.get_any("ws", "f"));
  CHECK(reg.get_any("ws", "f")->block_id == "blk");
  reg.put("ws", "f", SignedUrl{"u2", t0 + 9000, "", false}, t0 + 700);
  CHECK(reg.get_any("ws", "f")->block_id == "blk");  // an update without a block id keeps it
  reg.erase("ws", "f");
  CHECK_FALSE(reg.get_any("ws", "f"));
}

TEST_CASE("metrics: hot counters fold into the labelled ones", "[origin][metrics]") {
  Metrics m;
  for (int i = 0; i < 3; ++i) m.cache_hit("memory");
  m.cache_hit("coalesced");
  m.cache_hit("edge");  // not a hot tier: the labelled path
  m.request("image", 304);
  m.request("image", 200);
  m.request("image", 200);
  m.request("image", 42);  // out of the hot range
  m.request("health", 200);
  CHECK(m.count("nic_cache_hits_total", "tier=\"memory\"") == 3);
  CHECK(m.count("nic_cache_hits_total", "tier=\"coalesced\"") == 1);
  CHECK(m.count("nic_cache_hits_total", "tier=\"edge\"") == 1);
  CHECK(m.total("nic_cache_hits_total") == 5);
  CHECK(m.count("nic_requests_total", "route=\"image\",status=\"200\"") == 2);
  CHECK(m.total("nic_requests_total") == 5);
  const std::string text = m.prometheus({});
  CHECK(text.find("nic_cache_hits_total{tier=\"memory\"} 3\n") != std::string::npos);
  CHECK(text.find("nic_requests_total{route=\"image\",status=\"304\"} 1\n") != std::string::npos);
  CHECK(text.find("nic_requests_total{route=\"image\",status=\"42\"} 1\n") != std::string::npos);
  CHECK(text.find("nic_requests_total{route=\"health\",status=\"200\"} 1\n") != std::string::npos);
}
