// Fixed-window request limits per client IP (per minute for the RATE_LIMIT_*
// settings, per UTC day for DAILY_PROXY_QUOTA). Time is passed in.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace nic::origin {

struct RateDecision {
  bool allowed = true;
  std::int64_t retry_after_s = 0;  // when refused: seconds until the window resets
  std::int64_t remaining = 0;
};

class RateLimiter {
 public:
  // limit 0 = unlimited.
  RateLimiter(std::int64_t limit, std::int64_t window_seconds)
      : limit_(limit), window_(window_seconds) {}

  RateDecision hit(std::string_view client, std::int64_t now_unix_seconds);
  bool enabled() const { return limit_ > 0; }
  std::int64_t limit() const { return limit_; }

 private:
  static constexpr std::size_t kShards = 8;
  struct Counter {
    std::int64_t window = 0;
    std::int64_t count = 0;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Counter> counters;
  };
  std::int64_t limit_;
  std::int64_t window_;
  std::array<Shard, kShards> shards_;
};

}  // namespace nic::origin
