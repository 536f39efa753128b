// Signed file URLs the origin may still use, by (workspace, id): registered
// through /api/v1/proxy (id = the file UUID) or learnt from a Notion block
// lookup (id = the block id). Each is kept until it expires.
#pragma once

#include <cstdint>
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

  void put(std::string_view workspace, std::string_view id, SignedUrl url, std::int64_t now);
  // A URL valid for at least kMarginSeconds more.
  std::optional<SignedUrl> get_valid(std::string_view workspace, std::string_view id, std::int64_t now);
  // Any entry (even expired): to learn the block id behind a file id.
  std::optional<SignedUrl> get_any(std::string_view workspace, std::string_view id);
  void forget(std::string_view workspace, std::string_view id);
  std::size_t size() const;

 private:
  static std::string key(std::string_view workspace, std::string_view id);
  mutable std::mutex mu_;
  std::unordered_map<std::string, SignedUrl> urls_;
};

}  // namespace nic::origin
