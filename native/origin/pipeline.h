// The image pipeline, as named steps that tests drive in-process (no HTTP):
//
//   lookup_memory -> run: join the flight -> [leader] step_storage (storage pool)
//   -> sources.get (fetch pool when not stored) -> step_admit (probe, byte
//   budget) -> step_transform (transform pool) -> publish (memory, answer
//   everyone, then the write-behind store).
//
// One deadline per flight (FOLLOWER_TIMEOUT_MS - kFlightMarginMs after the
// leader joined) bounds the Notion call, the download and the wait for a
// transform; past it every waiter gets 504 and the key is free for a new
// leader. Each flight notes its source's generation when it starts; what it
// made is kept (memory, storage) only while that generation holds
// (generations.h). Every step runs inside an exception boundary: a throw
// fails the flight with 500 INTERNAL (std::bad_alloc: 503 OVERLOADED), the
// process lives.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "byte_budget.h"
#include "coalescer.h"
#include "config.h"
#include "fleet.h"
#include "generations.h"
#include "image.h"
#include "memory_cache.h"
#include "metrics.h"
#include "nic/cache_key.h"
#include "nic/response_policy.h"
#include "sources.h"
#include "store.h"
#include "transform.h"
#include "variant_cap.h"
#include "work_pool.h"
#include "write_behind.h"

namespace nic::origin {

// What a flight yields: the image and where its leader found it.
struct VariantOutcome {
  SharedImage image;
  Tier tier = Tier::Origin;
};

// What one requester gets: its own tier (COALESCED for a follower) and the leader's.
struct Served {
  SharedImage image;
  Tier tier = Tier::Origin;
  Tier leader = Tier::Origin;
};

class ImagePipeline {
 public:
  using Done = std::function<void(const Result<Served>&)>;
  // Test seam: called at each named step ("storage", "admit", "transform",
  // "publish") with the variant's key; it may block (to hold a leader) or throw.
  using Hook = std::function<void(std::string_view step, const std::string& key)>;

  ImagePipeline(const Config& config, Metrics& metrics, MemoryCache& memory, Store& store, SourceProvider& sources,
                Generations& generations, WriteBehind& writes, WorkPool& storage_pool, WorkPool& transform_pool);

  void set_hook(Hook hook) { hook_ = std::move(hook); }
  // REDIS_URL: a variant flight's leader asks the fleet first (fleet.h); null: per process.
  void set_fleet(Fleet* fleet) { fleet_ = fleet; }

  // Step 1, on the caller's thread: the memory tier.
  SharedImage lookup_memory(const ImageRequest& request);

  // The rest of the way, one flight per key; `done` is called exactly once, on any thread.
  // `offered`: a proxy caller's URL for the source step (the leader's is used).
  void run(std::shared_ptr<const ImageRequest> request, Done done, OfferedUrl offered = nullptr);
  // A flight for this variant key is in the air (a request now would follow it).
  bool in_flight(const std::string& key) const { return flights_.in_flight(key); }

  // Drops the source of `id` and all its variants under every workspace (its
  // source group) from memory and storage, after bumping its generation.
  // Blocking (storage). Returns the entries removed from storage.
  std::size_t purge(const std::string& id);

  std::size_t inflight() const { return flights_.inflight(); }
  // Shutdown past its deadline: fails every variant flight (Coalescer::cancel_all).
  std::size_t cancel_flights(const Error& error) { return flights_.cancel_all(error); }
  Coalescer<VariantOutcome>::Counts counts() const { return flights_.counts(); }
  const ByteBudget& budget() const { return budget_; }
  // Downloads in flight are charged here too (Sources::count_downloads_in).
  ByteBudget& budget() { return budget_; }
  const VariantCap& variant_cap() const { return variant_cap_; }

  // A stored entry as a sealed image (its headers rendered once) for memory and answers.
  std::shared_ptr<StoredImage> image_of(Store::Hit hit) const;
  // Puts `image` in the memory tier while the source's generation is still
  // `generation` (read before the image was made): a purge meanwhile keeps it out.
  void remember(const std::string& key_hash, const std::shared_ptr<StoredImage>& image,
                const std::string& source_key, std::uint64_t generation);

 private:
  struct Flight;
  using FlightPtr = std::shared_ptr<const Flight>;

  void step_storage(const FlightPtr& flight);
  // The stored variant, answered from storage (true), or nothing stored (false).
  bool take_stored(const FlightPtr& flight);
  void step_source(const FlightPtr& flight);
  void step_admit(const FlightPtr& flight, const Source& source);
  void step_transform(const FlightPtr& flight, const Source& source);
  void publish(const FlightPtr& flight, const std::shared_ptr<StoredImage>& image, Tier tier);
  void finish(const FlightPtr& flight, const Result<VariantOutcome>& result);
  // Runs `body`; a throw fails the flight instead of leaving it hanging.
  void guarded(const FlightPtr& flight, const std::function<void()>& body);
  void at(std::string_view step, const Flight& flight);

  const Config& config_;
  Metrics& metrics_;
  MemoryCache& memory_;
  Store& store_;
  SourceProvider& sources_;
  Generations& generations_;
  WriteBehind& writes_;
  WorkPool& storage_pool_;
  WorkPool& transform_pool_;
  ByteBudget budget_;
  VariantCap variant_cap_;
  std::string cache_control_;
  Hook hook_;
  Fleet* fleet_ = nullptr;
  Coalescer<VariantOutcome> flights_;
};

}  // namespace nic::origin
