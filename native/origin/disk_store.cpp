#include "disk_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <set>

#include "log.h"
#include "nic/cache_key.h"
#include "nic/sha256.h"

namespace nic::origin {
namespace fs = std::filesystem;
namespace {

bool valid_hash(std::string_view h) {
  if (h.size() != 64) return false;
  for (char c : h) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Error io_error(std::string_view what, const std::string& path) {
  return make_error(ErrorCode::Internal,
                    std::string(what) + " " + path + ": " + std::strerror(errno));
}

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  int release() {
    const int f = fd;
    fd = -1;
    return f;
  }
};

// Writes `data` to `final_path` through `tmp_path`: write, fsync, close, rename.
Status write_atomically(const std::string& tmp_path, const std::string& final_path,
                        std::span<const std::uint8_t> data) {
  Fd f(::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (f.fd < 0) return io_error("cannot create", tmp_path);
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(f.fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const Error e = io_error("cannot write", tmp_path);
      ::unlink(tmp_path.c_str());
      return e;
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(f.fd) != 0) {
    const Error e = io_error("cannot fsync", tmp_path);
    ::unlink(tmp_path.c_str());
    return e;
  }
  if (::close(f.release()) != 0) {
    const Error e = io_error("cannot close", tmp_path);
    ::unlink(tmp_path.c_str());
    return e;
  }
  if (::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
    const Error e = io_error("cannot rename", tmp_path);
    ::unlink(tmp_path.c_str());
    return e;
  }
  return Ok{};
}

std::optional<std::string> read_small_file(const std::string& path) {
  Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (f.fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(f.fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > 65536) return std::nullopt;
  }
  return out;
}

template <class T>
bool parse_num(std::string_view s, T& out) {
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

}  // namespace

std::string serialize_meta(const EntryMeta& m, std::string_view sha256) {
  std::string out = "nic-meta 1\n";
  out += "key=" + m.key + "\n";
  out += "content_type=" + m.content_type + "\n";
  out += "etag=" + m.etag + "\n";
  out += "size=" + std::to_string(m.size) + "\n";
  out += "original_size=" + std::to_string(m.original_size) + "\n";
  out += "created=" + std::to_string(m.created) + "\n";
  out += "resolved_by=" + m.resolved_by + "\n";
  out += "upstream=" + m.upstream + "\n";
  if (!sha256.empty()) {
    out += "sha256=";
    out += sha256;
    out += "\n";
  }
  return out;
}

std::optional<EntryMeta> parse_meta(std::string_view text, std::string* sha256) {
  if (sha256) sha256->clear();
  if (!text.starts_with("nic-meta 1\n")) return std::nullopt;
  text.remove_prefix(11);
  EntryMeta m;
  bool has_key = false;
  bool has_size = false;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;  // truncated
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string_view name = line.substr(0, eq);
    const std::string_view value = line.substr(eq + 1);
    if (name == "key") {
      m.key = value;
      has_key = !value.empty();
    } else if (name == "content_type") {
      m.content_type = value;
    } else if (name == "etag") {
      m.etag = value;
    } else if (name == "size") {
      if (!parse_num(value, m.size)) return std::nullopt;
      has_size = true;
    } else if (name == "original_size") {
      if (!parse_num(value, m.original_size)) return std::nullopt;
    } else if (name == "created") {
      if (!parse_num(value, m.created)) return std::nullopt;
    } else if (name == "resolved_by") {
      m.resolved_by = value;
    } else if (name == "upstream") {
      m.upstream = value;
    } else if (name == "sha256" && sha256) {
      *sha256 = value;
    }
  }
  if (!has_key || !has_size) return std::nullopt;
  return m;
}

Result<std::unique_ptr<DiskStore>> DiskStore::open(std::string dir, std::uint64_t max_bytes) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return make_error(ErrorCode::Internal, "CACHE_DIR: cannot create " + dir + ": " + ec.message());
  }
  std::unique_ptr<DiskStore> store(new DiskStore(std::move(dir), max_bytes));
  if (auto s = store->scan(); !s) return s.take_error();
  if (!store->writable()) {
    return make_error(ErrorCode::Internal, "CACHE_DIR: " + store->dir_ + " is not writable");
  }
  return store;
}

std::string DiskStore::folder(const std::string& hash) const {
  return dir_ + "/" + hash.substr(0, 2) + "/" + hash.substr(2, 2);
}

std::string DiskStore::path(const std::string& hash, std::string_view ext) const {
  return folder(hash) + "/" + hash + std::string(ext);
}

void DiskStore::remove_files(const std::string& hash) const {
  ::unlink(path(hash, ".meta").c_str());
  ::unlink(path(hash, ".bin").c_str());
}

Status DiskStore::scan() {
  struct Found {
    EntryMeta meta;
    std::string sha256;
    fs::file_time_type time;
    std::string hash;
  };
  // Pass 1: what is there. Only our own names are touched; anything else is left alone.
  std::set<std::string> bins;
  std::set<std::string> metas;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    if (it.depth() > 2 || !it->is_regular_file(ec)) continue;
    const std::string name = it->path().filename().string();
    const std::string full = it->path().string();
    if (name.size() > 64 && valid_hash(name.substr(0, 64)) && name.find(".tmp.") != std::string::npos) {
      ::unlink(full.c_str());  // an interrupted write
      ++stats_.removed_at_start;
      continue;
    }
    if (name.size() < 64 + 4) continue;
    const std::string hash = name.substr(0, 64);
    const std::string_view ext = std::string_view(name).substr(64);
    if (!valid_hash(hash) || it->path().parent_path().string() != folder(hash)) continue;
    if (ext == ".bin") bins.insert(hash);
    else if (ext == ".meta") metas.insert(hash);
  }
  if (ec) return make_error(ErrorCode::Internal, "CACHE_DIR: cannot scan " + dir_ + ": " + ec.message());
  // Pass 2: an entry is a data file and a complete sidecar that agree; every
  // other combination is an orphan of a crash and goes.
  std::vector<Found> found;
  std::set<std::string> all = bins;
  all.insert(metas.begin(), metas.end());
  for (const std::string& hash : all) {
    bool good = bins.count(hash) && metas.count(hash);
    std::string sha;
    std::optional<EntryMeta> meta;
    std::error_code size_ec;
    fs::file_time_type time{};
    if (good) {
      auto text = read_small_file(path(hash, ".meta"));
      meta = text ? parse_meta(*text, &sha) : std::nullopt;
      const auto size = fs::file_size(path(hash, ".bin"), size_ec);
      good = meta && !size_ec && size == meta->size && valid_hash(sha) &&
             nic::cache_key_hash(meta->key) == hash;  // a sidecar naming another key is not this entry
      if (good) time = fs::last_write_time(path(hash, ".bin"), size_ec);
    }
    if (!good) {
      remove_files(hash);
      ++stats_.removed_at_start;
      continue;
    }
    found.push_back({std::move(*meta), std::move(sha), time, hash});
  }
  // Oldest first, so the newest end up at the LRU's front.
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) { return a.time < b.time; });
  std::lock_guard lock(mu_);
  for (auto& f : found) {
    lru_.push_front(f.hash);
    stats_.bytes += f.meta.size;
    index_[f.hash] = Item{std::move(f.meta), std::move(f.sha256), lru_.begin(), FileVersion{}, nullptr};
  }
  stats_.entries = index_.size();
  std::vector<std::string> victims;
  evict_locked(victims);
  for (const auto& h : victims) remove_files(h);
  return Ok{};
}

void DiskStore::discard(const std::string& hash, const std::string& why) {
  {
    std::lock_guard lock(mu_);
    forget_locked(hash);
    ++stats_.read_errors;
  }
  remove_files(hash);
  log(LogLevel::Warn, "CACHE_DIR entry " + hash + " dropped: " + why);
}

bool DiskStore::writable() const { return ::access(dir_.c_str(), W_OK | X_OK) == 0; }

void DiskStore::forget_locked(const std::string& hash) {
  const auto it = index_.find(hash);
  if (it == index_.end()) return;
  stats_.bytes -= it->second.meta.size;
  if (it->second.open) --open_files_;
  lru_.erase(it->second.lru);
  index_.erase(it);
  stats_.entries = index_.size();
}

void DiskStore::evict_locked(std::vector<std::string>& victims) {
  if (max_bytes_ == 0) return;
  while (stats_.bytes > max_bytes_ && !lru_.empty()) {
    const std::string hash = lru_.back();
    forget_locked(hash);
    victims.push_back(hash);
    ++stats_.evictions;
  }
}

std::optional<EntryMeta> DiskStore::meta(const std::string& hash) {
  std::lock_guard lock(mu_);
  const auto it = index_.find(hash);
  if (it == index_.end()) return std::nullopt;
  return it->second.meta;
}

namespace {

// The whole file into a buffer of exactly `size` bytes, or nothing (short, error).
SharedBytes read_exactly(int fd, std::uint64_t size) {
  auto bytes = std::make_shared<Bytes>(size);
  std::size_t done = 0;
  while (done < bytes->size()) {
    const ssize_t n = ::pread(fd, bytes->data() + done, bytes->size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return nullptr;
    done += static_cast<std::size_t>(n);
  }
  return bytes;
}

}  // namespace

int DiskStore::open_data(const std::string& hash, std::uint64_t size, FileVersion& version) const {
  const std::string p = path(hash, ".bin");
  Fd f(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (f.fd < 0 || ::fstat(f.fd, &st) != 0 || static_cast<std::uint64_t>(st.st_size) != size) {
    // Gone or replaced underneath us: a miss, never a partial file.
    return -1;
  }
  version = version_of(st);
  return f.release();
}

DiskStore::FileVersion DiskStore::version_of(const struct stat& st) {
  return FileVersion{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
                     static_cast<std::uint64_t>(st.st_size),
                     static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                     static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec};
}

std::optional<DiskStore::Hit> DiskStore::read(const std::string& hash) {
  EntryMeta meta;
  std::string sha;
  FileVersion verified;
  {
    std::lock_guard lock(mu_);
    const auto it = index_.find(hash);
    if (it == index_.end()) return std::nullopt;
    meta = it->second.meta;
    sha = it->second.sha256;
    verified = it->second.verified;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  }
  FileVersion version;
  Fd f(open_data(hash, meta.size, version));
  if (f.fd < 0) return std::nullopt;
  auto bytes = read_exactly(f.fd, meta.size);
  if (!bytes) return std::nullopt;
  // The bytes must be the ones this sidecar was written for: its ETag and
  // type describe them. Anything else (another write's data, damage) is a miss.
  // A file version already verified is not hashed again: every write renames
  // a new inode into place, and a write in place moves the ctime. Only
  // versions whose ctime is at least 2 s old are remembered, since file times
  // are coarser than writes (as git does for its "racily clean" entries).
  if (!(version == verified)) {
    if (sha256_hex(as_text(*bytes)) != sha) {
      discard(hash, "data does not match the SHA-256 its sidecar records");
      return std::nullopt;
    }
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    if (static_cast<std::int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec - version.ctime_ns >= 2'000'000'000) {
      OpenFile file(new int(f.release()), [](const int* p) {
        ::close(*p);
        delete p;
      });
      std::lock_guard lock(mu_);
      const auto it = index_.find(hash);
      if (it != index_.end() && it->second.sha256 == sha) {
        it->second.verified = version;
        if (it->second.open) --open_files_;
        it->second.open = nullptr;
        if (open_files_ < kMaxOpenFiles) {
          it->second.open = std::move(file);
          ++open_files_;
        }
      }
    }
  }
  return Hit{std::move(meta), std::move(bytes)};
}

void DiskStore::drop_open_file_locked(const std::string& hash, const OpenFile& file) {
  const auto it = index_.find(hash);
  if (it != index_.end() && it->second.open == file) {
    it->second.open = nullptr;
    --open_files_;
  }
}

std::optional<DiskStore::Hit> DiskStore::read_verified(const std::string& hash, std::uint64_t max_bytes) {
  EntryMeta meta;
  FileVersion verified;
  OpenFile file;
  {
    std::lock_guard lock(mu_);
    const auto it = index_.find(hash);
    if (it == index_.end() || it->second.verified.size != it->second.meta.size ||
        it->second.meta.size > max_bytes) {
      return std::nullopt;
    }
    meta = it->second.meta;
    verified = it->second.verified;
    file = it->second.open;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  }
  FileVersion version;
  int fd = -1;
  std::optional<Fd> opened;
  if (file) {
    // The file kept open: still the version hashed, and still the entry's
    // (not unlinked or replaced by a rename)?
    struct stat st {};
    if (::fstat(*file, &st) != 0 || st.st_nlink == 0 || !(version_of(st) == verified)) {
      std::lock_guard lock(mu_);
      drop_open_file_locked(hash, file);
      return std::nullopt;  // read() decides
    }
    fd = *file;
    version = verified;
  } else {
    opened.emplace(open_data(hash, meta.size, version));
    fd = opened->fd;
  }
  // Another version than the one hashed (rewritten, damaged, replaced): read() decides.
  if (fd < 0 || !(version == verified)) return std::nullopt;
  auto bytes = read_exactly(fd, meta.size);
  if (!bytes) return std::nullopt;
  return Hit{std::move(meta), std::move(bytes)};
}

Status DiskStore::write(const std::string& hash, EntryMeta meta, std::span<const std::uint8_t> bytes) {
  if (!valid_hash(hash)) return make_error(ErrorCode::Internal, "bad storage hash");
  if (nic::cache_key_hash(meta.key) != hash) {
    return make_error(ErrorCode::Internal, "storage key '" + meta.key + "' does not hash to " + hash);
  }
  meta.size = bytes.size();
  std::string sha = sha256_hex(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  std::error_code ec;
  fs::create_directories(folder(hash), ec);
  if (ec) return make_error(ErrorCode::Internal, "cannot create " + folder(hash) + ": " + ec.message());
  std::uint64_t n = 0;
  {
    std::lock_guard lock(mu_);
    n = ++tmp_counter_;
  }
  const std::string suffix = ".tmp." + std::to_string(::getpid()) + "." + std::to_string(n);
  const std::string bin = path(hash, ".bin");
  const std::string sidecar = path(hash, ".meta");
  {
    // Replacing an entry: readers must not pair the old sidecar with new data.
    std::lock_guard lock(mu_);
    forget_locked(hash);
  }
  if (auto s = write_atomically(bin + suffix, bin, bytes); !s) return s;
  const std::string text = serialize_meta(meta, sha);
  const auto* p = reinterpret_cast<const std::uint8_t*>(text.data());
  if (auto s = write_atomically(sidecar + suffix, sidecar, {p, text.size()}); !s) {
    ::unlink(bin.c_str());
    return s;
  }
  std::vector<std::string> victims;
  {
    std::lock_guard lock(mu_);
    forget_locked(hash);
    lru_.push_front(hash);
    stats_.bytes += meta.size;
    index_[hash] = Item{std::move(meta), std::move(sha), lru_.begin(), FileVersion{}, nullptr};
    stats_.entries = index_.size();
    ++stats_.writes;
    evict_locked(victims);
  }
  for (const auto& h : victims) remove_files(h);
  return Ok{};
}

Status DiskStore::update_meta(const std::string& hash, const EntryMeta& meta) {
  std::string sha;
  {
    std::lock_guard lock(mu_);
    const auto it = index_.find(hash);
    if (it == index_.end() || it->second.meta.size != meta.size || it->second.meta.key != meta.key) {
      return make_error(ErrorCode::Internal, "no such entry");
    }
    sha = it->second.sha256;
  }
  const std::string sidecar = path(hash, ".meta");
  std::uint64_t n = 0;
  {
    std::lock_guard lock(mu_);
    n = ++tmp_counter_;
  }
  const std::string text = serialize_meta(meta, sha);
  const auto* p = reinterpret_cast<const std::uint8_t*>(text.data());
  if (auto s = write_atomically(sidecar + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(n),
                                sidecar, {p, text.size()});
      !s) {
    return s;
  }
  std::lock_guard lock(mu_);
  const auto it = index_.find(hash);
  if (it != index_.end() && it->second.sha256 == sha) it->second.meta = meta;
  return Ok{};
}

bool DiskStore::erase(const std::string& hash) {
  bool known = false;
  {
    std::lock_guard lock(mu_);
    known = index_.count(hash) > 0;
    forget_locked(hash);
  }
  if (known) remove_files(hash);
  return known;
}

std::size_t DiskStore::erase_group(std::string_view group) {
  std::vector<std::string> victims;
  {
    std::lock_guard lock(mu_);
    for (const auto& [hash, item] : index_) {
      if (source_group_of(item.meta.key) == group) victims.push_back(hash);
    }
    for (const auto& h : victims) forget_locked(h);
  }
  for (const auto& h : victims) remove_files(h);
  return victims.size();
}

DiskStoreStats DiskStore::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace nic::origin
