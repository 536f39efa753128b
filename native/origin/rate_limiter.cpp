#include "rate_limiter.h"

#include <functional>

namespace nic::origin {

RateDecision RateLimiter::hit(std::string_view client, std::int64_t now) {
  if (limit_ <= 0) return {};
  const std::int64_t window = now / window_;
  Shard& s = shards_[std::hash<std::string_view>{}(client) % kShards];
  std::lock_guard lock(s.mu);
  // Counters of past windows are dead weight: drop them now and then.
  if (s.counters.size() > 4096) {
    std::erase_if(s.counters, [window](const auto& kv) { return kv.second.window != window; });
  }
  Counter& c = s.counters[std::string(client)];
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

}  // namespace nic::origin
