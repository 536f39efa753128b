// A fixed set of threads with a bounded queue of waiting jobs: when the queue
// is full, try_submit refuses (the caller answers 503 OVERLOADED) instead of
// letting memory grow.
#pragma once

#include <condition_variable>
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
  WorkPool(std::string name, int threads, std::size_t max_queued);
  ~WorkPool();
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  // False when `max_queued` jobs are already waiting or the pool is stopping.
  bool try_submit(std::function<void()> job);
  std::size_t queued() const;
  std::size_t running() const;
  // Runs what is queued, then joins the threads.
  void stop();
  // Drops the jobs still waiting (never run; their captures are destroyed) and
  // returns how many: shutdown past its deadline, after their requests were answered 503.
  std::size_t discard_queued();

 private:
  void run();
  std::string name_;
  std::size_t max_queued_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::size_t running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace nic::origin
