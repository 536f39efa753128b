// Sources: the original bytes of an id and their sidecar, keyed by the id
// alone (nic::source_key: Notion ids are global, so any workspace string
// shares one stored source, one flight, one revalidation). The workspace only
// picks the Notion token of the call. The
// stored copy if there is one; else one flight per source whose leader, on
// the fetch pool, finds a signed URL (remembered, else the Notion API),
// downloads and probes it, answers its followers and hands the storage write
// to the write-behind. Followers wait without holding a thread.
//
// Revalidation: a stored source found through a Notion block is confirmed
// against Notion once SOURCE_TTL_SECONDS old, in the background on its own
// small pool; what is stored keeps being served meanwhile and whatever
// happens (stale-if-error). A failure backs that source off exponentially
// (REVALIDATE_BACKOFF_MS doubling up to REVALIDATE_BACKOFF_MAX_MS), so a
// Notion outage costs a few calls per hot source, not one a second.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "byte_budget.h"
#include "coalescer.h"
#include "http_fetch.h"
#include "config.h"
#include "fleet.h"
#include "generations.h"
#include "metrics.h"
#include "notion_client.h"
#include "store.h"
#include "url_registry.h"
#include "work_pool.h"
#include "write_behind.h"

namespace nic::origin {

struct Source {
  SharedBytes bytes;
  EntryMeta meta;
  // A downloaded source stays charged to the byte budget (as a download)
  // until its last holder, the transform that needs it, is done with it.
  // Empty for a source read from storage.
  std::shared_ptr<const ByteBudget::Lease> charge;
};

// A signed URL a /api/v1/proxy caller offered for one request: tried when
// nothing is remembered, registered (under the file id its own path names)
// only once it downloaded and probed as an image.
using OfferedUrl = std::shared_ptr<const SignedUrl>;

// The pipeline's view of the sources (tests give it their own).
class SourceProvider {
 public:
  using Done = std::function<void(const Result<Source>&)>;
  virtual ~SourceProvider() = default;
  // `done` exactly once, on any thread (possibly this one), by `deadline_ms` (steady clock).
  // `offered`: the proxy caller's URL, or null.
  virtual void get(const std::string& workspace, const std::string& id, std::int64_t deadline_ms, Done done,
                   OfferedUrl offered) = 0;
  // Cheap, any thread: start a background check of a stored source if it is due.
  virtual void maybe_revalidate(const std::string& workspace, const std::string& id) = 0;
};

class Sources final : public SourceProvider {
 public:
  // `purge`: drops a source and its variants (under every workspace) from
  // every tier and bumps its generation: the pipeline's, used when a block
  // changed or was deleted.
  using Purge = std::function<std::size_t(const std::string& id)>;
  Sources(const Config& config, Metrics& metrics, Store& store, Generations& generations, WriteBehind& writes,
          WorkPool& fetch_pool, Purge purge);
  ~Sources() override;

  void get(const std::string& workspace, const std::string& id, std::int64_t deadline_ms, Done done,
           OfferedUrl offered) override;
  void maybe_revalidate(const std::string& workspace, const std::string& id) override;

  // REDIS_URL: a source flight's leader asks the fleet first (fleet.h); null: per process.
  void set_fleet(Fleet* fleet) {
    fleet_ = fleet;
    notion_.set_fleet(fleet ? &fleet->limits() : nullptr);  // the token's budget too
  }

  // Signed URLs learnt from Notion, and proxy URLs that proved to be images.
  UrlRegistry& urls() { return urls_; }
  std::size_t inflight() const { return flights_.inflight(); }
  // Shutdown past its deadline: fails every source flight (Coalescer::cancel_all).
  std::size_t cancel_flights(const Error& error) { return flights_.cancel_all(error); }
  Coalescer<Source>::Counts counts() const { return flights_.counts(); }
  // Joins the revalidation pool (running checks finish).
  void stop();
  // Downloads in flight are charged to `budget` (the transform byte budget,
  // TRANSFORM_MEMORY_BYTES) from their Content-Length (else MAX_IMAGE_SIZE_BYTES)
  // until the download ends; refused: 503 OVERLOADED before the body is read.
  // Set once, before the first request.
  void count_downloads_in(ByteBudget& budget) { download_budget_ = &budget; }

  // Blocking pieces, public for tests.
  Result<Source> fetch(const std::string& workspace, const std::string& id, std::int64_t deadline_ms,
                       const SignedUrl* offered = nullptr);
  void revalidate(const std::string& workspace, const std::string& id);

 private:
  struct Backoff {
    int failures = 0;
    std::int64_t next_try_ms = 0;  // steady clock
  };
  void revalidated(const std::string& token, bool ok);
  // The store, else a write of it not landed yet.
  std::optional<Store::Hit> read_stored(const std::string& hash);
  // The charge of one download (released when `lease` goes or is replaced).
  ReserveBody reserve_into(ByteBudget::Lease& lease, std::int64_t deadline_ms);

  const Config& config_;
  Metrics& metrics_;
  Store& store_;
  Generations& generations_;
  WriteBehind& writes_;
  WorkPool& fetch_pool_;
  Purge purge_;
  ByteBudget* download_budget_ = nullptr;
  Fleet* fleet_ = nullptr;
  UrlRegistry urls_;
  NotionClient notion_;
  Coalescer<Source> flights_;
  std::mutex revalidate_mu_;
  std::unordered_map<std::string, Backoff> backoff_;  // by id; running ones have next_try_ms = max
  std::unique_ptr<WorkPool> revalidate_pool_;  // last: joined first
};

}  // namespace nic::origin
