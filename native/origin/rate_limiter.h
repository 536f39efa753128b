// Fixed-window request limits per client (per minute for the RATE_LIMIT_*
// settings, per UTC day for DAILY_PROXY_QUOTA). Time is passed in.
//
// A client is its IPv4 address, or its IPv6 /64: one subscriber gets a whole
// /64, so counting single IPv6 addresses would let one client rotate through
// 2^64 budgets. The counters are bounded: past windows are dropped, and a
// shard that still holds kMaxPerShard clients of the current window is
// emptied (a flood of distinct clients resets budgets rather than memory
// growing without end).
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
  static constexpr std::size_t kShards = 8;
  static constexpr std::size_t kMaxPerShard = 8192;

  // limit 0 = unlimited.
  RateLimiter(std::int64_t limit, std::int64_t window_seconds)
      : limit_(limit), window_(window_seconds) {}

  RateDecision hit(std::string_view client, std::int64_t now_unix_seconds);
  bool enabled() const { return limit_ > 0; }
  std::int64_t limit() const { return limit_; }
  std::size_t clients() const;

  // The counter a client address falls into: IPv4 as is (also when written
  // IPv4-mapped), IPv6 as its /64 ("2001:db8:1:2::/64"); anything else as is.
  static std::string client_key(std::string_view address);

 private:
  struct Counter {
    std::int64_t window = 0;
    std::int64_t count = 0;
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Counter> counters;
  };
  std::int64_t limit_;
  std::int64_t window_;
  std::array<Shard, kShards> shards_;
};

}  // namespace nic::origin
