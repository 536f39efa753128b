// The origin: routes a Request to the image pipeline or the API and answers
// with exactly one Response through a callback (on any thread). No HTTP
// library in sight (server.cpp has Boost.Beast). The composition root: it
// owns every component and their pools, with one-way dependencies
//   routes (this) -> ApiRoutes, ImagePipeline -> Sources -> Store, Notion
// and responses.h a leaf used by all.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "api_routes.h"
#include "config.h"
#include "fleet.h"
#include "generations.h"
#include "memory_cache.h"
#include "metrics.h"
#include "nic/cache_key.h"
#include "nic/response_policy.h"
#include "pipeline.h"
#include "rate_limiter.h"
#include "request_memo.h"
#include "responses.h"
#include "sources.h"
#include "store.h"
#include "work_pool.h"
#include "write_behind.h"

namespace nic::origin {

class Origin {
 public:
  static Result<std::unique_ptr<Origin>> create(Config config);
  ~Origin();

  // `reply` is called exactly once, possibly on another thread.
  void handle(Request request, Reply reply);

  // Stops the pools after the queued work ran (graceful shutdown), in the
  // order work flows: revalidation, storage, fetch, transform, writes.
  void stop();
  // Shutdown past its deadline (the server answered those requests 503): drop
  // the queued jobs, fail every flight still in the air (so no waiter, which
  // holds its connection, outlives the server; a late leader's result is
  // ignored: nothing runs after it) and abort running downloads.
  std::size_t discard_queued();
  std::size_t abandon_flights();

  const Config& config() const { return config_; }
  Metrics& metrics() { return metrics_; }
  std::size_t inflight() const;

  // The components, for tests that drive them in-process.
  ImagePipeline& pipeline() { return *pipeline_; }
  Sources& sources() { return *sources_; }
  WriteBehind& writes() { return *writes_; }
  Fleet* fleet() { return fleet_.get(); }
  Store& store() { return *store_; }

 private:
  explicit Origin(Config config);

  struct Context;  // one request
  using Ctx = std::shared_ptr<Context>;

  // `offered`: the URL a /api/v1/proxy caller gave (proxy requests are not
  // counted by RATE_LIMIT_IMAGE_MISS: the proxy has its own limits).
  void handle_image(const Ctx& ctx, std::shared_ptr<const ImageRequest> request, OfferedUrl offered = nullptr);
  // Stored files up to this size may be read on an I/O thread (page-cache
  // reads of a few microseconds); larger ones go through the storage pool.
  static constexpr std::uint64_t kInlineReadMaxBytes = 256 * 1024;
  bool serve_stored_inline(const Ctx& ctx, const ImageRequest& request);
  void respond_error(const Ctx& ctx, const Error& error, std::int64_t retry_after = 1);
  void finish(const Ctx& ctx, Response response);
  bool check_rate(const Ctx& ctx, RateLimiter& limiter);
  bool check_api_key(const Ctx& ctx);

  Config config_;
  Metrics metrics_;
  MemoryCache memory_;
  Generations generations_;
  std::unique_ptr<Store> store_;  // fs (DiskStore) or s3|r2 (S3Store)
  RateLimiter global_limit_, image_limit_, proxy_limit_, purge_limit_, proxy_quota_;
  RateLimiter image_miss_limit_;  // RATE_LIMIT_IMAGE_MISS: requests that start work
  // (the limiters outlive fleet_, below: its sync thread reads them)
  std::int64_t started_unix_ = 0;
  std::string image_cache_control_;
  RequestMemo prepared_{4096};
  // Storage hits read on the I/O thread: when each source's age was last looked at, by slot.
  std::array<std::atomic<std::int64_t>, 1024> source_checks_{};
  // ~Origin stops (joins) every pool first; only then are these destroyed.
  std::unique_ptr<WorkPool> storage_pool_;
  std::unique_ptr<WorkPool> fetch_pool_;
  std::unique_ptr<WorkPool> transform_pool_;
  std::unique_ptr<WriteBehind> writes_;
  std::unique_ptr<Fleet> fleet_;  // REDIS_URL; null without it
  std::unique_ptr<ImagePipeline> pipeline_;
  std::unique_ptr<Sources> sources_;  // after pipeline_: destroyed first (its timer may call into the pipeline)
  std::unique_ptr<ApiRoutes> api_;
};

}  // namespace nic::origin
