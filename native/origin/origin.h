// The origin's request pipeline, with no HTTP library in sight: the server
// hands in a Request and gets exactly one Response back through a callback
// (on any thread). Every decision comes from the shared core; this file adds
// the ports: clocks, the cache tiers, the Notion API, downloads, the pools.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "coalescer.h"
#include "config.h"
#include "disk_store.h"
#include "store.h"
#include "image.h"
#include "memory_cache.h"
#include "request_memo.h"
#include "metrics.h"
#include "nic/cache_key.h"
#include "nic/response_policy.h"
#include "notion_client.h"
#include "rate_limiter.h"
#include "url_registry.h"
#include "work_pool.h"

namespace nic::origin {

struct Request {
  std::string method;
  std::string target;
  std::string accept;
  std::string if_none_match;
  std::string authorization;
  std::string api_key;  // X-API-Key
  std::string origin;   // Origin (CORS)
  std::string request_id;  // X-Request-Id from the front (the edge), used when well-formed
  std::string client_ip;
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  SharedBytes body;   // null = empty
  // Header lines already in wire form ("Name: value\r\n"...), sent after
  // `headers` and valid while `keep` lives (an image's precomputed block).
  std::string_view preformatted;
  std::shared_ptr<const void> keep;
  bool head = false;  // headers only; Content-Length still tells the body's size
  bool no_body = false;  // 304/204: no Content-Length either
};

using Reply = std::function<void(Response)>;

// What a variant flight yields: the image and where the leader found it.
struct VariantOutcome {
  SharedImage image;
  Tier tier = Tier::Origin;
};

// A source: the original bytes and their sidecar.
struct Source {
  SharedBytes bytes;
  EntryMeta meta;
};

class Origin {
 public:
  static Result<std::unique_ptr<Origin>> create(Config config);
  ~Origin();

  // `reply` is called exactly once, possibly on another thread.
  void handle(Request request, Reply reply);

  // Stops the pools after the queued work ran (graceful shutdown).
  void stop();
  // Shutdown past its deadline (the server answered those requests 503): drop the queued jobs.
  std::size_t discard_queued();

  const Config& config() const { return config_; }
  Metrics& metrics() { return metrics_; }
  std::size_t inflight() const;

 private:
  explicit Origin(Config config);

  struct Context;  // one request
  using Ctx = std::shared_ptr<Context>;

  void handle_image(const Ctx& ctx, std::shared_ptr<const ImageRequest> ireq, bool proxy);
  void handle_proxy(const Ctx& ctx, std::string_view query);
  void handle_purge(const Ctx& ctx, std::string_view query);
  void handle_health(const Ctx& ctx);
  void handle_stats(const Ctx& ctx);
  void handle_metrics(const Ctx& ctx);

  void finish_variant(FlightId flight, const std::string& key, const Result<VariantOutcome>& result);
  // Blocking: stored source, else one flight per source that resolves and downloads it.
  Result<Source> get_source(const std::string& workspace, const std::string& id);
  Result<Source> fetch_source(const std::string& workspace, const std::string& id);
  void maybe_revalidate(const std::string& workspace, const std::string& id);
  void revalidate(const std::string& workspace, const std::string& id);

  void respond_image(const Ctx& ctx, const ImageRequest& ireq, const SharedImage& image, Tier tier,
                     Tier leader_tier);
  void respond_error(const Ctx& ctx, const Error& error, std::int64_t retry_after = 0);
  void respond_json(const Ctx& ctx, int status, std::string body);
  void finish(const Ctx& ctx, Response response);
  bool check_rate(const Ctx& ctx, RateLimiter& limiter);
  bool check_api_key(const Ctx& ctx);

  Config config_;
  Metrics metrics_;
  MemoryCache memory_;
  std::unique_ptr<Store> store_;  // fs (DiskStore) or s3|r2 (S3Store)
  UrlRegistry urls_;
  NotionClient notion_;
  Coalescer<VariantOutcome> variant_flights_;
  Coalescer<Source> source_flights_;
  RateLimiter global_limit_, image_limit_, proxy_limit_, purge_limit_, proxy_quota_;
  std::mutex revalidating_mu_;
  std::set<std::string> revalidating_;
  std::int64_t started_unix_ = 0;
  std::string image_cache_control_;
  RequestMemo prepared_{4096};
  std::atomic<std::uint64_t> request_counter_{0};
  // Pools last: destroyed (joined) first, while everything they use still exists.
  std::unique_ptr<WorkPool> fetch_pool_;
  std::unique_ptr<WorkPool> transform_pool_;
};

}  // namespace nic::origin
