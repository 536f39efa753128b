// The storage tier behind the memory LRU: one small interface with two
// implementations, the filesystem (disk_store.h, STORAGE_BACKEND=fs) and an
// S3-compatible object store (s3_store.h, STORAGE_BACKEND=s3|r2). Entries are
// named by the lower-case hex SHA-256 of their key (a canonical variant key or
// a source key), and carry an EntryMeta. A read never returns a partial or
// unverified entry: anything doubtful is a miss.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "image.h"
#include "nic/error.h"

namespace nic::origin {

struct EntryMeta {
  std::string key;           // canonical key (or source key)
  std::string content_type;
  std::string etag;
  std::uint64_t size = 0;
  std::uint64_t original_size = 0;
  std::int64_t created = 0;  // unix seconds (for sources: when last confirmed against Notion)
  // Sources only: how the source was found ("block": via the Notion API, so it
  // is revalidated; "file": a registered signed URL) and which upstream file it
  // is (workspace/file id/filename), to notice when a block changes its file.
  std::string resolved_by;
  std::string upstream;
};

struct StoreStats {
  std::uint64_t bytes = 0;    // fs: bytes stored; s3: bytes written by this process
  std::uint64_t entries = 0;  // fs: entries stored; s3: entries whose metadata this process knows
  std::uint64_t writes = 0;
  std::uint64_t evictions = 0;
  std::uint64_t removed_at_start = 0;  // leftovers of interrupted writes
  std::uint64_t read_errors = 0;       // failed reads other than "not there" (served as misses)
  std::uint64_t write_errors = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  struct Hit {
    EntryMeta meta;
    SharedBytes bytes;
  };
  // A complete, verified entry or nothing (absent, unreachable, damaged).
  virtual std::optional<Hit> read(const std::string& hash) = 0;
  // For the I/O threads: an entry answered from local memory and a small local
  // file whose exact version read() already verified, without hashing and
  // never the network; nothing (the caller then asks read() on the storage
  // pool) when it is absent, larger than `max_bytes`, not verified yet, or
  // changed since. Stores without local files always return nothing.
  virtual std::optional<Hit> read_verified(const std::string& /*hash*/, std::uint64_t /*max_bytes*/) {
    return std::nullopt;
  }
  // From an in-process index only: never waits for the network (called on I/O threads).
  virtual std::optional<EntryMeta> meta(const std::string& hash) = 0;
  virtual Status write(const std::string& hash, EntryMeta meta, std::span<const std::uint8_t> bytes) = 0;
  // Rewrites only the metadata (e.g. a source confirmed unchanged).
  virtual Status update_meta(const std::string& hash, const EntryMeta& meta) = 0;
  virtual bool erase(const std::string& hash) = 0;
  // Every entry of a source group (nic::source_group: "v1/*/{id}/", the
  // source of an id and its variants under every workspace, i.e. each entry
  // whose nic::source_group_of(key) is `group`); returns how many were removed.
  virtual std::size_t erase_group(std::string_view group) = 0;

  virtual StoreStats stats() const = 0;
  // Health: can the store take writes right now (last known state, no waiting).
  virtual bool writable() const = 0;
  // For logs: "CACHE_DIR ./cache", "s3 http://host/bucket".
  virtual std::string describe() const = 0;
};

}  // namespace nic::origin
