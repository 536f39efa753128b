#include "sources.h"

#include <chrono>
#include <exception>
#include <limits>

#include "http_fetch.h"
#include "log.h"
#include "nic/cache_key.h"
#include "nic/cache_policy.h"
#include "nic/format.h"
#include "nic/notion_url.h"
#include "nic/percent.h"
#include "transform.h"

namespace nic::origin {
namespace {

// Which upstream file a URL names, independent of its signature: lets
// revalidation notice that a block now points to another file.
std::string upstream_identity(const std::string& url, const std::vector<AllowedHost>& allowed) {
  if (auto f = parse_notion_url(url, allowed)) {
    return f->workspace + "/" + f->file_id + "/" + percent_encode(f->filename);
  }
  return url.substr(0, url.find('?'));
}

const char* fetch_failure_label(ErrorCode c) {
  return c == ErrorCode::UpstreamTimeout ? "timeout"
         : c == ErrorCode::ImageTooLarge ? "too_large"
         : c == ErrorCode::UpstreamError ? "error"
         : c == ErrorCode::Overloaded    ? "overloaded"
                                         : "refused";
}

constexpr std::int64_t kNeverMs = std::numeric_limits<std::int64_t>::max();

}  // namespace

Sources::Sources(const Config& config, Metrics& metrics, Store& store, Generations& generations,
                 WriteBehind& writes, WorkPool& fetch_pool, Purge purge)
    : config_(config),
      metrics_(metrics),
      store_(store),
      generations_(generations),
      writes_(writes),
      fetch_pool_(fetch_pool),
      purge_(std::move(purge)),
      notion_(config, metrics),
      flights_(config.follower_timeout_ms, config.coalescing),
      revalidate_pool_(std::make_unique<WorkPool>("revalidate", 2, 256)) {}

Sources::~Sources() { stop(); }

void Sources::stop() {
  if (revalidate_pool_) revalidate_pool_->stop();
}

void Sources::get(const std::string& workspace, const std::string& id, std::int64_t deadline_ms, Done done,
                  OfferedUrl offered) {
  const std::string skey = source_key(id);
  const std::string shash = cache_key_hash(skey);
  // The benchmark baseline (coalescing off) models a server that looked at its
  // caches when the request arrived, all missed, and does the whole work.
  if (config_.coalescing) {
    if (auto stored = read_stored(shash)) {
      done(Source{stored->bytes, stored->meta, nullptr});
      return;
    }
  }
  const auto ticket = flights_.join(skey, deadline_ms, [done](const Result<Source>& r, bool) { done(r); });
  if (!ticket.leader) return;
  const FlightId flight = ticket.flight;
  const bool queued = fetch_pool_.try_submit([this, workspace, id, skey, shash, flight, deadline_ms, offered] {
    Result<Source> result = make_error(ErrorCode::Internal, "source not resolved");
    auto lead = [&] {
      std::optional<Store::Hit> stored = config_.coalescing ? read_stored(shash) : std::nullopt;
      result = stored ? Result<Source>(Source{stored->bytes, stored->meta, nullptr})
                      : fetch(workspace, id, deadline_ms, offered.get());
      flights_.finish(flight, result);  // this process's followers first; the fleet's once the write landed
    };
    try {
      if (fleet_ && config_.coalescing) {
        // The fleet hook: another instance may be fetching this source; its
        // write to the shared store wakes us (fleet.h).
        const auto followed = [&] {
          auto stored = read_stored(shash);
          if (stored) result = Source{stored->bytes, stored->meta, nullptr};
          return stored.has_value();
        };
        if (fleet_->run(skey, shash, deadline_ms, followed, lead) == FleetLeases::Outcome::Followed) {
          flights_.finish(flight, result);
        }
      } else {
        lead();
      }
    } catch (const std::exception& e) {
      log(LogLevel::Error, std::string("source fetch threw: ") + e.what());
      flights_.finish(flight, make_error(ErrorCode::Internal, "an internal error occurred while fetching the source"));
    }
  });
  if (!queued) {
    flights_.finish(flight, make_error(ErrorCode::Overloaded, "too many sources waiting to be fetched; retry shortly"));
  }
}

ReserveBody Sources::reserve_into(ByteBudget::Lease& lease, std::int64_t deadline_ms) {
  if (download_budget_ == nullptr) return {};
  return [this, &lease, deadline_ms](std::uint64_t bytes) {
    lease = ByteBudget::Lease{};  // a redirect's earlier hop
    // Waits for room (transforms and other downloads ending) until the
    // deadline; the transfer is paused meanwhile.
    lease = download_budget_->acquire_until(
        bytes, std::chrono::steady_clock::time_point(std::chrono::milliseconds(deadline_ms)),
        ByteBudget::Kind::Download);
    if (!lease) metrics_.overloaded("download_memory");
    return static_cast<bool>(lease);
  };
}

std::optional<Store::Hit> Sources::read_stored(const std::string& hash) {
  if (auto stored = store_.read(hash)) return stored;
  return writes_.pending(hash);
}

// Where a source's bytes come from, in order: a remembered URL (registry),
// the URL a proxy caller offered, a fresh one from Notion. Any non-2xx from a
// remembered URL forgets it and asks Notion once; an offered URL is registered
// only after it downloaded and probed as an image, and only under the file id
// its own path names (a block id the caller gave is never used).
Result<Source> Sources::fetch(const std::string& workspace, const std::string& id, std::int64_t deadline_ms,
                              const SignedUrl* offered) {
  const std::string skey = source_key(id);
  const std::uint64_t generation = generations_.current(skey);
  const std::int64_t now = unix_now();
  bool looked_up = false;
  auto lookup = [&]() -> Result<SignedUrl> {
    const auto known = urls_.get_any(workspace, id);
    const std::string block = known && !known->block_id.empty() ? known->block_id : id;
    auto file = notion_.lookup_block(workspace, block, {deadline_ms, true});
    if (!file) return file.take_error();
    if (file->deleted && !config_.keep_deleted_blocks) {
      return make_error(ErrorCode::ImageNotFound, "the Notion block was deleted");
    }
    SignedUrl su{file->url, file->expires_at, block, block == id};
    urls_.put(workspace, id, su, now);
    looked_up = true;
    return su;
  };
  std::optional<SignedUrl> entry = urls_.get_valid(workspace, id, now);
  bool from_offer = false;
  if (!entry && offered != nullptr) {
    entry = *offered;
    from_offer = true;
  }
  if (!entry) {
    auto fresh = lookup();
    if (!fresh) return fresh.take_error();
    entry = std::move(*fresh);
  }
  std::shared_ptr<Bytes> body;
  ByteBudget::Lease download_charge;  // goes with the source to its transforms
  for (;;) {
    const std::int64_t left = deadline_ms - steady_ms();
    if (left <= 0) return make_error(ErrorCode::UpstreamTimeout, "no time left to download the image");
    const DownloadOptions options{config_.max_image_size_bytes, std::min(config_.upstream_timeout_ms, left), 5,
                                  reserve_into(download_charge, deadline_ms)};
    auto r = download(entry->url, config_.allowed_domains, options);
    if (!r) {
      metrics_.upstream_fetch(fetch_failure_label(r.error().code));
      return r.take_error();
    }
    metrics_.upstream_fetch(std::to_string(r->status));
    if (r->status >= 200 && r->status < 300) {
      metrics_.upstream_bytes(r->body->size());
      body = r->body;
      break;
    }
    if (!looked_up && !from_offer) {
      // A remembered URL that no longer works (expired, revoked, moved, the
      // host failing): forget it and ask Notion once for a fresh one.
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
  meta.key = skey;
  meta.content_type = std::string(content_type(info->format));
  meta.etag = etag_for(as_text(*body));
  meta.original_size = body->size();
  meta.created = unix_now();
  meta.resolved_by = entry->from_block ? "block" : "file";
  meta.upstream = upstream_identity(entry->url, config_.allowed_domains);
  meta.size = body->size();
  if (from_offer) urls_.put(workspace, id, *entry, now);
  SharedBytes bytes = std::move(body);
  // Stored after the answer; kept only if no purge or change came meanwhile.
  if (generations_.current(skey) == generation) {
    writes_.write(cache_key_hash(skey), meta, bytes, "source",
                  [this, skey, generation] { return generations_.current(skey) == generation; });
  }
  std::shared_ptr<const ByteBudget::Lease> charge;
  if (download_charge) charge = std::make_shared<const ByteBudget::Lease>(std::move(download_charge));
  return Source{std::move(bytes), std::move(meta), std::move(charge)};
}

// ---------------------------------------------------------------- revalidation

void Sources::maybe_revalidate(const std::string& workspace, const std::string& id) {
  if (config_.source_ttl_seconds <= 0) return;
  const std::string shash = cache_key_hash(source_key(id));
  const auto meta = store_.meta(shash);
  if (!meta || meta->resolved_by != "block" || unix_now() - meta->created < config_.source_ttl_seconds) return;
  const std::string& token = id;
  {
    std::lock_guard lock(revalidate_mu_);
    Backoff& b = backoff_[token];
    if (b.next_try_ms > steady_ms()) return;  // running, or backing off after a failure
    b.next_try_ms = kNeverMs;
  }
  const bool queued = revalidate_pool_->try_submit([this, workspace, id, token] {
    try {
      revalidate(workspace, id);
    } catch (const std::exception& e) {
      log(LogLevel::Error, std::string("revalidation threw: ") + e.what());
      revalidated(token, false);
    }
  });
  if (!queued) {
    std::lock_guard lock(revalidate_mu_);
    backoff_[token].next_try_ms = 0;
  }
}

void Sources::revalidated(const std::string& token, bool ok) {
  std::lock_guard lock(revalidate_mu_);
  if (ok) {
    backoff_.erase(token);
    return;
  }
  Backoff& b = backoff_[token];
  b.failures = std::min(b.failures + 1, 30);
  std::int64_t wait = config_.revalidate_backoff_ms;
  for (int i = 1; i < b.failures && wait < config_.revalidate_backoff_max_ms; ++i) wait *= 2;
  b.next_try_ms = steady_ms() + std::min(wait, config_.revalidate_backoff_max_ms);
}

void Sources::revalidate(const std::string& workspace, const std::string& id) {
  const std::string skey = source_key(id);
  const std::string shash = cache_key_hash(skey);
  const std::string& token = id;
  const std::int64_t now = unix_now();
  const std::int64_t deadline = steady_ms() + config_.upstream_timeout_ms;
  const auto known = urls_.get_any(workspace, id);
  const std::string block = known && !known->block_id.empty() ? known->block_id : id;
  auto file = notion_.lookup_block(workspace, block, {deadline, false});
  const bool gone = (!file && file.error().code == ErrorCode::ImageNotFound) || (file && file->deleted);
  if (gone && !config_.keep_deleted_blocks) {
    // Deleted or no longer shared: stop serving it (NOTION_DELETED_BLOCKS=drop).
    purge_(id);
    urls_.forget(workspace, id);
    metrics_.revalidation("deleted");
    log(LogLevel::Info, "source " + skey + " was deleted in Notion; dropped");
    revalidated(token, true);
    return;
  }
  if (gone) {
    // Deleted, and NOTION_DELETED_BLOCKS=keep: go on serving it, as confirmed.
    if (auto meta = store_.meta(shash)) {
      meta->created = now;
      (void)store_.update_meta(shash, *meta);
    }
    metrics_.revalidation("deleted_kept");
    revalidated(token, true);
    return;
  }
  if (!file) {
    // Notion failing: serve what is stored, ask again after the backoff.
    metrics_.revalidation("error");
    log(LogLevel::Warn, "revalidation of " + skey + " failed: " + file.error().message);
    revalidated(token, false);
    return;
  }
  urls_.put(workspace, id, SignedUrl{file->url, file->expires_at, block, true}, now);
  const std::string identity = upstream_identity(file->url, config_.allowed_domains);
  auto meta = store_.meta(shash);
  if (meta && meta->upstream == identity) {
    meta->created = now;
    if (auto s = store_.update_meta(shash, *meta); !s) {
      log(LogLevel::Warn, "revalidation could not update " + skey + ": " + s.error().message);
    }
    metrics_.revalidation("unchanged");
    revalidated(token, true);
    return;
  }
  // The block points to another file now: fetch it, then drop the old source and variants.
  ByteBudget::Lease download_charge;
  const DownloadOptions options{config_.max_image_size_bytes, config_.upstream_timeout_ms, 5,
                                reserve_into(download_charge, steady_ms() + config_.upstream_timeout_ms)};
  auto r = download(file->url, config_.allowed_domains, options);
  if (!r || r->status < 200 || r->status >= 300) {
    metrics_.upstream_fetch(r ? std::to_string(r->status) : std::string(fetch_failure_label(r.error().code)));
    metrics_.revalidation("error");
    revalidated(token, false);
    return;
  }
  metrics_.upstream_fetch(std::to_string(r->status));
  metrics_.upstream_bytes(r->body->size());
  const TransformLimits limits{config_.max_input_pixels, kMaxDimension};
  auto info = probe_image(*r->body, limits);
  if (!info) {
    metrics_.revalidation("error");
    revalidated(token, false);
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
  // Bumps the generation: variants made from the old file in flights still
  // in the air are not kept; then the new source, checked the same way.
  purge_(id);
  const std::uint64_t generation = generations_.current(skey);
  if (auto s = store_.write(shash, fresh, *r->body); s) {
    metrics_.storage_write("source");
    if (generations_.current(skey) != generation) store_.erase(shash);
  } else {
    metrics_.storage_write_failure("source");
    log(LogLevel::Error, "storage write failed: " + s.error().message);
  }
  metrics_.revalidation("changed");
  log(LogLevel::Info, "source " + skey + " changed upstream; old variants dropped");
  revalidated(token, true);
}

}  // namespace nic::origin
