// The Notion API: GET {NOTION_API_BASE}/v1/blocks/{id} with the workspace's
// token, no more than NOTION_RPS calls per second per token (callers queue,
// they are not refused), 429 answered by waiting Retry-After (bounded retries).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "config.h"
#include "metrics.h"
#include "nic/error.h"

namespace nic::origin {

struct BlockFile {
  std::string url;                        // file.url or external.url
  std::optional<std::int64_t> expires_at;  // file.expiry_time, unix seconds
  bool external = false;
};

// The JSON of a block object -> its image file. Not an image block -> IMAGE_NOT_FOUND;
// malformed -> NOTION_API_ERROR.
Result<BlockFile> parse_block_json(std::string_view json);

// "2024-01-01T00:00:00.000Z" (or with an offset) -> unix seconds.
std::optional<std::int64_t> parse_iso8601(std::string_view text);

// Spaces calls on one key (token) at most `rps` per second; blocks the caller
// until its slot. `penalize` pushes the next slot back (after a 429).
class CallSpacer {
 public:
  explicit CallSpacer(double rps) : interval_ms_(1000.0 / rps) {}
  // Returns the time (steady ms) the caller may call at; the caller sleeps.
  std::int64_t reserve(const std::string& key, std::int64_t now_ms);
  void penalize(const std::string& key, std::int64_t until_ms);

 private:
  double interval_ms_;
  std::mutex mu_;
  std::map<std::string, double> next_;
};

class NotionClient {
 public:
  NotionClient(const Config& config, Metrics& metrics)
      : config_(config), metrics_(metrics), spacer_(config.notion_rps) {}

  // Blocking; runs on the fetch pool. IMAGE_NOT_FOUND (404/403/not an image),
  // NOTION_API_ERROR (no token, 401, 5xx, retries exhausted), UPSTREAM_TIMEOUT.
  Result<BlockFile> lookup_block(std::string_view workspace, std::string_view block_id);

  static constexpr int kMax429Retries = 5;
  static constexpr std::int64_t kMaxRetryAfterMs = 30000;

 private:
  const Config& config_;
  Metrics& metrics_;
  CallSpacer spacer_;
};

}  // namespace nic::origin
