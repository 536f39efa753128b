// Limits shared by a fleet (REDIS_URL): the Notion budget per token
// (NOTION_RPS is Notion's limit per integration, not per process) and the
// per-client rate limits and DAILY_PROXY_QUOTA (rate_limiter.h).
//
//   Notion   one key per token, nic:notion:{sha256(token)[0:16]}, holds the
//            next free slot in Redis's own clock (TIME, so the instances'
//            clocks do not matter); a Lua script hands out slot after slot,
//            NOTION_RPS apart fleet-wide, and refuses a wait longer than the
//            caller can afford. A 429's Retry-After moves the slot for all.
//   clients  each RateLimiter counts locally and a background thread sends
//            the unsent hits (INCRBY nic:rate:{name}:{window}:{client}, with
//            an expiry past the window) and keeps the fleet's totals; a hit
//            is judged on those totals plus what was not sent yet.
//
// Redis slow or down: errors (the Notion caller uses its own spacer) and
// limiters judging on their own counts; counted in
// nic_fleet_redis_errors_total{kind="limits"}; never a failed request.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "rate_limiter.h"
#include "redis_client.h"

namespace nic::origin {

class FleetLimits {
 public:
  explicit FleetLimits(RedisSettings settings, std::string prefix = "nic:");
  ~FleetLimits();
  FleetLimits(const FleetLimits&) = delete;
  FleetLimits& operator=(const FleetLimits&) = delete;

  struct Slot {
    std::int64_t wait_ms = 0;  // how long the caller waits before calling
    std::int64_t at_ms = 0;    // the slot, in Redis's clock (tests)
  };
  // The next Notion slot for `token`, `interval_ms` after the fleet's last;
  // nullopt: the wait would exceed `max_wait_ms` (nothing reserved);
  // an error: Redis could not tell (the caller spaces on its own).
  Result<std::optional<Slot>> notion_slot(const std::string& token, double interval_ms,
                                          std::int64_t max_wait_ms);
  // A 429: no call with `token` anywhere in the fleet before `wait_ms` from now.
  void notion_penalize(const std::string& token, std::int64_t wait_ms);

  // Makes `limiter` fleet-wide under `name` (keys nic:rate:{name}:...). Before start().
  void track(RateLimiter& limiter, std::string name);
  void start();
  // Sends what is unsent now (tests; the thread does it on its own).
  void sync_now();
  std::uint64_t errors() const;
  // Clients with hits not sent yet or on their way, over every tracked limiter.
  std::size_t unsent() const;
  RedisClient& redis() { return client_; }

 private:
  void sync_loop();
  void sync(RateLimiter& limiter, const std::string& name);

  RedisClient client_;
  std::string prefix_;
  std::vector<std::pair<RateLimiter*, std::string>> limiters_;
  std::mutex sync_mu_;  // one sync at a time (the thread's or a test's)
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false;
  bool stopping_ = false;
  std::uint64_t errors_ = 0;
  std::atomic<std::size_t> sending_{0};  // hits taken for a send whose totals are not applied yet
  std::thread thread_;
};

}  // namespace nic::origin
