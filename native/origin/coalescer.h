// Request coalescing on top of the core's FlightTable: one flight per key;
// the first caller leads and must call finish(); the others register a
// callback that is called exactly once, with the leader's result (one shared
// value, however many followers) or with 504 UPSTREAM_TIMEOUT when their
// FOLLOWER_TIMEOUT_MS passes. A timer thread expires followers. Errors are
// handed to the followers of that flight only; the next join starts afresh.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "nic/error.h"
#include "nic/flight_table.h"

namespace nic::origin {

inline std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

template <class T>
class Coalescer {
 public:
  using Waiter = std::function<void(const Result<T>&)>;

  struct Ticket {
    bool leader = false;
    FlightId flight = 0;
  };

  // enabled=false (NIC_COALESCING=off, benchmark baseline): everyone leads.
  Coalescer(std::int64_t follower_timeout_ms, bool enabled)
      : table_(follower_timeout_ms),
        timeout_ms_(follower_timeout_ms),
        enabled_(enabled),
        timer_([this] { run_timer(); }) {}

  ~Coalescer() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    timer_.join();
  }

  Coalescer(const Coalescer&) = delete;
  Coalescer& operator=(const Coalescer&) = delete;

  // Leader: returns {true, id}; the waiter is not kept. Follower: the waiter
  // will be called once, on another thread.
  Ticket join(const std::string& key, Waiter waiter) {
    std::unique_lock lock(mu_);
    if (!enabled_) {
      ++solo_inflight_;
      return {true, 0};
    }
    const std::int64_t now = steady_ms();
    const Join j = table_.join(key, now);
    if (j.leader) return {true, j.flight};
    waiters_.emplace(j.waiter, std::move(waiter));
    // Wake the timer only when this deadline comes before the one it sleeps
    // towards: followers share one timeout, so in a herd only the first does
    // (not a wake-up and a scan of every follower per join).
    const bool earlier = now + timeout_ms_ < timer_wakes_at_;
    lock.unlock();
    if (earlier) cv_.notify_all();
    return {false, j.flight};
  }

  void finish(FlightId flight, const Result<T>& result) {
    std::vector<Waiter> wake;
    {
      std::lock_guard lock(mu_);
      if (!enabled_) {
        --solo_inflight_;
        return;
      }
      const auto ids = result.ok() ? table_.complete(flight) : table_.fail(flight);
      wake.reserve(ids.size());
      for (const WaiterId id : ids) {
        const auto it = waiters_.find(id);
        if (it == waiters_.end()) continue;
        wake.push_back(std::move(it->second));
        waiters_.erase(it);
      }
    }
    for (auto& w : wake) w(result);
  }

  std::size_t inflight() const {
    std::lock_guard lock(mu_);
    return enabled_ ? table_.inflight() : solo_inflight_;
  }
  FlightCounts counts() const {
    std::lock_guard lock(mu_);
    return table_.counts();
  }

 private:
  void run_timer() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      const auto next = table_.next_deadline();
      if (!next) {
        timer_wakes_at_ = kNever;
        cv_.wait(lock);
        continue;
      }
      const std::int64_t now = steady_ms();
      if (*next > now) {
        timer_wakes_at_ = *next;
        cv_.wait_for(lock, std::chrono::milliseconds(*next - now));
        continue;
      }
      timer_wakes_at_ = kNever;  // busy expiring; it looks at the table again after
      std::vector<Waiter> expired;
      for (const auto& [flight, id] : table_.expire(now)) {
        const auto it = waiters_.find(id);
        if (it == waiters_.end()) continue;
        expired.push_back(std::move(it->second));
        waiters_.erase(it);
      }
      lock.unlock();
      const Result<T> timeout(make_error(ErrorCode::UpstreamTimeout,
                                         "timed out waiting for another request fetching this image"));
      for (auto& w : expired) w(timeout);
      lock.lock();
    }
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  static constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();
  FlightTable table_;
  std::int64_t timeout_ms_;
  std::int64_t timer_wakes_at_ = kNever;  // what the timer thread sleeps towards (under mu_)
  std::unordered_map<WaiterId, Waiter> waiters_;
  bool enabled_;
  bool stop_ = false;
  std::size_t solo_inflight_ = 0;
  std::thread timer_;  // last: starts after the members it uses
};

}  // namespace nic::origin
