// A byte budget for work in flight (TRANSFORM_MEMORY_BYTES): a transform or a
// download is admitted with its estimated peak memory charged; one that does
// not fit waits (acquire_until) for charges to be released, up to its flight's
// deadline, then is refused (503 OVERLOADED). A burst of large new images (a
// page going live) is thus served in turn instead of mostly refused, and the
// memory in flight stays within the budget.
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
  explicit ByteBudget(std::uint64_t capacity) : capacity_(capacity) {}

  // RAII: releases its charge when the last copy goes.
  class Lease {
   public:
    Lease() = default;
    Lease(ByteBudget* budget, std::uint64_t bytes) : budget_(budget), bytes_(bytes) {}
    Lease(Lease&& o) noexcept : budget_(std::exchange(o.budget_, nullptr)), bytes_(o.bytes_) {}
    Lease& operator=(Lease&& o) noexcept {
      if (this != &o) {
        reset();
        budget_ = std::exchange(o.budget_, nullptr);
        bytes_ = o.bytes_;
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
      if (budget_ != nullptr) budget_->release(bytes_);
      budget_ = nullptr;
    }
    ByteBudget* budget_ = nullptr;
    std::uint64_t bytes_ = 0;
  };

  // An empty lease when `bytes` does not fit next to what is in use.
  Lease try_acquire(std::uint64_t bytes) {
    std::lock_guard lock(mu_);
    return fits_locked(bytes) ? charge_locked(bytes) : refuse_locked();
  }

  // Waits until `bytes` fits, `deadline` (steady clock) passes or the budget
  // is closed; empty on the last two, and at once when `bytes` can never fit.
  Lease acquire_until(std::uint64_t bytes, std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    if (bytes > capacity_) return refuse_locked();
    const bool fits = cv_.wait_until(lock, deadline, [&] { return closed_ || fits_locked(bytes); });
    return fits && !closed_ ? charge_locked(bytes) : refuse_locked();
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
  bool fits_locked(std::uint64_t bytes) const { return bytes <= capacity_ - std::min(capacity_, in_use_); }
  Lease charge_locked(std::uint64_t bytes) {
    in_use_ += bytes;
    peak_ = std::max(peak_, in_use_);
    return Lease(this, bytes);
  }
  Lease refuse_locked() {
    ++refused_;
    return {};
  }
  void release(std::uint64_t bytes) {
    {
      std::lock_guard lock(mu_);
      in_use_ -= std::min(in_use_, bytes);
    }
    cv_.notify_all();
  }

  const std::uint64_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  std::uint64_t in_use_ = 0;
  std::uint64_t peak_ = 0;
  std::uint64_t refused_ = 0;
};

}  // namespace nic::origin
