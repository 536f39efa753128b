// ByteBudget (TRANSFORM_MEMORY_BYTES): downloads take at most half, one
// download may always go, a transform too big to fit runs alone once no other
// transform holds a charge, and the transforms behind it wait until it started.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "byte_budget.h"

using nic::origin::ByteBudget;
using Kind = ByteBudget::Kind;
using namespace std::chrono_literals;

namespace {
auto soon() { return std::chrono::steady_clock::now() + 50ms; }
auto later() { return std::chrono::steady_clock::now() + 10s; }
}  // namespace

TEST_CASE("byte budget: downloads take at most half, but one always may go", "[origin][budget]") {
  ByteBudget b(100);
  auto d1 = b.try_acquire(30, Kind::Download);
  REQUIRE(d1);
  CHECK_FALSE(b.try_acquire(30, Kind::Download));  // 60 > 50
  auto d2 = b.try_acquire(20, Kind::Download);
  REQUIRE(d2);
  auto t = b.try_acquire(50, Kind::Transform);  // transforms have the other half
  REQUIRE(t);
  CHECK(b.in_use() == 100);
  d1 = {};
  d2 = {};
  // A download bigger than half goes when it is the only one (and fits).
  auto big = b.try_acquire(45, Kind::Download);
  CHECK(big);
  CHECK_FALSE(b.try_acquire(101, Kind::Download));
  CHECK(b.refused() == 2);
}

TEST_CASE("byte budget: a transform too big to fit runs alone, and is not starved", "[origin][budget]") {
  ByteBudget b(100);  // no alone limit: any size may run alone
  auto small = b.acquire_until(30, later(), Kind::Transform);
  auto source = b.acquire_until(40, later(), Kind::Download);  // a source waiting for its transform
  REQUIRE(small);
  REQUIRE(source);
  // 150 can never fit: it waits for the running transform, not for the source.
  auto big = std::async(std::launch::async, [&] { return b.acquire_until(150, later(), Kind::Transform); });
  CHECK(big.wait_for(100ms) == std::future_status::timeout);
  // A small transform that would fit does not jump ahead of the big one.
  CHECK_FALSE(b.acquire_until(10, soon(), Kind::Transform));
  small = {};
  auto lease = big.get();
  REQUIRE(lease);
  CHECK(b.in_use() == 190);
  CHECK(b.peak() == 190);
  // While it runs, nothing else transforms.
  CHECK_FALSE(b.acquire_until(10, soon(), Kind::Transform));
  lease = {};
  CHECK(b.acquire_until(10, soon(), Kind::Transform));
}

TEST_CASE("byte budget: with an alone limit, a transform above it is refused at once", "[origin][budget]") {
  ByteBudget b(100, 120);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(b.acquire_until(121, later(), Kind::Transform));
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);  // not a wait for the deadline
  CHECK(b.acquire_until(120, soon(), Kind::Transform));
}

TEST_CASE("byte budget: a big waiter that gives up lets the others go", "[origin][budget]") {
  ByteBudget b(100);
  auto running = b.acquire_until(30, later(), Kind::Transform);
  REQUIRE(running);
  auto big = std::async(std::launch::async, [&] {
    return b.acquire_until(150, std::chrono::steady_clock::now() + 200ms, Kind::Transform);
  });
  CHECK(big.wait_for(50ms) == std::future_status::timeout);  // it is waiting
  auto small = std::async(std::launch::async, [&] { return b.acquire_until(10, later(), Kind::Transform); });
  CHECK(small.wait_for(100ms) == std::future_status::timeout);  // behind the big one
  CHECK_FALSE(big.get());                                       // its deadline passed
  CHECK(small.get());                                           // then the small one went
}

TEST_CASE("byte budget: close wakes every waiter", "[origin][budget]") {
  ByteBudget b(100);
  auto held = b.acquire_until(90, later(), Kind::Transform);
  auto waiter = std::async(std::launch::async, [&] { return b.acquire_until(50, later(), Kind::Transform); });
  CHECK(waiter.wait_for(50ms) == std::future_status::timeout);
  b.close();
  CHECK_FALSE(waiter.get());
}
