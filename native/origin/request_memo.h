// Prepared /img requests by (target, Accept). prepare_image_request is a pure
// function of those two and the settings (which never change while the
// process runs), yet it costs more than the rest of a memory hit together:
// percent-decoding, normalising, negotiating and the SHA-256 of the key.
// A URL asked again (a popular image) skips it. Only successful preparations
// are kept; the memo is bounded by entry count (a full shard is emptied).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "nic/cache_key.h"

namespace nic::origin {

class RequestMemo {
 public:
  using Prepared = std::shared_ptr<const ImageRequest>;
  static constexpr std::size_t kShards = 16;

  explicit RequestMemo(std::size_t max_entries) : per_shard_(max_entries / kShards) {}

  Prepared get(std::string_view target, std::string_view accept) {
    if (per_shard_ == 0) return nullptr;
    const std::uint64_t h = hash(target, accept);
    Shard& s = shards_[h % kShards];
    std::lock_guard lock(s.mu);
    const auto it = s.map.find(h);
    // Another pair with the same 64-bit hash is simply a miss.
    if (it == s.map.end() || it->second.target != target || it->second.accept != accept) return nullptr;
    return it->second.prepared;
  }

  void put(std::string_view target, std::string_view accept, Prepared prepared) {
    if (per_shard_ == 0) return;
    const std::uint64_t h = hash(target, accept);
    Shard& s = shards_[h % kShards];
    std::lock_guard lock(s.mu);
    if (s.map.size() >= per_shard_) s.map.clear();
    s.map.insert_or_assign(h, Entry{std::string(target), std::string(accept), std::move(prepared)});
  }

 private:
  struct Entry {
    std::string target;
    std::string accept;
    Prepared prepared;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::uint64_t, Entry> map;
  };

  static std::uint64_t hash(std::string_view target, std::string_view accept) {
    const std::uint64_t a = std::hash<std::string_view>{}(target);
    const std::uint64_t b = std::hash<std::string_view>{}(accept);
    return a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
  }

  std::size_t per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace nic::origin
