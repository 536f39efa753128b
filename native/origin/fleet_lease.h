// One piece of work at a time across a fleet of origins (REDIS_URL): per key
// (a source "v1/{ws}/{id}/source" or a variant's canonical key) one instance
// leads and the others follow, so a herd spread over N instances costs one
// Notion call, one download, one transform, one write.
//
//   lease    SET nic:lease:{key} {token} NX PX {ttl}; renewed every ttl/3 while
//            the leader works (a Lua compare-and-PEXPIRE), released with a Lua
//            compare-and-delete, so a leader never renews or deletes a lease
//            that expired and was taken by another instance.
//   wake-up  the leader PUBLISHes "{key}" on nic:fleet:done after releasing;
//            every instance has one SUBSCRIBE connection and wakes its local
//            followers of that key (no polling). A follower then calls
//            `check` (the shared store) and is done when the result is there.
//   takeover a follower waits at most the lease's remaining time (PTTL, read
//            when it lost the race); if the leader died, the lease has expired
//            by then and the follower takes it (SET NX again) and does the work.
//   fallback Redis slow or down (bounded command timeouts, a breaker that
//            fails fast after one failure), or waiting longer than
//            `max_wait_ms` in total: the caller does the work itself (its own
//            per-process coalescing still holds), counted in `fallbacks`.
//            Redis never fails a request.
//
// Callers: a per-process flight leader, on a worker thread (this blocks).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "redis_client.h"

namespace nic::origin {

struct FleetSettings {
  RedisSettings redis;
  std::string prefix = "nic:";           // keys nic:lease:{key}, channel nic:fleet:done
  std::int64_t lease_ttl_ms = 10000;     // a leader that dies blocks its key this long at most
  std::int64_t max_wait_ms = 20000;      // a follower's total wait before doing the work itself
};

struct FleetStats {
  std::uint64_t led = 0;          // leases taken and work done here
  std::uint64_t followed = 0;     // results another instance made (found by `check`)
  std::uint64_t takeovers = 0;    // leases taken after the previous holder's expired
  std::uint64_t fallbacks = 0;    // Redis slow/down or waited too long: work done without a lease
  std::uint64_t lease_lost = 0;   // a renewal found the lease gone (expired or taken)
  std::uint64_t wakeups = 0;      // pub/sub messages that woke a waiting follower
};

class FleetLeases {
 public:
  enum class Outcome { Led, Followed, Fallback };

  // Connects lazily; never fails (an unreachable Redis means fallbacks).
  explicit FleetLeases(FleetSettings settings);
  ~FleetLeases();
  FleetLeases(const FleetLeases&) = delete;
  FleetLeases& operator=(const FleetLeases&) = delete;

  // `check()` looks for the result where the fleet shares it (true: found, the
  // caller has it); `work()` makes it (and stores it). Exactly one of: work()
  // ran under the fleet's lease (Led), check() found another instance's result
  // (Followed), or work() ran without a lease because Redis could not tell
  // (Fallback). check() runs before every wait and after every wake-up.
  Outcome run(const std::string& key, const std::function<bool()>& check, const std::function<void()>& work);

  FleetStats stats() const;
  bool subscribed() const { return subscriber_ && subscriber_->subscribed(); }
  // Tests: wait until the wake-up channel is live.
  bool wait_subscribed(std::chrono::milliseconds timeout) {
    return subscriber_ && subscriber_->wait_subscribed(timeout);
  }
  RedisClient& redis() { return client_; }
  RedisStats redis_stats() const { return client_.stats(); }
  std::string lease_key(const std::string& key) const { return settings_.prefix + "lease:" + key; }
  std::string channel() const { return settings_.prefix + "fleet:done"; }

 private:
  struct Waiter {
    std::uint64_t generation = 0;  // bumped by every wake-up for the key
    int waiting = 0;
    int sleeping = 0;  // followers blocked in the wait right now (a leader's own message wakes no one)
  };
  enum class Acquire { Taken, Held, Error };
  Acquire try_acquire(const std::string& lkey, const std::string& token, std::int64_t* pttl);
  void release(const std::string& lkey, const std::string& token);
  void on_message(const std::string& key);
  void on_subscription_lost();
  void renew_loop();
  void count(std::uint64_t FleetStats::*field);

  FleetSettings settings_;
  RedisClient client_;
  std::string node_;  // this process's part of every token
  std::atomic<std::uint64_t> next_token_{0};

  mutable std::mutex mu_;
  std::condition_variable cv_;  // wake-ups of followers
  std::unordered_map<std::string, Waiter> waiters_;
  std::map<std::string, std::string> held_;  // lease key -> token, renewed
  bool stopping_ = false;
  std::condition_variable renew_cv_;
  FleetStats stats_;
  std::thread renewer_;
  std::unique_ptr<RedisSubscriber> subscriber_;  // last: its thread calls on_message
};

}  // namespace nic::origin
