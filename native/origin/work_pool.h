// A fixed set of threads with a bounded queue of waiting jobs: when the queue
// is full, try_submit refuses (the caller answers 503 OVERLOADED) instead of
// letting memory grow. A job that throws does not end the process: the pool
// catches it, logs it and counts it (jobs that answer someone catch their own
// exceptions first and answer 500 INTERNAL; this is the last line).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace nic::origin {

class WorkPool {
 public:
  // `nice_increment` > 0 lowers the priority of the pool's threads (Linux: per
  // thread), so that CPU-bound jobs (transforms) never delay the I/O threads
  // that answer cache hits.
  WorkPool(std::string name, int threads, std::size_t max_queued, int nice_increment = 0);
  ~WorkPool();
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  // False when `max_queued` jobs are already waiting or the pool is stopping.
  bool try_submit(std::function<void()> job);
  std::size_t queued() const;
  // Whether try_submit would take a job now (a hint: it may change at once).
  bool has_room() const;
  std::size_t running() const;
  std::uint64_t exceptions() const { return exceptions_.load(); }
  const std::string& name() const { return name_; }
  // Runs what is queued, then joins the threads.
  void stop();
  // Drops the jobs still waiting (never run; their captures are destroyed) and
  // returns how many: shutdown past its deadline, after their requests were answered 503.
  std::size_t discard_queued();

 private:
  void run();
  bool has_room_locked() const;
  std::string name_;
  std::size_t max_queued_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::size_t running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  std::atomic<std::uint64_t> exceptions_{0};
};

}  // namespace nic::origin
