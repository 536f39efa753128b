#include "origin.h"

#include <chrono>
#include <ctime>
#include <future>
#include <random>

#include "http_fetch.h"
#include "log.h"
#include "nic/cache_policy.h"
#include "nic/error.h"
#include "nic/format.h"
#include "nic/notion_url.h"
#include "nic/percent.h"
#include "nic/response_policy.h"
#include "nic/route.h"
#include "nic/sha256.h"
#include "nic/url.h"
#include "s3_store.h"
#include "transform.h"

namespace nic::origin {
namespace {

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string new_request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::uint64_t v = rng();
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = kHex[v & 15];
    v >>= 4;
  }
  return out;
}

// An id from the front (the edge sends a UUID) is kept so one request can be
// followed across tiers; anything else is replaced, never echoed.
bool usable_request_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

SharedBytes bytes_of(std::string_view text) {
  return std::make_shared<const Bytes>(text.begin(), text.end());
}

std::string_view as_text(const Bytes& bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// Which upstream file a URL names, independent of its signature: lets
// revalidation notice that a block now points to another file.
std::string upstream_identity(const std::string& url, const std::vector<AllowedHost>& allowed) {
  if (auto f = parse_notion_url(url, allowed)) {
    return f->workspace + "/" + f->file_id + "/" + percent_encode(f->filename);
  }
  const auto q = url.find('?');
  return url.substr(0, q);
}

std::string variant_prefix(std::string_view workspace, std::string_view id) {
  std::string p = "v1/";
  p += workspace;
  p += '/';
  p += id;
  p += '/';
  return p;
}

nic::ImageEntry entry_of(const StoredImage& image, std::string_view cache_control) {
  nic::ImageEntry e;
  e.content_type = image.content_type;
  e.etag = image.etag;
  e.cache_control = cache_control;
  e.cache_key = image.key;
  e.original_size = image.original_size;
  e.optimized_size = image.bytes ? image.bytes->size() : 0;
  return e;
}

// Fills image.header_block: the headers every 200 for this entry carries
// (the shared policy's entry headers, rendered once when it is stored).
void seal(StoredImage& image, std::string_view cache_control) {
  std::string& b = image.header_block;
  b.clear();
  for (const auto& [name, value] : entry_headers(entry_of(image, cache_control))) {
    b += name;
    b += ": ";
    b += value;
    b += "\r\n";
  }
}

bool constant_time_string_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return constant_time_equal({reinterpret_cast<const std::uint8_t*>(a.data()), a.size()},
                             {reinterpret_cast<const std::uint8_t*>(b.data()), b.size()});
}

}  // namespace

struct Origin::Context {
  Request req;
  Reply reply;
  std::string request_id;
  std::string route_label = "unknown";
  bool head = false;
  std::vector<std::pair<std::string, std::string>> extra_headers;
  std::atomic<bool> replied{false};
};

Origin::Origin(Config config)
    : config_(std::move(config)),
      memory_(config_.memory_cache_bytes),
      notion_(config_, metrics_),
      variant_flights_(config_.follower_timeout_ms, config_.coalescing),
      source_flights_(config_.follower_timeout_ms, config_.coalescing),
      global_limit_(config_.rate_limit_per_minute, 60),
      image_limit_(config_.rate_limit_image, 60),
      proxy_limit_(config_.rate_limit_proxy, 60),
      purge_limit_(config_.rate_limit_cache_purge, 60),
      proxy_quota_(config_.daily_proxy_quota, 86400),
      started_unix_(unix_now()),
      image_cache_control_(image_cache_control(config_.cache_ttl_seconds)) {}

Origin::~Origin() { stop(); }

Result<std::unique_ptr<Origin>> Origin::create(Config config) {
  global_http_init();
  log_threshold() = config.log_level;
  std::unique_ptr<Origin> o(new Origin(std::move(config)));
  if (o->config_.storage_backend == "fs") {
    auto disk = DiskStore::open(o->config_.cache_dir, o->config_.cache_max_bytes);
    if (!disk) return disk.take_error();
    o->store_ = std::move(*disk);
  } else {
    const auto& c = o->config_;
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
  const auto& c = o->config_;
  // Waiting fetch jobs are bounded too (each is a distinct key's leader):
  // four times TRANSFORM_QUEUE, since most of them end up as a hit or a
  // follower of a source flight rather than a transform.
  o->fetch_pool_ = std::make_unique<WorkPool>("fetch", c.fetch_concurrency,
                                              static_cast<std::size_t>(4 * c.transform_queue));
  o->transform_pool_ = std::make_unique<WorkPool>("transform", c.transform_concurrency,
                                                  static_cast<std::size_t>(c.transform_queue));
  return o;
}

void Origin::stop() {
  if (fetch_pool_) fetch_pool_->stop();
  if (transform_pool_) transform_pool_->stop();
}

std::size_t Origin::discard_queued() {
  return (fetch_pool_ ? fetch_pool_->discard_queued() : 0) + (transform_pool_ ? transform_pool_->discard_queued() : 0);
}

std::size_t Origin::inflight() const { return variant_flights_.inflight() + source_flights_.inflight(); }

// ---------------------------------------------------------------- responses

void Origin::finish(const Ctx& ctx, Response response) {
  if (ctx->replied.exchange(true)) return;
  response.headers.emplace_back("X-Request-Id", ctx->request_id);
  for (auto& h : ctx->extra_headers) response.headers.push_back(h);
  apply_cors(response.headers, cors_decision(config_.cors_origins, ctx->req.origin));
  response.head = ctx->head;
  metrics_.request(ctx->route_label, response.status);
  ctx->reply(std::move(response));
}

void Origin::respond_error(const Ctx& ctx, const Error& error, std::int64_t retry_after) {
  Response r;
  r.status = http_status(error.code);
  r.headers = {{"Content-Type", "application/json"}, {"Cache-Control", std::string(kErrorCacheControl)}};
  if (error.code == ErrorCode::Overloaded || error.code == ErrorCode::RateLimited) {
    r.headers.emplace_back("Retry-After", std::to_string(std::max<std::int64_t>(1, retry_after)));
  }
  r.body = bytes_of(error_json(error, ctx->request_id));
  if (r.status >= 500) {
    log(LogLevel::Warn, std::string(to_string(error.code)) + " " + ctx->req.target + ": " + error.message);
  }
  finish(ctx, std::move(r));
}

void Origin::respond_json(const Ctx& ctx, int status, std::string body) {
  Response r;
  r.status = status;
  r.headers = {{"Content-Type", "application/json"}, {"Cache-Control", "no-store"}};
  r.body = bytes_of(body);
  finish(ctx, std::move(r));
}

void Origin::respond_image(const Ctx& ctx, const ImageRequest& ireq, const SharedImage& image, Tier tier,
                           Tier leader_tier) {
  const Delivery delivery{tier, leader_tier, ireq.vary_accept};
  Response r;
  const bool not_modified = !ctx->req.if_none_match.empty() && if_none_match(ctx->req.if_none_match, image->etag);
  if (!not_modified && !image->header_block.empty() && image->key == ireq.key) {
    // A 200 from a stored entry: its fixed headers were rendered when it was stored.
    r.headers = delivery_headers(delivery);
    r.status = 200;
    r.preformatted = image->header_block;
    r.keep = image;
    r.body = image->bytes;
    finish(ctx, std::move(r));
    return;
  }
  auto decided = image_response(entry_of(*image, image_cache_control_), delivery, ctx->req.if_none_match);
  r.status = decided.status;
  r.headers = std::move(decided.headers);
  if (decided.body) {
    r.body = image->bytes;
  } else {
    r.no_body = true;
  }
  finish(ctx, std::move(r));
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
      handle_image(ctx, std::move(prepared), false);
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
      handle_image(ctx, std::move(prepared), false);
      return;
    }
    case RouteKind::Proxy: handle_proxy(ctx, rt.query); return;
    case RouteKind::CachePurge: handle_purge(ctx, rt.query); return;
    case RouteKind::Health: handle_health(ctx); return;
    case RouteKind::Stats: handle_stats(ctx); return;
    case RouteKind::Metrics: handle_metrics(ctx); return;
  }
  respond_error(ctx, make_error(ErrorCode::NotFound, "no such route"));
}

// ---------------------------------------------------------------- images

void Origin::handle_image(const Ctx& ctx, std::shared_ptr<const ImageRequest> shared, bool /*proxy*/) {
  const ImageRequest& ireq = *shared;
  if (SharedImage hit = memory_.get(ireq.key_hash)) {
    const std::int64_t now = unix_now();
    if (hit->next_source_check.load(std::memory_order_relaxed) <= now) {
      hit->next_source_check.store(now + 1, std::memory_order_relaxed);
      maybe_revalidate(ireq.image.workspace, ireq.image.id);
    }
    metrics_.cache_hit("memory");
    respond_image(ctx, ireq, hit, Tier::Memory, Tier::Memory);
    return;
  }
  maybe_revalidate(ireq.image.workspace, ireq.image.id);
  const auto ticket = variant_flights_.join(shared->key, [this, ctx, shared](const Result<VariantOutcome>& r) {
    if (!r) {
      respond_error(ctx, r.error(), 1);
      return;
    }
    metrics_.cache_hit("coalesced");
    respond_image(ctx, *shared, r->image, Tier::Coalesced, r->tier);
  });
  if (!ticket.leader) {
    metrics_.coalesced();
    return;
  }
  const FlightId flight = ticket.flight;
  const bool queued = fetch_pool_->try_submit([this, ctx, shared, flight] {
    // The leader's work: re-check the tiers, then source -> transform -> store.
    auto done = [this, ctx, shared, flight](const Result<VariantOutcome>& r) {
      finish_variant(flight, shared->key, r);
      if (!r) {
        respond_error(ctx, r.error(), 1);
      } else {
        respond_image(ctx, *shared, r->image, r->tier, r->tier);
      }
    };
    // Inside the flight the leader looks again: another flight may have
    // stored this variant since the request's own look-up. (Without
    // coalescing, the benchmark baseline, there is no flight to look from.)
    if (SharedImage hit = config_.coalescing ? memory_.get(shared->key_hash) : nullptr) {
      metrics_.cache_hit("memory");
      done(VariantOutcome{hit, Tier::Memory});
      return;
    }
    if (auto stored = config_.coalescing ? store_->read(shared->key_hash) : std::nullopt) {
      auto image = std::make_shared<StoredImage>();
      image->bytes = stored->bytes;
      image->content_type = stored->meta.content_type;
      image->etag = stored->meta.etag;
      image->original_size = stored->meta.original_size;
      image->key = stored->meta.key;
      seal(*image, image_cache_control_);
      memory_.put(shared->key_hash, image);
      metrics_.cache_hit("storage");
      done(VariantOutcome{image, Tier::Storage});
      return;
    }
    metrics_.cache_miss();
    auto source = get_source(shared->image.workspace, shared->image.id);
    if (!source) {
      done(source.take_error());
      return;
    }
    const bool accepted = transform_pool_->try_submit([this, shared, done, src = std::move(*source)] {
      const TransformLimits limits{config_.max_input_pixels, kMaxDimension};
      const auto t0 = std::chrono::steady_clock::now();
      auto out = transform_image(*src.bytes, shared->params, shared->choice, limits);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!out) {
        done(out.take_error());
        return;
      }
      metrics_.transform(to_string(out->format), secs);
      auto image = std::make_shared<StoredImage>();
      image->bytes = std::make_shared<const Bytes>(std::move(out->bytes));
      image->content_type = std::string(content_type(out->format));
      image->etag = etag_for(as_text(*image->bytes));
      image->original_size = src.bytes->size();
      image->key = shared->key;
      seal(*image, image_cache_control_);
      EntryMeta meta;
      meta.key = image->key;
      meta.content_type = image->content_type;
      meta.etag = image->etag;
      meta.original_size = image->original_size;
      meta.created = unix_now();
      if (auto s = store_->write(shared->key_hash, meta, *image->bytes); s) {
        metrics_.storage_write("variant");
      } else {
        metrics_.storage_write_failure("variant");
        log(LogLevel::Error, "storage write failed: " + s.error().message);
      }
      memory_.put(shared->key_hash, image);
      done(VariantOutcome{image, Tier::Origin});
    });
    if (!accepted) {
      done(make_error(ErrorCode::Overloaded, "too many images waiting to be transformed; retry shortly"));
    }
  });
  if (!queued) {
    const Error e = make_error(ErrorCode::Overloaded, "too many images waiting to be fetched; retry shortly");
    finish_variant(flight, shared->key, e);
    respond_error(ctx, e, 1);
  }
}

void Origin::finish_variant(FlightId flight, const std::string& /*key*/, const Result<VariantOutcome>& result) {
  variant_flights_.finish(flight, result);
}

Result<Source> Origin::get_source(const std::string& workspace, const std::string& id) {
  const std::string skey = source_key(workspace, id);
  const std::string shash = cache_key_hash(skey);
  // The benchmark baseline (coalescing off) models a server that looked at its
  // caches when the request arrived, all missed, and does the whole work.
  if (!config_.coalescing) return fetch_source(workspace, id);
  if (auto stored = store_->read(shash)) return Source{stored->bytes, stored->meta};
  auto promise = std::make_shared<std::promise<Result<Source>>>();
  auto future = promise->get_future();
  const auto ticket = source_flights_.join(skey, [promise](const Result<Source>& r) { promise->set_value(r); });
  if (!ticket.leader) return future.get();  // the timer guarantees an answer
  Result<Source> result = [&]() -> Result<Source> {
    if (auto stored = store_->read(shash)) return Source{stored->bytes, stored->meta};
    return fetch_source(workspace, id);
  }();
  source_flights_.finish(ticket.flight, result);
  return result;
}

Result<Source> Origin::fetch_source(const std::string& workspace, const std::string& id) {
  const std::int64_t now = unix_now();
  bool looked_up = false;
  auto lookup = [&]() -> Result<SignedUrl> {
    const auto known = urls_.get_any(workspace, id);
    const std::string block = known && !known->block_id.empty() ? known->block_id : id;
    auto file = notion_.lookup_block(workspace, block);
    if (!file) return file.take_error();
    SignedUrl su{file->url, file->expires_at, block, block == id};
    urls_.put(workspace, id, su, now);
    looked_up = true;
    return su;
  };
  std::optional<SignedUrl> entry = urls_.get_valid(workspace, id, now);
  if (!entry) {
    auto fresh = lookup();
    if (!fresh) return fresh.take_error();
    entry = std::move(*fresh);
  }
  const DownloadOptions options{config_.max_image_size_bytes, config_.upstream_timeout_ms, 5};
  std::shared_ptr<Bytes> body;
  for (;;) {
    auto r = download(entry->url, config_.allowed_domains, options);
    if (!r) {
      const ErrorCode c = r.error().code;
      metrics_.upstream_fetch(c == ErrorCode::UpstreamTimeout  ? "timeout"
                              : c == ErrorCode::ImageTooLarge ? "too_large"
                              : c == ErrorCode::UpstreamError ? "error"
                                                              : "refused");
      return r.take_error();
    }
    metrics_.upstream_fetch(std::to_string(r->status));
    if (r->status >= 200 && r->status < 300) {
      metrics_.upstream_bytes(r->body->size());
      body = r->body;
      break;
    }
    if (r->status == 403 && !looked_up) {
      // Most likely an expired signature: ask Notion once for a fresh URL.
      urls_.forget(workspace, id);
      auto fresh = lookup();
      if (!fresh) return fresh.take_error();
      entry = std::move(*fresh);
      continue;
    }
    if (r->status == 403 || r->status == 404 || r->status == 410) {
      return make_error(ErrorCode::ImageNotFound, "the upstream file host answered " + std::to_string(r->status));
    }
    return make_error(ErrorCode::UpstreamError, "the upstream file host answered " + std::to_string(r->status));
  }
  const TransformLimits limits{config_.max_input_pixels, kMaxDimension};
  auto info = probe_image(*body, limits);
  if (!info) return info.take_error();
  EntryMeta meta;
  meta.key = source_key(workspace, id);
  meta.content_type = std::string(content_type(info->format));
  meta.etag = etag_for(as_text(*body));
  meta.original_size = body->size();
  meta.created = unix_now();
  meta.resolved_by = entry->from_block ? "block" : "file";
  meta.upstream = upstream_identity(entry->url, config_.allowed_domains);
  if (auto s = store_->write(cache_key_hash(meta.key), meta, *body); s) {
    metrics_.storage_write("source");
  } else {
    metrics_.storage_write_failure("source");
    log(LogLevel::Error, "storage write failed: " + s.error().message);
  }
  meta.size = body->size();
  return Source{std::move(body), std::move(meta)};
}

// ---------------------------------------------------------------- revalidation

void Origin::maybe_revalidate(const std::string& workspace, const std::string& id) {
  if (config_.source_ttl_seconds <= 0) return;
  const std::string shash = cache_key_hash(source_key(workspace, id));
  const auto meta = store_->meta(shash);
  if (!meta || meta->resolved_by != "block" || unix_now() - meta->created < config_.source_ttl_seconds) return;
  const std::string token = workspace + "/" + id;
  {
    std::lock_guard lock(revalidating_mu_);
    if (!revalidating_.insert(token).second) return;
  }
  const bool queued = fetch_pool_->try_submit([this, workspace, id, token] {
    revalidate(workspace, id);
    std::lock_guard lock(revalidating_mu_);
    revalidating_.erase(token);
  });
  if (!queued) {
    std::lock_guard lock(revalidating_mu_);
    revalidating_.erase(token);
  }
}

void Origin::revalidate(const std::string& workspace, const std::string& id) {
  const std::string skey = source_key(workspace, id);
  const std::string shash = cache_key_hash(skey);
  const std::int64_t now = unix_now();
  const auto known = urls_.get_any(workspace, id);
  const std::string block = known && !known->block_id.empty() ? known->block_id : id;
  auto file = notion_.lookup_block(workspace, block);
  if (!file) {
    // Notion failing (or the block gone): keep serving what is stored.
    metrics_.revalidation("error");
    log(LogLevel::Warn, "revalidation of " + skey + " failed: " + file.error().message);
    return;
  }
  urls_.put(workspace, id, SignedUrl{file->url, file->expires_at, block, true}, now);
  const std::string identity = upstream_identity(file->url, config_.allowed_domains);
  auto meta = store_->meta(shash);
  if (meta && meta->upstream == identity) {
    meta->created = now;
    if (auto s = store_->update_meta(shash, *meta); !s) {
      log(LogLevel::Warn, "revalidation could not update " + skey + ": " + s.error().message);
    }
    metrics_.revalidation("unchanged");
    return;
  }
  // The block points to another file now: fetch it, then drop the old variants.
  const DownloadOptions options{config_.max_image_size_bytes, config_.upstream_timeout_ms, 5};
  auto r = download(file->url, config_.allowed_domains, options);
  if (!r || r->status < 200 || r->status >= 300) {
    metrics_.upstream_fetch(r ? std::to_string(r->status) : std::string("error"));
    metrics_.revalidation("error");
    return;
  }
  metrics_.upstream_fetch(std::to_string(r->status));
  metrics_.upstream_bytes(r->body->size());
  const TransformLimits limits{config_.max_input_pixels, kMaxDimension};
  auto info = probe_image(*r->body, limits);
  if (!info) {
    metrics_.revalidation("error");
    return;
  }
  EntryMeta fresh;
  fresh.key = skey;
  fresh.content_type = std::string(content_type(info->format));
  fresh.etag = etag_for(as_text(*r->body));
  fresh.original_size = r->body->size();
  fresh.created = now;
  fresh.resolved_by = "block";
  fresh.upstream = identity;
  const std::string prefix = variant_prefix(workspace, id);
  memory_.erase_prefix(prefix);
  store_->erase_prefix(prefix);
  if (auto s = store_->write(shash, fresh, *r->body); s) {
    metrics_.storage_write("source");
  } else {
    metrics_.storage_write_failure("source");
    log(LogLevel::Error, "storage write failed: " + s.error().message);
  }
  metrics_.revalidation("changed");
  log(LogLevel::Info, "source " + skey + " changed upstream; old variants dropped");
}

// ---------------------------------------------------------------- API routes

void Origin::handle_proxy(const Ctx& ctx, std::string_view query) {
  if (!check_rate(ctx, proxy_limit_) || !check_rate(ctx, proxy_quota_)) return;
  std::string url;
  std::string rest;
  for (const RawParam& p : split_query(query)) {
    if (p.name == "url") {
      auto decoded = percent_decode(p.value, ErrorCode::InvalidParam);
      if (!decoded) {
        respond_error(ctx, make_error(ErrorCode::InvalidParam, "url: " + decoded.error().message));
        return;
      }
      url = std::move(*decoded);
    } else {
      if (!rest.empty()) rest += '&';
      rest += p.name;
      rest += '=';
      rest += p.value;
    }
  }
  auto file = parse_notion_url(url, config_.allowed_domains);
  if (!file) {
    respond_error(ctx, file.error());
    return;
  }
  ImagePath image{file->workspace, file->file_id, file->filename};
  const std::string path = "/img/" + image.workspace + "/" + image.id + "/" + percent_encode(image.filename);
  // The proxy endpoint is the older project's: no signature, but rate limits and a quota.
  auto ireq = prepare_image_request(image, path, rest, ctx->req.accept, config_.core, "");
  if (!ireq) {
    respond_error(ctx, ireq.error());
    return;
  }
  const std::int64_t now = unix_now();
  const std::string block = file->block_id.value_or("");
  urls_.put(file->workspace, file->file_id, SignedUrl{file->url, file->expires_at, block, false}, now);
  if (!block.empty()) {
    urls_.put(file->workspace, block, SignedUrl{file->url, file->expires_at, block, true}, now);
  }
  ctx->extra_headers.emplace_back("Content-Location", rest.empty() ? path : path + "?" + rest);
  handle_image(ctx, std::make_shared<const ImageRequest>(std::move(*ireq)), true);
}

void Origin::handle_purge(const Ctx& ctx, std::string_view query) {
  if (!check_rate(ctx, purge_limit_) || !check_api_key(ctx)) return;
  std::string url;
  for (const RawParam& p : split_query(query)) {
    if (p.name != "url") continue;
    auto decoded = percent_decode(p.value, ErrorCode::InvalidParam);
    if (!decoded) {
      respond_error(ctx, make_error(ErrorCode::InvalidParam, "url: " + decoded.error().message));
      return;
    }
    url = std::move(*decoded);
  }
  if (url.empty()) {
    respond_error(ctx, make_error(ErrorCode::MissingUrl, "url is required: a Notion URL, an /img path or a CDN URL"));
    return;
  }
  std::vector<std::pair<std::string, std::string>> targets;  // (workspace, id)
  std::string img_path;
  if (url.starts_with("/img/")) {
    img_path = url.substr(0, url.find('?'));
  } else if (auto u = parse_url(url, ErrorCode::InvalidParam); u && u->path.starts_with("/img/")) {
    img_path = u->path;
  }
  if (!img_path.empty()) {
    auto image = parse_image_path(img_path);
    if (!image) {
      respond_error(ctx, image.error());
      return;
    }
    targets.emplace_back(image->workspace, image->id);
  } else {
    auto file = parse_notion_url(url, config_.allowed_domains);
    if (!file) {
      respond_error(ctx, file.error());
      return;
    }
    targets.emplace_back(file->workspace, file->file_id);
    if (file->block_id) targets.emplace_back(file->workspace, *file->block_id);
  }
  // The store's removals wait for disk or network: on the fetch pool, not on the I/O thread.
  const bool queued = fetch_pool_->try_submit([this, ctx, targets = std::move(targets)] {
    std::size_t removed = 0;
    std::string list;
    for (const auto& [ws, id] : targets) {
      const std::string prefix = variant_prefix(ws, id);
      memory_.erase_prefix(prefix);
      removed += store_->erase_prefix(prefix);
      if (!list.empty()) list += ',';
      list += '"';
      list += json_escape(prefix);
      list += '"';
    }
    respond_json(ctx, 200,
                 "{\"purged\":true,\"removed\":" + std::to_string(removed) + ",\"prefixes\":[" + list + "]}");
  });
  if (!queued) respond_error(ctx, make_error(ErrorCode::Overloaded, "too much work queued; retry the purge shortly"), 1);
}

void Origin::handle_health(const Ctx& ctx) {
  const bool writable = store_->writable();
  const auto st = store_->stats();
  std::string body = "{\"status\":\"";
  body += writable ? "ok" : "degraded";
  body += "\",\"version\":\"" NIC_VERSION "\",\"uptimeSeconds\":" + std::to_string(unix_now() - started_unix_);
  body += ",\"storage\":{\"backend\":\"" + config_.storage_backend + "\",\"writable\":" +
          (writable ? "true" : "false") + ",\"entries\":" + std::to_string(st.entries) +
          ",\"bytes\":" + std::to_string(st.bytes) + "}";
  body += ",\"memory\":{\"entries\":" + std::to_string(memory_.entries()) +
          ",\"bytes\":" + std::to_string(memory_.bytes()) + "}";
  body += ",\"inflightFlights\":" + std::to_string(inflight()) + "}";
  respond_json(ctx, writable ? 200 : 503, std::move(body));
}

void Origin::handle_stats(const Ctx& ctx) {
  if (!check_api_key(ctx)) return;
  const auto st = store_->stats();
  const auto vc = variant_flights_.counts();
  const auto sc = source_flights_.counts();
  auto n = [](std::uint64_t v) { return std::to_string(v); };
  std::string body = "{";
  body += "\"requests\":" + n(metrics_.total("nic_requests_total"));
  body += ",\"cacheHits\":{\"memory\":" + n(metrics_.count("nic_cache_hits_total", "tier=\"memory\"")) +
          ",\"storage\":" + n(metrics_.count("nic_cache_hits_total", "tier=\"storage\"")) +
          ",\"coalesced\":" + n(metrics_.count("nic_cache_hits_total", "tier=\"coalesced\"")) + "}";
  body += ",\"cacheMisses\":" + n(metrics_.misses());
  body += ",\"coalesced\":" + n(metrics_.coalesced_count());
  body += ",\"notionApiCalls\":" + n(metrics_.total("nic_notion_api_calls_total"));
  body += ",\"upstreamFetches\":" + n(metrics_.total("nic_upstream_fetches_total"));
  body += ",\"upstreamBytes\":" + n(metrics_.upstream_bytes());
  body += ",\"transforms\":" + n(metrics_.total("nic_transforms_total"));
  body += ",\"storageWrites\":" + n(metrics_.total("nic_storage_writes_total"));
  body += ",\"flights\":{\"variant\":" + n(vc.flights) + ",\"source\":" + n(sc.flights) +
          ",\"followers\":" + n(vc.followers + sc.followers) + ",\"failed\":" + n(vc.failed + sc.failed) +
          ",\"timedOut\":" + n(vc.timed_out + sc.timed_out) + ",\"inflight\":" + n(inflight()) + "}";
  body += ",\"memory\":{\"entries\":" + n(memory_.entries()) + ",\"bytes\":" + n(memory_.bytes()) +
          ",\"capacity\":" + n(memory_.capacity()) + "}";
  body += ",\"storage\":{\"entries\":" + n(st.entries) + ",\"bytes\":" + n(st.bytes) +
          ",\"writes\":" + n(st.writes) + ",\"evictions\":" + n(st.evictions) + "}";
  body += ",\"registeredUrls\":" + n(urls_.size());
  body += ",\"residentMemoryBytes\":" + n(resident_memory_bytes());
  body += "}";
  respond_json(ctx, 200, std::move(body));
}

void Origin::handle_metrics(const Ctx& ctx) {
  const auto st = store_->stats();
  Metrics::Gauges g;
  g.inflight_flights = inflight();
  g.memory_cache_bytes = memory_.bytes();
  g.memory_cache_entries = memory_.entries();
  g.disk_cache_bytes = st.bytes;
  g.disk_cache_entries = st.entries;
  g.transform_queue = transform_pool_->queued();
  Response r;
  r.status = 200;
  r.headers = {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"}, {"Cache-Control", "no-store"}};
  r.body = bytes_of(metrics_.prometheus(g));
  finish(ctx, std::move(r));
}

}  // namespace nic::origin
