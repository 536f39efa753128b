// The memory tier: LRU order, the byte bound, source-group purges.
#include <catch2/catch.hpp>

#include <string>

#include "memory_cache.h"
#include "nic/cache_key.h"

using namespace nic::origin;

namespace {

SharedImage image(std::string key, std::size_t bytes) {
  auto img = std::make_shared<StoredImage>();
  img->bytes = std::make_shared<const Bytes>(bytes, std::uint8_t{7});
  img->key = std::move(key);
  img->content_type = "image/png";
  return img;
}

// Keys that land in the same shard, so one shard's budget is exercised.
std::vector<std::string> same_shard_keys(std::size_t n) {
  std::vector<std::string> out;
  const auto target = std::hash<std::string>{}("k0") % MemoryCache::kShards;
  for (int i = 0; out.size() < n; ++i) {
    std::string k = "k" + std::to_string(i);
    if (std::hash<std::string>{}(k) % MemoryCache::kShards == target) out.push_back(k);
  }
  return out;
}

}  // namespace

TEST_CASE("memory cache: get returns what was put, shared not copied", "[origin][memory]") {
  MemoryCache cache(16 * 1024 * 1024);
  auto img = image("v1/ws/id/a.png?fmt=png", 1000);
  cache.put("h1", img);
  auto got = cache.get("h1");
  REQUIRE(got);
  CHECK(got->bytes.get() == img->bytes.get());
  CHECK_FALSE(cache.get("h2"));
  CHECK(cache.entries() == 1);
}

TEST_CASE("memory cache: bounded in bytes, least recently used goes first", "[origin][memory]") {
  // Each shard holds 16 KiB; entries charge ~5 KiB + bookkeeping: three fit.
  MemoryCache cache(16 * 16 * 1024);
  const auto keys = same_shard_keys(4);
  for (int i = 0; i < 3; ++i) cache.put(keys[i], image("v1/w/i/" + keys[i], 5000));
  REQUIRE(cache.entries() == 3);
  CHECK(cache.get(keys[0]));  // now most recent; keys[1] is the oldest
  cache.put(keys[3], image("v1/w/i/" + keys[3], 5000));
  CHECK(cache.entries() == 3);
  CHECK_FALSE(cache.get(keys[1]));
  CHECK(cache.get(keys[0]));
  CHECK(cache.get(keys[2]));
  CHECK(cache.get(keys[3]));
  CHECK(cache.bytes() <= cache.capacity());
}

TEST_CASE("memory cache: entries larger than a shard are not kept", "[origin][memory]") {
  MemoryCache cache(16 * 1024);
  cache.put("big", image("v1/w/i/big", 2000));
  CHECK_FALSE(cache.get("big"));
  CHECK(cache.bytes() == 0);
}

TEST_CASE("memory cache: replace and group purge keep the byte count right", "[origin][memory]") {
  MemoryCache cache(64 * 1024 * 1024);
  cache.put("a", image("v1/ws/one/x.png?w=1", 100));
  cache.put("a", image("v1/ws/one/x.png?w=1", 300));
  cache.put("b", image("v1/other/one/x.png?w=2", 100));  // same id, another workspace: same group
  cache.put("c", image("v1/ws/two/x.png?w=1", 100));
  CHECK(cache.entries() == 3);
  CHECK(cache.erase_group(nic::source_group("one")) == 2);
  CHECK(cache.entries() == 1);
  CHECK(cache.bytes() == MemoryCache::charge(*image("v1/ws/two/x.png?w=1", 100)));
  CHECK(cache.erase("c"));
  CHECK(cache.bytes() == 0);
}
