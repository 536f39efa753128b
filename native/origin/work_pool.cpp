#include "work_pool.h"

#include <algorithm>
#include <exception>

#ifdef __linux__
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "log.h"

namespace nic::origin {

WorkPool::WorkPool(std::string name, int threads, std::size_t max_queued, int nice_increment)
    : name_(std::move(name)), max_queued_(max_queued) {
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this, nice_increment] {
#ifdef __linux__
      // Named for `top -H` / perf: "nic-transform", "nic-fetch", ... (15 chars at most).
      pthread_setname_np(pthread_self(), ("nic-" + name_).substr(0, 15).c_str());
      // On Linux the nice value belongs to the thread (setpriority with a tid).
      if (nice_increment > 0) {
        const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
        const int now = getpriority(PRIO_PROCESS, tid);  // inherited from the creating thread
        if (setpriority(PRIO_PROCESS, tid, std::min(19, now + nice_increment)) != 0) {
          log(LogLevel::Warn, "pool " + name_ + ": could not lower the priority of a thread");
        }
      }
#else
      (void)nice_increment;
#endif
      run();
    });
  }
}

WorkPool::~WorkPool() { stop(); }

bool WorkPool::try_submit(std::function<void()> job) {
  {
    std::lock_guard lock(mu_);
    if (!has_room_locked()) return false;
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

bool WorkPool::has_room() const {
  std::lock_guard lock(mu_);
  return has_room_locked();
}

bool WorkPool::has_room_locked() const {
  // An idle worker takes a job at once, so it does not count as waiting.
  return !stopping_ && queue_.size() < (threads_.size() - running_) + max_queued_;
}

std::size_t WorkPool::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

std::size_t WorkPool::running() const {
  std::lock_guard lock(mu_);
  return running_;
}

void WorkPool::run() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      job = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    try {
      job();
    } catch (const std::exception& e) {
      exceptions_.fetch_add(1);
      log(LogLevel::Error, "pool " + name_ + ": a job threw: " + e.what());
    } catch (...) {
      exceptions_.fetch_add(1);
      log(LogLevel::Error, "pool " + name_ + ": a job threw a non-exception");
    }
    job = nullptr;  // its captures go before the next job, outside the lock
    std::lock_guard lock(mu_);
    --running_;
  }
}

std::size_t WorkPool::discard_queued() {
  std::deque<std::function<void()>> dropped;
  {
    std::lock_guard lock(mu_);
    dropped.swap(queue_);
  }
  return dropped.size();  // destroyed here, outside the lock
}

void WorkPool::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

}  // namespace nic::origin
