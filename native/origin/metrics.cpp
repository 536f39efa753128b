#include "metrics.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace nic::origin {
namespace {

std::string label(std::string_view name, std::string_view value) {
  std::string out(name);
  out += "=\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  out += '"';
  return out;
}

struct Family {
  std::string_view name;
  std::string_view help;
};
constexpr std::array<Family, 10> kCounterFamilies{{
    {"nic_requests_total", "HTTP requests by route and status."},
    {"nic_cache_hits_total", "Image responses served from a cache tier."},
    {"nic_notion_api_calls_total", "Notion API calls by HTTP status."},
    {"nic_upstream_fetches_total", "Upstream file downloads by outcome."},
    {"nic_transforms_total", "Transforms by output format."},
    {"nic_storage_writes_total", "Entries written to the storage tier (kind: variant|source)."},
    {"nic_storage_write_failures_total", "Storage writes that failed (logged; the response is unaffected)."},
    {"nic_requests_rate_limited_total", "Requests refused by a rate limit."},
    {"nic_source_revalidations_total", "Background source revalidations by outcome."},
    {"nic_overloaded_total", "Work refused with 503 OVERLOADED, by reason (transform_memory, download_memory, ...)."},
}};

}  // namespace

void Metrics::add(std::string_view family, std::string labels) {
  std::lock_guard lock(mu_);
  auto it = counters_.find(family);
  if (it == counters_.end()) it = counters_.emplace(std::string(family), std::map<std::string, std::uint64_t>{}).first;
  ++it->second[labels];
}

void Metrics::request(std::string_view route, int status) {
  if (route == "image" && status >= kMinStatus && status <= kMaxStatus) {
    image_requests_[static_cast<std::size_t>(status - kMinStatus)].fetch_add(1, std::memory_order_relaxed);
    return;
  }
  add("nic_requests_total", label("route", route) + "," + label("status", std::to_string(status)));
}
void Metrics::cache_hit(std::string_view tier) {
  for (std::size_t i = 0; i < kHotTiers.size(); ++i) {
    if (tier == kHotTiers[i]) {
      hits_[i].fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  add("nic_cache_hits_total", label("tier", tier));
}

std::map<std::string, std::map<std::string, std::uint64_t>, std::less<>> Metrics::merged_locked() const {
  auto out = counters_;
  for (std::size_t i = 0; i < image_requests_.size(); ++i) {
    if (const auto v = image_requests_[i].load(std::memory_order_relaxed)) {
      out["nic_requests_total"][label("route", "image") + "," +
                                label("status", std::to_string(kMinStatus + static_cast<int>(i)))] += v;
    }
  }
  for (std::size_t i = 0; i < hits_.size(); ++i) {
    if (const auto v = hits_[i].load(std::memory_order_relaxed)) {
      out["nic_cache_hits_total"][label("tier", kHotTiers[i])] += v;
    }
  }
  return out;
}
void Metrics::notion_call(std::string_view status) {
  add("nic_notion_api_calls_total", label("status", status));
}
void Metrics::upstream_fetch(std::string_view status) {
  add("nic_upstream_fetches_total", label("status", status));
}
void Metrics::storage_write(std::string_view kind) { add("nic_storage_writes_total", label("kind", kind)); }

void Metrics::transform(std::string_view format, double seconds) {
  add("nic_transforms_total", label("format", format));
  std::lock_guard lock(mu_);
  ++transform_count_;
  transform_sum_ += seconds;
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++buckets_[i];
  }
}

std::uint64_t Metrics::total(std::string_view family) const {
  std::lock_guard lock(mu_);
  const auto counters = merged_locked();
  const auto it = counters.find(family);
  if (it == counters.end()) return 0;
  std::uint64_t n = 0;
  for (const auto& [l, v] : it->second) n += v;
  return n;
}

std::uint64_t Metrics::count(std::string_view family, std::string_view labels) const {
  std::lock_guard lock(mu_);
  const auto counters = merged_locked();
  const auto it = counters.find(family);
  if (it == counters.end()) return 0;
  const auto jt = it->second.find(std::string(labels));
  return jt == it->second.end() ? 0 : jt->second;
}

std::string Metrics::prometheus(const Gauges& g) const {
  std::string out;
  char buf[128];
  std::lock_guard lock(mu_);
  const auto counters = merged_locked();
  for (const auto& f : kCounterFamilies) {
    out += "# HELP " + std::string(f.name) + " " + std::string(f.help) + "\n";
    out += "# TYPE " + std::string(f.name) + " counter\n";
    const auto it = counters.find(f.name);
    if (it == counters.end()) continue;
    for (const auto& [labels, v] : it->second) {
      out += std::string(f.name) + "{" + labels + "} " + std::to_string(v) + "\n";
    }
  }
  auto scalar = [&out](std::string_view name, std::string_view type, std::string_view help,
                       std::uint64_t v) {
    out += "# HELP " + std::string(name) + " " + std::string(help) + "\n";
    out += "# TYPE " + std::string(name) + " " + std::string(type) + "\n";
    out += std::string(name) + " " + std::to_string(v) + "\n";
  };
  scalar("nic_cache_misses_total", "counter", "Image requests that no cache tier answered.", misses_.load());
  scalar("nic_coalesced_total", "counter", "Requests that joined another request's flight.", coalesced_.load());
  scalar("nic_storage_inline_reads_total", "counter",
         "Storage hits read on the I/O thread (a small file verified before), not through the storage pool.",
         inline_reads_.load());
  scalar("nic_upstream_bytes_total", "counter", "Bytes downloaded from upstream file hosts.", upstream_bytes_.load());
  scalar("nic_inflight_flights", "gauge", "Coalescing flights in the air.", g.inflight_flights);
  scalar("nic_memory_cache_bytes", "gauge", "Bytes held by the memory tier.", g.memory_cache_bytes);
  scalar("nic_memory_cache_entries", "gauge", "Entries in the memory tier.", g.memory_cache_entries);
  scalar("nic_storage_bytes", "gauge", "Bytes held by the storage tier.", g.disk_cache_bytes);
  scalar("nic_storage_entries", "gauge", "Entries in the storage tier.", g.disk_cache_entries);
  scalar("nic_transform_queue_length", "gauge", "Transforms waiting for a worker.", g.transform_queue);
  scalar("nic_transform_memory_bytes", "gauge", "Bytes charged to the transform budget (TRANSFORM_MEMORY_BYTES).",
         g.transform_memory_bytes);
  scalar("nic_transform_memory_peak_bytes", "gauge", "The most ever charged to the transform budget at once.",
         g.transform_memory_peak_bytes);
  scalar("nic_write_behind_bytes", "gauge", "Bytes of storage writes waiting (WRITE_BEHIND_BYTES).",
         g.write_behind_bytes);
  scalar("nic_write_behind_pending", "gauge", "Storage writes accepted and not landed yet.", g.write_behind_pending);
  out += "# HELP nic_transform_seconds Time spent decoding, resizing and encoding.\n";
  out += "# TYPE nic_transform_seconds histogram\n";
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    std::snprintf(buf, sizeof buf, "nic_transform_seconds_bucket{le=\"%g\"} %llu\n", kBuckets[i],
                  static_cast<unsigned long long>(buckets_[i]));
    out += buf;
  }
  out += "nic_transform_seconds_bucket{le=\"+Inf\"} " + std::to_string(transform_count_) + "\n";
  std::snprintf(buf, sizeof buf, "nic_transform_seconds_sum %.6f\n", transform_sum_);
  out += buf;
  out += "nic_transform_seconds_count " + std::to_string(transform_count_) + "\n";
  out += "# HELP process_resident_memory_bytes Resident memory size in bytes.\n";
  out += "# TYPE process_resident_memory_bytes gauge\n";
  out += "process_resident_memory_bytes " + std::to_string(resident_memory_bytes()) + "\n";
  return out;
}

std::uint64_t resident_memory_bytes() {
  std::ifstream f("/proc/self/statm");
  std::uint64_t size = 0;
  std::uint64_t resident = 0;
  if (!(f >> size >> resident)) return 0;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace nic::origin
