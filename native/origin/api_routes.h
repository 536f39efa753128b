// The HTTP API beside the images: /api/v1/proxy (the older project's
// endpoint: registers a signed URL, then it is an image request),
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
  };
  explicit ApiRoutes(Parts parts) : p_(parts) {}

  // /api/v1/proxy?url=...&w=...: the URL is remembered until it expires; the
  // answer is the image request to serve and its Content-Location.
  struct ProxyPlan {
    std::shared_ptr<const ImageRequest> request;
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

  Response health();
  Response stats();
  Response metrics();

 private:
  Parts p_;
};

}  // namespace nic::origin
