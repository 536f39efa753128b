// Fixed-window request limits per client (per minute for the RATE_LIMIT_*
// settings, per UTC day for DAILY_PROXY_QUOTA). Time is passed in.
//
// A client is its IPv4 address, or its IPv6 /64: one subscriber gets a whole
// /64, so counting single IPv6 addresses would let one client rotate through
// 2^64 budgets. The counters are bounded: past windows are dropped, and a
// shard that still holds kMaxPerShard clients of the current window is
// emptied (a flood of distinct clients resets budgets rather than memory
// growing without end).
//
// Fleet-wide (REDIS_URL, fleet_limits.h): each counter also remembers how
// many of its hits were sent to Redis (`sent`) and the fleet's total there
// (`fleet`, ours included); a hit is judged against fleet + unsent. The sync
// runs beside the requests (take_deltas -> INCRBY -> apply), never on an I/O
// thread, so the fleet's view is as fresh as the last sync (a few ms behind).
// While Redis cannot be reached, hits are judged on this process's own count.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

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

  // Fleet mode: `notify` is called (cheaply, under no lock) whenever a hit
  // leaves something unsent.
  void enable_fleet(std::function<void()> notify);
  void set_fleet_up(bool up) { fleet_up_.store(up); }
  bool fleet_up() const { return fleet_up_.load(); }
  struct Delta {
    std::string client;
    std::int64_t window = 0;  // index of the window (unix seconds / window length)
    std::int64_t count = 0;   // hits not sent yet
  };
  // The unsent hits of the current window, marked as sent.
  std::vector<Delta> take_deltas(std::int64_t now_unix_seconds);
  // The fleet's totals after INCRBY (same order), or nullopt: the send
  // failed, the hits are unsent again.
  void apply(const std::vector<Delta>& deltas, const std::optional<std::vector<std::int64_t>>& totals);
  std::int64_t window_seconds() const { return window_; }
  // Clients with hits not sent to the fleet yet.
  std::size_t unsent() const;

  // The counter a client address falls into: IPv4 as is (also when written
  // IPv4-mapped), IPv6 as its /64 ("2001:db8:1:2::/64"); anything else as is.
  static std::string client_key(std::string_view address);

 private:
  struct Counter {
    std::int64_t window = 0;
    std::int64_t count = 0;  // this process's hits in the window
    std::int64_t sent = 0;   // of which sent to the fleet
    std::int64_t fleet = 0;  // the fleet's total at the last send (ours included)
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Counter> counters;
    std::vector<std::string> dirty;  // clients with unsent hits
  };
  std::int64_t limit_;
  std::int64_t window_;
  bool fleet_ = false;
  std::atomic<bool> fleet_up_{false};
  std::function<void()> notify_;
  std::array<Shard, kShards> shards_;
};

}  // namespace nic::origin
