// MAX_VARIANTS_PER_SOURCE: how many distinct variants one source (an id's
// source group, under every workspace) may have. Each variant key is made once
// and then served from memory or storage, but the parameters and workspace
// strings are the caller's: without a cap one stored source can be turned into
// thousands of transforms. A flight that would make a new variant asks admit()
// first; past the cap the answer is 429 RATE_LIMITED (no nearest-variant
// fallback: a different image than the URL asked for would be cached by the
// edge under that URL). Variants already counted, and stored ones found by a
// storage hit (note()), are always served. A purge of the source resets it.
//
// In-process and bounded: at most `max_sources` sources are tracked (least
// recently used dropped), `per_source` 64-bit key hashes each. A restart or
// the eviction of a source's entry starts its count again (README "Running it
// on the public internet").
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace nic::origin {

class VariantCap {
 public:
  static constexpr std::size_t kDefaultMaxSources = 16384;

  // per_source 0: no cap (admit() always true, nothing tracked).
  explicit VariantCap(std::size_t per_source, std::size_t max_sources = kDefaultMaxSources)
      : per_source_(per_source), max_sources_(max_sources) {}

  // True when `key_hash` is already counted for `group` or there is room
  // (then it is counted); false when the source has its cap of other variants.
  bool admit(const std::string& group, std::string_view key_hash) { return add(group, key_hash, true); }
  // A variant found stored: counted when there is room, never refused.
  void note(const std::string& group, std::string_view key_hash) { (void)add(group, key_hash, false); }
  // The source was purged: its variants are gone, so is its count.
  void forget(const std::string& group) {
    if (per_source_ == 0) return;
    std::lock_guard lock(mu_);
    if (const auto it = sources_.find(group); it != sources_.end()) {
      lru_.erase(it->second.lru);
      sources_.erase(it);
    }
  }
  std::size_t count(const std::string& group) const {
    std::lock_guard lock(mu_);
    const auto it = sources_.find(group);
    return it == sources_.end() ? 0 : it->second.hashes.size();
  }
  std::size_t refused() const {
    std::lock_guard lock(mu_);
    return refused_;
  }

 private:
  struct Entry {
    std::vector<std::uint64_t> hashes;
    std::list<std::string>::iterator lru;
  };

  bool add(const std::string& group, std::string_view key_hash, bool refuse_when_full) {
    if (per_source_ == 0) return true;
    const std::uint64_t h = std::hash<std::string_view>{}(key_hash);
    std::lock_guard lock(mu_);
    auto it = sources_.find(group);
    if (it == sources_.end()) {
      if (sources_.size() >= max_sources_) {
        sources_.erase(lru_.back());
        lru_.pop_back();
      }
      lru_.push_front(group);
      it = sources_.emplace(group, Entry{{}, lru_.begin()}).first;
    } else {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
    }
    auto& hashes = it->second.hashes;
    for (const std::uint64_t known : hashes) {
      if (known == h) return true;
    }
    if (hashes.size() >= per_source_) {
      if (refuse_when_full) ++refused_;
      return !refuse_when_full;
    }
    hashes.push_back(h);
    return true;
  }

  const std::size_t per_source_;
  const std::size_t max_sources_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> sources_;
  std::list<std::string> lru_;  // front = most recently used
  std::size_t refused_ = 0;
};

}  // namespace nic::origin
