// Storage writes after the answer: a leader answers its followers as soon as
// the bytes exist and hands the write here. Bounded in bytes
// (WRITE_BEHIND_BYTES): a write that does not fit is dropped and counted
// (nic_storage_write_failures_total{kind="dropped"}), like a failed write; the
// entry is simply made again on a later miss. Each write carries a check run
// after it lands: false (its source's generation moved on meanwhile) erases it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <string>

#include "image.h"
#include "metrics.h"
#include "store.h"
#include "work_pool.h"

namespace nic::origin {

class WriteBehind {
 public:
  WriteBehind(Store& store, Metrics& metrics, std::uint64_t max_bytes, int threads, int nice_increment = 0);
  ~WriteBehind();
  WriteBehind(const WriteBehind&) = delete;
  WriteBehind& operator=(const WriteBehind&) = delete;

  // kind: "variant" | "source" (metrics). False when dropped.
  bool write(std::string hash, EntryMeta meta, SharedBytes bytes, std::string kind,
             std::function<bool()> still_current);

  // An accepted write that has not landed yet and is still current (reads
  // look here after the store, so a source answered a moment ago is not
  // downloaded again; a purged one is not handed out).
  std::optional<Store::Hit> pending(const std::string& hash) const;

  // Waits until every accepted write has landed (tests, shutdown).
  void flush();
  // Waits until no write of `hash` is queued (it landed, failed or was never
  // queued), at most until `until`. False on timeout. A fleet leader calls it
  // before it releases its lease: followers elsewhere read the shared store.
  bool wait_landed(const std::string& hash, std::chrono::steady_clock::time_point until);
  void stop();

  std::uint64_t queued_bytes() const { return queued_bytes_.load(); }
  std::size_t pending() const {
    std::lock_guard lock(mu_);
    return pending_;
  }
  std::uint64_t dropped() const { return dropped_.load(); }
  std::uint64_t discarded() const { return discarded_.load(); }  // written, then erased (stale generation)

 private:
  Store& store_;
  Metrics& metrics_;
  const std::uint64_t max_bytes_;
  std::atomic<std::uint64_t> queued_bytes_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> discarded_{0};
  mutable std::mutex mu_;
  std::condition_variable idle_;
  std::size_t pending_ = 0;
  struct Queued {
    Store::Hit hit;
    std::function<bool()> still_current;
  };
  std::unordered_map<std::string, Queued> queued_;  // by hash, until written

  std::unique_ptr<WorkPool> pool_;  // last: joined first
};

}  // namespace nic::origin
