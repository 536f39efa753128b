#include "fleet_lease.h"

#include <unistd.h>

#include <random>

#include "log.h"

namespace nic::origin {
namespace {

// Renew only our own lease: a lease that expired and was taken is not ours.
constexpr const char* kRenewLua =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0";
// Release only our own lease.
constexpr const char* kReleaseLua =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";

std::string node_id() {
  std::random_device rd;
  std::uniform_int_distribution<std::uint64_t> dist;
  char host[64] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return std::string(host) + "-" + std::to_string(getpid()) + "-" + std::to_string(dist(rd) % 1000000007ULL);
}

}  // namespace

FleetLeases::FleetLeases(FleetSettings settings)
    : settings_(std::move(settings)), client_(settings_.redis), node_(node_id()) {
  renewer_ = std::thread([this] { renew_loop(); });
  subscriber_ = std::make_unique<RedisSubscriber>(settings_.redis, channel(),
                                                  [this](const std::string& key) { on_message(key); },
                                                  [this] { on_subscription_lost(); });
}

FleetLeases::~FleetLeases() {
  subscriber_.reset();
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  renew_cv_.notify_all();
  if (renewer_.joinable()) renewer_.join();
}

FleetStats FleetLeases::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void FleetLeases::count(std::uint64_t FleetStats::*field) {
  std::lock_guard lock(mu_);
  ++(stats_.*field);
}

FleetLeases::Acquire FleetLeases::try_acquire(const std::string& lkey, const std::string& token, std::int64_t* pttl) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto r = client_.command({"SET", lkey, token, "NX", "PX", std::to_string(settings_.lease_ttl_ms)});
    if (!r) return Acquire::Error;
    if (!r->is_nil()) return Acquire::Taken;
    auto t = client_.command({"PTTL", lkey});
    if (!t) return Acquire::Error;
    if (t->integer >= 0) {
      *pttl = t->integer;
      return Acquire::Held;
    }
    if (t->integer == -1) {  // a lease without expiry is not one of ours: never wait forever on it
      *pttl = settings_.lease_ttl_ms;
      return Acquire::Held;
    }
    // -2: released between the two commands; try again.
  }
  *pttl = 0;
  return Acquire::Held;
}

void FleetLeases::release(const std::string& lkey, const std::string& token) {
  (void)client_.command({"EVAL", kReleaseLua, "1", lkey, token});
}

void FleetLeases::on_message(const std::string& key) {
  {
    std::lock_guard lock(mu_);
    const auto it = waiters_.find(key);
    if (it == waiters_.end()) return;
    ++it->second.generation;
    if (it->second.sleeping > 0) ++stats_.wakeups;
  }
  cv_.notify_all();
}

// No wake-up can come while unsubscribed: every follower looks again now
// (the store, then Redis: down means a fallback at once, not a wait for PTTL).
void FleetLeases::on_subscription_lost() {
  {
    std::lock_guard lock(mu_);
    for (auto& [key, w] : waiters_) ++w.generation;
  }
  cv_.notify_all();
}

void FleetLeases::renew_loop() {
  const auto every = std::chrono::milliseconds(std::max<std::int64_t>(1, settings_.lease_ttl_ms / 3));
  std::unique_lock lock(mu_);
  while (!stopping_) {
    renew_cv_.wait_for(lock, every);
    if (stopping_) break;
    const auto held = held_;  // renew outside the lock
    lock.unlock();
    for (const auto& [lkey, token] : held) {
      auto r = client_.command({"EVAL", kRenewLua, "1", lkey, token, std::to_string(settings_.lease_ttl_ms)});
      if (r && r->integer == 0) {
        // Expired (e.g. Redis was unreachable longer than the TTL) or taken over:
        // the work goes on (the store's conditional writes keep it single), but
        // this lease is not renewed any more.
        std::lock_guard relock(mu_);
        const auto it = held_.find(lkey);
        if (it != held_.end() && it->second == token) {
          held_.erase(it);
          ++stats_.lease_lost;
        }
        log(LogLevel::Warn, "fleet: lease " + lkey + " lost while working");
      }
    }
    lock.lock();
  }
}

FleetLeases::Outcome FleetLeases::run(const std::string& key, const std::function<bool()>& check,
                                      const std::function<void()>& work) {
  using Clock = std::chrono::steady_clock;
  const std::string lkey = lease_key(key);
  const std::string token = node_ + ":" + std::to_string(++next_token_);
  const auto deadline = Clock::now() + std::chrono::milliseconds(settings_.max_wait_ms);
  {
    std::lock_guard lock(mu_);
    ++waiters_[key].waiting;
  }
  struct Unregister {
    FleetLeases* self;
    const std::string& key;
    ~Unregister() {
      std::lock_guard lock(self->mu_);
      const auto it = self->waiters_.find(key);
      if (it != self->waiters_.end() && --it->second.waiting == 0) self->waiters_.erase(it);
    }
  } unregister{this, key};

  auto fallback = [&] {
    count(&FleetStats::fallbacks);
    work();
    return Outcome::Fallback;
  };
  bool saw_holder = false;  // another instance held the lease at some point
  bool expired_wait = false;
  for (;;) {
    std::uint64_t generation;
    {
      std::lock_guard lock(mu_);
      generation = waiters_[key].generation;
    }
    std::int64_t pttl = 0;
    const Acquire a = try_acquire(lkey, token, &pttl);
    if (a == Acquire::Error) return fallback();
    if (a == Acquire::Taken) {
      // After waiting, the result may have landed just before the lease was free.
      if (saw_holder && check()) {
        release(lkey, token);
        count(&FleetStats::followed);
        return Outcome::Followed;
      }
      {
        std::lock_guard lock(mu_);
        held_[lkey] = token;
        if (expired_wait) ++stats_.takeovers;
      }
      struct Finish {
        FleetLeases* self;
        const std::string& lkey;
        const std::string& key;
        const std::string& token;
        ~Finish() {
          {
            std::lock_guard lock(self->mu_);
            const auto it = self->held_.find(lkey);
            if (it != self->held_.end() && it->second == token) self->held_.erase(it);
          }
          self->release(lkey, token);
          // After the release: a woken follower that finds nothing stored (the
          // work failed) can take the lease at once.
          (void)self->client_.command({"PUBLISH", self->channel(), key});
        }
      } finish{this, lkey, key, token};
      work();
      count(&FleetStats::led);
      return Outcome::Led;
    }
    // Held by another instance.
    saw_holder = true;
    if (check()) {
      count(&FleetStats::followed);
      return Outcome::Followed;
    }
    const auto now = Clock::now();
    if (now >= deadline) return fallback();
    const auto until = std::min(deadline, now + std::chrono::milliseconds(pttl + 50));
    bool woken;
    {
      std::unique_lock lock(mu_);
      auto& w = waiters_[key];
      ++w.sleeping;
      woken = cv_.wait_until(lock, until, [&] { return w.generation != generation; });
      --w.sleeping;
    }
    if (woken) {
      if (check()) {
        count(&FleetStats::followed);
        return Outcome::Followed;
      }
      expired_wait = false;  // the leader finished without a result: whoever is first takes the lease
    } else {
      expired_wait = Clock::now() < deadline;  // the lease ran out with no word from its holder
    }
  }
}

}  // namespace nic::origin
