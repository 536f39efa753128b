#include "rate_limiter.h"

#include <arpa/inet.h>

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
  if (c.window != window) {
    c.window = window;
    c.count = 0;
  }
  if (c.count >= limit_) {
    return {false, (window + 1) * window_ - now, 0};
  }
  ++c.count;
  return {true, 0, limit_ - c.count};
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
