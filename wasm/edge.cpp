// The edge's decisions, over nic_core, for the Cloudflare worker (wasm/worker.mjs).
//
// ABI: the worker writes one UTF-8 input string into the buffer nic_input()
// returns, calls an entry point with its length, and reads a JSON answer of the
// returned length at nic_output(). Fields inside an input are separated by NUL
// (no header or URL can contain one). The request fields, in order:
//   method \0 url \0 accept \0 if-none-match \0 request-id
// Per-request state stays in the worker (it passes the request fields back);
// the module keeps only the settings and the flight table of this isolate.
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "nic/cache_key.h"
#include "nic/cache_policy.h"
#include "nic/error.h"
#include "nic/flight_table.h"
#include "nic/route.h"
#include "nic/settings.h"
#include "nic/url.h"

#define NIC_EXPORT(name) extern "C" __attribute__((export_name(#name), visibility("default")))

namespace {

using nic::ErrorCode;

struct EdgeSettings {
  nic::CoreSettings core;
  std::string origin;  // scheme://host[:port], no trailing '/'
  std::int64_t follower_timeout_ms = 20000;
  std::int64_t cache_ttl_seconds = 86400;
  std::string hmac_secret;
  bool debug_stats = false;  // EDGE_DEBUG_STATS=1: GET /__nic/edge-stats (tests, benchmarks)
};

// What a flight needs to turn the origin's answer into the edge's.
struct FlightInfo {
  std::string key;
  bool vary = false;
  std::int64_t started_ms = 0;
};

struct Edge {
  std::string in;
  std::string out;
  std::optional<nic::Error> init_error = nic::make_error(ErrorCode::Internal, "edge not initialised");
  EdgeSettings settings;
  std::optional<nic::FlightTable> flights;
  std::unordered_map<nic::FlightId, FlightInfo> flight_info;
};

Edge g;

// Who answers a request, for X-Cache / X-Cache-Tier.
enum class Source : std::int32_t { Hit = 0, Leader = 1, Follower = 2 };

// ---- small helpers -------------------------------------------------------

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  for (;;) {
    const auto at = text.find(sep);
    parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + 1);
  }
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string number(std::int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::optional<std::int64_t> parse_number(std::string_view s) {
  std::int64_t v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

// ---- headers --------------------------------------------------------------

using Header = std::pair<std::string, std::string>;
using Headers = std::vector<Header>;

// "status\nname: value\nname: value" (the worker's rendering of a Response).
struct Message {
  int status = 0;
  Headers headers;
};

Message parse_message(std::string_view text) {
  Message m;
  const auto lines = split(text, '\n');
  m.status = static_cast<int>(parse_number(trim(lines[0])).value_or(0));
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const auto colon = lines[i].find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    std::string name(trim(lines[i].substr(0, colon)));
    for (auto& c : name) c = lower(c);
    m.headers.emplace_back(std::move(name), std::string(trim(lines[i].substr(colon + 1))));
  }
  return m;
}

const std::string* find_header(const Headers& h, std::string_view name) {
  for (const auto& [k, v] : h) {
    if (iequals(k, name)) return &v;
  }
  return nullptr;
}

void drop_header(Headers& h, std::string_view name) {
  std::erase_if(h, [&](const Header& kv) { return iequals(kv.first, name); });
}

void set_header(Headers& h, std::string_view name, std::string value) {
  drop_header(h, name);
  h.emplace_back(std::string(name), std::move(value));
}

// ---- JSON output ------------------------------------------------------------

struct Json {
  std::string& s;
  explicit Json(std::string& out) : s(out) { s.clear(); }

  Json& raw(std::string_view text) {
    s += text;
    return *this;
  }
  Json& str(std::string_view text) {
    s += '"';
    s += nic::json_escape(text);
    s += '"';
    return *this;
  }
  Json& key(std::string_view name) {
    if (s.size() > 1 && s.back() != '{' && s.back() != '[') s += ',';
    return str(name).raw(":");
  }
  Json& field(std::string_view name, std::string_view value) { return key(name).str(value); }
  Json& field(std::string_view name, std::int64_t value) { return key(name).raw(number(value)); }
  Json& flag(std::string_view name, bool value) { return key(name).raw(value ? "true" : "false"); }
  Json& headers(std::string_view name, const Headers& h) {
    key(name).raw("[");
    for (std::size_t i = 0; i < h.size(); ++i) {
      if (i) s += ',';
      raw("[").str(h[i].first).raw(",").str(h[i].second).raw("]");
    }
    return raw("]");
  }
  template <class Ids>
  Json& ids(std::string_view name, const Ids& list) {
    key(name).raw("[");
    bool first = true;
    for (const auto id : list) {
      if (!first) s += ',';
      first = false;
      raw(number(static_cast<std::int64_t>(id)));
    }
    return raw("]");
  }
};

std::int32_t done() {
  return static_cast<std::int32_t>(g.out.size());
}

// ---- the request fields -----------------------------------------------------

struct RequestFields {
  std::string_view method, url, accept, if_none_match, request_id;
  std::string_view rest;  // whatever follows the five fields
};

RequestFields parse_fields(std::string_view input) {
  RequestFields f;
  std::string_view* slots[] = {&f.method, &f.url, &f.accept, &f.if_none_match, &f.request_id};
  for (auto* slot : slots) {
    const auto at = input.find('\0');
    *slot = input.substr(0, at);
    input = at == std::string_view::npos ? std::string_view{} : input.substr(at + 1);
  }
  f.rest = input;
  return f;
}

// "https://host/path?q" -> {"https://host", "/path?q"}.
std::pair<std::string_view, std::string_view> split_url(std::string_view url) {
  const auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return {{}, url};
  const auto path = url.find('/', scheme + 3);
  if (path == std::string_view::npos) return {url, "/"};
  return {url.substr(0, path), url.substr(path)};
}

// The contract's error: JSON, no-store, never cached.
Json error_response(const nic::Error& error, const RequestFields& f, std::string_view key) {
  Headers h{{"content-type", "application/json"},
            {"cache-control", std::string(nic::kErrorCacheControl)},
            {"x-request-id", std::string(f.request_id)}};
  if (!key.empty()) h.emplace_back("x-cache-key", std::string(key));
  if (error.code == ErrorCode::MethodNotAllowed) h.emplace_back("allow", "GET, HEAD");
  Json j(g.out);
  j.raw("{").field("do", "respond").field("status", nic::http_status(error.code)).headers("headers", h);
  if (f.method != "HEAD") j.field("text", nic::error_json(error, f.request_id));
  j.flag("body", false).raw("}");
  return j;
}

// ---- settings -----------------------------------------------------------------

nic::Status apply_setting(EdgeSettings& s, std::string_view name, std::string_view value) {
  if (name == "ORIGIN_URL") {
    auto url = nic::parse_url(value, ErrorCode::Internal);
    if (!url) return nic::make_error(ErrorCode::Internal, "ORIGIN_URL: " + url.error().message);
    if ((url->path != "/" && !url->path.empty()) || !url->query.empty()) {
      return nic::make_error(ErrorCode::Internal, "ORIGIN_URL must be scheme://host[:port] without a path");
    }
    while (!value.empty() && value.back() == '/') value.remove_suffix(1);
    s.origin = std::string(value);
  } else if (name == "ALLOWED_WIDTHS") {
    auto list = nic::parse_int_list(value, 1, nic::kMaxDimension, name);
    if (!list) return list.take_error();
    s.core.allowed_widths = std::move(*list);
  } else if (name == "QUALITY_STEPS") {
    auto list = nic::parse_int_list(value, 1, 100, name);
    if (!list) return list.take_error();
    s.core.quality_steps = std::move(*list);
  } else if (name == "FOLLOWER_TIMEOUT_MS") {
    auto v = nic::parse_int_setting(value, 1, 600000, name);
    if (!v) return v.take_error();
    s.follower_timeout_ms = *v;
  } else if (name == "CACHE_TTL_SECONDS") {
    auto v = nic::parse_int_setting(value, 0, 315360000, name);
    if (!v) return v.take_error();
    s.cache_ttl_seconds = *v;
  } else if (name == "HMAC_SECRET") {
    s.hmac_secret = std::string(value);
  } else if (name == "EDGE_DEBUG_STATS") {
    s.debug_stats = value == "1" || value == "true";
  }
  return nic::Ok{};
}

// A flight whose leader never reported back (its worker context was torn
// down) would hold its key forever; past this age a new leader takes over.
std::int64_t stale_flight_ms() {
  return 2 * g.settings.follower_timeout_ms + 1000;
}

// The flight table's counters and size, as JSON.
std::string stats_json() {
  const auto c = g.flights ? g.flights->counts() : nic::FlightCounts{};
  std::string out;
  Json j(out);
  j.raw("{").field("flights", static_cast<std::int64_t>(c.flights));
  j.field("followers", static_cast<std::int64_t>(c.followers));
  j.field("completed", static_cast<std::int64_t>(c.completed));
  j.field("failed", static_cast<std::int64_t>(c.failed));
  j.field("timedOut", static_cast<std::int64_t>(c.timed_out));
  j.field("inflight", static_cast<std::int64_t>(g.flights ? g.flights->inflight() : 0)).raw("}");
  return out;
}

}  // namespace

// ---- exports ------------------------------------------------------------------

// The input buffer, at least `capacity` bytes; valid until the next call.
NIC_EXPORT(nic_input) char* nic_input(std::int32_t capacity) {
  g.in.resize(static_cast<std::size_t>(capacity > 0 ? capacity : 1));
  return g.in.data();
}

NIC_EXPORT(nic_output) const char* nic_output() {
  return g.out.data();
}

// Input: "NAME=value" lines (the worker's string env vars; unknown names are
// ignored). Answer: {"ok":true} or {"ok":false,"error":"..."}; after an error
// every request is answered 500 with the message naming the variable.
NIC_EXPORT(nic_init) std::int32_t nic_init(std::int32_t len) {
  const std::string_view input(g.in.data(), static_cast<std::size_t>(len));
  EdgeSettings s;
  std::optional<nic::Error> error;
  for (const auto line : split(input, '\n')) {
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    const auto value = line.substr(eq + 1);
    if (value.empty()) continue;  // empty = unset: the default applies
    if (auto st = apply_setting(s, line.substr(0, eq), value); !st && !error) {
      // A bad setting is the operator's fault, not the client's: 500.
      error = nic::make_error(ErrorCode::Internal, st.take_error().message);
    }
  }
  if (!error && s.origin.empty()) error = nic::make_error(ErrorCode::Internal, "ORIGIN_URL is not set");
  g.init_error = std::move(error);
  g.settings = std::move(s);
  g.flights.emplace(g.settings.follower_timeout_ms);
  g.flight_info.clear();
  Json j(g.out);
  j.raw("{").flag("ok", !g.init_error);
  if (g.init_error) j.field("error", g.init_error->message);
  j.raw("}");
  return done();
}

// Input: the request fields. Answer, one of:
//   {"do":"respond","status":..,"headers":[[k,v]..],"text":"..","body":false}
//   {"do":"forward","url":".."}        (not an image: the origin answers it)
//   {"do":"lookup","key":..,"vary":..,"cache":<cache URL>,"origin":<URL>,"fwd":[[k,v]..]}
NIC_EXPORT(nic_decide) std::int32_t nic_decide(std::int32_t len) {
  const std::string_view input(g.in.data(), static_cast<std::size_t>(len));
  const auto f = parse_fields(input);
  if (g.init_error) {
    error_response(*g.init_error, f, {});
    return done();
  }
  const auto [site, target] = split_url(f.url);
  if (g.settings.debug_stats && target == "/__nic/edge-stats") {
    auto body = stats_json();
    Json j(g.out);
    j.raw("{").field("do", "respond").field("status", 200);
    j.headers("headers", {{"content-type", "application/json"}, {"cache-control", "no-store"}});
    j.field("text", body).flag("body", false).raw("}");
    return done();
  }
  // CORS preflights are the origin's (CORS_ORIGINS lives there); the rest is routed here.
  const bool preflight = f.method == "OPTIONS";
  auto route = nic::route(preflight ? std::string_view("GET") : f.method, target);
  if (!route) {
    error_response(route.error(), f, {});
    return done();
  }
  if (preflight || route->kind != nic::RouteKind::Image) {
    Json j(g.out);
    j.raw("{").field("do", "forward").field("url", g.settings.origin + std::string(target)).raw("}");
    return done();
  }
  auto req = nic::prepare_image_request(route->image, route->path, route->query, f.accept, g.settings.core,
                                        g.settings.hmac_secret);
  if (!req) {
    error_response(req.error(), f, {});
    return done();
  }
  Headers fwd;
  if (!f.accept.empty()) fwd.emplace_back("accept", std::string(f.accept));
  fwd.emplace_back("x-request-id", std::string(f.request_id));
  Json j(g.out);
  j.raw("{").field("do", "lookup").field("key", req->key).flag("vary", req->vary_accept);
  // Cloudflare's cache ignores Vary: Accept, so the variant is in the URL.
  j.field("cache", std::string(site) + "/__nic/edge-cache/" + req->key_hash);
  j.field("origin", g.settings.origin + std::string(target)).headers("fwd", fwd).raw("}");
  return done();
}

// Input: the cache key. Answer:
//   {"leader":true,"flight":F,"wait":ms,"wake":[waiters of a stale flight]}
//   {"leader":false,"flight":F,"waiter":W,"wait":ms}
NIC_EXPORT(nic_join) std::int32_t nic_join(std::int32_t len, std::int32_t vary, double now_ms) {
  const std::string_view key(g.in.data(), static_cast<std::size_t>(len));
  const auto now = static_cast<std::int64_t>(now_ms);
  std::vector<nic::WaiterId> wake;
  if (const auto existing = g.flights->find(key)) {
    const auto info = g.flight_info.find(*existing);
    if (info == g.flight_info.end() || now - info->second.started_ms > stale_flight_ms()) {
      wake = g.flights->fail(*existing);
      g.flight_info.erase(*existing);
    }
  }
  const auto joined = g.flights->join(key, now);
  if (joined.leader) g.flight_info[joined.flight] = FlightInfo{std::string(key), vary != 0, now};
  Json j(g.out);
  j.raw("{").flag("leader", joined.leader).field("flight", static_cast<std::int64_t>(joined.flight));
  if (!joined.leader) j.field("waiter", static_cast<std::int64_t>(joined.waiter));
  j.field("wait", g.settings.follower_timeout_ms);
  if (joined.leader) j.ids("wake", wake);
  j.raw("}");
  return done();
}

// The leader's origin answer arrived. Input: the origin's message. Answer:
//   {"status":S,"headers":[[k,v]..],"store":bool}
// "headers" is what every requester builds on (and what is cached when
// "store": only a 200 whose key matches ours). Errors pass through unchanged.
// The flight stays in the air until nic_complete, so requests arriving while
// the worker stores the result still join it instead of leading a new one.
NIC_EXPORT(nic_result) std::int32_t nic_result(std::int32_t len, double flight_id) {
  const auto flight = static_cast<nic::FlightId>(flight_id);
  auto m = parse_message(std::string_view(g.in.data(), static_cast<std::size_t>(len)));
  FlightInfo info;
  if (auto it = g.flight_info.find(flight); it != g.flight_info.end()) info = it->second;

  for (const auto hop : {"transfer-encoding", "connection", "keep-alive"}) drop_header(m.headers, hop);
  // The worker hands over decoded bytes; their length is the body's own.
  if (find_header(m.headers, "content-encoding")) drop_header(m.headers, "content-length");
  bool store = false;
  if (m.status == 200 && !info.key.empty()) {
    const auto* origin_key = find_header(m.headers, "x-cache-key");
    // A mismatch means the two disagree on the key: never store such bytes.
    store = (!origin_key || *origin_key == info.key) && !find_header(m.headers, "set-cookie");
    for (const auto name : {"x-cache", "x-cache-tier", "x-request-id", "age", "date"}) {
      drop_header(m.headers, name);
    }
    set_header(m.headers, "cache-control", nic::image_cache_control(g.settings.cache_ttl_seconds));
    if (info.vary) {
      set_header(m.headers, "vary", "Accept");
    } else {
      drop_header(m.headers, "vary");
    }
    set_header(m.headers, "x-cache-key", info.key);
  } else if (!info.key.empty() && !find_header(m.headers, "x-cache-key")) {
    m.headers.emplace_back("x-cache-key", info.key);
  }
  Json j(g.out);
  j.raw("{").field("status", m.status).headers("headers", m.headers).flag("store", store).raw("}");
  return done();
}

// The leader's result is ready for everyone (and stored, when it is stored):
// the flight lands. Answer: {"waiters":[W..]} to wake with the result.
static std::int32_t land(double flight_id, bool ok) {
  const auto flight = static_cast<nic::FlightId>(flight_id);
  g.flight_info.erase(flight);
  const auto waiters = ok ? g.flights->complete(flight) : g.flights->fail(flight);
  Json j(g.out);
  j.raw("{").ids("waiters", waiters).raw("}");
  return done();
}

NIC_EXPORT(nic_complete) std::int32_t nic_complete(std::int32_t, double flight_id) { return land(flight_id, true); }

// The leader could not reach the origin. Answer: {"waiters":[W..]}.
NIC_EXPORT(nic_fail) std::int32_t nic_fail(std::int32_t, double flight_id) { return land(flight_id, false); }

// Followers whose deadline has passed. Answer: {"expired":[W..],"next":ms}
// (next: milliseconds until the next deadline, -1 when none).
NIC_EXPORT(nic_expire) std::int32_t nic_expire(std::int32_t, double now_ms) {
  const auto now = static_cast<std::int64_t>(now_ms);
  const auto expired = g.flights->expire(now);
  std::vector<nic::WaiterId> ids;
  ids.reserve(expired.size());
  for (const auto& [flight, waiter] : expired) ids.push_back(waiter);
  const auto next = g.flights->next_deadline();
  Json j(g.out);
  j.raw("{").ids("expired", ids).field("next", next ? (*next > now ? *next - now : 0) : -1).raw("}");
  return done();
}

// The response for one requester. Input: the request fields, then \0 and a
// message (a cached response for source 0, the flight's result otherwise);
// `vary`: the requester's own "vary" from nic_decide.
// Answer: {"status":..,"headers":[[k,v]..],"body":bool} (body: send the bytes).
NIC_EXPORT(nic_respond) std::int32_t nic_respond(std::int32_t len, std::int32_t source, std::int32_t vary) {
  const auto f = parse_fields(std::string_view(g.in.data(), static_cast<std::size_t>(len)));
  auto m = parse_message(f.rest);
  bool body = f.method != "HEAD";
  if (m.status == 200) {
    const auto src = static_cast<Source>(source);
    // Vary is the requester's own: fmt=auto and fmt=original can share a key
    // (and so a stored response) while only the first depends on Accept.
    if (vary != 0) {
      set_header(m.headers, "vary", "Accept");
    } else {
      drop_header(m.headers, "vary");
    }
    set_header(m.headers, "x-cache", src == Source::Hit ? "HIT" : "MISS");
    set_header(m.headers, "x-cache-tier",
               src == Source::Hit      ? "EDGE"
               : src == Source::Leader ? "ORIGIN"
                                       : "COALESCED");
    set_header(m.headers, "x-request-id", std::string(f.request_id));
    const auto* etag = find_header(m.headers, "etag");
    if (!f.if_none_match.empty() && etag && nic::if_none_match(f.if_none_match, *etag)) {
      m.status = 304;
      body = false;
      // RFC 9110 §15.4.5: a 304 carries the validators and caching headers only.
      std::erase_if(m.headers, [](const Header& kv) {
        for (const auto keep : {"cache-control", "etag", "vary", "expires", "content-location", "x-cache",
                                "x-cache-tier", "x-cache-key", "x-request-id"}) {
          if (kv.first == keep) return false;
        }
        return true;
      });
    }
  }
  Json j(g.out);
  j.raw("{").field("status", m.status).headers("headers", m.headers).flag("body", body).raw("}");
  return done();
}

// The origin could not be used for this requester. Input: the request fields,
// then \0 reason \0 key; reason "TimeoutError" -> 504 UPSTREAM_TIMEOUT, else 502
// UPSTREAM_ERROR. Answer: like nic_decide's "respond".
NIC_EXPORT(nic_error) std::int32_t nic_error(std::int32_t len) {
  const auto f = parse_fields(std::string_view(g.in.data(), static_cast<std::size_t>(len)));
  const auto at = f.rest.find('\0');
  const auto reason = f.rest.substr(0, at);
  const auto key = at == std::string_view::npos ? std::string_view{} : f.rest.substr(at + 1);
  if (reason == "TimeoutError") {
    error_response(
        nic::make_error(ErrorCode::UpstreamTimeout, "the origin did not answer within FOLLOWER_TIMEOUT_MS (" +
                                                        number(g.settings.follower_timeout_ms) + " ms)"),
        f, key);
  } else {
    error_response(nic::make_error(ErrorCode::UpstreamError,
                                   "the origin could not be reached (" + std::string(reason) + ")"),
                   f, key);
  }
  return done();
}

// For the benchmark: the flight table's counters and size.
NIC_EXPORT(nic_stats) std::int32_t nic_stats() {
  g.out = stats_json();
  return done();
}
