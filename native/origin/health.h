// GET /health: liveness apart from readiness, as a pure function of what the
// origin knows (no I/O here), so the rules are tested without a server.
//
//   /health?probe=live   200 {"status":"ok"} while the process answers at all: what a process
//                        supervisor (a Kubernetes livenessProbe) restarts on. Looks at nothing.
//   /health?probe=ready  200 while it can serve images: "ok", or "degraded" when the store is
//                        down or refuses writes (images in memory are still served and new ones
//                        are made from upstream). This is what a load balancer should probe.
//   /health              the readiness answer with details (storage, memory, flights).
//
// A store being down never makes the origin unready: a load balancer would
// otherwise pull every origin at once when the shared bucket has a bad minute.
// After SIGTERM the listener is closed, so a load balancer's next probe fails
// to connect: that is its signal to stop sending.
#pragma once

#include <boost/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include "nic/error.h"
#include "nic/percent.h"

namespace nic::origin {

enum class HealthProbe : std::uint8_t { Full, Live, Ready };

struct HealthInputs {
  bool storage_writable = true;
  std::string storage_backend;
  std::uint64_t storage_entries = 0;
  std::uint64_t storage_bytes = 0;
  std::uint64_t memory_entries = 0;
  std::uint64_t memory_bytes = 0;
  std::uint64_t inflight_flights = 0;
  std::int64_t uptime_seconds = 0;
};

struct HealthAnswer {
  int status = 200;
  std::string body;
};

// probe=live|ready; absent = Full; anything else is INVALID_PARAM naming the values.
inline Result<HealthProbe> parse_health_probe(std::string_view query) {
  HealthProbe probe = HealthProbe::Full;
  for (const RawParam& p : split_query(query)) {
    if (p.name != "probe") continue;
    if (p.value == "live") {
      probe = HealthProbe::Live;
    } else if (p.value == "ready") {
      probe = HealthProbe::Ready;
    } else {
      return make_error(ErrorCode::InvalidParam, "probe: expected live or ready");
    }
  }
  return probe;
}

inline HealthAnswer health_answer(HealthProbe probe, const HealthInputs& in) {
  namespace json = boost::json;
  if (probe == HealthProbe::Live) return {200, R"({"status":"ok"})"};
  json::object body;
  body["status"] = in.storage_writable ? "ok" : "degraded";
  if (probe == HealthProbe::Full) {
    body["version"] = NIC_VERSION;
    body["uptimeSeconds"] = in.uptime_seconds;
    body["storage"] = json::object{{"backend", in.storage_backend},
                                   {"writable", in.storage_writable},
                                   {"entries", in.storage_entries},
                                   {"bytes", in.storage_bytes}};
    body["memory"] = json::object{{"entries", in.memory_entries}, {"bytes", in.memory_bytes}};
    body["inflightFlights"] = in.inflight_flights;
  }
  return {200, json::serialize(body)};
}

}  // namespace nic::origin
