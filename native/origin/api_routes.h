// The HTTP API beside the images: /api/v1/proxy (the older project's
// endpoint: offers a signed URL to the source step, then it is an image request),
// DELETE /api/v1/cache, /health, /api/v1/stats and /metrics. JSON bodies
// through Boost.JSON. Rate limits and API keys are checked by the routes
// before these are called.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config.h"
#include "fleet.h"
#include "memory_cache.h"
#include "metrics.h"
#include "nic/cache_key.h"
#include "pipeline.h"
#include "responses.h"
#include "sources.h"
#include "store.h"
#include "work_pool.h"
#include "write_behind.h"

namespace nic::origin {

class ApiRoutes {
 public:
  struct Parts {
    const Config& config;
    Metrics& metrics;
    MemoryCache& memory;
    Store& store;
    Sources& sources;
    ImagePipeline& pipeline;
    WorkPool& storage_pool;
    WorkPool& fetch_pool;
    WorkPool& transform_pool;
    WriteBehind& writes;
    std::int64_t started_unix = 0;
    const Fleet* fleet = nullptr;  // REDIS_URL
  };
  explicit ApiRoutes(Parts parts) : p_(parts) {}

  // /api/v1/proxy?url=...&w=...[&sig=...]: signed like /img when HMAC_SECRET is set
  // (checked before anything else). Nothing is registered here: the URL is
  // offered to this request's source step, which registers it under its file
  // id only once it downloaded and probed as an image (a block id in the
  // caller's URL is ignored). The answer is the image request to serve, the
  // offer and the Content-Location.
  struct ProxyPlan {
    std::shared_ptr<const ImageRequest> request;
    OfferedUrl offered;
    std::string content_location;
  };
  Result<ProxyPlan> proxy(std::string_view query, std::string_view accept);

  // DELETE /api/v1/cache?url=...: the (workspace, id) pairs a URL names
  // (a file URL that names its block purges both).
  using Targets = std::vector<std::pair<std::string, std::string>>;
  Result<Targets> purge_targets(std::string_view query);
  // Purges on the storage pool (removals wait for disk or network), then
  // `reply` with the JSON; false when that pool is full.
  bool purge(Targets targets, std::function<void(Response)> reply);

  // /health[?probe=live|ready] (health.h); another probe is INVALID_PARAM.
  Result<Response> health(std::string_view query);
  Response stats();
  Response metrics();

 private:
  Parts p_;
};

}  // namespace nic::origin
