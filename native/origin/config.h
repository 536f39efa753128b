// nic-origin settings: every setting of the contract, read from the
// environment (through a getter, so tests pass a map) and validated. A bad
// setting is an error naming the variable; main() turns it into exit code 2.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nic/allowed_hosts.h"
#include "nic/error.h"
#include "nic/settings.h"

namespace nic::origin {

// A flight's deadline is FOLLOWER_TIMEOUT_MS - kFlightMarginMs after its
// leader started: the leader's answer (or its 504) reaches every follower
// before the follower's own timer would.
inline constexpr std::int64_t kFlightMarginMs = 250;

enum class LogLevel : std::uint8_t { Debug, Info, Warn, Error };

// TRANSFORM_MEMORY_BYTES when unset: 96 MiB, two AVIF transforms of 12-16 MP
// photos (the transform engine streams: ~30 MiB each, memory_estimate.cpp) and
// a few sources downloaded ahead of them; bigger single transforms run alone
// (README "Memory").
inline constexpr std::uint64_t kDefaultTransformMemoryBytes = 96ULL << 20;

struct Config {
  std::uint16_t port = 3002;
  std::string host = "0.0.0.0";
  LogLevel log_level = LogLevel::Info;

  std::string storage_backend = "fs";
  std::string cache_dir = "./cache";
  std::string s3_bucket, s3_region, s3_endpoint, s3_access_key, s3_secret_key;
  std::string redis_url;

  std::string allowed_domains_text;
  std::vector<AllowedHost> allowed_domains;
  std::uint64_t max_image_size_bytes = 26214400;
  std::int64_t upstream_timeout_ms = 15000;

  // Per client IP per minute; 0 = no limit.
  std::int64_t rate_limit_per_minute = 0;
  std::int64_t rate_limit_proxy = 60;
  std::int64_t rate_limit_image = 0;
  std::int64_t rate_limit_cache_purge = 10;
  std::int64_t daily_proxy_quota = 0;  // per client IP per UTC day; 0 = none

  std::int64_t cache_ttl_seconds = 86400;
  std::vector<std::string> api_keys;
  std::string hmac_secret;
  std::vector<std::string> cors_origins{"*"};

  std::string notion_token;
  std::map<std::string, std::string> notion_tokens;  // canonical workspace -> token
  std::string notion_api_base = "https://api.notion.com";
  std::string notion_version = "2022-06-28";
  double notion_rps = 3.0;

  std::uint64_t memory_cache_bytes = 268435456;
  std::uint64_t cache_max_bytes = 10737418240ULL;  // 10 GiB; 0 = no cap
  std::uint64_t max_input_pixels = 50000000;
  std::int64_t follower_timeout_ms = 20000;
  int worker_threads = 2;
  int transform_concurrency = 2;
  int transform_queue = 64;
  int fetch_concurrency = 16;
  std::int64_t shutdown_timeout_ms = 10000;
  CoreSettings core;
  std::int64_t source_ttl_seconds = 3600;
  bool coalescing = true;  // NIC_COALESCING=off: benchmark baseline only

  // ---- hardening (issues 8 and 9): connections, the edge's client address, miss limits.
  // Open connections at most; beyond it the listener stops accepting until one closes.
  int max_connections = 4096;
  bool max_connections_explicit = false;  // set by MAX_CONNECTIONS (else clamped to the fd limit)
  // Shared with the edge: X-Client-IP is trusted only on requests whose X-Edge-Secret equals it.
  std::string edge_secret;
  // Per client per minute: /img requests that start work (not in memory, not stored, no flight
  // in the air for their key); 0 = no limit.
  std::int64_t rate_limit_image_miss = 600;
  // Distinct variants made per source (an id, under every workspace); the next
  // new one is 429 RATE_LIMITED until a purge. 0 = no cap.
  std::int64_t max_variants_per_source = 64;
  // Under failure (README "Failure behaviour").
  int notion_queue = 32;                          // NOTION_QUEUE: calls waiting per token
  std::int64_t revalidate_backoff_ms = 10000;     // REVALIDATE_BACKOFF_MS: first wait after a failure
  std::int64_t revalidate_backoff_max_ms = 600000;  // REVALIDATE_BACKOFF_MAX_MS: doubling stops here
  bool keep_deleted_blocks = false;               // NOTION_DELETED_BLOCKS=keep|drop (default drop)
  std::uint64_t transform_memory_bytes = kDefaultTransformMemoryBytes;  // TRANSFORM_MEMORY_BYTES
  // The most one transform may need: when TRANSFORM_MEMORY_BYTES is unset, a
  // transform that alone needs more than the budget runs by itself (no limit
  // but the pixel limits); when it is set, it is a hard bound too.
  std::uint64_t transform_alone_bytes = UINT64_MAX;
  std::uint64_t write_behind_bytes = 64ULL << 20;  // WRITE_BEHIND_BYTES: storage writes waiting
  int storage_concurrency = 4;                    // STORAGE_CONCURRENCY: threads reading the storage tier
  int avif_speed = 5;                             // AVIF_SPEED: aom speed 0..10 (higher: faster, larger)
  int transform_nice = 10;                        // TRANSFORM_NICE: nice increment of transform threads (0..19)
};


using EnvGetter = std::function<std::optional<std::string>(std::string_view)>;

EnvGetter process_env();

// INVALID_PARAM errors whose message starts with the variable's name.
Result<Config> load_config(const EnvGetter& env);

// The token for a workspace: NOTION_TOKENS entry, else NOTION_TOKEN (may be empty).
std::string notion_token_for(const Config& config, std::string_view workspace);
// Whether /img and /api/v1/proxy serve this (canonical) workspace at all: with
// NOTION_TOKENS set and no NOTION_TOKEN fallback, only the listed workspaces;
// otherwise any. An unknown one is refused before any tier or upstream call.
bool workspace_served(const Config& config, std::string_view workspace);

// Effective settings, one NAME=value per line, secrets masked.
std::string describe_config(const Config& config);

std::string_view to_string(LogLevel level);

}  // namespace nic::origin
