#include "memory_cache.h"

#include "nic/cache_key.h"

#include <functional>

namespace nic::origin {

MemoryCache::MemoryCache(std::uint64_t capacity_bytes)
    : capacity_(capacity_bytes), shard_capacity_(capacity_bytes / kShards) {}

std::uint64_t MemoryCache::charge(const StoredImage& image) {
  return (image.bytes ? image.bytes->size() : 0) + image.key.size() + image.content_type.size() +
         image.etag.size() + image.header_block.size() + 256;
}

MemoryCache::Shard& MemoryCache::shard_for(const std::string& key_hash) {
  return shards_[std::hash<std::string>{}(key_hash) % kShards];
}

SharedImage MemoryCache::get(const std::string& key_hash) {
  Shard& s = shard_for(key_hash);
  std::lock_guard lock(s.mu);
  const auto it = s.map.find(key_hash);
  if (it == s.map.end()) return nullptr;
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  return it->second->second;
}

void MemoryCache::evict_locked(Shard& s) {
  while (s.bytes > shard_capacity_ && !s.lru.empty()) {
    auto& back = s.lru.back();
    s.bytes -= charge(*back.second);
    s.map.erase(back.first);
    s.lru.pop_back();
  }
}

void MemoryCache::put(const std::string& key_hash, SharedImage image) {
  if (!image) return;
  const std::uint64_t size = charge(*image);
  if (size > shard_capacity_) return;
  Shard& s = shard_for(key_hash);
  std::lock_guard lock(s.mu);
  if (const auto it = s.map.find(key_hash); it != s.map.end()) {
    s.bytes -= charge(*it->second->second);
    s.lru.erase(it->second);
    s.map.erase(it);
  }
  s.lru.emplace_front(key_hash, std::move(image));
  s.map[key_hash] = s.lru.begin();
  s.bytes += size;
  evict_locked(s);
}

bool MemoryCache::erase(const std::string& key_hash) {
  Shard& s = shard_for(key_hash);
  std::lock_guard lock(s.mu);
  const auto it = s.map.find(key_hash);
  if (it == s.map.end()) return false;
  s.bytes -= charge(*it->second->second);
  s.lru.erase(it->second);
  s.map.erase(it);
  return true;
}

std::size_t MemoryCache::erase_group(std::string_view group) {
  std::size_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard lock(s.mu);
    for (auto it = s.lru.begin(); it != s.lru.end();) {
      if (source_group_of(it->second->key) == group) {
        s.bytes -= charge(*it->second);
        s.map.erase(it->first);
        it = s.lru.erase(it);
        ++n;
      } else {
        ++it;
      }
    }
  }
  return n;
}

std::uint64_t MemoryCache::bytes() const {
  std::uint64_t total = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mu);
    total += s.bytes;
  }
  return total;
}

std::size_t MemoryCache::entries() const {
  std::size_t total = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mu);
    total += s.map.size();
  }
  return total;
}

}  // namespace nic::origin
