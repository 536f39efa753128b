#include "rate_limiter.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <functional>

namespace nic::origin {

std::string RateLimiter::client_key(std::string_view address) {
  if (address.empty() || address.size() >= INET6_ADDRSTRLEN) return std::string(address);
  char text[INET6_ADDRSTRLEN] = {};
  std::memcpy(text, address.data(), address.size());
  unsigned char v6[16];
  if (::inet_pton(AF_INET6, text, v6) != 1) return std::string(address);  // IPv4 or not an address
  static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  char out[INET6_ADDRSTRLEN] = {};
  if (std::memcmp(v6, kMapped, sizeof kMapped) == 0) {
    ::inet_ntop(AF_INET, v6 + 12, out, sizeof out);
    return out;
  }
  std::memset(v6 + 8, 0, 8);
  ::inet_ntop(AF_INET6, v6, out, sizeof out);
  return std::string(out) + "/64";
}

RateDecision RateLimiter::hit(std::string_view client, std::int64_t now) {
  if (limit_ <= 0) return {};
  const std::string key = client_key(client);
  const std::int64_t window = now / window_;
  Shard& s = shards_[std::hash<std::string>{}(key) % kShards];
  std::lock_guard lock(s.mu);
  if (s.counters.size() >= kMaxPerShard && !s.counters.count(key)) {
    // Counters of past windows are dead weight; if the current window alone
    // fills the shard, start it afresh.
    std::erase_if(s.counters, [window](const auto& kv) { return kv.second.window != window; });
    if (s.counters.size() >= kMaxPerShard) s.counters.clear();
  }
  Counter& c = s.counters[key];
  if (c.window != window) c = Counter{window, 0, 0, 0};
  // Fleet-wide while Redis answers: the fleet's total plus what it has not seen yet.
  const std::int64_t seen = fleet_ && fleet_up_.load() ? c.fleet + (c.count - c.sent) : c.count;
  if (seen >= limit_) {
    return {false, (window + 1) * window_ - now, 0};
  }
  ++c.count;
  if (fleet_ && c.count - c.sent == 1) {
    s.dirty.push_back(key);
    if (notify_) notify_();
  }
  return {true, 0, limit_ - seen - 1};
}

void RateLimiter::enable_fleet(std::function<void()> notify) {
  notify_ = std::move(notify);
  fleet_ = limit_ > 0;
}

std::vector<RateLimiter::Delta> RateLimiter::take_deltas(std::int64_t now) {
  std::vector<Delta> out;
  if (!fleet_) return out;
  const std::int64_t window = now / window_;
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    for (const std::string& key : s.dirty) {
      const auto it = s.counters.find(key);
      if (it == s.counters.end() || it->second.window != window || it->second.count == it->second.sent) continue;
      out.push_back({key, window, it->second.count - it->second.sent});
      it->second.sent = it->second.count;
    }
    s.dirty.clear();
  }
  return out;
}

void RateLimiter::apply(const std::vector<Delta>& deltas, const std::optional<std::vector<std::int64_t>>& totals) {
  for (std::size_t i = 0; i < deltas.size(); ++i) {
    const Delta& d = deltas[i];
    Shard& s = shards_[std::hash<std::string>{}(d.client) % kShards];
    std::lock_guard lock(s.mu);
    const auto it = s.counters.find(d.client);
    if (it == s.counters.end() || it->second.window != d.window) continue;  // a new window began meanwhile
    Counter& c = it->second;
    if (totals && i < totals->size()) {
      c.fleet = std::max(c.fleet, (*totals)[i]);
    } else {
      c.sent -= d.count;  // not sent after all: again next time
      s.dirty.push_back(d.client);
    }
  }
}

std::size_t RateLimiter::unsent() const {
  std::size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.dirty.size();
  }
  return n;
}

std::size_t RateLimiter::clients() const {
  std::size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.counters.size();
  }
  return n;
}

}  // namespace nic::origin
