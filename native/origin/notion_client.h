// The Notion API: GET {NOTION_API_BASE}/v1/blocks/{id} with the workspace's
// token, no more than NOTION_RPS calls per second per token. Callers queue for
// their slot, but only within bounds: at most NOTION_QUEUE waiting per token,
// and never past the caller's deadline; beyond either the call fails at once
// with 503 OVERLOADED (the pipeline then serves what is stored, if anything).
// A 429 pushes the token's next slot back by Retry-After; waiting for it
// follows the same rule (fail fast when it would pass the deadline).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "config.h"
#include "fleet_limits.h"
#include "metrics.h"
#include "nic/error.h"

namespace nic::origin {

struct BlockFile {
  std::string url;                        // file.url or external.url
  std::optional<std::int64_t> expires_at;  // file.expiry_time, unix seconds
  bool external = false;
  bool deleted = false;  // archived / in_trash: the page or the block was deleted
};

// The JSON of a block object -> its image file. Not an image block -> IMAGE_NOT_FOUND;
// malformed -> NOTION_API_ERROR.
Result<BlockFile> parse_block_json(std::string_view json);

// "2024-01-01T00:00:00.000Z" (or with an offset) -> unix seconds.
std::optional<std::int64_t> parse_iso8601(std::string_view text);

// Spaces calls on one key (token) at most `rps` per second. `penalize`
// pushes the next slot back (after a 429). Bounded: a reservation whose slot
// is past `latest_ms`, or behind `max_waiting` others, is refused.
class CallSpacer {
 public:
  CallSpacer(double rps, int max_waiting) : interval_ms_(1000.0 / rps), max_waiting_(max_waiting) {}
  // The time (steady ms) the caller may call at (it sleeps until then), or
  // nothing: refused, the wait would pass `latest_ms` or the queue is full.
  std::optional<std::int64_t> reserve(const std::string& key, std::int64_t now_ms, std::int64_t latest_ms);
  void penalize(const std::string& key, std::int64_t until_ms);
  // How long a caller arriving now would wait (for Retry-After).
  std::int64_t wait_ms(const std::string& key, std::int64_t now_ms);
  // Callers holding a slot not yet reached, for one key.
  int waiting(const std::string& key, std::int64_t now_ms);

 private:
  struct Key {
    double next = 0;                  // the next free slot
    std::deque<std::int64_t> slots;   // slots handed out and not reached yet, ascending
  };
  void prune(Key& k, std::int64_t now_ms);
  double interval_ms_;
  int max_waiting_;
  std::mutex mu_;
  std::map<std::string, Key> keys_;
};

class NotionClient {
 public:
  NotionClient(const Config& config, Metrics& metrics)
      : config_(config), metrics_(metrics), spacer_(config.notion_rps, config.notion_queue) {}

  struct CallOptions {
    std::int64_t deadline_ms = 0;  // steady clock; every wait and the call itself end by then
    bool retry_server_error = true;  // one retry after a 5xx (not for background revalidation)
  };

  // Blocking; runs on the fetch or revalidation pool. IMAGE_NOT_FOUND
  // (404/403/not an image), NOTION_API_ERROR (no token, 401, 5xx, retries
  // exhausted), UPSTREAM_TIMEOUT, OVERLOADED (queue full / wait past the deadline).
  Result<BlockFile> lookup_block(std::string_view workspace, std::string_view block_id, const CallOptions& options);

  // REDIS_URL: the token's budget is the fleet's (fleet_limits.h); null or
  // Redis down: this process spaces its own calls.
  void set_fleet(FleetLimits* fleet) { fleet_ = fleet; }

  static constexpr int kMax429Retries = 5;
  static constexpr std::int64_t kMaxRetryAfterMs = 30000;

 private:
  const Config& config_;
  Metrics& metrics_;
  CallSpacer spacer_;
  FleetLimits* fleet_ = nullptr;
};

}  // namespace nic::origin
