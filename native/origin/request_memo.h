// Prepared /img requests by (target, Accept). prepare_image_request is a pure
// function of those two and the settings (which never change while the
// process runs), yet it costs more than the rest of a memory hit together:
// percent-decoding, normalising, negotiating and the SHA-256 of the key.
// A URL asked again (a popular image) skips it. Only successful preparations
// are kept. Strangers choose the targets and the Accept headers (up to the
// server's 32 KiB header limit), so the memo is bounded in entries and in
// bytes: a full shard is emptied, and an entry larger than 1/64 of a shard's
// bytes (a giant Accept header, say) is not kept at all.
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

  static constexpr std::size_t kDefaultMaxBytes = 8u << 20;

  explicit RequestMemo(std::size_t max_entries, std::size_t max_bytes = kDefaultMaxBytes)
      : per_shard_(max_entries / kShards), per_shard_bytes_(max_bytes / kShards) {}

  // What an entry holds on the heap, roughly: both strings, the prepared
  // request's strings, and the node and control block overheads.
  static std::size_t cost(std::string_view target, std::string_view accept, const ImageRequest& r) {
    return target.size() + accept.size() + sizeof(Entry) + 64 + sizeof(ImageRequest) + 32 + r.key.size() +
           r.key_hash.size() + r.image.workspace.size() + r.image.id.size() + r.image.filename.size();
  }

  std::size_t bytes() const {
    std::size_t total = 0;
    for (const Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      total += s.bytes;
    }
    return total;
  }

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
    if (per_shard_ == 0 || !prepared) return;
    const std::size_t c = cost(target, accept, *prepared);
    if (c > per_shard_bytes_ / 64) return;
    const std::uint64_t h = hash(target, accept);
    Shard& s = shards_[h % kShards];
    std::lock_guard lock(s.mu);
    if (const auto it = s.map.find(h); it != s.map.end()) {
      s.bytes -= it->second.cost;
      s.map.erase(it);
    }
    if (s.map.size() >= per_shard_ || s.bytes + c > per_shard_bytes_) {
      s.map.clear();
      s.bytes = 0;
    }
    s.map.emplace(h, Entry{std::string(target), std::string(accept), std::move(prepared), c});
    s.bytes += c;
  }

 private:
  struct Entry {
    std::string target;
    std::string accept;
    Prepared prepared;
    std::size_t cost = 0;
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::uint64_t, Entry> map;
    std::size_t bytes = 0;
  };

  static std::uint64_t hash(std::string_view target, std::string_view accept) {
    const std::uint64_t a = std::hash<std::string_view>{}(target);
    const std::uint64_t b = std::hash<std::string_view>{}(accept);
    return a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
  }

  std::size_t per_shard_;
  std::size_t per_shard_bytes_;
  std::array<Shard, kShards> shards_;
};

}  // namespace nic::origin
