// Request coalescing on top of the core's FlightTable: one flight per key.
// Everyone who joins, leader included, registers a waiter that is called
// exactly once: with the flight's result when the leader calls finish(), or
// with 504 UPSTREAM_TIMEOUT when a deadline passes first. A flight has one
// deadline, set by its leader; when it passes, the flight is failed for all
// its waiters and its key is free, so a stuck leader is replaced by the next
// request (its late finish() is ignored). Followers also keep their own
// FOLLOWER_TIMEOUT_MS as a backstop. A timer thread watches both. Waiters run
// without the lock, never on the caller's stack of join().
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
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
  // `leader`: whether this waiter led the flight (its answer says where the
  // bytes came from; a follower's says COALESCED).
  using Waiter = std::function<void(const Result<T>&, bool leader)>;

  struct Ticket {
    bool leader = false;
    FlightId flight = 0;
  };

  struct Counts {
    FlightCounts table;
    std::uint64_t replaced = 0;  // flights failed at their deadline (leader too slow)
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

  // Leader ({true, id}): `deadline_ms` (steady clock) becomes the flight's;
  // the leader must call finish(id, ...) (after the deadline it is ignored).
  // Follower: `deadline_ms` is not used; its own timeout applies.
  Ticket join(const std::string& key, std::int64_t deadline_ms, Waiter waiter) {
    std::unique_lock lock(mu_);
    const std::int64_t now = steady_ms();
    if (!enabled_) {
      const FlightId id = next_solo_++;
      solo_[id] = std::move(waiter);
      return {true, id};
    }
    const Join j = table_.join(key, now);
    std::int64_t wake_for = 0;
    if (j.leader) {
      leaders_[j.flight] = Leader{std::move(waiter), deadline_ms};
      by_deadline_.emplace(deadline_ms, j.flight);
      wake_for = deadline_ms;
    } else {
      waiters_.emplace(j.waiter, std::move(waiter));
      wake_for = now + timeout_ms_;
    }
    // Wake the timer only when this deadline comes before the one it sleeps
    // towards (in a herd only the first follower does).
    const bool earlier = wake_for < timer_wakes_at_;
    lock.unlock();
    if (earlier) cv_.notify_all();
    return {j.leader, j.flight};
  }

  // The leader's result for everyone still waiting on that flight.
  void finish(FlightId flight, const Result<T>& result) {
    std::vector<std::pair<Waiter, bool>> wake;
    {
      std::lock_guard lock(mu_);
      if (!enabled_) {
        auto it = solo_.find(flight);
        if (it == solo_.end()) return;
        wake.emplace_back(std::move(it->second), true);
        solo_.erase(it);
      } else {
        const auto lit = leaders_.find(flight);
        if (lit == leaders_.end()) return;  // replaced at its deadline: the answer went out already
        wake.emplace_back(std::move(lit->second.waiter), true);
        erase_deadline(flight, lit->second.deadline_ms);
        leaders_.erase(lit);
        const auto ids = result.ok() ? table_.complete(flight) : table_.fail(flight);
        take_followers(ids, wake);
      }
    }
    for (auto& [w, leader] : wake) w(result, leader);
  }

  // Shutdown: every waiter of every flight gets `error` now and is dropped;
  // leaders' late finish() calls are ignored. Returns how many were called.
  // (Waiters hold their requests' connections: none may outlive the server.)
  std::size_t cancel_all(const Error& error) {
    std::vector<std::pair<Waiter, bool>> wake;
    {
      std::lock_guard lock(mu_);
      for (auto& [id, w] : solo_) wake.emplace_back(std::move(w), true);
      solo_.clear();
      for (auto& [flight, leader] : leaders_) {
        wake.emplace_back(std::move(leader.waiter), true);
        take_followers(table_.fail(flight), wake);
      }
      leaders_.clear();
      by_deadline_.clear();
      for (auto& [id, w] : waiters_) wake.emplace_back(std::move(w), false);
      waiters_.clear();
    }
    const Result<T> result(error);
    for (auto& [w, leader] : wake) w(result, leader);
    return wake.size();
  }

  // A flight for `key` is in the air (a join now would follow it).
  bool in_flight(const std::string& key) const {
    std::lock_guard lock(mu_);
    return enabled_ && table_.find(key).has_value();
  }

  std::size_t inflight() const {
    std::lock_guard lock(mu_);
    return enabled_ ? table_.inflight() : solo_.size();
  }
  Counts counts() const {
    std::lock_guard lock(mu_);
    return Counts{table_.counts(), replaced_};
  }

 private:
  struct Leader {
    Waiter waiter;
    std::int64_t deadline_ms = 0;
  };

  void erase_deadline(FlightId flight, std::int64_t deadline_ms) {
    auto [lo, hi] = by_deadline_.equal_range(deadline_ms);
    for (auto it = lo; it != hi; ++it) {
      if (it->second == flight) {
        by_deadline_.erase(it);
        return;
      }
    }
  }

  void take_followers(const std::vector<WaiterId>& ids, std::vector<std::pair<Waiter, bool>>& out) {
    for (const WaiterId id : ids) {
      const auto it = waiters_.find(id);
      if (it == waiters_.end()) continue;
      out.emplace_back(std::move(it->second), false);
      waiters_.erase(it);
    }
  }

  std::int64_t next_wake_locked() const {
    std::int64_t next = kNever;
    if (const auto f = table_.next_deadline()) next = *f;
    if (!by_deadline_.empty()) next = std::min(next, by_deadline_.begin()->first);
    return next;
  }

  void run_timer() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      const std::int64_t next = next_wake_locked();
      if (next == kNever) {
        timer_wakes_at_ = kNever;
        cv_.wait(lock);
        continue;
      }
      const std::int64_t now = steady_ms();
      if (next > now) {
        timer_wakes_at_ = next;
        // At most an hour at a time: a far deadline must not overflow the clock's nanoseconds.
        cv_.wait_for(lock, std::chrono::milliseconds(std::min<std::int64_t>(next - now, 3600000)));
        continue;
      }
      timer_wakes_at_ = kNever;  // busy expiring; it looks at the tables again after
      std::vector<std::pair<Waiter, bool>> expired;
      // Flights past their deadline: everyone gets 504, the key is free.
      while (!by_deadline_.empty() && by_deadline_.begin()->first <= now) {
        const FlightId flight = by_deadline_.begin()->second;
        by_deadline_.erase(by_deadline_.begin());
        const auto lit = leaders_.find(flight);
        if (lit != leaders_.end()) {
          expired.emplace_back(std::move(lit->second.waiter), true);
          leaders_.erase(lit);
        }
        take_followers(table_.fail(flight), expired);
        ++replaced_;
      }
      // Followers past their own timeout.
      for (const auto& [flight, id] : table_.expire(now)) {
        const auto it = waiters_.find(id);
        if (it == waiters_.end()) continue;
        expired.emplace_back(std::move(it->second), false);
        waiters_.erase(it);
      }
      lock.unlock();
      const Result<T> timeout(make_error(ErrorCode::UpstreamTimeout,
                                         "the image was not ready within its deadline (FOLLOWER_TIMEOUT_MS)"));
      for (auto& [w, leader] : expired) w(timeout, leader);
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
  std::unordered_map<FlightId, Leader> leaders_;
  std::multimap<std::int64_t, FlightId> by_deadline_;
  std::unordered_map<FlightId, Waiter> solo_;  // coalescing off
  FlightId next_solo_ = 1;
  std::uint64_t replaced_ = 0;
  bool enabled_;
  bool stop_ = false;
  std::thread timer_;  // last: starts after the members it uses
};

}  // namespace nic::origin
