// The fleet gate (REDIS_URL): where the source and variant flights ask the
// fleet whether this instance makes their result, through FleetLeases
// (fleet_lease.h). One hook per flight kind:
//
//   sources.cpp   the source flight's leader, already on the fetch pool (it
//                 blocks there for the Notion call and the download anyway),
//                 calls run() around fetch();
//   pipeline.cpp  the variant flight's leader, a chain of callbacks over the
//                 storage, fetch and transform pools, calls start(); the lease
//                 is held (and followers elsewhere wait) on a thread of the
//                 gate's own pool until the chain calls its `done`.
//
// Either way the lease is released, and the fleet woken, only after the
// write of the result left the write-behind (wait_landed): a follower on
// another instance then finds it in the shared store. A write that failed
// or was dropped wakes followers that find nothing; the first to take the
// lease makes the result again. Without REDIS_URL there is no gate (null):
// each process coalesces on its own.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "config.h"
#include "fleet_lease.h"
#include "fleet_limits.h"
#include "work_pool.h"
#include "write_behind.h"

namespace nic::origin {

class Fleet {
 public:
  // Null when REDIS_URL is not set; an error only for a malformed URL.
  static Result<std::unique_ptr<Fleet>> create(const Config& config, WriteBehind& writes);
  Fleet(FleetSettings settings, WriteBehind& writes, int threads);
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // Blocking, on a worker thread. `check()`: the shared store has the result
  // (the caller took it). `work()`: makes it and queues its write under
  // `hash`; the lease is held until that write left the write-behind (at
  // most until `deadline_ms`, steady clock).
  FleetLeases::Outcome run(const std::string& key, const std::string& hash, std::int64_t deadline_ms,
                           const std::function<bool()>& check, const std::function<void()>& work);

  // Asynchronous work: `start(done)` begins it, and whatever happens it calls
  // `done()` once, after queuing its write under `hash` (or not). Runs on the
  // gate's pool; false when that pool is full (the caller goes on per process,
  // counted as a fallback). Exactly one of check() returning true or
  // start() happens.
  using Start = std::function<void(std::function<void()> done)>;
  bool start(std::string key, std::string hash, std::int64_t deadline_ms, std::function<bool()> check,
             Start start);

  // nic_fleet_* counters in Prometheus text.
  std::string prometheus() const;
  FleetStats stats() const { return leases_.stats(); }
  FleetLeases& leases() { return leases_; }
  FleetLimits& limits() { return limits_; }
  void stop();

 private:
  FleetLeases leases_;
  FleetLimits limits_;
  WriteBehind& writes_;
  std::atomic<std::uint64_t> pool_full_{0};  // start() refused: fallbacks not seen by leases_
  std::unique_ptr<WorkPool> pool_;           // last: joined first
};

}  // namespace nic::origin
