// The memo of prepared /img requests, and the lock-free hot counters of Metrics.
#include <catch2/catch.hpp>

#include <string>

#include "metrics.h"
#include "request_memo.h"

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
