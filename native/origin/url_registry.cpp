#include "url_registry.h"

namespace nic::origin {

std::string UrlRegistry::key(std::string_view workspace, std::string_view id) {
  std::string k(workspace);
  k += '/';
  k += id;
  return k;
}

void UrlRegistry::put(std::string_view workspace, std::string_view id, SignedUrl url, std::int64_t now) {
  std::lock_guard lock(mu_);
  if (urls_.size() > 100000) {
    std::erase_if(urls_, [now](const auto& kv) {
      return kv.second.expires_at && *kv.second.expires_at <= now;
    });
  }
  auto& slot = urls_[key(workspace, id)];
  if (url.block_id.empty()) url.block_id = slot.block_id;  // keep what we knew
  slot = std::move(url);
}

std::optional<SignedUrl> UrlRegistry::get_valid(std::string_view workspace, std::string_view id,
                                                std::int64_t now) {
  std::lock_guard lock(mu_);
  const auto it = urls_.find(key(workspace, id));
  if (it == urls_.end() || it->second.url.empty()) return std::nullopt;
  if (it->second.expires_at && *it->second.expires_at - kMarginSeconds <= now) return std::nullopt;
  return it->second;
}

std::optional<SignedUrl> UrlRegistry::get_any(std::string_view workspace, std::string_view id) {
  std::lock_guard lock(mu_);
  const auto it = urls_.find(key(workspace, id));
  if (it == urls_.end()) return std::nullopt;
  return it->second;
}

void UrlRegistry::forget(std::string_view workspace, std::string_view id) {
  std::lock_guard lock(mu_);
  auto it = urls_.find(key(workspace, id));
  if (it != urls_.end()) it->second.url.clear();  // keep the block id
}

std::size_t UrlRegistry::size() const {
  std::lock_guard lock(mu_);
  return urls_.size();
}

}  // namespace nic::origin
