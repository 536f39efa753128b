// The filesystem tier (CACHE_DIR). Each entry is {hash}.bin plus a {hash}.meta
// sidecar in folders sharded by the first hex digits of the key hash. Writes go
// to a temporary file, are fsynced and renamed, the sidecar last, and the index
// only learns of an entry once both are in place. The sidecar records the
// SHA-256 of the bytes, and every read checks it: a crash between the two
// renames, two writers of one hash (two processes sharing CACHE_DIR) or a
// damaged file can pair bytes with another write's sidecar, and such an entry
// is a miss (and removed), never served with the wrong ETag or type. (A file
// version that passed, its device, inode, size, mtime and ctime, is not hashed
// again: any write changes the ctime, which no one can set back; and
// read_verified serves only such versions, from the I/O threads.) An entry
// whose key does not hash to its file name is never indexed. The index is
// rebuilt from the sidecars at start-up, which is also when orphans are swept:
// temporary files, data without a sidecar, sidecars without data, and sidecars
// that are incomplete or name another key. CACHE_MAX_BYTES evicts the least
// recently used entries.
#pragma once

#include <sys/stat.h>

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

// The sidecar's text; `sha256` (lower-case hex of the bytes) is written when given.
std::string serialize_meta(const EntryMeta& meta, std::string_view sha256 = {});
// `sha256` (optional) receives the recorded hash, empty when the sidecar has none.
std::optional<EntryMeta> parse_meta(std::string_view text, std::string* sha256 = nullptr);

using DiskStoreStats = StoreStats;

class DiskStore final : public Store {
 public:
  // Creates the directory when needed and indexes what is there.
  static Result<std::unique_ptr<DiskStore>> open(std::string dir, std::uint64_t max_bytes);

  std::optional<Hit> read(const std::string& hash) override;
  std::optional<Hit> read_verified(const std::string& hash, std::uint64_t max_bytes) override;
  std::optional<EntryMeta> meta(const std::string& hash) override;
  Status write(const std::string& hash, EntryMeta meta, std::span<const std::uint8_t> bytes) override;
  // Rewrites only the sidecar (e.g. a source confirmed unchanged).
  Status update_meta(const std::string& hash, const EntryMeta& meta) override;
  bool erase(const std::string& hash) override;
  // Every entry whose key starts with `prefix`; returns how many were removed.
  std::size_t erase_group(std::string_view group) override;

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
  // A read found the files not matching the index: forget the entry, remove its files.
  void discard(const std::string& hash, const std::string& why);
  void evict_locked(std::vector<std::string>& victims);
  void forget_locked(const std::string& hash);

  // The data file last checked against the hash. The ctime moves on every
  // write to the file (utimes cannot set it back), so a damaged or rewritten
  // file is a new version even when its size and mtime are restored.
  struct FileVersion {
    std::uint64_t device = 0;
    std::uint64_t inode = 0;
    std::uint64_t size = 0;
    std::int64_t mtime_ns = -1;
    std::int64_t ctime_ns = -1;
    bool operator==(const FileVersion&) const = default;
  };
  // Opens the entry's data file; on success `version` describes what was opened.
  int open_data(const std::string& hash, std::uint64_t size, FileVersion& version) const;
  static FileVersion version_of(const struct stat& st);
  // A verified version's data file kept open for read_verified (fstat + pread
  // instead of open + fstat + pread + close), at most kMaxOpenFiles of them.
  using OpenFile = std::shared_ptr<const int>;  // the descriptor; closed with the last holder
  static constexpr std::size_t kMaxOpenFiles = 64;
  void drop_open_file_locked(const std::string& hash, const OpenFile& file);
  struct Item {
    EntryMeta meta;
    std::string sha256;  // of the bytes, from the sidecar
    std::list<std::string>::iterator lru;
    FileVersion verified;
    OpenFile open;  // the verified version's file, or null
  };
  std::string dir_;
  std::uint64_t max_bytes_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Item> index_;
  std::list<std::string> lru_;  // front = most recent
  DiskStoreStats stats_;
  std::uint64_t tmp_counter_ = 0;
  std::size_t open_files_ = 0;  // items holding an OpenFile
};

}  // namespace nic::origin
