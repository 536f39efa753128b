#include "fleet.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "coalescer.h"
#include "log.h"

namespace nic::origin {
namespace {

// Once: `set()` from the work's last callback, `wait_until()` on the gate's thread.
struct Latch {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  void set() {
    {
      std::lock_guard lock(mu);
      done = true;
    }
    cv.notify_all();
  }
  void wait_until(std::chrono::steady_clock::time_point until) {
    std::unique_lock lock(mu);
    cv.wait_until(lock, until, [this] { return done; });
  }
};

// After the work, how long its write may take to land before the lease goes anyway.
constexpr std::int64_t kWriteWaitMs = 10000;
// Past the flight's deadline the work is answered 504 everywhere; a little slack for its last callback.
constexpr std::int64_t kDeadlineSlackMs = 1000;

std::chrono::steady_clock::time_point at_steady_ms(std::int64_t ms) {
  const std::int64_t left = ms - steady_ms();
  return std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max<std::int64_t>(0, left));
}

}  // namespace

Result<std::unique_ptr<Fleet>> Fleet::create(const Config& config, WriteBehind& writes) {
  if (config.redis_url.empty()) return std::unique_ptr<Fleet>();
  auto redis = parse_redis_url(config.redis_url);
  if (!redis) return redis.take_error();
  FleetSettings s;
  s.redis = std::move(*redis);
  // A follower elsewhere waits at most this long for a leader, then makes the
  // result itself: it must still have an upstream call's time left in its own
  // flight (FOLLOWER_TIMEOUT_MS - margin) when it gives up.
  s.max_wait_ms = std::max<std::int64_t>(
      1000, config.follower_timeout_ms - config.upstream_timeout_ms - 2 * kFlightMarginMs);
  return std::make_unique<Fleet>(std::move(s), writes, 64);
}

Fleet::Fleet(FleetSettings settings, WriteBehind& writes, int threads)
    : leases_(settings),
      limits_(settings.redis, settings.prefix),
      writes_(writes),
      pool_(std::make_unique<WorkPool>("fleet", threads, static_cast<std::size_t>(threads))) {}

Fleet::~Fleet() { stop(); }

void Fleet::stop() {
  if (pool_) pool_->stop();
}

FleetLeases::Outcome Fleet::run(const std::string& key, const std::string& hash, std::int64_t deadline_ms,
                                const std::function<bool()>& check, const std::function<void()>& work) {
  return leases_.run(key, check, [&] {
    work();
    // Release (and wake the fleet) only once the shared store has it.
    const std::int64_t until = std::max(steady_ms(), deadline_ms) + kWriteWaitMs;
    if (!writes_.wait_landed(hash, at_steady_ms(until))) {
      log(LogLevel::Warn, "fleet: the write of " + key + " did not land in time; releasing its lease anyway");
    }
  });
}

bool Fleet::start(std::string key, std::string hash, std::int64_t deadline_ms, std::function<bool()> check,
                  Start start) {
  const bool queued = pool_->try_submit([this, key = std::move(key), hash = std::move(hash), deadline_ms,
                                         check = std::move(check), start = std::move(start)] {
    run(key, hash, deadline_ms, check, [&] {
      auto latch = std::make_shared<Latch>();
      start([latch] { latch->set(); });
      latch->wait_until(at_steady_ms(deadline_ms + kDeadlineSlackMs));
    });
  });
  if (!queued) pool_full_.fetch_add(1);
  return queued;
}

std::string Fleet::prometheus() const {
  const FleetStats f = leases_.stats();
  const RedisStats r = leases_.redis_stats();
  std::string out;
  auto family = [&out](std::string_view name, std::string_view type, std::string_view help) {
    out += "# HELP " + std::string(name) + " " + std::string(help) + "\n";
    out += "# TYPE " + std::string(name) + " " + std::string(type) + "\n";
  };
  auto line = [&out](std::string_view name, std::string_view labels, std::uint64_t v) {
    out += std::string(name) + (labels.empty() ? "" : "{" + std::string(labels) + "}") + " " +
           std::to_string(v) + "\n";
  };
  family(
      "nic_fleet_leases_total", "counter",
      "Fleet leases (REDIS_URL) by outcome: led (took a free lease and made the result), takeover (took an "
      "expired lease), followed (another instance made it), fallback (Redis slow or down, or waited too "
      "long: made here without a lease).");
  line("nic_fleet_leases_total", "outcome=\"led\"", f.led - std::min(f.led, f.takeovers));
  line("nic_fleet_leases_total", "outcome=\"takeover\"", f.takeovers);
  line("nic_fleet_leases_total", "outcome=\"followed\"", f.followed);
  line("nic_fleet_leases_total", "outcome=\"fallback\"", f.fallbacks + pool_full_.load());
  family("nic_fleet_wakeups_total", "counter", "Pub/sub messages that woke a waiting follower.");
  line("nic_fleet_wakeups_total", "", f.wakeups);
  family("nic_fleet_leases_lost_total", "counter",
         "Leases found expired or taken while their holder worked.");
  line("nic_fleet_leases_lost_total", "", f.lease_lost);
  family("nic_fleet_redis_errors_total", "counter",
         "Redis commands that failed: failed (timeout, refused, protocol) or breaker (refused at once while "
         "backing off after a failure) for leases; limits: Notion slots and rate-limit syncs.");
  line("nic_fleet_redis_errors_total", "kind=\"failed\"", r.failures);
  line("nic_fleet_redis_errors_total", "kind=\"breaker\"", r.fast_failures);
  line("nic_fleet_redis_errors_total", "kind=\"limits\"", limits_.errors());
  family("nic_fleet_rate_unsent", "gauge", "Clients whose latest hits are not counted in Redis yet.");
  line("nic_fleet_rate_unsent", "", limits_.unsent());
  family("nic_fleet_subscribed", "gauge", "1 while the wake-up subscription is live.");
  line("nic_fleet_subscribed", "", leases_.subscribed() ? 1 : 0);
  return out;
}

}  // namespace nic::origin
