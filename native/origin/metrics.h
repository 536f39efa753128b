// Counters for /metrics (Prometheus text format) and /api/v1/stats.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace nic::origin {

class Metrics {
 public:
  void request(std::string_view route, int status);
  void cache_hit(std::string_view tier);  // memory | storage | coalesced
  void cache_miss() { misses_.fetch_add(1, std::memory_order_relaxed); }
  void coalesced() { coalesced_.fetch_add(1, std::memory_order_relaxed); }
  // A storage hit read on the I/O thread (a verified small file), not through the storage pool.
  void storage_inline_read() { inline_reads_.fetch_add(1, std::memory_order_relaxed); }
  void notion_call(std::string_view status);    // "200", "429", "error", ...
  void upstream_fetch(std::string_view status);  // "200", "403", "timeout", ...
  void transform(std::string_view format, double seconds);
  void storage_write(std::string_view kind);     // variant | source
  void storage_write_failure(std::string_view kind) { add("nic_storage_write_failures_total", "kind=\"" + std::string(kind) + "\""); }
  void rate_limited(std::string_view route) { add("nic_requests_rate_limited_total", "route=\"" + std::string(route) + "\""); }
  void revalidation(std::string_view result) { add("nic_source_revalidations_total", "result=\"" + std::string(result) + "\""); }
  void overloaded(std::string_view reason) { add("nic_overloaded_total", "reason=\"" + std::string(reason) + "\""); }
  void upstream_bytes(std::uint64_t n) { upstream_bytes_.fetch_add(n, std::memory_order_relaxed); }

  // Gauges are read at render time.
  struct Gauges {
    std::uint64_t inflight_flights = 0;
    std::uint64_t memory_cache_bytes = 0;
    std::uint64_t memory_cache_entries = 0;
    std::uint64_t disk_cache_bytes = 0;
    std::uint64_t disk_cache_entries = 0;
    std::uint64_t transform_queue = 0;
    std::uint64_t transform_memory_bytes = 0;       // charged to the transform byte budget now
    std::uint64_t transform_memory_peak_bytes = 0;  // the most ever charged at once
    std::uint64_t write_behind_bytes = 0;           // storage writes waiting
    std::uint64_t write_behind_pending = 0;
  };
  std::string prometheus(const Gauges& gauges) const;

  std::uint64_t total(std::string_view family) const;  // sum over labels, for stats/tests
  std::uint64_t count(std::string_view family, std::string_view label) const;
  std::uint64_t misses() const { return misses_.load(); }
  std::uint64_t coalesced_count() const { return coalesced_.load(); }
  std::uint64_t storage_inline_reads() const { return inline_reads_.load(); }
  std::uint64_t upstream_bytes() const { return upstream_bytes_.load(); }

  static constexpr std::array<double, 12> kBuckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                   0.5,   1.0,  2.5,   5.0,  10.0, 30.0};

 private:
  void add(std::string_view family, std::string labels);
  // counters_ with the hot counters folded in (mu_ held).
  std::map<std::string, std::map<std::string, std::uint64_t>, std::less<>> merged_locked() const;

  // Hot counters, bumped on every cache hit without the lock or building label
  // strings: image requests by status, and hits by tier. Read through merged_locked().
  static constexpr int kMinStatus = 100;
  static constexpr int kMaxStatus = 599;
  static constexpr std::array<std::string_view, 3> kHotTiers{"memory", "storage", "coalesced"};
  std::array<std::atomic<std::uint64_t>, kMaxStatus - kMinStatus + 1> image_requests_{};
  std::array<std::atomic<std::uint64_t>, kHotTiers.size()> hits_{};

  mutable std::mutex mu_;
  // family -> rendered label set -> count
  std::map<std::string, std::map<std::string, std::uint64_t>, std::less<>> counters_;
  std::array<std::uint64_t, kBuckets.size()> buckets_{};
  std::uint64_t transform_count_ = 0;
  double transform_sum_ = 0;
  std::atomic<std::uint64_t> misses_{0};
  std::atomic<std::uint64_t> coalesced_{0};
  std::atomic<std::uint64_t> inline_reads_{0};
  std::atomic<std::uint64_t> upstream_bytes_{0};
};

// Resident set size of this process (from /proc/self/statm), 0 if unknown.
std::uint64_t resident_memory_bytes();

}  // namespace nic::origin
