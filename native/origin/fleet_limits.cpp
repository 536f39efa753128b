#include "fleet_limits.h"

#include <chrono>
#include <cmath>

#include "log.h"
#include "nic/sha256.h"

namespace nic::origin {
namespace {

// KEYS[1] the token's next free slot (ms, Redis clock); ARGV[1] interval ms,
// ARGV[2] the longest wait the caller accepts. Returns {wait, slot} or {-1, slot}.
constexpr const char* kSlotLua = R"(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, nxt)
if slot - now > tonumber(ARGV[2]) then return {-1, slot} end
local after = slot + tonumber(ARGV[1])
redis.call('SET', KEYS[1], tostring(after), 'PX', math.max(1, after - now) + 60000)
return {slot - now, slot})";

// KEYS[1] as above; ARGV[1] ms from now before which nobody calls.
constexpr const char* kPenalizeLua = R"(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local after = math.max(nxt, now + tonumber(ARGV[1]))
redis.call('SET', KEYS[1], tostring(after), 'PX', math.max(1, after - now) + 60000)
return after)";

// KEYS[1] the counter; ARGV[1] the hits to add, ARGV[2] its expiry (ms).
constexpr const char* kIncrLua = R"(
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return n)";

constexpr auto kSyncEvery = std::chrono::milliseconds(50);

std::int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

FleetLimits::FleetLimits(RedisSettings settings, std::string prefix)
    : client_(std::move(settings)), prefix_(std::move(prefix)) {}

FleetLimits::~FleetLimits() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::uint64_t FleetLimits::errors() const {
  std::lock_guard lock(mu_);
  return errors_;
}

std::size_t FleetLimits::unsent() const {
  std::size_t n = 0;
  for (const auto& [limiter, name] : limiters_) n += limiter->unsent();
  return n + sending_.load();
}

Result<std::optional<FleetLimits::Slot>> FleetLimits::notion_slot(const std::string& token,
                                                                  double interval_ms,
                                                                  std::int64_t max_wait_ms) {
  // The token itself never leaves the process: its hash names the key.
  const std::string key = prefix_ + "notion:" + sha256_hex(token).substr(0, 16);
  const auto interval = static_cast<std::int64_t>(std::ceil(interval_ms));
  auto r = client_.command({"EVAL", kSlotLua, "1", key, std::to_string(interval),
                            std::to_string(std::max<std::int64_t>(0, max_wait_ms))});
  if (!r || r->type != RedisReply::Type::Array || r->elements.size() != 2) {
    std::lock_guard lock(mu_);
    ++errors_;
    if (!r) return r.take_error();
    return make_error(ErrorCode::Internal, "redis: unexpected reply to the Notion slot script");
  }
  if (r->elements[0].integer < 0) return std::optional<Slot>();
  return std::optional<Slot>(Slot{r->elements[0].integer, r->elements[1].integer});
}

void FleetLimits::notion_penalize(const std::string& token, std::int64_t wait_ms) {
  const std::string key = prefix_ + "notion:" + sha256_hex(token).substr(0, 16);
  if (!client_.command(
          {"EVAL", kPenalizeLua, "1", key, std::to_string(std::max<std::int64_t>(0, wait_ms))})) {
    std::lock_guard lock(mu_);
    ++errors_;
  }
}

void FleetLimits::track(RateLimiter& limiter, std::string name) {
  if (!limiter.enabled()) return;
  limiter.enable_fleet([this] {
    {
      std::lock_guard lock(mu_);
      pending_ = true;
    }
    cv_.notify_one();
  });
  limiters_.emplace_back(&limiter, std::move(name));
}

void FleetLimits::start() {
  if (!limiters_.empty() && !thread_.joinable()) thread_ = std::thread([this] { sync_loop(); });
}

void FleetLimits::sync_now() {
  for (auto& [limiter, name] : limiters_) sync(*limiter, name);
}

void FleetLimits::sync(RateLimiter& limiter, const std::string& name) {
  std::lock_guard one(sync_mu_);
  const auto deltas = limiter.take_deltas(unix_seconds());
  sending_ += deltas.size();
  struct Sent {
    std::atomic<std::size_t>& sending;
    std::size_t n;
    ~Sent() { sending -= n; }  // after the totals are applied (or the hits put back)
  } sent_guard{sending_, deltas.size()};
  std::vector<std::int64_t> totals;
  totals.reserve(deltas.size());
  const std::string expiry = std::to_string((limiter.window_seconds() + 60) * 1000);
  for (const auto& d : deltas) {
    const std::string key = prefix_ + "rate:" + name + ":" + std::to_string(d.window) + ":" + d.client;
    auto r = client_.command({"EVAL", kIncrLua, "1", key, std::to_string(d.count), expiry});
    if (!r) {
      {
        std::lock_guard lock(mu_);
        ++errors_;
      }
      limiter.set_fleet_up(false);
      // What was sent keeps its totals; the rest goes again later.
      const std::vector<RateLimiter::Delta> sent(deltas.begin(),
                                                 deltas.begin() + static_cast<long>(totals.size()));
      const std::vector<RateLimiter::Delta> unsent(deltas.begin() + static_cast<long>(totals.size()),
                                                   deltas.end());
      limiter.apply(sent, totals);
      limiter.apply(unsent, std::nullopt);
      return;
    }
    totals.push_back(r->integer);
  }
  limiter.apply(deltas, totals);
  // Up again once Redis answers: a ping when there was nothing to send.
  if (deltas.empty() && !limiter.fleet_up()) {
    if (!client_.command({"PING"})) return;
  }
  limiter.set_fleet_up(true);
}

void FleetLimits::sync_loop() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, kSyncEvery, [this] { return pending_ || stopping_; });
      if (stopping_) return;
      pending_ = false;
    }
    try {
      sync_now();
    } catch (const std::exception& e) {
      log(LogLevel::Error, std::string("fleet limits sync threw: ") + e.what());
    }
  }
}

}  // namespace nic::origin
