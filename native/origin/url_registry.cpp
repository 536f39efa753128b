#include "url_registry.h"

namespace nic::origin {

std::string UrlRegistry::key(std::string_view workspace, std::string_view id) {
  std::string k(workspace);
  k += '/';
  k += id;
  return k;
}

// What an entry holds on the heap, roughly: the strings and the node overheads.
std::size_t UrlRegistry::cost_of(const std::string& key, const SignedUrl& url) {
  return 2 * key.size() + url.url.size() + url.block_id.size() + sizeof(Entry) + 96;
}

void UrlRegistry::drop_locked(std::unordered_map<std::string, Entry>::iterator it) {
  bytes_ -= it->second.cost;
  lru_.erase(it->second.lru);
  urls_.erase(it);
}

void UrlRegistry::sweep_locked(std::int64_t now) {
  for (auto it = urls_.begin(); it != urls_.end();) {
    const auto next = std::next(it);
    if (now - it->second.registered >= max_age_) drop_locked(it);
    it = next;
  }
}

void UrlRegistry::put(std::string_view workspace, std::string_view id, SignedUrl url, std::int64_t now) {
  std::string k = key(workspace, id);
  std::lock_guard lock(mu_);
  // Old entries are swept now and then (amortised: one pass per 1024 puts).
  if (++puts_ % 1024 == 0) sweep_locked(now);
  auto it = urls_.find(k);
  if (it != urls_.end()) {
    if (url.block_id.empty()) url.block_id = it->second.url.block_id;  // keep what we knew
    drop_locked(it);
  }
  const std::size_t cost = cost_of(k, url);
  if (cost > max_bytes_) return;  // could never fit
  while (bytes_ + cost > max_bytes_ && !lru_.empty()) drop_locked(urls_.find(lru_.back()));
  lru_.push_front(k);
  bytes_ += cost;
  urls_.emplace(std::move(k), Entry{std::move(url), now, cost, lru_.begin()});
}

std::optional<SignedUrl> UrlRegistry::get_valid(std::string_view workspace, std::string_view id,
                                                std::int64_t now) {
  std::lock_guard lock(mu_);
  const auto it = urls_.find(key(workspace, id));
  if (it == urls_.end() || it->second.url.url.empty()) return std::nullopt;
  const Entry& e = it->second;
  const std::int64_t until = e.url.expires_at ? *e.url.expires_at : e.registered + max_age_;
  if (until - kMarginSeconds <= now) return std::nullopt;
  lru_.splice(lru_.begin(), lru_, e.lru);
  return e.url;
}

std::optional<SignedUrl> UrlRegistry::get_any(std::string_view workspace, std::string_view id) {
  std::lock_guard lock(mu_);
  const auto it = urls_.find(key(workspace, id));
  if (it == urls_.end()) return std::nullopt;
  return it->second.url;
}

void UrlRegistry::forget(std::string_view workspace, std::string_view id) {
  std::lock_guard lock(mu_);
  auto it = urls_.find(key(workspace, id));
  if (it == urls_.end()) return;
  Entry& e = it->second;
  bytes_ -= e.cost;
  e.url.url.clear();  // keep the block id
  e.url.url.shrink_to_fit();
  e.cost = cost_of(it->first, e.url);
  bytes_ += e.cost;
}

void UrlRegistry::erase(std::string_view workspace, std::string_view id) {
  std::lock_guard lock(mu_);
  auto it = urls_.find(key(workspace, id));
  if (it != urls_.end()) drop_locked(it);
}

std::size_t UrlRegistry::size() const {
  std::lock_guard lock(mu_);
  return urls_.size();
}

std::size_t UrlRegistry::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

}  // namespace nic::origin
