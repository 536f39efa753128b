// The memory tier: an LRU bounded in bytes, split into shards with their own
// locks so concurrent hits on different keys do not contend.
#pragma once

#include <array>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "image.h"

namespace nic::origin {

class MemoryCache {
 public:
  static constexpr std::size_t kShards = 16;

  explicit MemoryCache(std::uint64_t capacity_bytes);

  SharedImage get(const std::string& key_hash);
  // Entries larger than a shard's share are not kept.
  void put(const std::string& key_hash, SharedImage image);
  bool erase(const std::string& key_hash);
  // Drops every entry of a source group (nic::source_group_of(key) == group); returns how many.
  std::size_t erase_group(std::string_view group);

  std::uint64_t bytes() const;
  std::size_t entries() const;
  std::uint64_t capacity() const { return capacity_; }

  // The accounted size of an entry (bytes plus bookkeeping).
  static std::uint64_t charge(const StoredImage& image);

 private:
  struct Shard {
    mutable std::mutex mu;
    std::list<std::pair<std::string, SharedImage>> lru;  // front = most recent
    std::unordered_map<std::string, std::list<std::pair<std::string, SharedImage>>::iterator> map;
    std::uint64_t bytes = 0;
  };
  Shard& shard_for(const std::string& key_hash);
  void evict_locked(Shard& s);

  std::uint64_t capacity_;
  std::uint64_t shard_capacity_;
  std::array<Shard, kShards> shards_;
};

}  // namespace nic::origin
