#include "write_behind.h"

#include "log.h"

namespace nic::origin {

WriteBehind::WriteBehind(Store& store, Metrics& metrics, std::uint64_t max_bytes, int threads, int nice_increment)
    : store_(store),
      metrics_(metrics),
      max_bytes_(max_bytes),
      pool_(std::make_unique<WorkPool>("write-behind", threads, 100000, nice_increment)) {}

WriteBehind::~WriteBehind() { stop(); }

bool WriteBehind::write(std::string hash, EntryMeta meta, SharedBytes bytes, std::string kind,
                        std::function<bool()> still_current) {
  const std::uint64_t size = bytes ? bytes->size() : 0;
  std::uint64_t queued = queued_bytes_.load();
  do {
    if (queued + size > max_bytes_) {
      dropped_.fetch_add(1);
      metrics_.storage_write_failure("dropped");
      return false;
    }
  } while (!queued_bytes_.compare_exchange_weak(queued, queued + size));
  {
    std::lock_guard lock(mu_);
    ++pending_;
    queued_[hash] = Queued{Store::Hit{meta, bytes}, still_current};
  }
  auto job = [this, hash, meta = std::move(meta), bytes = std::move(bytes),
              kind = std::move(kind), still_current = std::move(still_current), size]() mutable {
    try {
      if (auto s = store_.write(hash, meta, *bytes); s) {
        metrics_.storage_write(kind);
        if (still_current && !still_current()) {
          store_.erase(hash);
          discarded_.fetch_add(1);
        }
      } else {
        metrics_.storage_write_failure(kind);
        log(LogLevel::Error, "storage write failed: " + s.error().message);
      }
    } catch (const std::exception& e) {
      metrics_.storage_write_failure(kind);
      log(LogLevel::Error, std::string("storage write threw: ") + e.what());
    }
    queued_bytes_.fetch_sub(size);
    std::lock_guard lock(mu_);
    queued_.erase(hash);
    --pending_;
    idle_.notify_all();  // flush() and wait_landed()
  };
  if (!pool_->try_submit(std::move(job))) {
    queued_bytes_.fetch_sub(size);
    dropped_.fetch_add(1);
    metrics_.storage_write_failure("dropped");
    std::lock_guard lock(mu_);
    queued_.erase(hash);
    if (--pending_ == 0) idle_.notify_all();
    return false;
  }
  return true;
}

std::optional<Store::Hit> WriteBehind::pending(const std::string& hash) const {
  std::lock_guard lock(mu_);
  const auto it = queued_.find(hash);
  if (it == queued_.end() || (it->second.still_current && !it->second.still_current())) return std::nullopt;
  return it->second.hit;
}

void WriteBehind::flush() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [this] { return pending_ == 0; });
}

bool WriteBehind::wait_landed(const std::string& hash, std::chrono::steady_clock::time_point until) {
  std::unique_lock lock(mu_);
  return idle_.wait_until(lock, until, [&] { return queued_.find(hash) == queued_.end(); });
}

void WriteBehind::stop() {
  if (pool_) pool_->stop();  // runs what is queued: accepted writes land
}

}  // namespace nic::origin
