#include "origin.h"

#include <chrono>
#include <random>

#include "disk_store.h"
#include "http_fetch.h"
#include "log.h"
#include "nic/cache_policy.h"
#include "nic/error.h"
#include "nic/route.h"
#include "nic/sha256.h"
#include "page.h"
#include "request_id.h"
#include "secret_compare.h"
#include "s3_store.h"

namespace nic::origin {

struct Origin::Context {
  Request req;
  Reply reply;
  std::string request_id;
  std::string route_label = "unknown";
  bool head = false;
  Headers extra_headers;
  std::atomic<bool> replied{false};
};

Origin::Origin(Config config)
    : config_(std::move(config)),
      memory_(config_.memory_cache_bytes),
      global_limit_(config_.rate_limit_per_minute, 60),
      image_limit_(config_.rate_limit_image, 60),
      proxy_limit_(config_.rate_limit_proxy, 60),
      purge_limit_(config_.rate_limit_cache_purge, 60),
      proxy_quota_(config_.daily_proxy_quota, 86400),
      image_miss_limit_(config_.rate_limit_image_miss, 60),
      started_unix_(unix_now()),
      image_cache_control_(image_cache_control(config_.cache_ttl_seconds)) {}

Origin::~Origin() { stop(); }

Result<std::unique_ptr<Origin>> Origin::create(Config config) {
  global_http_init();
  log_threshold() = config.log_level;
  std::unique_ptr<Origin> o(new Origin(std::move(config)));
  const auto& c = o->config_;
  if (c.storage_backend == "fs") {
    auto disk = DiskStore::open(c.cache_dir, c.cache_max_bytes);
    if (!disk) return disk.take_error();
    o->store_ = std::move(*disk);
  } else {
    auto s3 = S3Store::open(S3Settings{c.s3_endpoint, c.s3_bucket, c.s3_region, c.s3_access_key, c.s3_secret_key,
                                       c.upstream_timeout_ms, 5000});
    if (!s3) return s3.take_error();
    o->store_ = std::move(*s3);
  }
  const auto st = o->store_->stats();
  log(LogLevel::Info, "storage " + o->store_->describe() + ": " + std::to_string(st.entries) + " entries, " +
                          std::to_string(st.bytes) + " bytes" +
                          (st.removed_at_start ? ", removed " + std::to_string(st.removed_at_start) +
                                                     " incomplete files"
                                               : ""));
  // Separate pools so that a storage hit never waits behind a Notion call or
  // a download, and neither waits behind a transform. Waiting jobs are
  // bounded: TRANSFORM_QUEUE transforms, four times that for the others
  // (most become hits or followers rather than transforms).
  const auto q = static_cast<std::size_t>(c.transform_queue);
  const int background_nice = c.transform_nice > 0 ? 5 : 0;  // misses' downloads and the storage writes
  // Storage reads answer hits: normal priority. Notion calls and downloads
  // (misses) and storage writes (after the answer) step aside for them.
  o->storage_pool_ = std::make_unique<WorkPool>("storage", c.storage_concurrency, 4 * q);
  o->fetch_pool_ = std::make_unique<WorkPool>("fetch", c.fetch_concurrency, 4 * q, background_nice);
  // Transform threads run at a lower priority (TRANSFORM_NICE, default +10):
  // on a busy machine an I/O thread that wakes for a hit gets a core at once
  // instead of queueing behind an AVIF encode (measured: hit p50 beside AVIF
  // misses 16.8 ms -> 0.18 ms, bench/README.md "Traffic").
  o->transform_pool_ = std::make_unique<WorkPool>("transform", c.transform_concurrency, q, c.transform_nice);
  o->writes_ = std::make_unique<WriteBehind>(*o->store_, o->metrics_, c.write_behind_bytes, 2,
                                             background_nice);
  auto fleet = Fleet::create(c, *o->writes_);
  if (!fleet) return fleet.take_error();
  o->fleet_ = std::move(*fleet);
  Origin* self = o.get();
  o->sources_ = std::make_unique<Sources>(
      c, o->metrics_, *o->store_, o->generations_, *o->writes_, *o->fetch_pool_,
      [self](const std::string& id) { return self->pipeline_->purge(id); });
  o->pipeline_ = std::make_unique<ImagePipeline>(c, o->metrics_, o->memory_, *o->store_, *o->sources_,
                                                 o->generations_, *o->writes_, *o->storage_pool_,
                                                 *o->transform_pool_);
  o->sources_->count_downloads_in(o->pipeline_->budget());
  o->sources_->set_fleet(o->fleet_.get());
  o->pipeline_->set_fleet(o->fleet_.get());
  if (o->fleet_) {
    auto& limits = o->fleet_->limits();
    limits.track(o->global_limit_, "all");
    limits.track(o->image_limit_, "image");
    limits.track(o->image_miss_limit_, "image_miss");
    limits.track(o->proxy_limit_, "proxy");
    limits.track(o->purge_limit_, "purge");
    limits.track(o->proxy_quota_, "proxy_day");
    limits.start();
    log(LogLevel::Info, "fleet: coalescing and limits through Redis (REDIS_URL)");
  }
  o->api_ = std::make_unique<ApiRoutes>(ApiRoutes::Parts{c, o->metrics_, o->memory_, *o->store_, *o->sources_,
                                                         *o->pipeline_, *o->storage_pool_, *o->fetch_pool_,
                                                         *o->transform_pool_, *o->writes_, o->started_unix_,
                                                         o->fleet_.get()});
  return o;
}

void Origin::stop() {
  if (sources_) sources_->stop();
  for (auto* pool : {storage_pool_.get(), fetch_pool_.get(), transform_pool_.get()}) {
    if (pool) pool->stop();
  }
  if (fleet_) fleet_->stop();  // its leaders wait for their writes: before the write-behind stops
  if (writes_) writes_->stop();
}

std::size_t Origin::discard_queued() {
  std::size_t n = 0;
  for (auto* pool : {storage_pool_.get(), fetch_pool_.get(), transform_pool_.get()}) {
    if (pool) n += pool->discard_queued();
  }
  return n;
}

std::size_t Origin::abandon_flights() {
  abort_transfers();
  if (pipeline_) pipeline_->budget().close();  // waiters for transform or download memory give up
  const Error gone = make_error(ErrorCode::Overloaded, "the server is shutting down; retry shortly");
  // Sources first: their waiters fail the variant flights that wait on them.
  std::size_t n = sources_ ? sources_->cancel_flights(gone) : 0;
  if (pipeline_) n += pipeline_->cancel_flights(gone);
  return n;
}

std::size_t Origin::inflight() const {
  return (pipeline_ ? pipeline_->inflight() : 0) + (sources_ ? sources_->inflight() : 0);
}

// ---------------------------------------------------------------- answers

void Origin::finish(const Ctx& ctx, Response response) {
  if (ctx->replied.exchange(true)) return;
  for (auto& h : ctx->extra_headers) response.headers.push_back(h);
  finalize(response, ctx->request_id, cors_decision(config_.cors_origins, ctx->req.origin));
  response.head = ctx->head;
  metrics_.request(ctx->route_label, response.status);
  ctx->reply(std::move(response));
}

void Origin::respond_error(const Ctx& ctx, const Error& error, std::int64_t retry_after) {
  if (http_status(error.code) >= 500) {
    log(LogLevel::Warn, std::string(to_string(error.code)) + " " + ctx->req.target + ": " + error.message);
  }
  finish(ctx, error_response(error, ctx->request_id, retry_after));
}

bool Origin::check_rate(const Ctx& ctx, RateLimiter& limiter) {
  if (!limiter.enabled()) return true;
  const RateDecision d = limiter.hit(ctx->req.client_ip, unix_now());
  if (d.allowed) return true;
  metrics_.rate_limited(ctx->route_label);
  respond_error(ctx,
                make_error(ErrorCode::RateLimited,
                           "rate limit of " + std::to_string(limiter.limit()) + " requests exceeded; retry later"),
                d.retry_after_s);
  return false;
}

bool Origin::check_api_key(const Ctx& ctx) {
  std::string_view key = ctx->req.api_key;
  std::string_view auth = ctx->req.authorization;
  if (key.empty() && auth.size() > 7 && (auth.substr(0, 7) == "Bearer " || auth.substr(0, 7) == "bearer ")) {
    key = auth.substr(7);
  }
  if (key.empty()) {
    respond_error(ctx, make_error(ErrorCode::MissingApiKey,
                                  "an API key is required: Authorization: Bearer <key> or X-API-Key"));
    return false;
  }
  bool ok = false;
  for (const auto& k : config_.api_keys) ok = constant_time_string_equal(k, key) || ok;
  if (!ok) {
    respond_error(ctx, make_error(ErrorCode::InvalidApiKey, "the API key is not valid"));
    return false;
  }
  return true;
}

// ---------------------------------------------------------------- routing

void Origin::handle(Request request, Reply reply) {
  auto ctx = std::make_shared<Context>();
  ctx->req = std::move(request);
  ctx->reply = std::move(reply);
  ctx->request_id = usable_request_id(ctx->req.request_id) ? ctx->req.request_id : new_request_id();

  // A GET/HEAD of an /img URL prepared before: skip routing and preparing.
  const bool get_or_head = ctx->req.method == "GET" || ctx->req.method == "HEAD";
  if (get_or_head) {
    if (auto prepared = prepared_.get(ctx->req.target, ctx->req.accept)) {
      ctx->route_label = std::string(to_string(RouteKind::Image));
      ctx->head = ctx->req.method == "HEAD";
      if (!check_rate(ctx, global_limit_) || !check_rate(ctx, image_limit_)) return;
      handle_image(ctx, std::move(prepared));
      return;
    }
  }

  if (ctx->req.method == "OPTIONS") {
    ctx->route_label = "preflight";
    Response r;
    r.status = kPreflightStatus;
    r.no_body = true;
    r.headers = preflight_headers(cors_decision(config_.cors_origins, ctx->req.origin));
    finish(ctx, std::move(r));
    return;
  }

  auto routed = route(ctx->req.method, ctx->req.target);
  if (!routed) {
    respond_error(ctx, routed.error());
    return;
  }
  const Route& rt = *routed;
  ctx->route_label = std::string(to_string(rt.kind));
  ctx->head = rt.head;
  if (rt.kind != RouteKind::Health && rt.kind != RouteKind::Metrics && !check_rate(ctx, global_limit_)) {
    return;
  }
  switch (rt.kind) {
    case RouteKind::Image: {
      if (!check_rate(ctx, image_limit_)) return;
      auto ireq = prepare_image_request(rt.image, rt.path, rt.query, ctx->req.accept, config_.core,
                                        config_.hmac_secret);
      if (!ireq) {
        respond_error(ctx, ireq.error());
        return;
      }
      auto prepared = std::make_shared<const ImageRequest>(std::move(*ireq));
      if (get_or_head) prepared_.put(ctx->req.target, ctx->req.accept, prepared);
      handle_image(ctx, std::move(prepared));
      return;
    }
    case RouteKind::Proxy: {
      if (!check_rate(ctx, proxy_limit_) || !check_rate(ctx, proxy_quota_)) return;
      auto plan = api_->proxy(rt.query, ctx->req.accept);
      if (!plan) {
        respond_error(ctx, plan.error());
        return;
      }
      ctx->extra_headers.emplace_back("Content-Location", plan->content_location);
      handle_image(ctx, std::move(plan->request), std::move(plan->offered));
      return;
    }
    case RouteKind::CachePurge: {
      if (!check_rate(ctx, purge_limit_) || !check_api_key(ctx)) return;
      auto targets = api_->purge_targets(rt.query);
      if (!targets) {
        respond_error(ctx, targets.error());
        return;
      }
      if (!api_->purge(std::move(*targets), [this, ctx](Response r) { finish(ctx, std::move(r)); })) {
        respond_error(ctx, make_error(ErrorCode::Overloaded, "too much work queued; retry the purge shortly"));
      }
      return;
    }
    case RouteKind::Health: {
      auto answer = api_->health(rt.query);
      if (!answer) {
        respond_error(ctx, answer.error());
        return;
      }
      finish(ctx, std::move(*answer));
      return;
    }
    case RouteKind::Stats:
      if (check_api_key(ctx)) finish(ctx, api_->stats());
      return;
    case RouteKind::Metrics: finish(ctx, api_->metrics()); return;
    case RouteKind::Page:
      if (const PageAsset* page = page_asset(rt.path)) {
        Response r;
        r.headers = page->headers;
        r.body = page->body;
        finish(ctx, std::move(r));
        return;
      }
      break;  // no such file: NOT_FOUND below
  }
  respond_error(ctx, make_error(ErrorCode::NotFound, "no such route"));
}

// ---------------------------------------------------------------- images

void Origin::handle_image(const Ctx& ctx, std::shared_ptr<const ImageRequest> request, OfferedUrl offered) {
  const ImageRequest& ireq = *request;
  // NOTION_TOKENS without a NOTION_TOKEN fallback lists the workspaces served:
  // an invented one costs nothing (no tier, no Notion call, no download).
  if (!workspace_served(config_, ireq.image.workspace)) {
    respond_error(ctx, make_error(ErrorCode::ImageNotFound,
                                  "workspace " + ireq.image.workspace + " is not served here (not in NOTION_TOKENS)"));
    return;
  }
  if (SharedImage hit = pipeline_->lookup_memory(ireq)) {
    const std::int64_t now = unix_now();
    // A memory hit looks at its source's age at most once a second.
    if (hit->next_source_check.load(std::memory_order_relaxed) <= now) {
      hit->next_source_check.store(now + 1, std::memory_order_relaxed);
      sources_->maybe_revalidate(ireq.image.workspace, ireq.image.id);
    }
    metrics_.cache_hit("memory");
    finish(ctx, image_response(ctx->req, ireq, hit, Delivery{Tier::Memory, Tier::Memory, ireq.vary_accept},
                               image_cache_control_));
    return;
  }
  if (serve_stored_inline(ctx, ireq)) return;
  // A request that would start work (not in memory, not in the store's
  // index, no flight for its key in the air) counts against
  // RATE_LIMIT_IMAGE_MISS; hits and followers are free. Both looks are
  // in-memory (the stores keep an index), never a storage round trip.
  if (!offered && image_miss_limit_.enabled() && !pipeline_->in_flight(ireq.key) &&
      !store_->meta(ireq.key_hash) && !check_rate(ctx, image_miss_limit_)) {
    return;
  }
  // What is stored is served meanwhile, whatever the check finds (stale-if-error).
  sources_->maybe_revalidate(ireq.image.workspace, ireq.image.id);
  auto done = [this, ctx, request](const Result<Served>& r) {
    if (!r) {
      respond_error(ctx, r.error());
      return;
    }
    if (r->tier == Tier::Coalesced) metrics_.cache_hit("coalesced");
    finish(ctx, image_response(ctx->req, *request, r->image, Delivery{r->tier, r->leader, request->vary_accept},
                               image_cache_control_));
  };
  pipeline_->run(request, std::move(done), std::move(offered));
}

// A storage hit served on this I/O thread: a small file whose version the
// store verified before (Store::read_verified: open, fstat, read; no hash, no
// pool, no flight). Anything else goes the pipeline's way (storage pool,
// where read() hashes a new version). Like the pipeline's storage step it
// keeps the entry in memory while the source's generation holds.
bool Origin::serve_stored_inline(const Ctx& ctx, const ImageRequest& ireq) {
  // Without coalescing (the benchmark baseline) every miss does the whole work.
  if (!config_.coalescing) return false;
  const bool to_memory = memory_.capacity() > 0;
  const std::string skey = to_memory ? source_key(ireq.image.id) : std::string();
  const std::uint64_t generation = to_memory ? generations_.current(skey) : 0;
  auto stored = store_->read_verified(ireq.key_hash, kInlineReadMaxBytes);
  if (!stored) return false;
  auto image = pipeline_->image_of(std::move(*stored));
  if (to_memory) pipeline_->remember(ireq.key_hash, image, skey, generation);
  // What is stored is served meanwhile, whatever the check finds (stale-if-error).
  // Like a memory hit, at most once a second per source (a slot shared by two
  // sources only delays one's check by a second); the check hashes the source key.
  auto& next_check = source_checks_[std::hash<std::string>{}(ireq.image.id) % source_checks_.size()];
  if (const std::int64_t now = unix_now(); next_check.load(std::memory_order_relaxed) <= now) {
    next_check.store(now + 1, std::memory_order_relaxed);
    sources_->maybe_revalidate(ireq.image.workspace, ireq.image.id);
  }
  metrics_.cache_hit("storage");
  metrics_.storage_inline_read();
  finish(ctx, image_response(ctx->req, ireq, image, Delivery{Tier::Storage, Tier::Storage, ireq.vary_accept},
                             image_cache_control_));
  return true;
}

}  // namespace nic::origin
