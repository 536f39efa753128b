#include "pipeline.h"

#include <chrono>
#include <cmath>
#include <exception>
#include <new>

#include "log.h"
#include "nic/cache_policy.h"
#include "nic/format.h"
#include "responses.h"

namespace nic::origin {
struct ImagePipeline::Flight {
  std::shared_ptr<const ImageRequest> request;
  FlightId id = 0;
  std::int64_t deadline_ms = 0;
  std::string source_key;
  std::uint64_t generation = 0;
  OfferedUrl offered;
  std::function<void()> fleet_done;  // a fleet leader's: called after the flight finished
};

ImagePipeline::ImagePipeline(const Config& config, Metrics& metrics, MemoryCache& memory, Store& store,
                             SourceProvider& sources, Generations& generations, WriteBehind& writes,
                             WorkPool& storage_pool, WorkPool& transform_pool)
    : config_(config),
      metrics_(metrics),
      memory_(memory),
      store_(store),
      sources_(sources),
      generations_(generations),
      writes_(writes),
      storage_pool_(storage_pool),
      transform_pool_(transform_pool),
      budget_(config.transform_memory_bytes, config.transform_alone_bytes),
      variant_cap_(static_cast<std::size_t>(config.max_variants_per_source)),
      cache_control_(image_cache_control(config.cache_ttl_seconds)),
      flights_(config.follower_timeout_ms, config.coalescing) {}

void ImagePipeline::at(std::string_view step, const Flight& flight) {
  if (hook_) hook_(step, flight.request->key);
}

SharedImage ImagePipeline::lookup_memory(const ImageRequest& request) { return memory_.get(request.key_hash); }

void ImagePipeline::run(std::shared_ptr<const ImageRequest> request, Done done, OfferedUrl offered) {
  const std::int64_t deadline = steady_ms() + config_.follower_timeout_ms - kFlightMarginMs;
  const auto ticket =
      flights_.join(request->key, deadline, [done = std::move(done)](const Result<VariantOutcome>& r, bool leader) {
        if (!r) {
          done(r.error());
          return;
        }
        done(Served{r->image, leader ? r->tier : Tier::Coalesced, r->tier});
      });
  if (!ticket.leader) {
    metrics_.coalesced();
    return;
  }
  auto flight = std::make_shared<Flight>();
  flight->request = std::move(request);
  flight->id = ticket.flight;
  flight->deadline_ms = deadline;
  flight->source_key = source_key(flight->request->image.id);
  flight->generation = generations_.current(flight->source_key);
  flight->offered = std::move(offered);
  FlightPtr f = std::move(flight);
  const bool queued = storage_pool_.try_submit([this, f] { guarded(f, [&] { step_storage(f); }); });
  if (!queued) finish(f, make_error(ErrorCode::Overloaded, "too many images waiting for storage; retry shortly"));
}

void ImagePipeline::guarded(const FlightPtr& flight, const std::function<void()>& body) {
  try {
    body();
  } catch (const std::bad_alloc&) {
    log(LogLevel::Error, "out of memory in the flight of " + flight->request->key);
    finish(flight, make_error(ErrorCode::Overloaded, "not enough memory for this image right now; retry shortly"));
  } catch (const std::exception& e) {
    log(LogLevel::Error, "the flight of " + flight->request->key + " threw: " + e.what());
    finish(flight, make_error(ErrorCode::Internal, "an internal error occurred while making this image"));
  } catch (...) {
    finish(flight, make_error(ErrorCode::Internal, "an internal error occurred while making this image"));
  }
}

void ImagePipeline::finish(const FlightPtr& flight, const Result<VariantOutcome>& result) {
  flights_.finish(flight->id, result);
  if (flight->fleet_done) flight->fleet_done();  // after publish queued the write (fleet.h waits for it)
}

// Step 2 (leader, storage pool): memory again (another flight may have
// stored it since the request's own look-up), then the storage tier.
void ImagePipeline::step_storage(const FlightPtr& f) {
  at("storage", *f);
  const ImageRequest& req = *f->request;
  // Without coalescing (the benchmark baseline) there is no flight to look from.
  if (config_.coalescing) {
    if (SharedImage hit = memory_.get(req.key_hash)) {
      metrics_.cache_hit("memory");
      finish(f, VariantOutcome{hit, Tier::Memory});
      return;
    }
    if (take_stored(f)) return;
  }
  metrics_.cache_miss();
  // Refused before the Notion call and the download when the transform queue
  // is already full: under a flood of new images the refusals cost nothing
  // upstream and leave the cores to the hits and the queued transforms.
  if (!transform_pool_.has_room()) {
    metrics_.overloaded("transform_queue");
    finish(f, make_error(ErrorCode::Overloaded, "too many images waiting to be transformed; retry shortly"));
    return;
  }
  // A new variant of this source: within MAX_VARIANTS_PER_SOURCE, else 429
  // before any upstream call or transform (variant_cap.h).
  if (!variant_cap_.admit(f->source_key, req.key_hash)) {
    metrics_.rate_limited("variants_per_source");
    finish(f, make_error(ErrorCode::RateLimited, "this image already has " +
                                                     std::to_string(config_.max_variants_per_source) +
                                                     " variants (MAX_VARIANTS_PER_SOURCE); use one of the sizes "
                                                     "and formats already asked for"));
    return;
  }
  // The fleet hook: another instance may be making this variant; its write to
  // the shared store wakes us and take_stored answers from it (fleet.h).
  if (fleet_ && config_.coalescing) {
    const bool gated = fleet_->start(
        req.key, req.key_hash, f->deadline_ms,
        [this, f] {
          bool answered = true;  // a throw answered the flight (500) already
          guarded(f, [&] { answered = take_stored(f); });
          return answered;
        },
        [this, f](std::function<void()> done) {
          auto led = std::make_shared<Flight>(*f);
          led->fleet_done = std::move(done);
          FlightPtr g = std::move(led);
          guarded(g, [&] { step_source(g); });
        });
    if (gated) return;
  }
  step_source(f);
}

std::shared_ptr<StoredImage> ImagePipeline::image_of(Store::Hit hit) const {
  auto image = std::make_shared<StoredImage>();
  image->bytes = std::move(hit.bytes);
  image->content_type = std::move(hit.meta.content_type);
  image->etag = std::move(hit.meta.etag);
  image->original_size = hit.meta.original_size;
  image->key = std::move(hit.meta.key);
  seal(*image, cache_control_);
  return image;
}

void ImagePipeline::remember(const std::string& key_hash, const std::shared_ptr<StoredImage>& image,
                             const std::string& source_key, std::uint64_t generation) {
  const auto current = [&] { return generations_.current(source_key) == generation; };
  if (!current()) return;
  memory_.put(key_hash, image);
  if (!current()) memory_.erase(key_hash);  // a purge came in between
}

bool ImagePipeline::take_stored(const FlightPtr& f) {
  auto stored = store_.read(f->request->key_hash);
  if (!stored) return false;
  auto image = image_of(std::move(*stored));
  variant_cap_.note(f->source_key, f->request->key_hash);
  metrics_.cache_hit("storage");
  publish(f, image, Tier::Storage);
  return true;
}

// The source of the variant (stored, or fetched in its own flight).
void ImagePipeline::step_source(const FlightPtr& f) {
  const ImageRequest& req = *f->request;
  sources_.get(
      req.image.workspace, req.image.id, f->deadline_ms,
      [this, f](const Result<Source>& source) {
        if (!source) {
          finish(f, source.error());
          return;
        }
        guarded(f, [&] { step_admit(f, *source); });
      },
      f->offered);
}

// Step 3: admission. The source's header says how much memory the
// transform will need; beyond the budget the answer is 503, never an OOM.
void ImagePipeline::step_admit(const FlightPtr& f, const Source& source) {
  at("admit", *f);
  const TransformLimits limits{config_.max_input_pixels, kMaxDimension};
  auto info = probe_image(*source.bytes, limits);
  if (!info) {
    finish(f, info.error());
    return;
  }
  const std::uint64_t peak =
      estimate_transform_bytes(*source.bytes, *info, f->request->params, f->request->choice);
  if (peak > budget_.alone_limit()) {
    finish(f, make_error(ErrorCode::TooManyPixels,
                         "transforming this image needs about " + std::to_string(peak >> 20) +
                             " MiB, more than TRANSFORM_MEMORY_BYTES (" + std::to_string(budget_.alone_limit() >> 20) +
                             " MiB)"));
    return;
  }
  // A downloaded source is charged already (as a download, until this
  // transform is done with it): charge the rest.
  const std::uint64_t need = peak - (source.charge ? std::min(peak, source.bytes->size()) : 0);
  // Waits (on this fetch thread) for running transforms and downloads to
  // release enough, up to the flight's deadline: a burst of big new images is
  // served in turn rather than refused.
  auto lease = std::make_shared<ByteBudget::Lease>(budget_.acquire_until(
      need, std::chrono::steady_clock::time_point(std::chrono::milliseconds(f->deadline_ms))));
  if (!*lease) {
    metrics_.overloaded("transform_memory");
    finish(f, make_error(ErrorCode::Overloaded, "too many large images being transformed; retry shortly"));
    return;
  }
  const bool queued = transform_pool_.try_submit([this, f, source, lease] {
    guarded(f, [&] { step_transform(f, source); });
    // `lease` is released when this job (the last holder) is destroyed.
  });
  if (!queued) {
    metrics_.overloaded("transform_queue");
    finish(f, make_error(ErrorCode::Overloaded, "too many images waiting to be transformed; retry shortly"));
  }
}

// Step 4 (transform pool): decode, resize, encode.
void ImagePipeline::step_transform(const FlightPtr& f, const Source& source) {
  if (steady_ms() >= f->deadline_ms) {
    // Everyone was answered 504 at the deadline; nobody waits for this work.
    finish(f, make_error(ErrorCode::UpstreamTimeout, "the flight's deadline passed before its transform"));
    return;
  }
  at("transform", *f);
  const ImageRequest& req = *f->request;
  const TransformLimits limits{config_.max_input_pixels, kMaxDimension, config_.avif_speed};
  const auto t0 = std::chrono::steady_clock::now();
  auto out = transform_image(*source.bytes, req.params, req.choice, limits);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!out) {
    finish(f, out.error());
    return;
  }
  metrics_.transform(to_string(out->format), secs);
  auto image = std::make_shared<StoredImage>();
  image->bytes = std::make_shared<const Bytes>(std::move(out->bytes));
  image->content_type = std::string(content_type(out->format));
  image->etag = etag_for(as_text(*image->bytes));
  image->original_size = source.bytes->size();
  image->key = req.key;
  seal(*image, cache_control_);
  publish(f, image, Tier::Origin);
}

// Step 5: memory, the storage write queued behind, then everyone is answered.
// Kept only while the source's generation holds (see generations.h).
void ImagePipeline::publish(const FlightPtr& f, const std::shared_ptr<StoredImage>& image, Tier tier) {
  at("publish", *f);
  const ImageRequest& req = *f->request;
  remember(req.key_hash, image, f->source_key, f->generation);
  const auto current = [this, f] { return generations_.current(f->source_key) == f->generation; };
  if (tier == Tier::Origin && current()) {
    // Queued (not written) before the answer: the write itself happens after,
    // on the write-behind's thread, and reads see it until it lands.
    EntryMeta meta;
    meta.key = image->key;
    meta.content_type = image->content_type;
    meta.etag = image->etag;
    meta.original_size = image->original_size;
    meta.size = image->bytes->size();
    meta.created = unix_now();
    writes_.write(req.key_hash, std::move(meta), image->bytes, "variant", current);
  }
  finish(f, VariantOutcome{image, tier});
}

std::size_t ImagePipeline::purge(const std::string& id) {
  generations_.bump(source_key(id));
  variant_cap_.forget(source_key(id));
  const std::string group = source_group(id);
  memory_.erase_group(group);
  return store_.erase_group(group);
}

}  // namespace nic::origin
