#include <catch2/catch.hpp>

#include "nic/flight_table.h"

TEST_CASE("first join leads, the rest follow, completion frees the key", "[flight]") {
  nic::FlightTable t(1000);
  const auto leader = t.join("k", 0);
  CHECK(leader.leader);
  std::vector<nic::WaiterId> followers;
  for (int i = 0; i < 499; ++i) {
    const auto j = t.join("k", 10);
    CHECK_FALSE(j.leader);
    CHECK(j.flight == leader.flight);
    followers.push_back(j.waiter);
  }
  CHECK(t.inflight() == 1);
  CHECK(t.waiting(leader.flight) == 499);
  CHECK(t.counts().flights == 1);
  CHECK(t.counts().followers == 499);
  const auto woken = t.complete(leader.flight);
  CHECK(woken == followers);
  CHECK(t.inflight() == 0);
  CHECK(t.counts().completed == 1);
  // The next request after completion starts a fresh flight.
  const auto again = t.join("k", 20);
  CHECK(again.leader);
  CHECK(again.flight != leader.flight);
}

TEST_CASE("failure reaches every follower and is not remembered", "[flight]") {
  nic::FlightTable t(1000);
  const auto leader = t.join("k", 0);
  const auto f1 = t.join("k", 0);
  const auto f2 = t.join("k", 0);
  const auto woken = t.fail(leader.flight);
  CHECK(woken == std::vector<nic::WaiterId>{f1.waiter, f2.waiter});
  CHECK(t.counts().failed == 1);
  CHECK(t.join("k", 1).leader);
  CHECK(t.fail(999).empty());  // unknown flight
}

TEST_CASE("followers time out at their deadline", "[flight]") {
  nic::FlightTable t(100);
  const auto leader = t.join("k", 0);
  const auto early = t.join("k", 10);   // deadline 110
  const auto late = t.join("k", 50);    // deadline 150
  const auto other = t.join("j", 0);    // another key, leader
  CHECK(other.leader);
  CHECK(t.next_deadline() == 110);
  CHECK(t.expire(109).empty());
  const auto expired = t.expire(110);
  REQUIRE(expired.size() == 1);
  CHECK(expired[0] == std::make_pair(leader.flight, early.waiter));
  CHECK(t.next_deadline() == 150);
  CHECK(t.counts().timed_out == 1);
  CHECK(t.complete(leader.flight) == std::vector<nic::WaiterId>{late.waiter});
  CHECK_FALSE(t.next_deadline());
}

TEST_CASE("a follower can leave", "[flight]") {
  nic::FlightTable t(100);
  const auto leader = t.join("k", 0);
  const auto f = t.join("k", 0);
  CHECK(t.leave(leader.flight, f.waiter));
  CHECK_FALSE(t.leave(leader.flight, f.waiter));
  CHECK(t.complete(leader.flight).empty());
  CHECK(t.find("k") == std::nullopt);
}
