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
      : table_(follower_timeout_ms), enabled_(enabled), timer_([this] { run_timer(); }) {}

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
    const Join j = table_.join(key, steady_ms());
    if (j.leader) return {true, j.flight};
    waiters_.emplace(j.waiter, std::move(waiter));
    lock.unlock();
    cv_.notify_all();  // a new deadline for the timer
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
        cv_.wait(lock);
        continue;
      }
      const std::int64_t now = steady_ms();
      if (*next > now) {
        cv_.wait_for(lock, std::chrono::milliseconds(*next - now));
        continue;
      }
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
  FlightTable table_;
  std::unordered_map<WaiterId, Waiter> waiters_;
  bool enabled_;
  bool stop_ = false;
  std::size_t solo_inflight_ = 0;
  std::thread timer_;  // last: starts after the members it uses
};

}  // namespace nic::origin
