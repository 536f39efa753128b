// The image pipeline driven in-process, without HTTP: a fake source
// provider and hooks that hold a leader at a named step, to race purges,
// generations, deadlines, the byte budget and throwing steps against flights
// in the air. Exact counts, no wall-clock assertions.
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "disk_store.h"
#include "pipeline.h"
#include "transform_fixtures.h"

using namespace nic::origin;
namespace fs = std::filesystem;
using nic::ErrorCode;
using nic::Tier;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/nic-pipeline-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// A gate a step can wait at until the test opens it.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  int waiting = 0;
  void wait() {
    std::unique_lock lock(mu);
    ++waiting;
    cv.notify_all();
    cv.wait(lock, [this] { return open; });
  }
  void wait_for_arrivals(int n) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return waiting >= n; });
  }
  void release() {
    std::lock_guard lock(mu);
    open = true;
    cv.notify_all();
  }
};

fixture::Bytes gradient_png(int w, int h, int seed = 0) {
  auto px = fixture::blank(w, h, 3);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      auto* p = px.at(x, y);
      p[0] = static_cast<std::uint8_t>(x * 255 / std::max(1, w - 1) + seed);
      p[1] = static_cast<std::uint8_t>(y * 255 / std::max(1, h - 1));
      p[2] = static_cast<std::uint8_t>(seed * 7);
    }
  }
  return fixture::encode_png(px);
}

// Sources from memory: counts its calls; may hold them at a gate.
class FakeSources final : public SourceProvider {
 public:
  std::atomic<int> gets{0};
  Gate* gate = nullptr;
  fixture::Bytes bytes = gradient_png(200, 150);

  void get(const std::string&, const std::string& id, std::int64_t, Done done, OfferedUrl) override {
    ++gets;
    if (gate) gate->wait();
    EntryMeta meta;
    meta.key = nic::source_key(id);
    meta.content_type = "image/png";
    meta.size = bytes.size();
    done(Source{std::make_shared<const Bytes>(bytes.begin(), bytes.end()), meta, nullptr});
  }
  void maybe_revalidate(const std::string&, const std::string&) override {}
};

const std::string kWs = "0123456789abcdef0123456789abcdef";

struct Rig {
  TempDir dir;
  Config config;
  Metrics metrics;
  MemoryCache memory{64 << 20};
  Generations generations;
  std::unique_ptr<DiskStore> store;
  FakeSources sources;
  std::unique_ptr<WorkPool> storage_pool, transform_pool;
  std::unique_ptr<WriteBehind> writes;
  std::unique_ptr<ImagePipeline> pipeline;

  explicit Rig(std::uint64_t budget = 256ULL << 20, std::int64_t follower_timeout_ms = 20000,
               std::uint64_t alone_limit = UINT64_MAX) {
    config.follower_timeout_ms = follower_timeout_ms;
    config.upstream_timeout_ms = 100;
    config.transform_memory_bytes = budget;
    config.transform_alone_bytes = alone_limit;
    auto opened = DiskStore::open(dir.path.string(), 0);
    REQUIRE(opened.ok());
    store = std::move(*opened);
    storage_pool = std::make_unique<WorkPool>("storage", 2, 64);
    transform_pool = std::make_unique<WorkPool>("transform", 2, 64);
    writes = std::make_unique<WriteBehind>(*store, metrics, 64 << 20, 1);
    pipeline = std::make_unique<ImagePipeline>(config, metrics, memory, *store, sources, generations, *writes,
                                               *storage_pool, *transform_pool);
  }
  ~Rig() {
    storage_pool->stop();
    transform_pool->stop();
    writes->stop();
  }

  std::shared_ptr<const nic::ImageRequest> request(const std::string& id, const std::string& query) {
    auto r = nic::prepare_image_request(nic::ImagePath{kWs, id, "a.png"}, "/img/" + kWs + "/" + id + "/a.png",
                                        query, "", config.core, "");
    REQUIRE(r.ok());
    return std::make_shared<const nic::ImageRequest>(std::move(*r));
  }

  std::future<nic::Result<Served>> run(std::shared_ptr<const nic::ImageRequest> req) {
    auto promise = std::make_shared<std::promise<nic::Result<Served>>>();
    auto f = promise->get_future();
    pipeline->run(std::move(req), [promise](const nic::Result<Served>& r) { promise->set_value(r); });
    return f;
  }

  std::uint64_t transforms() const { return metrics.total("nic_transforms_total"); }
};

std::string id_of(int n) {
  std::string s = "fedcba9876543210fedcba98765432";
  s += static_cast<char>('0' + n / 10);
  s += static_cast<char>('0' + n % 10);
  return s;
}

}  // namespace

TEST_CASE("pipeline: a herd is one flight, one source, one transform, one write", "[origin][pipeline]") {
  Rig rig;
  Gate gate;
  rig.sources.gate = &gate;
  const auto req = rig.request(id_of(1), "w=64");
  std::vector<std::future<nic::Result<Served>>> herd;
  for (int i = 0; i < 8; ++i) herd.push_back(rig.run(req));
  gate.wait_for_arrivals(1);
  gate.release();
  int leaders = 0, followers = 0;
  for (auto& f : herd) {
    auto r = f.get();
    REQUIRE(r.ok());
    CHECK(r->leader == Tier::Origin);
    leaders += r->tier == Tier::Origin;
    followers += r->tier == Tier::Coalesced;
  }
  CHECK(leaders == 1);
  CHECK(followers == 7);
  CHECK(rig.sources.gets == 1);
  CHECK(rig.transforms() == 1);
  rig.writes->flush();
  CHECK(rig.metrics.count("nic_storage_writes_total", "kind=\"variant\"") == 1);
  // Now in memory, and in storage for a process that starts empty.
  CHECK(rig.pipeline->lookup_memory(*req) != nullptr);
  CHECK(rig.store->read(req->key_hash).has_value());
}

TEST_CASE("pipeline: followers are answered before the storage write lands", "[origin][pipeline]") {
  // A store whose writes wait at a gate.
  struct SlowStore final : Store {
    Store& inner;
    Gate& gate;
    SlowStore(Store& s, Gate& g) : inner(s), gate(g) {}
    std::optional<Hit> read(const std::string& h) override { return inner.read(h); }
    std::optional<EntryMeta> meta(const std::string& h) override { return inner.meta(h); }
    nic::Status write(const std::string& h, EntryMeta m, std::span<const std::uint8_t> b) override {
      gate.wait();
      return inner.write(h, std::move(m), b);
    }
    nic::Status update_meta(const std::string& h, const EntryMeta& m) override { return inner.update_meta(h, m); }
    bool erase(const std::string& h) override { return inner.erase(h); }
    std::size_t erase_group(std::string_view g) override { return inner.erase_group(g); }
    StoreStats stats() const override { return inner.stats(); }
    bool writable() const override { return true; }
    std::string describe() const override { return "slow"; }
  };
  Rig rig;
  Gate gate;
  SlowStore slow(*rig.store, gate);
  WriteBehind writes(slow, rig.metrics, 64 << 20, 1);
  ImagePipeline pipeline(rig.config, rig.metrics, rig.memory, slow, rig.sources, rig.generations, writes,
                         *rig.storage_pool, *rig.transform_pool);
  const auto req = rig.request(id_of(2), "w=64");
  std::promise<nic::Result<Served>> answered;
  pipeline.run(req, [&](const nic::Result<Served>& r) { answered.set_value(r); });
  auto r = answered.get_future().get();  // while the write waits at the gate
  REQUIRE(r.ok());
  CHECK(r->tier == Tier::Origin);
  gate.wait_for_arrivals(1);
  CHECK(writes.queued_bytes() == r->image->bytes->size());
  CHECK_FALSE(rig.store->read(req->key_hash).has_value());
  gate.release();
  writes.flush();
  CHECK(writes.queued_bytes() == 0);
  CHECK(rig.store->read(req->key_hash).has_value());
  rig.storage_pool->stop();
  rig.transform_pool->stop();
}

TEST_CASE("pipeline: a purge during a flight: its variant is answered but never kept", "[origin][pipeline]") {
  Rig rig;
  Gate gate;
  std::atomic<int> held{0};
  rig.pipeline->set_hook([&](std::string_view step, const std::string&) {
    if (step == "publish" && held++ == 0) gate.wait();
  });
  const auto req = rig.request(id_of(3), "w=64");
  auto first = rig.run(req);
  gate.wait_for_arrivals(1);
  // The leader has its bytes and waits before publishing: purge now.
  CHECK(rig.pipeline->purge(id_of(3)) == 0);
  gate.release();
  REQUIRE(first.get().ok());  // those who asked before the purge are answered
  rig.writes->flush();
  CHECK(rig.pipeline->lookup_memory(*req) == nullptr);
  CHECK_FALSE(rig.store->read(req->key_hash).has_value());
  CHECK(rig.metrics.count("nic_storage_writes_total", "kind=\"variant\"") == 0);
  // The next request makes it again, from the new generation, and keeps it.
  auto second = rig.run(req).get();
  REQUIRE(second.ok());
  CHECK(second->tier == Tier::Origin);
  CHECK(rig.transforms() == 2);
  rig.writes->flush();
  CHECK(rig.store->read(req->key_hash).has_value());
  CHECK(rig.pipeline->lookup_memory(*req) != nullptr);
}

TEST_CASE("pipeline: a generation bump while the source is fetched (a revalidation found a new file)",
          "[origin][pipeline]") {
  Rig rig;
  Gate gate;
  rig.sources.gate = &gate;
  const auto req = rig.request(id_of(4), "w=64");
  auto first = rig.run(req);
  gate.wait_for_arrivals(1);
  rig.generations.bump(nic::source_key(id_of(4)));
  gate.release();
  REQUIRE(first.get().ok());
  rig.writes->flush();
  CHECK(rig.pipeline->lookup_memory(*req) == nullptr);
  CHECK_FALSE(rig.store->read(req->key_hash).has_value());
  CHECK(rig.writes->discarded() + rig.metrics.count("nic_storage_writes_total", "kind=\"variant\"") == 0);
}

TEST_CASE("pipeline: a write racing a purge is erased after it lands", "[origin][pipeline]") {
  // The generation moves between the flight's check and its write landing:
  // the write-behind re-checks after writing and erases it.
  Rig rig;
  const auto req = rig.request(id_of(5), "w=64");
  const std::string skey = nic::source_key(id_of(5));
  const std::uint64_t gen = rig.generations.current(skey);
  EntryMeta meta;
  meta.key = req->key;
  meta.content_type = "image/png";
  meta.etag = "\"x\"";
  auto bytes = std::make_shared<const Bytes>(Bytes{1, 2, 3});
  meta.size = 3;
  rig.writes->write(req->key_hash, meta, bytes, "variant", [&] {
    rig.generations.bump(skey);  // lands just before the check
    return rig.generations.current(skey) == gen;
  });
  rig.writes->flush();
  CHECK(rig.writes->discarded() == 1);
  CHECK_FALSE(rig.store->read(req->key_hash).has_value());
}

TEST_CASE("pipeline: a throwing step fails its flight with 500 INTERNAL; the next one works", "[origin][pipeline]") {
  Rig rig;
  std::atomic<int> calls{0};
  rig.pipeline->set_hook([&](std::string_view step, const std::string&) {
    if (step == "transform" && calls++ == 0) throw std::runtime_error("boom");
  });
  const auto req = rig.request(id_of(6), "w=64");
  auto herd = std::vector<std::future<nic::Result<Served>>>{};
  herd.push_back(rig.run(req));
  auto r = herd[0].get();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::Internal);
  CHECK(nic::http_status(r.error().code) == 500);
  auto again = rig.run(req).get();
  REQUIRE(again.ok());
  CHECK(rig.transforms() == 1);
  CHECK(rig.transform_pool->exceptions() == 0);  // the flight's own boundary caught it
}

TEST_CASE("work pool: a job that throws does not end the process", "[origin][pipeline]") {
  WorkPool pool("test", 1, 4);
  std::promise<void> ran;
  REQUIRE(pool.try_submit([] { throw std::runtime_error("loose"); }));
  REQUIRE(pool.try_submit([&] { ran.set_value(); }));
  ran.get_future().get();
  pool.stop();
  CHECK(pool.exceptions() == 1);
}

TEST_CASE("work pool: a nice increment lowers its threads' priority, not the caller's", "[origin][pipeline]") {
  auto thread_nice = [] {
    errno = 0;
    return getpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)));
  };
  const int mine = thread_nice();
  if (mine > 9) {
    WARN("the test already runs at nice " << mine << ": skipped");
    return;
  }
  WorkPool low("low", 1, 4, 10), normal("normal", 1, 4);
  std::promise<int> low_nice, normal_nice;
  REQUIRE(low.try_submit([&] { low_nice.set_value(thread_nice()); }));
  REQUIRE(normal.try_submit([&] { normal_nice.set_value(thread_nice()); }));
  CHECK(low_nice.get_future().get() == mine + 10);
  CHECK(normal_nice.get_future().get() == mine);
  CHECK(thread_nice() == mine);
}

TEST_CASE("pipeline: the transform byte budget makes work wait its turn, never overcommits", "[origin][pipeline]") {
  // 200x150 PNG at w=64: the source, its inflated rows, the output, fixed costs.
  Rig probe_rig;
  const auto info = nic::probe_image(probe_rig.sources.bytes, {});
  REQUIRE(info.ok());
  const auto probe_request = probe_rig.request(id_of(7), "w=64");
  const auto one = nic::estimate_transform_bytes(probe_rig.sources.bytes, *info, probe_request->params,
                                                 probe_request->choice);
  CHECK(one > 200u * 150 * 3);
  Rig rig(one + one / 2);  // room for one at a time
  Gate gate;
  std::atomic<int> held{0};
  rig.pipeline->set_hook([&](std::string_view step, const std::string&) {
    if (step == "transform" && held++ == 0) gate.wait();
  });
  auto first = rig.run(rig.request(id_of(8), "w=64"));
  gate.wait_for_arrivals(1);
  CHECK(rig.pipeline->budget().in_use() == one);
  // The second waits for the first's charge instead of being refused.
  auto second = rig.run(rig.request(id_of(9), "w=64"));
  CHECK(second.wait_for(std::chrono::milliseconds(300)) == std::future_status::timeout);
  CHECK(rig.pipeline->budget().in_use() == one);
  gate.release();
  REQUIRE(first.get().ok());
  REQUIRE(second.get().ok());
  rig.transform_pool->stop();  // the jobs (and their leases) are gone
  CHECK(rig.pipeline->budget().in_use() == 0);
  CHECK(rig.pipeline->budget().peak() == one);
  CHECK(rig.pipeline->budget().refused() == 0);
  CHECK(rig.transforms() == 2);

  SECTION("a wait that outlasts the flight's deadline is refused, and nothing is charged for it") {
    Rig tight(one + one / 2, 1000);  // flight deadline: 1000 - kFlightMarginMs
    Gate g2;
    std::atomic<int> h2{0};
    tight.pipeline->set_hook([&](std::string_view step, const std::string&) {
      if (step == "transform" && h2++ == 0) g2.wait();
    });
    auto a = tight.run(tight.request(id_of(11), "w=64"));
    g2.wait_for_arrivals(1);
    auto b = tight.run(tight.request(id_of(12), "w=64")).get();
    REQUIRE_FALSE(b.ok());
    CHECK((b.error().code == ErrorCode::Overloaded || b.error().code == ErrorCode::UpstreamTimeout));
    for (int i = 0; i < 200 && tight.pipeline->budget().refused() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(tight.pipeline->budget().refused() == 1);
    CHECK(tight.pipeline->budget().in_use() == one);
    g2.release();
    (void)a.get();
    tight.transform_pool->stop();
    CHECK(tight.pipeline->budget().in_use() == 0);
    CHECK(tight.transforms() <= 1);
  }

  SECTION("a set TRANSFORM_MEMORY_BYTES is a hard bound: an image that alone needs more is 422 TOO_MANY_PIXELS") {
    Rig small(4ULL << 20, 20000, 4ULL << 20);
    small.sources.bytes = gradient_png(1200, 1000);
    auto r = small.run(small.request(id_of(10), "w=64")).get();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::TooManyPixels);
    CHECK(small.transforms() == 0);
  }

  SECTION("by default an image that alone needs more than the budget runs by itself") {
    Rig small(4ULL << 20);
    small.sources.bytes = gradient_png(1200, 1000);
    auto r = small.run(small.request(id_of(10), "w=64")).get();
    REQUIRE(r.ok());
    CHECK(small.transforms() == 1);
    CHECK(small.pipeline->budget().peak() > small.pipeline->budget().capacity());
    small.transform_pool->stop();  // the job (holding the charge) is gone
    CHECK(small.pipeline->budget().in_use() == 0);
  }
}

TEST_CASE("pipeline: a leader past the flight's deadline is replaced", "[origin][pipeline]") {
  // FOLLOWER_TIMEOUT_MS 600: the flight's deadline is 350 ms after its leader joined.
  Rig rig(256ULL << 20, 600);
  Gate gate;
  std::atomic<int> held{0};
  rig.pipeline->set_hook([&](std::string_view step, const std::string&) {
    if (step == "admit" && held++ == 0) gate.wait();  // the first leader is stuck
  });
  const auto req = rig.request(id_of(11), "w=64");
  auto stuck = rig.run(req);
  auto follower = rig.run(req);
  auto r1 = stuck.get();  // answered at the deadline, not when the leader wakes
  auto r2 = follower.get();
  REQUIRE_FALSE(r1.ok());
  REQUIRE_FALSE(r2.ok());
  CHECK(r1.error().code == ErrorCode::UpstreamTimeout);
  CHECK(r2.error().code == ErrorCode::UpstreamTimeout);
  CHECK(rig.pipeline->counts().replaced == 1);
  // The key is free: a new leader, while the old one is still stuck.
  auto fresh = rig.run(req).get();
  REQUIRE(fresh.ok());
  CHECK(fresh->tier == Tier::Origin);
  gate.release();
  rig.transform_pool->stop();
  // The stuck leader's work was not done for nobody.
  CHECK(rig.transforms() == 1);
}
