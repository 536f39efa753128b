// The filesystem tier (CACHE_DIR). Each entry is {hash}.bin plus a {hash}.meta
// sidecar in folders sharded by the first hex digits of the key hash. Writes go
// to a temporary file, are fsynced and renamed, the sidecar last, and the index
// only learns of an entry once both are in place, so a half-written file is
// never served. The index is rebuilt from the sidecars at start-up, which is
// also when leftovers of interrupted writes are removed. CACHE_MAX_BYTES evicts
// the least recently used entries.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "image.h"
#include "nic/error.h"
#include "store.h"

namespace nic::origin {

std::string serialize_meta(const EntryMeta& meta);
std::optional<EntryMeta> parse_meta(std::string_view text);

using DiskStoreStats = StoreStats;

class DiskStore final : public Store {
 public:
  // Creates the directory when needed and indexes what is there.
  static Result<std::unique_ptr<DiskStore>> open(std::string dir, std::uint64_t max_bytes);

  std::optional<Hit> read(const std::string& hash) override;
  std::optional<EntryMeta> meta(const std::string& hash) override;
  Status write(const std::string& hash, EntryMeta meta, std::span<const std::uint8_t> bytes) override;
  // Rewrites only the sidecar (e.g. a source confirmed unchanged).
  Status update_meta(const std::string& hash, const EntryMeta& meta) override;
  bool erase(const std::string& hash) override;
  // Every entry whose key starts with `prefix`; returns how many were removed.
  std::size_t erase_prefix(std::string_view prefix) override;

  DiskStoreStats stats() const override;
  bool writable() const override;
  std::string describe() const override { return "CACHE_DIR " + dir_; }
  const std::string& dir() const { return dir_; }

 private:
  DiskStore(std::string dir, std::uint64_t max_bytes) : dir_(std::move(dir)), max_bytes_(max_bytes) {}
  Status scan();
  std::string folder(const std::string& hash) const;
  std::string path(const std::string& hash, std::string_view ext) const;
  void remove_files(const std::string& hash) const;
  void evict_locked(std::vector<std::string>& victims);
  void forget_locked(const std::string& hash);

  struct Item {
    EntryMeta meta;
    std::list<std::string>::iterator lru;
  };
  std::string dir_;
  std::uint64_t max_bytes_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Item> index_;
  std::list<std::string> lru_;  // front = most recent
  DiskStoreStats stats_;
  std::uint64_t tmp_counter_ = 0;
};

}  // namespace nic::origin
