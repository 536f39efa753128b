// The filesystem tier: atomic writes, sidecars, restarts, half-written files, eviction.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "disk_store.h"
#include "nic/cache_key.h"

using namespace nic::origin;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/nic-disk-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::vector<std::uint8_t> bytes(std::size_t n, std::uint8_t v) { return std::vector<std::uint8_t>(n, v); }

EntryMeta meta_for(const std::string& key) {
  EntryMeta m;
  m.key = key;
  m.content_type = "image/webp";
  m.etag = "\"abc\"";
  m.original_size = 1234;
  m.created = 1700000000;
  return m;
}

}  // namespace

TEST_CASE("disk store: sidecar round trip", "[origin][disk]") {
  EntryMeta m = meta_for("v1/ws/id/a.png?fmt=webp&w=64");
  m.size = 42;
  m.resolved_by = "block";
  m.upstream = "ws/file/a.png";
  std::string sha;
  auto parsed = parse_meta(serialize_meta(m, std::string(64, 'a')), &sha);
  REQUIRE(parsed);
  CHECK(sha == std::string(64, 'a'));
  CHECK(parsed->key == m.key);
  CHECK(parsed->size == 42);
  CHECK(parsed->original_size == 1234);
  CHECK(parsed->created == 1700000000);
  CHECK(parsed->resolved_by == "block");
  CHECK(parsed->upstream == "ws/file/a.png");
  const std::string text = serialize_meta(m);
  CHECK_FALSE(parse_meta(text.substr(0, text.size() - 5)));  // truncated sidecar
  CHECK_FALSE(parse_meta("garbage"));
}

TEST_CASE("disk store: write, read, survive a restart", "[origin][disk]") {
  TempDir dir;
  const std::string key = "v1/ws/id/a.png?fmt=webp&w=64";
  const std::string hash = nic::cache_key_hash(key);
  {
    auto store = DiskStore::open(dir.path.string(), 0);
    REQUIRE(store.ok());
    REQUIRE((*store)->write(hash, meta_for(key), bytes(5000, 9)).ok());
    auto hit = (*store)->read(hash);
    REQUIRE(hit);
    CHECK(hit->bytes->size() == 5000);
    CHECK(hit->meta.content_type == "image/webp");
    CHECK((*store)->stats().writes == 1);
    // Sharded folders by the key hash.
    CHECK(fs::exists(dir.path / hash.substr(0, 2) / hash.substr(2, 2) / (hash + ".bin")));
    CHECK(fs::exists(dir.path / hash.substr(0, 2) / hash.substr(2, 2) / (hash + ".meta")));
  }
  auto reopened = DiskStore::open(dir.path.string(), 0);
  REQUIRE(reopened.ok());
  auto hit = (*reopened)->read(hash);
  REQUIRE(hit);
  CHECK(*hit->bytes == bytes(5000, 9));
  CHECK(hit->meta.key == key);
  CHECK((*reopened)->stats().entries == 1);
}

TEST_CASE("disk store: half-written files are never served", "[origin][disk]") {
  TempDir dir;
  const std::string good = nic::cache_key_hash("good");
  const std::string no_meta = nic::cache_key_hash("no-meta");
  const std::string short_bin = nic::cache_key_hash("short");
  {
    auto store = DiskStore::open(dir.path.string(), 0);
    REQUIRE(store.ok());
    REQUIRE((*store)->write(good, meta_for("good"), bytes(100, 1)).ok());
    REQUIRE((*store)->write(short_bin, meta_for("short"), bytes(100, 1)).ok());
  }
  auto shard = [&](const std::string& h) { return dir.path / h.substr(0, 2) / h.substr(2, 2); };
  // A data file whose sidecar never got written (crash between the renames).
  fs::create_directories(shard(no_meta));
  std::ofstream(shard(no_meta) / (no_meta + ".bin")) << "partial";
  // A data file shorter than its sidecar says.
  fs::resize_file(shard(short_bin) / (short_bin + ".bin"), 50);
  // A temporary file of an interrupted write.
  std::ofstream(shard(good) / (good + ".bin.tmp.123.1")) << "junk";

  auto store = DiskStore::open(dir.path.string(), 0);
  REQUIRE(store.ok());
  CHECK((*store)->read(good));
  CHECK_FALSE((*store)->read(no_meta));
  CHECK_FALSE((*store)->read(short_bin));
  CHECK((*store)->stats().removed_at_start == 3);
  CHECK_FALSE(fs::exists(shard(good) / (good + ".bin.tmp.123.1")));
  CHECK_FALSE(fs::exists(shard(no_meta) / (no_meta + ".bin")));
}

TEST_CASE("disk store: CACHE_MAX_BYTES evicts the least recently used", "[origin][disk]") {
  TempDir dir;
  auto store = DiskStore::open(dir.path.string(), 2500);
  REQUIRE(store.ok());
  auto& s = **store;
  const std::string a = nic::cache_key_hash("a"), b = nic::cache_key_hash("b"), c = nic::cache_key_hash("c");
  REQUIRE(s.write(a, meta_for("a"), bytes(1000, 1)).ok());
  REQUIRE(s.write(b, meta_for("b"), bytes(1000, 2)).ok());
  REQUIRE(s.read(a));  // a is now more recent than b
  REQUIRE(s.write(c, meta_for("c"), bytes(1000, 3)).ok());
  CHECK(s.read(a));
  CHECK_FALSE(s.read(b));
  CHECK(s.read(c));
  CHECK(s.stats().bytes == 2000);
  CHECK(s.stats().evictions == 1);
}

TEST_CASE("disk store: group purge and replacement", "[origin][disk]") {
  TempDir dir;
  auto store = DiskStore::open(dir.path.string(), 0);
  REQUIRE(store.ok());
  auto& s = **store;
  for (const char* k : {"v1/*/one/source", "v1/ws/one/a.png?w=1", "v1/*/two/source"}) {
    REQUIRE(s.write(nic::cache_key_hash(k), meta_for(k), bytes(10, 1)).ok());
  }
  REQUIRE(s.write(nic::cache_key_hash("v1/*/two/source"), meta_for("v1/*/two/source"), bytes(20, 2)).ok());
  CHECK(s.stats().bytes == 40);
  CHECK(s.erase_group(nic::source_group("one")) == 2);
  CHECK(s.stats().entries == 1);
  auto two = s.read(nic::cache_key_hash("v1/*/two/source"));
  REQUIRE(two);
  CHECK(two->bytes->size() == 20);
  CHECK(s.erase(nic::cache_key_hash("v1/*/two/source")));
  CHECK(s.stats().bytes == 0);
}

namespace {

std::filesystem::path shard_of(const fs::path& dir, const std::string& h) { return dir / h.substr(0, 2) / h.substr(2, 2); }

void overwrite(const fs::path& file, const std::vector<std::uint8_t>& data) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

}  // namespace

TEST_CASE("disk store: bytes that do not match their sidecar's SHA-256 are a miss", "[origin][disk]") {
  TempDir dir;
  const std::string key = "v1/ws/id/a.png?fmt=webp&w=64";
  const std::string hash = nic::cache_key_hash(key);
  auto store = DiskStore::open(dir.path.string(), 0);
  REQUIRE(store.ok());
  auto& s = **store;
  REQUIRE(s.write(hash, meta_for(key), bytes(4096, 7)).ok());
  REQUIRE(s.read(hash));
  // Same size, other bytes: what a second writer (or a crash between the two
  // renames) leaves behind. A size check alone would serve it.
  overwrite(shard_of(dir.path, hash) / (hash + ".bin"), bytes(4096, 8));
  CHECK_FALSE(s.read(hash));
  CHECK(s.stats().read_errors == 1);
  CHECK(s.stats().entries == 0);
  CHECK_FALSE(fs::exists(shard_of(dir.path, hash) / (hash + ".bin")));
  CHECK_FALSE(fs::exists(shard_of(dir.path, hash) / (hash + ".meta")));
  // Written again, served again.
  REQUIRE(s.write(hash, meta_for(key), bytes(4096, 9)).ok());
  auto hit = s.read(hash);
  REQUIRE(hit);
  CHECK(*hit->bytes == bytes(4096, 9));
}

TEST_CASE("disk store: a mismatched pair left by a crash is swept or missed after a restart", "[origin][disk]") {
  TempDir dir;
  const std::string key = "v1/ws/id/b.png?fmt=png&w=32";
  const std::string hash = nic::cache_key_hash(key);
  {
    auto store = DiskStore::open(dir.path.string(), 0);
    REQUIRE(store.ok());
    REQUIRE((*store)->write(hash, meta_for(key), bytes(300, 1)).ok());
  }
  overwrite(shard_of(dir.path, hash) / (hash + ".bin"), bytes(300, 2));
  auto store = DiskStore::open(dir.path.string(), 0);
  REQUIRE(store.ok());
  CHECK((*store)->stats().entries == 1);  // start-up checks sizes only (no reading every file)
  CHECK_FALSE((*store)->read(hash));      // the first read checks the hash
  CHECK((*store)->stats().entries == 0);
}

TEST_CASE("disk store: a key must hash to its file name", "[origin][disk]") {
  TempDir dir;
  const std::string hash = nic::cache_key_hash("v1/ws/id/real.png");
  const std::string other = nic::cache_key_hash("v1/ws/id/other.png");
  {
    auto store = DiskStore::open(dir.path.string(), 0);
    REQUIRE(store.ok());
    // The store refuses to file a key under another key's name.
    CHECK_FALSE((*store)->write(hash, meta_for("v1/ws/id/other.png"), bytes(10, 1)).ok());
    REQUIRE((*store)->write(other, meta_for("v1/ws/id/other.png"), bytes(10, 1)).ok());
  }
  // A complete, self-consistent entry copied under the wrong name (a sidecar
  // naming another key): never indexed, swept at start-up.
  fs::create_directories(shard_of(dir.path, hash));
  fs::copy_file(shard_of(dir.path, other) / (other + ".bin"), shard_of(dir.path, hash) / (hash + ".bin"));
  fs::copy_file(shard_of(dir.path, other) / (other + ".meta"), shard_of(dir.path, hash) / (hash + ".meta"));
  auto store = DiskStore::open(dir.path.string(), 0);
  REQUIRE(store.ok());
  CHECK_FALSE((*store)->read(hash));
  CHECK((*store)->read(other));
  CHECK((*store)->stats().removed_at_start == 1);
  CHECK_FALSE(fs::exists(shard_of(dir.path, hash) / (hash + ".bin")));
  CHECK_FALSE(fs::exists(shard_of(dir.path, hash) / (hash + ".meta")));
}

TEST_CASE("disk store: orphans are swept at start-up", "[origin][disk]") {
  TempDir dir;
  const std::string good = nic::cache_key_hash("good");
  const std::string lonely_meta = nic::cache_key_hash("lonely-meta");
  const std::string old_format = nic::cache_key_hash("old-format");
  {
    auto store = DiskStore::open(dir.path.string(), 0);
    REQUIRE(store.ok());
    REQUIRE((*store)->write(good, meta_for("good"), bytes(10, 1)).ok());
    REQUIRE((*store)->write(lonely_meta, meta_for("lonely-meta"), bytes(10, 1)).ok());
  }
  // A sidecar whose data file is gone (crash in an eviction or a purge).
  fs::remove(shard_of(dir.path, lonely_meta) / (lonely_meta + ".bin"));
  // An entry whose sidecar records no hash (written before hashes were kept).
  EntryMeta m = meta_for("old-format");
  m.size = 10;
  fs::create_directories(shard_of(dir.path, old_format));
  overwrite(shard_of(dir.path, old_format) / (old_format + ".bin"), bytes(10, 1));
  std::ofstream(shard_of(dir.path, old_format) / (old_format + ".meta")) << serialize_meta(m);
  // Temporary files of interrupted writes, data and sidecar.
  std::ofstream(shard_of(dir.path, good) / (good + ".meta.tmp.99.7")) << "half";
  // Not ours: left alone.
  std::ofstream(dir.path / "README.txt") << "operator's note";

  auto store = DiskStore::open(dir.path.string(), 0);
  REQUIRE(store.ok());
  CHECK((*store)->stats().removed_at_start == 3);
  CHECK((*store)->stats().entries == 1);
  CHECK((*store)->read(good));
  CHECK_FALSE(fs::exists(shard_of(dir.path, lonely_meta) / (lonely_meta + ".meta")));
  CHECK_FALSE(fs::exists(shard_of(dir.path, old_format) / (old_format + ".bin")));
  CHECK_FALSE(fs::exists(shard_of(dir.path, good) / (good + ".meta.tmp.99.7")));
  CHECK(fs::exists(dir.path / "README.txt"));
}

TEST_CASE("disk store: update_meta keeps the hash and the key", "[origin][disk]") {
  TempDir dir;
  const std::string key = "v1/ws/id/source";
  const std::string hash = nic::cache_key_hash(key);
  {
    auto store = DiskStore::open(dir.path.string(), 0);
    REQUIRE(store.ok());
    REQUIRE((*store)->write(hash, meta_for(key), bytes(64, 3)).ok());
    auto m = (*store)->meta(hash);
    REQUIRE(m);
    m->created = 1800000000;
    REQUIRE((*store)->update_meta(hash, *m).ok());
    auto wrong = *m;
    wrong.key = "v1/ws/id/another";
    CHECK_FALSE((*store)->update_meta(hash, wrong).ok());
  }
  auto store = DiskStore::open(dir.path.string(), 0);
  REQUIRE(store.ok());
  auto hit = (*store)->read(hash);
  REQUIRE(hit);  // the rewritten sidecar still carries the bytes' hash
  CHECK(hit->meta.created == 1800000000);
}

TEST_CASE("disk store: a verified file version is not hashed again, a changed one is", "[origin][disk]") {
  TempDir dir;
  const std::string key = "v1/ws/id/big.png?fmt=png";
  const std::string hash = nic::cache_key_hash(key);
  auto store = DiskStore::open(dir.path.string(), 0);
  REQUIRE(store.ok());
  auto& s = **store;
  REQUIRE(s.write(hash, meta_for(key), bytes(2048, 5)).ok());
  const fs::path bin = shard_of(dir.path, hash) / (hash + ".bin");
  const auto old = fs::file_time_type::clock::now() - std::chrono::seconds(30);
  fs::last_write_time(bin, old);
  REQUIRE(s.read(hash));  // verified (remembered only once its ctime is 2 s old: see the next case)
  REQUIRE(s.read(hash));
  // Changed in place (same inode, other bytes, a new mtime): checked again.
  overwrite(bin, bytes(2048, 6));
  fs::last_write_time(bin, old + std::chrono::seconds(1));
  CHECK_FALSE(s.read(hash));
  CHECK(s.stats().read_errors == 1);
}

TEST_CASE("disk store: read_verified serves only the small file version read() hashed", "[origin][disk]") {
  TempDir dir;
  const std::string key = "v1/ws/id/small.png?fmt=webp&w=64";
  const std::string hash = nic::cache_key_hash(key);
  const std::string key2 = "v1/ws/id/small.png?fmt=webp&w=32";
  const std::string hash2 = nic::cache_key_hash(key2);
  auto store = DiskStore::open(dir.path.string(), 0);
  REQUIRE(store.ok());
  auto& s = **store;
  REQUIRE(s.write(hash, meta_for(key), bytes(3000, 4)).ok());
  REQUIRE(s.write(hash2, meta_for(key2), bytes(1000, 1)).ok());
  const fs::path bin = shard_of(dir.path, hash) / (hash + ".bin");
  const fs::path bin2 = shard_of(dir.path, hash2) / (hash2 + ".bin");
  CHECK_FALSE(s.read_verified(hash, 1 << 20));  // never hashed
  REQUIRE(s.read(hash));
  // Hashed, but its ctime is too recent to tell a later write in the same
  // clock tick apart: not remembered yet.
  CHECK_FALSE(s.read_verified(hash, 1 << 20));
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  REQUIRE(s.read(hash));  // hashed again, now remembered (and its file kept open)
  REQUIRE(s.read(hash2));
  REQUIRE(s.read_verified(hash2, 1 << 20));
  // Replaced by a rename from outside the store (another process): the file
  // kept open is no longer the entry's; read() hashes the new one and drops it.
  overwrite(bin2.string() + ".other", bytes(1000, 2));
  fs::rename(bin2.string() + ".other", bin2);
  CHECK_FALSE(s.read_verified(hash2, 1 << 20));
  CHECK_FALSE(s.read(hash2));
  CHECK(s.stats().read_errors == 1);
  auto fast = s.read_verified(hash, 1 << 20);
  REQUIRE(fast);
  CHECK(*fast->bytes == bytes(3000, 4));
  CHECK(fast->meta.key == key);
  CHECK(fast->meta.etag == "\"abc\"");
  CHECK_FALSE(s.read_verified(hash, 2999));  // larger than the caller takes on its thread
  CHECK_FALSE(s.read_verified(nic::cache_key_hash("v1/ws/id/other.png"), 1 << 20));

  // Damaged in place with the same size and its mtime put back: the ctime
  // moved, so it is another version; read() hashes it and drops the entry.
  const auto mtime = fs::last_write_time(bin);
  overwrite(bin, bytes(3000, 5));
  fs::last_write_time(bin, mtime);
  CHECK_FALSE(s.read_verified(hash, 1 << 20));
  CHECK_FALSE(s.read(hash));
  CHECK(s.stats().read_errors == 2);
  CHECK_FALSE(fs::exists(bin));

  // A new write of the entry starts unverified again.
  REQUIRE(s.write(hash, meta_for(key), bytes(3000, 6)).ok());
  CHECK_FALSE(s.read_verified(hash, 1 << 20));
  auto hit = s.read(hash);
  REQUIRE(hit);
  CHECK(*hit->bytes == bytes(3000, 6));
}
