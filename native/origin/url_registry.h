// Signed file URLs the origin may still use, by (workspace, id): registered
// through /api/v1/proxy (id = the file UUID) or learnt from a Notion block
// lookup (id = the block id). Strangers can fill it (through the proxy), so it
// is bounded in bytes: least recently used entries go first. A URL is handed
// out until it expires; one without an expiry (an external URL) only for
// max_age, then the origin asks Notion again. Entries older than max_age are
// swept whatever their expiry.
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace nic::origin {

struct SignedUrl {
  std::string url;
  std::optional<std::int64_t> expires_at;  // unix seconds; none = does not expire (external)
  // The Notion block to ask for a fresh URL (empty: not known; then the id itself is tried).
  std::string block_id;
  bool from_block = false;  // the id is a block id (sources found this way are revalidated)
};

class UrlRegistry {
 public:
  // Entries this close to expiry are not handed out (the download must finish in time).
  static constexpr std::int64_t kMarginSeconds = 60;
  static constexpr std::size_t kDefaultMaxBytes = 32u << 20;  // ~40k Notion URLs
  static constexpr std::int64_t kDefaultMaxAgeSeconds = 86400;

  explicit UrlRegistry(std::size_t max_bytes = kDefaultMaxBytes, std::int64_t max_age_seconds = kDefaultMaxAgeSeconds)
      : max_bytes_(max_bytes), max_age_(max_age_seconds) {}

  void put(std::string_view workspace, std::string_view id, SignedUrl url, std::int64_t now);
  // A URL valid for at least kMarginSeconds more (and registered less than max_age ago).
  std::optional<SignedUrl> get_valid(std::string_view workspace, std::string_view id, std::int64_t now);
  // Any entry (even expired): to learn the block id behind a file id.
  std::optional<SignedUrl> get_any(std::string_view workspace, std::string_view id);
  // Drops the URL, keeps the block id.
  void forget(std::string_view workspace, std::string_view id);
  // Drops the entry altogether.
  void erase(std::string_view workspace, std::string_view id);
  std::size_t size() const;
  std::size_t bytes() const;

 private:
  struct Entry {
    SignedUrl url;
    std::int64_t registered = 0;
    std::size_t cost = 0;
    std::list<std::string>::iterator lru;
  };
  static std::string key(std::string_view workspace, std::string_view id);
  static std::size_t cost_of(const std::string& key, const SignedUrl& url);
  void drop_locked(std::unordered_map<std::string, Entry>::iterator it);
  void sweep_locked(std::int64_t now);

  const std::size_t max_bytes_;
  const std::int64_t max_age_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> urls_;
  std::list<std::string> lru_;  // front = most recently used
  std::size_t bytes_ = 0;
  std::uint64_t puts_ = 0;
};

}  // namespace nic::origin
