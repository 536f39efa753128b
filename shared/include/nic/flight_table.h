// Request coalescing state: one flight per key; the first request leads, the
// others follow until the leader completes or fails, or their deadline passes.
// Single-threaded and clock-free: the host passes time in and serialises calls.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace nic {

using FlightId = std::uint64_t;
using WaiterId = std::uint64_t;

struct Join {
  FlightId flight = 0;
  WaiterId waiter = 0;  // 0 for the leader
  bool leader = false;
};

struct FlightCounts {
  std::uint64_t flights = 0;    // leaders started
  std::uint64_t followers = 0;  // followers joined (the coalesced count)
  std::uint64_t completed = 0;
  std::uint64_t failed = 0;
  std::uint64_t timed_out = 0;  // followers whose deadline passed
};

class FlightTable {
 public:
  explicit FlightTable(std::int64_t follower_timeout_ms) : timeout_ms_(follower_timeout_ms) {}

  // Leader if no flight for `key` is in the air, follower otherwise (deadline
  // now + follower timeout).
  Join join(std::string_view key, std::int64_t now_ms);

  // The leader finished: the flight is removed (the next join starts a fresh
  // one) and its remaining followers are returned to be woken with the result.
  std::vector<WaiterId> complete(FlightId flight);
  // Same, for a failure: every follower gets the leader's error.
  std::vector<WaiterId> fail(FlightId flight);

  // A follower gave up or its client went away; false if unknown.
  bool leave(FlightId flight, WaiterId waiter);

  // Followers whose deadline is <= now, removed from their flights (answer 504).
  std::vector<std::pair<FlightId, WaiterId>> expire(std::int64_t now_ms);
  std::optional<std::int64_t> next_deadline() const;

  std::size_t inflight() const { return flights_.size(); }
  std::size_t waiting(FlightId flight) const;
  std::optional<FlightId> find(std::string_view key) const;
  const FlightCounts& counts() const { return counts_; }

 private:
  struct Follower {
    WaiterId id;
    std::int64_t deadline_ms;
  };
  struct Flight {
    std::string key;
    std::vector<Follower> followers;
  };
  std::vector<WaiterId> finish(FlightId flight);

  std::int64_t timeout_ms_;
  FlightId next_flight_ = 1;
  WaiterId next_waiter_ = 1;
  std::unordered_map<std::string, FlightId> by_key_;
  std::unordered_map<FlightId, Flight> flights_;
  FlightCounts counts_;
};

}  // namespace nic
