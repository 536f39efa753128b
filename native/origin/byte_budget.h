// A byte budget for work in flight (TRANSFORM_MEMORY_BYTES): a transform or a
// download is admitted with its estimated peak memory charged; one that does
// not fit waits (acquire_until) for charges to be released, up to its flight's
// deadline, then is refused (503 OVERLOADED). A burst of large new images (a
// page going live) is thus served in turn instead of mostly refused, and the
// memory in flight stays within the budget.
//
// Two kinds of charge share it. Downloads (and the sources they leave, until
// their transforms end) take at most half: a page of forty new images then
// keeps a few sources ahead of the transforms instead of all forty in memory,
// and transforms always have the other half. A transform that alone needs more
// than fits runs by itself once no other transform holds a charge (up to
// `alone_limit`, above which it is refused at once), and transforms that come
// after it wait until it started: it cannot be starved.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>

namespace nic::origin {

class ByteBudget {
 public:
  enum class Kind { Transform, Download };

  // `alone_limit`: the most one transform may charge (running alone above
  // `capacity`); by default no limit.
  explicit ByteBudget(std::uint64_t capacity, std::uint64_t alone_limit = UINT64_MAX)
      : capacity_(capacity), alone_limit_(std::max(capacity, alone_limit)) {}

  // RAII: releases its charge when the last copy goes.
  class Lease {
   public:
    Lease() = default;
    Lease(ByteBudget* budget, std::uint64_t bytes, Kind kind) : budget_(budget), bytes_(bytes), kind_(kind) {}
    Lease(Lease&& o) noexcept : budget_(std::exchange(o.budget_, nullptr)), bytes_(o.bytes_), kind_(o.kind_) {}
    Lease& operator=(Lease&& o) noexcept {
      if (this != &o) {
        reset();
        budget_ = std::exchange(o.budget_, nullptr);
        bytes_ = o.bytes_;
        kind_ = o.kind_;
      }
      return *this;
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { reset(); }
    explicit operator bool() const { return budget_ != nullptr; }
    std::uint64_t bytes() const { return bytes_; }

   private:
    void reset() {
      if (budget_ != nullptr) budget_->release(bytes_, kind_);
      budget_ = nullptr;
    }
    ByteBudget* budget_ = nullptr;
    std::uint64_t bytes_ = 0;
    Kind kind_ = Kind::Transform;
  };

  // An empty lease when `bytes` does not fit next to what is in use.
  Lease try_acquire(std::uint64_t bytes, Kind kind = Kind::Transform) {
    std::lock_guard lock(mu_);
    return fits_locked(bytes, kind) ? charge_locked(bytes, kind) : refuse_locked();
  }

  // Waits until `bytes` fits, `deadline` (steady clock) passes or the budget
  // is closed; empty on the last two, and at once when `bytes` can never fit.
  Lease acquire_until(std::uint64_t bytes, std::chrono::steady_clock::time_point deadline,
                      Kind kind = Kind::Transform) {
    std::unique_lock lock(mu_);
    if (bytes > (kind == Kind::Transform ? alone_limit_ : capacity_)) return refuse_locked();
    // A transform too big to ever fit beside a full download half goes
    // alone, and holds back the transforms behind it until it started.
    const bool big = kind == Kind::Transform && is_big(bytes);
    if (big) ++big_waiting_;
    const bool fits = cv_.wait_until(lock, deadline, [&] {
      return closed_ || fits_locked(bytes, kind) || (big && transforms_ == 0);
    });
    if (big) {
      --big_waiting_;
      cv_.notify_all();  // transforms held back behind this one re-check
    }
    return fits && !closed_ ? charge_locked(bytes, kind) : refuse_locked();
  }
  // Shutdown: every waiter gives up now, and no one waits from here on.
  void close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }
  std::uint64_t capacity() const { return capacity_; }
  std::uint64_t alone_limit() const { return alone_limit_; }
  std::uint64_t in_use() const {
    std::lock_guard lock(mu_);
    return in_use_;
  }
  std::uint64_t peak() const {
    std::lock_guard lock(mu_);
    return peak_;
  }
  std::uint64_t refused() const {
    std::lock_guard lock(mu_);
    return refused_;
  }

 private:
  // Downloads (with the sources they left) may hold this much; transforms the rest.
  std::uint64_t download_share() const { return capacity_ / 2; }
  // More than the transforms' share: such a transform may have to run alone.
  bool is_big(std::uint64_t bytes) const { return bytes > capacity_ - download_share(); }
  bool fits_locked(std::uint64_t bytes, Kind kind) const {
    if (bytes > capacity_ - std::min(capacity_, in_use_)) return false;
    if (kind == Kind::Download) {
      // One download always may go (alone), others within the share.
      return downloads_ == 0 || bytes <= download_share() - std::min(download_share(), download_bytes_);
    }
    return big_waiting_ == 0 || is_big(bytes);  // none jumps ahead of a big one
  }
  Lease charge_locked(std::uint64_t bytes, Kind kind) {
    in_use_ += bytes;
    peak_ = std::max(peak_, in_use_);
    if (kind == Kind::Download) {
      ++downloads_;
      download_bytes_ += bytes;
    } else {
      ++transforms_;
    }
    return Lease(this, bytes, kind);
  }
  Lease refuse_locked() {
    ++refused_;
    return {};
  }
  void release(std::uint64_t bytes, Kind kind) {
    {
      std::lock_guard lock(mu_);
      in_use_ -= std::min(in_use_, bytes);
      if (kind == Kind::Download) {
        --downloads_;
        download_bytes_ -= std::min(download_bytes_, bytes);
      } else {
        --transforms_;
      }
    }
    cv_.notify_all();
  }

  const std::uint64_t capacity_;
  const std::uint64_t alone_limit_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  std::uint64_t in_use_ = 0;
  std::uint64_t peak_ = 0;
  std::uint64_t refused_ = 0;
  std::uint64_t download_bytes_ = 0;  // charged by downloads and the sources they left
  int downloads_ = 0;                 // download leases held
  int transforms_ = 0;                // transform leases held
  int big_waiting_ = 0;               // transforms waiting to go alone
};

}  // namespace nic::origin
