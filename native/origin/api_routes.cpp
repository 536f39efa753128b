#include "api_routes.h"

#include <boost/json.hpp>

#include <chrono>

#include "health.h"
#include "nic/notion_url.h"
#include "nic/percent.h"
#include "nic/route.h"
#include "nic/signature.h"
#include "nic/url.h"

namespace nic::origin {
namespace json = boost::json;

namespace {

// The decoded `url` parameter ("" when absent).
Result<std::string> url_param(std::string_view query, std::string* rest) {
  std::string url;
  for (const RawParam& p : split_query(query)) {
    if (p.name == "url") {
      auto decoded = percent_decode(p.value, ErrorCode::InvalidParam);
      if (!decoded) return make_error(ErrorCode::InvalidParam, "url: " + decoded.error().message);
      url = std::move(*decoded);
    } else if (rest != nullptr && p.name != "sig") {
      if (!rest->empty()) *rest += '&';
      *rest += p.name;
      *rest += '=';
      *rest += p.value;
    }
  }
  return url;
}

}  // namespace

Result<ApiRoutes::ProxyPlan> ApiRoutes::proxy(std::string_view query, std::string_view accept) {
  if (!p_.config.hmac_secret.empty()) {
    if (auto s = verify_signature(p_.config.hmac_secret, "/api/v1/proxy", query); !s) return s.take_error();
  }
  std::string rest;
  auto url = url_param(query, &rest);
  if (!url) return url.take_error();
  auto file = parse_notion_url(*url, p_.config.allowed_domains);
  if (!file) return file.take_error();
  ImagePath image{file->workspace, file->file_id, file->filename};
  const std::string path = "/img/" + image.workspace + "/" + image.id + "/" + percent_encode(image.filename);
  // The signature (if any) was checked above over the proxy URL, not the /img path.
  auto ireq = prepare_image_request(image, path, rest, accept, p_.config.core, "");
  if (!ireq) return ireq.take_error();
  auto offered = std::make_shared<const SignedUrl>(SignedUrl{file->url, file->expires_at, "", false});
  return ProxyPlan{std::make_shared<const ImageRequest>(std::move(*ireq)), std::move(offered),
                   rest.empty() ? path : path + "?" + rest};
}

Result<ApiRoutes::Targets> ApiRoutes::purge_targets(std::string_view query) {
  auto url = url_param(query, nullptr);
  if (!url) return url.take_error();
  if (url->empty()) {
    return make_error(ErrorCode::MissingUrl, "url is required: a Notion URL, an /img path or a CDN URL");
  }
  Targets targets;
  std::string img_path;
  if (url->starts_with("/img/")) {
    img_path = url->substr(0, url->find('?'));
  } else if (auto u = parse_url(*url, ErrorCode::InvalidParam); u && u->path.starts_with("/img/")) {
    img_path = u->path;
  }
  if (!img_path.empty()) {
    auto image = parse_image_path(img_path);
    if (!image) return image.take_error();
    targets.emplace_back(image->workspace, image->id);
    return targets;
  }
  auto file = parse_notion_url(*url, p_.config.allowed_domains);
  if (!file) return file.take_error();
  targets.emplace_back(file->workspace, file->file_id);
  if (file->block_id) targets.emplace_back(file->workspace, *file->block_id);
  return targets;
}

bool ApiRoutes::purge(Targets targets, std::function<void(Response)> reply) {
  return p_.storage_pool.try_submit([this, targets = std::move(targets), reply = std::move(reply)] {
    std::size_t removed = 0;
    json::array prefixes;
    for (const auto& [ws, id] : targets) {
      // The whole source group: the source and the variants under every workspace.
      removed += p_.pipeline.purge(id);
      prefixes.emplace_back(source_group(id));
    }
    json::object body;
    body["purged"] = true;
    body["removed"] = removed;
    body["prefixes"] = std::move(prefixes);
    reply(json_response(200, json::serialize(body)));
  });
}

Result<Response> ApiRoutes::health(std::string_view query) {
  auto probe = parse_health_probe(query);
  if (!probe) return probe.take_error();
  HealthInputs in;
  if (*probe != HealthProbe::Live) {  // liveness looks at nothing
    const auto st = p_.store.stats();
    in.storage_writable = p_.store.writable();
    in.storage_backend = p_.config.storage_backend;
    in.storage_entries = st.entries;
    in.storage_bytes = st.bytes;
    in.memory_entries = p_.memory.entries();
    in.memory_bytes = p_.memory.bytes();
    in.inflight_flights = p_.pipeline.inflight() + p_.sources.inflight();
    in.uptime_seconds = unix_now() - p_.started_unix;
  }
  HealthAnswer answer = health_answer(*probe, in);
  return json_response(answer.status, std::move(answer.body));
}

Response ApiRoutes::stats() {
  const auto& m = p_.metrics;
  const auto st = p_.store.stats();
  const auto vc = p_.pipeline.counts();
  const auto sc = p_.sources.counts();
  const auto& budget = p_.pipeline.budget();
  json::object body;
  body["requests"] = m.total("nic_requests_total");
  body["cacheHits"] = {{"memory", m.count("nic_cache_hits_total", "tier=\"memory\"")},
                       {"storage", m.count("nic_cache_hits_total", "tier=\"storage\"")},
                       {"coalesced", m.count("nic_cache_hits_total", "tier=\"coalesced\"")}};
  body["cacheMisses"] = m.misses();
  body["coalesced"] = m.coalesced_count();
  body["notionApiCalls"] = m.total("nic_notion_api_calls_total");
  body["upstreamFetches"] = m.total("nic_upstream_fetches_total");
  body["upstreamBytes"] = m.upstream_bytes();
  body["transforms"] = m.total("nic_transforms_total");
  body["storageWrites"] = m.total("nic_storage_writes_total");
  body["storageWriteFailures"] = m.total("nic_storage_write_failures_total");
  body["flights"] = {{"variant", vc.table.flights},
                     {"source", sc.table.flights},
                     {"followers", vc.table.followers + sc.table.followers},
                     {"failed", vc.table.failed + sc.table.failed},
                     {"timedOut", vc.table.timed_out + sc.table.timed_out},
                     {"replaced", vc.replaced + sc.replaced},
                     {"inflight", p_.pipeline.inflight() + p_.sources.inflight()}};
  body["transformMemory"] = {{"budget", budget.capacity()},
                             {"inUse", budget.in_use()},
                             {"peak", budget.peak()},
                             {"refused", budget.refused()}};
  body["writeBehind"] = {{"queuedBytes", p_.writes.queued_bytes()},
                         {"dropped", p_.writes.dropped()},
                         {"discarded", p_.writes.discarded()}};
  body["memory"] = {{"entries", p_.memory.entries()},
                    {"bytes", p_.memory.bytes()},
                    {"capacity", p_.memory.capacity()}};
  body["storage"] = {{"entries", st.entries}, {"bytes", st.bytes}, {"writes", st.writes}, {"evictions", st.evictions}};
  body["registeredUrls"] = p_.sources.urls().size();
  body["poolExceptions"] = p_.storage_pool.exceptions() + p_.fetch_pool.exceptions() + p_.transform_pool.exceptions();
  body["residentMemoryBytes"] = resident_memory_bytes();
  return json_response(200, json::serialize(body));
}

Response ApiRoutes::metrics() {
  const auto st = p_.store.stats();
  Metrics::Gauges g;
  g.inflight_flights = p_.pipeline.inflight() + p_.sources.inflight();
  g.memory_cache_bytes = p_.memory.bytes();
  g.memory_cache_entries = p_.memory.entries();
  g.disk_cache_bytes = st.bytes;
  g.disk_cache_entries = st.entries;
  g.transform_queue = p_.transform_pool.queued();
  g.transform_memory_bytes = p_.pipeline.budget().in_use();
  g.transform_memory_peak_bytes = p_.pipeline.budget().peak();
  g.write_behind_bytes = p_.writes.queued_bytes();
  g.write_behind_pending = p_.writes.pending();
  Response r;
  r.headers = {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"}, {"Cache-Control", "no-store"}};
  r.body = bytes_of(p_.metrics.prometheus(g) + (p_.fleet ? p_.fleet->prometheus() : std::string()));
  return r;
}

}  // namespace nic::origin
