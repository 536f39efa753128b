// The edge's decisions, over nic_core, for the Cloudflare worker (wasm/worker.mjs).
//
// ABI: the worker writes one UTF-8 input string into the buffer nic_input()
// returns, calls an entry point with its length, and reads a JSON answer of the
// returned length at nic_output(). Fields inside an input are separated by NUL
// (no header or URL can contain one). The request fields, in order:
//   method \0 url \0 accept \0 if-none-match \0 request-id \0 origin \0 range
//   \0 if-range \0 client-ip
// Per-request state stays in the worker (it passes the request fields back);
// the module keeps only the settings and the flight table of this isolate.
//
// What the edge stores next to an image (never sent to a client):
//   x-nic-generation   the source's purge generation the copy was made under
//   x-nic-fresh-until  epoch ms after which the copy is stale (then only
//                      served when the origin fails: stale-if-error)
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
#include "nic/percent.h"
#include "nic/route.h"
#include "nic/settings.h"
#include "nic/url.h"

#define NIC_EXPORT(name) extern "C" __attribute__((export_name(#name), visibility("default")))

namespace {

using nic::ErrorCode;

constexpr std::string_view kGenerationHeader = "x-nic-generation";
constexpr std::string_view kFreshUntilHeader = "x-nic-fresh-until";
// A normalised origin answer travels inside the flight as "CODE message".
constexpr std::string_view kErrorHeader = "x-nic-error";
// KV key prefix of a source's purge generation.
constexpr std::string_view kGenerationKey = "gen/";
// The generation when KV could not be read: serve what is stored, store nothing.
constexpr std::string_view kUnknownGeneration = "?";
constexpr std::string_view kStaleCacheControl = "public, max-age=60";

struct EdgeSettings {
  nic::CoreSettings core;
  std::string origin;  // scheme://host[:port], no trailing '/'
  std::int64_t follower_timeout_ms = 20000;
  std::int64_t cache_ttl_seconds = 86400;
  std::int64_t stale_if_error_seconds = 86400;
  std::int64_t purge_check_seconds = 60;
  std::string hmac_secret;
  std::string edge_secret;
  std::vector<std::string> cors_origins{"*"};
  bool purge_kv = false;     // the worker has the NIC_PURGE KV binding
  bool debug_stats = false;  // EDGE_DEBUG_STATS=1: GET /__nic/edge-stats (tests, benchmarks)
};

// What a flight needs to turn the origin's answer into the edge's.
struct FlightInfo {
  std::string key;
  std::string generation;
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

// The next NUL-separated field of `rest` (consumed).
std::string_view next_field(std::string_view& rest) {
  const auto at = rest.find('\0');
  const auto field = rest.substr(0, at);
  rest = at == std::string_view::npos ? std::string_view{} : rest.substr(at + 1);
  return field;
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

// Adds a token to Vary unless it is there already.
void add_vary(Headers& h, std::string_view token) {
  for (auto& [k, v] : h) {
    if (!iequals(k, "vary")) continue;
    for (const auto part : split(v, ',')) {
      if (iequals(trim(part), token)) return;
    }
    v += ", ";
    v += token;
    return;
  }
  h.emplace_back("vary", std::string(token));
}

// Headers that make a response cacheable anywhere downstream.
void drop_caching_headers(Headers& h) {
  for (const auto name : {"expires", "age", "etag", "last-modified", "cdn-cache-control", "cloudflare-cdn-cache-control",
                          "surrogate-control", "set-cookie", "cache-tag"}) {
    drop_header(h, name);
  }
}

// ---- a small JSON reader (origin answers: errors, purges, health) ------------

struct JsonValue {
  enum class Kind : std::uint8_t { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  std::optional<std::int64_t> integer;  // numbers that are integers
  std::string text;                     // strings
  std::vector<JsonValue> items;         // array items, object values
  std::vector<std::string> names;       // object member names

  const JsonValue* get(std::string_view name) const {
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (names[i] == name) return &items[i];
    }
    return nullptr;
  }
};

class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : s_(text) {}

  std::optional<JsonValue> document() {
    JsonValue v;
    if (!value(v, 0)) return std::nullopt;
    space();
    if (i_ != s_.size()) return std::nullopt;
    return v;
  }

 private:
  static constexpr int kMaxDepth = 16;
  std::string_view s_;
  std::size_t i_ = 0;

  void space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool eat(char c) {
    space();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }
  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = lower(c);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
  }
  bool code_unit(std::uint32_t& u) {
    if (i_ + 4 > s_.size()) return false;
    u = 0;
    for (int k = 0; k < 4; ++k) {
      const int d = hex(s_[i_++]);
      if (d < 0) return false;
      u = u * 16 + static_cast<std::uint32_t>(d);
    }
    return true;
  }
  static void utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  bool string(std::string& out) {
    if (!eat('"')) return false;
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) return false;
      const char e = s_[i_++];
      switch (e) {
        case '"': case '\\': case '/': out += e; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          std::uint32_t u = 0;
          if (!code_unit(u)) return false;
          if (u >= 0xD800 && u < 0xDC00) {
            std::uint32_t low = 0;
            if (!literal("\\u") || !code_unit(low) || low < 0xDC00 || low >= 0xE000) return false;
            u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00);
          } else if (u >= 0xDC00 && u < 0xE000) {
            return false;
          }
          utf8(out, u);
          break;
        }
        default: return false;
      }
    }
    return false;
  }
  bool num(JsonValue& v) {
    const std::size_t start = i_;
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    bool digits = false;
    bool integral = true;
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (c >= '0' && c <= '9') {
        digits = true;
      } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || (c == '-' && i_ > start)) {
        integral = false;
      } else {
        break;
      }
      ++i_;
    }
    if (!digits) return false;
    v.kind = JsonValue::Kind::Number;
    if (integral) v.integer = parse_number(s_.substr(start, i_ - start));
    return true;
  }
  bool value(JsonValue& v, int depth) {
    if (depth > kMaxDepth) return false;
    space();
    if (i_ >= s_.size()) return false;
    const char c = s_[i_];
    if (c == '{') {
      ++i_;
      v.kind = JsonValue::Kind::Object;
      if (eat('}')) return true;
      do {
        v.names.emplace_back();
        v.items.emplace_back();
        if (!string(v.names.back()) || !eat(':') || !value(v.items.back(), depth + 1)) return false;
      } while (eat(','));
      return eat('}');
    }
    if (c == '[') {
      ++i_;
      v.kind = JsonValue::Kind::Array;
      if (eat(']')) return true;
      do {
        v.items.emplace_back();
        if (!value(v.items.back(), depth + 1)) return false;
      } while (eat(','));
      return eat(']');
    }
    if (c == '"') {
      v.kind = JsonValue::Kind::String;
      return string(v.text);
    }
    if (literal("true") || literal("false")) {
      v.kind = JsonValue::Kind::Bool;
      return true;
    }
    if (literal("null")) return true;
    return num(v);
  }
};

std::optional<JsonValue> parse_json(std::string_view text) {
  return JsonReader(text).document();
}

bool is_json(const Headers& h) {
  const auto* type = find_header(h, "content-type");
  return type && iequals(trim(type->substr(0, type->find(';'))), "application/json");
}

// The contract's error body, with the answer's own status:
// {"error":{"status":S,"code":"UPPER_CASE","message":"...","requestId":"..."}}.
bool is_contract_error(int status, std::string_view body) {
  const auto doc = parse_json(body);
  const auto* error = doc ? doc->get("error") : nullptr;
  if (!error || error->kind != JsonValue::Kind::Object) return false;
  const auto* st = error->get("status");
  const auto* code = error->get("code");
  const auto* message = error->get("message");
  const auto* id = error->get("requestId");
  if (!st || !st->integer || *st->integer != status) return false;
  if (!code || code->kind != JsonValue::Kind::String || code->text.empty()) return false;
  for (const char c : code->text) {
    if (!((c >= 'A' && c <= 'Z') || c == '_')) return false;
  }
  return message && message->kind == JsonValue::Kind::String && id && id->kind == JsonValue::Kind::String;
}

// /health's own report: {"status":"ok"|"degraded"|...}.
bool is_health_report(std::string_view body) {
  const auto doc = parse_json(body);
  const auto* st = doc ? doc->get("status") : nullptr;
  return st && st->kind == JsonValue::Kind::String;
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
  std::string_view method, url, accept, if_none_match, request_id, origin, range, if_range, client_ip;
  std::string_view rest;  // whatever follows the request fields
};

RequestFields parse_fields(std::string_view input) {
  RequestFields f;
  for (auto* slot : {&f.method, &f.url, &f.accept, &f.if_none_match, &f.request_id, &f.origin, &f.range,
                     &f.if_range, &f.client_ip}) {
    *slot = next_field(input);
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

// ---- policies -------------------------------------------------------------------

// CORS from CORS_ORIGINS, the same rule as the origin's: "*" -> any origin;
// else the request's Origin when listed (then the answer varies on Origin).
// No Origin header, or one not listed: no CORS headers.
void apply_cors(Headers& h, std::string_view request_origin) {
  for (const auto name : {"access-control-allow-origin", "access-control-allow-credentials"}) drop_header(h, name);
  if (request_origin.empty()) return;
  bool any = false;
  bool listed = false;
  for (const auto& o : g.settings.cors_origins) {
    any = any || o == "*";
    listed = listed || o == request_origin;
  }
  if (any) {
    h.emplace_back("access-control-allow-origin", "*");
  } else if (listed) {
    h.emplace_back("access-control-allow-origin", std::string(request_origin));
    add_vary(h, "Origin");
  }
}

// Every image answer: nosniff; SVG (never rasterised) gets a CSP that keeps
// its scripts from running on the CDN's origin.
void apply_image_policy(Headers& h) {
  set_header(h, "x-content-type-options", "nosniff");
  const auto* type = find_header(h, "content-type");
  if (type && iequals(trim(type->substr(0, type->find(';'))), "image/svg+xml")) {
    set_header(h, "content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox");
  }
}

// A Range header against a body of `length` bytes (RFC 9110 §14): one
// "bytes=" range is served as 206; several ranges, another unit, a malformed
// header or an If-Range that does not match the ETag serve the whole body.
struct RangeDecision {
  enum class Kind : std::uint8_t { Whole, Partial, Unsatisfiable } kind = Kind::Whole;
  std::int64_t first = 0;  // inclusive
  std::int64_t last = 0;   // inclusive
};

RangeDecision decide_range(std::string_view header, std::string_view if_range, const std::string* etag,
                           std::int64_t length) {
  RangeDecision d;
  header = trim(header);
  if (header.empty() || length < 0) return d;
  if (!trim(if_range).empty() && (!etag || trim(if_range) != *etag || etag->starts_with("W/"))) return d;
  if (header.size() < 6 || !iequals(header.substr(0, 6), "bytes=")) return d;
  const auto spec = trim(header.substr(6));
  if (spec.find(',') != std::string_view::npos) return d;
  const auto dash = spec.find('-');
  if (dash == std::string_view::npos) return d;
  const auto a = trim(spec.substr(0, dash));
  const auto b = trim(spec.substr(dash + 1));
  const auto digits = [](std::string_view s) {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
  };
  if (a.empty()) {  // suffix: the last N bytes
    if (!digits(b)) return d;
    const auto n = parse_number(b);
    if (!n) return d;
    if (*n == 0 || length == 0) return {RangeDecision::Kind::Unsatisfiable};
    return {RangeDecision::Kind::Partial, *n >= length ? 0 : length - *n, length - 1};
  }
  if (!digits(a) || (!b.empty() && !digits(b))) return d;
  const auto first = parse_number(a);
  const auto last = b.empty() ? std::optional<std::int64_t>(length - 1) : parse_number(b);
  if (!first || !last) return d;
  if (*first >= length) return {RangeDecision::Kind::Unsatisfiable};
  if (*last < *first) return d;
  return {RangeDecision::Kind::Partial, *first, *last < length ? *last : length - 1};
}

// The source of a key "v1/{ws}/{id}/{file}?..": its id (global in Notion).
std::string_view source_id_of_key(std::string_view key) {
  const auto parts = split(key.substr(0, key.find('?')), '/');
  return parts.size() >= 3 ? parts[2] : std::string_view{};
}

std::string generation_key(std::string_view id) {
  return std::string(kGenerationKey) + std::string(id);
}

// ---- answers -------------------------------------------------------------------------

// {"status":..,"headers":..,"body":bool[,"text":..][,"range":[a,b)][,"use":..]}
void answer(const Message& m, bool body, const std::string* text = nullptr, const RangeDecision* range = nullptr,
            std::string_view use = "result") {
  Json j(g.out);
  j.raw("{").field("status", m.status).headers("headers", m.headers).flag("body", body);
  if (text) j.field("text", *text);
  if (range && range->kind == RangeDecision::Kind::Partial) {
    j.key("range").raw("[").raw(number(range->first)).raw(",").raw(number(range->last + 1)).raw("]");
  }
  j.field("use", use).raw("}");
}

// The contract's error: JSON, no-store, never cached, CORS for the requester.
void error_response(const nic::Error& error, const RequestFields& f, std::string_view key) {
  Message m{nic::http_status(error.code),
            {{"content-type", "application/json"},
             {"cache-control", std::string(nic::kErrorCacheControl)},
             {"x-request-id", std::string(f.request_id)}}};
  if (!key.empty()) m.headers.emplace_back("x-cache-key", std::string(key));
  if (error.code == ErrorCode::MethodNotAllowed) m.headers.emplace_back("allow", "GET, HEAD");
  if (error.code == ErrorCode::Overloaded) m.headers.emplace_back("retry-after", "1");
  apply_cors(m.headers, f.origin);
  const std::string text = nic::error_json(error, f.request_id);
  answer(m, false, f.method == "HEAD" ? nullptr : &text);
}

// The stored copy at `head` may stand in for a failed origin: same generation
// and within STALE_IF_ERROR_SECONDS past its TTL. Returns how far past (s).
std::optional<std::int64_t> stale_past(std::string_view head, std::string_view generation, std::int64_t now) {
  if (head.empty()) return std::nullopt;
  const auto m = parse_message(head);
  const auto* gen = find_header(m.headers, kGenerationHeader);
  const auto* until = find_header(m.headers, kFreshUntilHeader);
  if (m.status != 200 || !until) return std::nullopt;
  if (generation != kUnknownGeneration && (gen ? std::string_view(*gen) : std::string_view{}) != generation) {
    return std::nullopt;
  }
  const auto fresh_until = parse_number(*until);
  if (!fresh_until || now > *fresh_until + g.settings.stale_if_error_seconds * 1000) return std::nullopt;
  return now > *fresh_until ? (now - *fresh_until) / 1000 : 0;
}

// One requester's image answer from a stored or shared 200.
void image_answer(Message m, const RequestFields& f, Source src, bool vary, std::optional<std::int64_t> stale) {
  bool body = f.method != "HEAD";
  for (const auto name : {kGenerationHeader, kFreshUntilHeader, std::string_view("cache-tag")}) {
    drop_header(m.headers, name);
  }
  // Vary is the requester's own: fmt=auto and fmt=original can share a key
  // (and so a stored response) while only the first depends on Accept.
  drop_header(m.headers, "vary");
  if (vary) m.headers.emplace_back("vary", "Accept");
  set_header(m.headers, "x-cache", src == Source::Hit ? "HIT" : "MISS");
  set_header(m.headers, "x-cache-tier",
             src == Source::Hit      ? "EDGE"
             : src == Source::Leader ? "ORIGIN"
                                     : "COALESCED");
  set_header(m.headers, "x-request-id", std::string(f.request_id));
  if (stale) {
    set_header(m.headers, "cache-control", std::string(kStaleCacheControl));
    set_header(m.headers, "x-cache-stale", number(*stale));
  } else {
    set_header(m.headers, "cache-control", nic::image_cache_control(g.settings.cache_ttl_seconds));
  }
  set_header(m.headers, "accept-ranges", "bytes");
  apply_image_policy(m.headers);
  apply_cors(m.headers, f.origin);
  const auto* etag = find_header(m.headers, "etag");
  if (!f.if_none_match.empty() && etag && nic::if_none_match(f.if_none_match, *etag)) {
    m.status = 304;
    // RFC 9110 §15.4.5: a 304 carries the validators and caching headers only.
    std::erase_if(m.headers, [](const Header& kv) {
      for (const auto keep : {"cache-control", "etag", "vary", "expires", "content-location", "x-cache",
                              "x-cache-tier", "x-cache-key", "x-cache-stale", "x-request-id",
                              "access-control-allow-origin", "x-content-type-options"}) {
        if (kv.first == keep) return false;
      }
      return true;
    });
    answer(m, false, nullptr, nullptr, stale ? "stale" : "result");
    return;
  }
  const auto* length_header = find_header(m.headers, "content-length");
  const auto length = length_header ? parse_number(*length_header) : std::nullopt;
  RangeDecision range;
  if (length) range = decide_range(f.range, f.if_range, etag, *length);
  if (range.kind == RangeDecision::Kind::Unsatisfiable) {
    Message r{416,
              {{"content-type", "application/json"},
               {"cache-control", std::string(nic::kErrorCacheControl)},
               {"content-range", "bytes */" + number(*length)},
               {"x-request-id", std::string(f.request_id)}}};
    if (const auto* key = find_header(m.headers, "x-cache-key")) r.headers.emplace_back("x-cache-key", *key);
    apply_cors(r.headers, f.origin);
    const std::string text = "{\"error\":{\"status\":416,\"code\":\"RANGE_NOT_SATISFIABLE\",\"message\":\"" +
                             nic::json_escape("Range: " + std::string(trim(f.range)) + " is outside the " +
                                              number(*length) + " bytes of this image") +
                             "\",\"requestId\":\"" + nic::json_escape(f.request_id) + "\"}}";
    answer(r, false, f.method == "HEAD" ? nullptr : &text);
    return;
  }
  if (range.kind == RangeDecision::Kind::Partial) {
    m.status = 206;
    set_header(m.headers, "content-range",
               "bytes " + number(range.first) + "-" + number(range.last) + "/" + number(*length));
    set_header(m.headers, "content-length", number(range.last - range.first + 1));
  }
  answer(m, body, nullptr, body ? &range : nullptr, stale ? "stale" : "result");
}

// An origin answer that is not the contract's: the contract's error instead.
nic::Error normalised_error(const Message& m) {
  const auto* type = find_header(m.headers, "content-type");
  const std::string what = "the origin answered " + number(m.status) + " (" + (type ? *type : "no content type") +
                           ") without the contract's JSON error";
  const bool timeout = m.status == 504 || m.status == 408 || m.status == 524;
  return nic::make_error(timeout ? ErrorCode::UpstreamTimeout : ErrorCode::UpstreamError, what);
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
  } else if (name == "STALE_IF_ERROR_SECONDS") {
    auto v = nic::parse_int_setting(value, 0, 31536000, name);
    if (!v) return v.take_error();
    s.stale_if_error_seconds = *v;
  } else if (name == "PURGE_CHECK_SECONDS") {
    // Workers KV caches a read at a location for at least 60 s.
    auto v = nic::parse_int_setting(value, 60, 86400, name);
    if (!v) return v.take_error();
    s.purge_check_seconds = *v;
  } else if (name == "CORS_ORIGINS") {
    s.cors_origins.clear();
    for (const auto part : split(value, ',')) {
      const auto o = trim(part);
      if (o.empty()) continue;
      if (o != "*" && !(o.starts_with("http://") || o.starts_with("https://"))) {
        return nic::make_error(ErrorCode::Internal,
                               "CORS_ORIGINS: \"" + std::string(o) + "\" is neither * nor an http(s) origin");
      }
      s.cors_origins.emplace_back(o);
    }
  } else if (name == "HMAC_SECRET") {
    s.hmac_secret = std::string(value);
  } else if (name == "EDGE_SECRET") {
    s.edge_secret = std::string(value);
  } else if (name == "NIC_PURGE_KV") {
    s.purge_kv = value == "1";
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

// Headers the edge adds to every request it sends to the origin: the client's
// address, vouched for by EDGE_SECRET (the origin trusts X-Client-IP only with it).
Headers origin_headers(const RequestFields& f) {
  Headers h{{"x-request-id", std::string(f.request_id)}};
  if (!f.client_ip.empty()) h.emplace_back("x-client-ip", std::string(f.client_ip));
  if (!g.settings.edge_secret.empty()) h.emplace_back("x-edge-secret", g.settings.edge_secret);
  return h;
}

// The generations a successful purge bumps: the ids in the origin's
// "prefixes" (v1/{ws}/{id}/), else the id of the /img path or CDN URL purged.
std::vector<std::string> purged_ids(std::string_view target, std::string_view body) {
  std::vector<std::string> ids;
  if (const auto doc = parse_json(body)) {
    if (const auto* prefixes = doc->get("prefixes"); prefixes && prefixes->kind == JsonValue::Kind::Array) {
      for (const auto& p : prefixes->items) {
        const auto id = source_id_of_key(p.text);
        if (p.kind == JsonValue::Kind::String && p.text.starts_with("v1/") && !id.empty()) ids.emplace_back(id);
      }
    }
  }
  if (!ids.empty()) return ids;
  const auto q = target.find('?');
  if (q == std::string_view::npos) return ids;
  for (const auto param : split(target.substr(q + 1), '&')) {
    if (!param.starts_with("url=")) continue;
    auto url = nic::percent_decode(param.substr(4), ErrorCode::InvalidParam);
    if (!url) continue;
    std::string_view path = *url;
    if (!path.starts_with("/img/")) path = split_url(path).second;
    if (auto image = nic::parse_image_path(path.substr(0, path.find('?')))) ids.push_back(image->id);
  }
  return ids;
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

// Input: "NAME=value" lines (the worker's string env vars, plus NIC_PURGE_KV=1
// when the KV binding exists; unknown names are ignored). Answer: {"ok":true}
// or {"ok":false,"error":"..."}; after an error every request is answered 500
// with the message naming the variable.
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
//   {"status":..,"headers":[[k,v]..],"body":false,"text":"..","use":"result"}   (answered here)
//   {"do":"forward","url":..,"wait":ms,"set":[[k,v]..],"drop":[k..]}   (not an image: the origin answers)
//   {"do":"lookup","key":..,"vary":..,"cache":<cache URL>,"gen":<KV key or "">,"genTtl":s,
//    "origin":<URL>,"fwd":[[k,v]..]}
NIC_EXPORT(nic_decide) std::int32_t nic_decide(std::int32_t len) {
  const std::string_view input(g.in.data(), static_cast<std::size_t>(len));
  const auto f = parse_fields(input);
  if (g.init_error) {
    error_response(*g.init_error, f, {});
    return done();
  }
  const auto [site, target] = split_url(f.url);
  if (g.settings.debug_stats && target == "/__nic/edge-stats") {
    const auto body = stats_json();
    answer({200, {{"content-type", "application/json"}, {"cache-control", "no-store"}}}, false, &body);
    return done();
  }
  if (f.method == "OPTIONS") {  // CORS preflight, answered here for every route (as the origin does)
    Message m{204,
              {{"access-control-allow-methods", "GET, HEAD, DELETE, OPTIONS"},
               {"access-control-allow-headers", "Authorization, X-API-Key, If-None-Match, Range, If-Range"},
               {"access-control-max-age", "86400"},
               {"x-request-id", std::string(f.request_id)}}};
    apply_cors(m.headers, f.origin);
    answer(m, false);
    return done();
  }
  auto route = nic::route(f.method, target);
  if (!route) {
    error_response(route.error(), f, {});
    return done();
  }
  if (route->kind != nic::RouteKind::Image) {
    Json j(g.out);
    j.raw("{").field("do", "forward").field("url", g.settings.origin + std::string(target));
    j.field("wait", g.settings.follower_timeout_ms).headers("set", origin_headers(f));
    j.raw(",\"drop\":[\"x-edge-secret\",\"x-client-ip\"]}");
    return done();
  }
  auto req = nic::prepare_image_request(route->image, route->path, route->query, f.accept, g.settings.core,
                                        g.settings.hmac_secret);
  if (!req) {
    error_response(req.error(), f, {});
    return done();
  }
  Headers fwd = origin_headers(f);
  if (!f.accept.empty()) fwd.emplace_back("accept", std::string(f.accept));
  // Tests only: lets a scripted origin answer with the key the edge expects.
  if (g.settings.debug_stats) fwd.emplace_back("x-nic-edge-key", req->key);
  Json j(g.out);
  j.raw("{").field("do", "lookup").field("key", req->key).flag("vary", req->vary_accept);
  // Cloudflare's cache ignores Vary: Accept, so the variant is in the URL.
  j.field("cache", std::string(site) + "/__nic/edge-cache/" + req->key_hash);
  j.field("gen", g.settings.purge_kv ? generation_key(req->image.id) : std::string());
  j.field("genTtl", g.settings.purge_check_seconds);
  j.field("origin", g.settings.origin + std::string(target)).headers("fwd", fwd).raw("}");
  return done();
}

// Input: key \0 generation. Answer:
//   {"leader":true,"flight":F,"wait":ms,"wake":[waiters of a stale flight]}
//   {"leader":false,"flight":F,"waiter":W,"wait":ms}
// A request made after a purge never joins a flight from before it: the
// generation is part of the flight's key.
NIC_EXPORT(nic_join) std::int32_t nic_join(std::int32_t len, double now_ms) {
  std::string_view rest(g.in.data(), static_cast<std::size_t>(len));
  const auto key = next_field(rest);
  const auto generation = next_field(rest);
  std::string flight_key(key);
  flight_key += '\n';
  flight_key += generation;
  const auto now = static_cast<std::int64_t>(now_ms);
  std::vector<nic::WaiterId> wake;
  if (const auto existing = g.flights->find(flight_key)) {
    const auto info = g.flight_info.find(*existing);
    if (info == g.flight_info.end() || now - info->second.started_ms > stale_flight_ms()) {
      wake = g.flights->fail(*existing);
      g.flight_info.erase(*existing);
    }
  }
  const auto joined = g.flights->join(flight_key, now);
  if (joined.leader) g.flight_info[joined.flight] = FlightInfo{std::string(key), std::string(generation), now};
  Json j(g.out);
  j.raw("{").flag("leader", joined.leader).field("flight", static_cast<std::int64_t>(joined.flight));
  if (!joined.leader) j.field("waiter", static_cast<std::int64_t>(joined.waiter));
  j.field("wait", g.settings.follower_timeout_ms);
  if (joined.leader) j.ids("wake", wake);
  j.raw("}");
  return done();
}

// The leader's origin answer arrived. Input: the origin's message [\0 its body
// as text]. Answer: {"inspect":true} (call again with the body), or
//   {"status":S,"headers":[[k,v]..],"store":bool}
// "headers" is what every requester builds on (and what is cached when
// "store": only a 200 whose X-Cache-Key equals ours). A contract error passes
// through (no-store); any other answer becomes the contract's 502/504.
// The flight stays in the air until nic_complete, so requests arriving while
// the worker stores the result still join it instead of leading a new one.
NIC_EXPORT(nic_result) std::int32_t nic_result(std::int32_t len, double flight_id, double now_ms) {
  std::string_view rest(g.in.data(), static_cast<std::size_t>(len));
  const auto head = next_field(rest);
  const bool have_body = head.size() < static_cast<std::size_t>(len);  // a \0 and a body followed
  const auto flight = static_cast<nic::FlightId>(flight_id);
  auto m = parse_message(head);
  FlightInfo info;
  if (auto it = g.flight_info.find(flight); it != g.flight_info.end()) info = it->second;

  for (const auto hop : {"transfer-encoding", "connection", "keep-alive"}) drop_header(m.headers, hop);
  // The worker hands over decoded bytes; their length is the body's own.
  if (find_header(m.headers, "content-encoding")) drop_header(m.headers, "content-length");
  bool store = false;
  if (m.status == 200) {
    const auto* origin_key = find_header(m.headers, "x-cache-key");
    // Only what the origin says is the very variant we asked for is stored.
    store = origin_key && *origin_key == info.key && !info.key.empty() && !find_header(m.headers, "set-cookie") &&
            info.generation != kUnknownGeneration;
    for (const auto name : {"x-cache", "x-cache-tier", "x-request-id", "age", "date", "set-cookie", "vary",
                            "access-control-allow-origin", "access-control-allow-credentials"}) {
      drop_header(m.headers, name);
    }
    const auto ttl = g.settings.cache_ttl_seconds;
    const auto now = static_cast<std::int64_t>(now_ms);
    // Kept for TTL + the stale-if-error window; fresh for TTL (x-nic-fresh-until).
    const auto keep = ttl + g.settings.stale_if_error_seconds;
    set_header(m.headers, "cache-control", "public, max-age=" + number(keep) + ", s-maxage=" + number(keep));
    set_header(m.headers, std::string(kGenerationHeader), info.generation);
    set_header(m.headers, std::string(kFreshUntilHeader), number(now + ttl * 1000));
    // Cloudflare's purge by tag reaches every data centre's copies of a source.
    set_header(m.headers, "cache-tag", "nic-" + std::string(source_id_of_key(info.key)));
    set_header(m.headers, "x-cache-key", info.key);
  } else {
    if (!have_body) {
      Json(g.out).raw("{\"inspect\":true}");
      return done();
    }
    if (is_json(m.headers) && is_contract_error(m.status, rest)) {
      drop_caching_headers(m.headers);
      set_header(m.headers, "cache-control", std::string(nic::kErrorCacheControl));
    } else {
      const auto error = normalised_error(m);
      m = Message{nic::http_status(error.code),
                  {{std::string(kErrorHeader), std::string(nic::to_string(error.code)) + " " + error.message}}};
    }
    if (!info.key.empty()) set_header(m.headers, "x-cache-key", info.key);
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

// The answer for one requester. Input: the request fields, then
//   \0 generation \0 message \0 stale message
// message: the cached response (source 0) or the flight's result; stale
// message: a stored copy past its TTL ("" when none). `vary`: the requester's
// own "vary" from nic_decide. Answer:
//   {"use":"miss","stale":bool}   (source 0 only: not servable as a hit; the
//                                  copy may still stand in if the origin fails)
//   {"status":..,"headers":[[k,v]..],"body":bool,"text"?:..,"range"?:[a,b),"use":"result"|"stale"}
//   ("body": send the message's bytes, or the stale copy's when "use" is "stale";
//   "range": only bytes [a, b) of them).
NIC_EXPORT(nic_respond)
std::int32_t nic_respond(std::int32_t len, std::int32_t source, std::int32_t vary, double now_ms) {
  const auto f = parse_fields(std::string_view(g.in.data(), static_cast<std::size_t>(len)));
  auto rest = f.rest;
  const auto generation = next_field(rest);
  const auto head = next_field(rest);
  const auto stale_head = next_field(rest);
  const auto now = static_cast<std::int64_t>(now_ms);
  const auto src = static_cast<Source>(source);
  auto m = parse_message(head);
  if (src == Source::Hit) {
    const auto* gen = find_header(m.headers, kGenerationHeader);
    const bool purged = generation != kUnknownGeneration &&
                        (gen ? std::string_view(*gen) : std::string_view{}) != generation;
    const auto* until = find_header(m.headers, kFreshUntilHeader);
    const auto fresh_until = until ? parse_number(*until) : std::nullopt;
    if (purged || m.status != 200 || !fresh_until || now >= *fresh_until) {
      Json j(g.out);
      j.raw("{").field("use", "miss").flag("stale", !purged && stale_past(head, generation, now)).raw("}");
      return done();
    }
    image_answer(std::move(m), f, src, vary != 0, std::nullopt);
    return done();
  }
  if (m.status >= 500) {
    if (const auto past = stale_past(stale_head, generation, now)) {
      image_answer(parse_message(stale_head), f, Source::Hit, vary != 0, past);
      return done();
    }
  }
  if (const auto* error = find_header(m.headers, kErrorHeader)) {
    const auto space = error->find(' ');
    const auto code = nic::parse_error_code(std::string_view(*error).substr(0, space));
    const auto* key = find_header(m.headers, "x-cache-key");
    error_response(nic::make_error(code.value_or(ErrorCode::UpstreamError),
                                   space == std::string::npos ? std::string() : error->substr(space + 1)),
                   f, key ? std::string_view(*key) : std::string_view{});
    return done();
  }
  if (m.status == 200) {
    image_answer(std::move(m), f, src, vary != 0, std::nullopt);
    return done();
  }
  apply_cors(m.headers, f.origin);
  answer(m, f.method != "HEAD");
  return done();
}

// The origin could not be used for this requester. Input: the request fields,
// then \0 reason \0 key \0 generation \0 stale message; reason "TimeoutError"
// -> 504 UPSTREAM_TIMEOUT, else 502 UPSTREAM_ERROR, unless the stale copy may
// stand in. Answer: like nic_respond's.
NIC_EXPORT(nic_error) std::int32_t nic_error(std::int32_t len, std::int32_t vary, double now_ms) {
  const auto f = parse_fields(std::string_view(g.in.data(), static_cast<std::size_t>(len)));
  auto rest = f.rest;
  const auto reason = next_field(rest);
  const auto key = next_field(rest);
  const auto generation = next_field(rest);
  const auto stale_head = next_field(rest);
  if (const auto past = stale_past(stale_head, generation, static_cast<std::int64_t>(now_ms))) {
    image_answer(parse_message(stale_head), f, Source::Hit, vary != 0, past);
    return done();
  }
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

// A forwarded route's answer (/health, /metrics, /api/v1/...). Input: the
// request fields, then \0 the origin's message [\0 its body as text]. Answer:
// {"inspect":true} (call again with the body), or like nic_respond's, plus
// "bump":[[KV key, generation]..] after a successful purge (the worker writes
// them before answering). A contract error or /health's report passes through
// (no-store); any other error answer becomes the contract's 502/504.
NIC_EXPORT(nic_forwarded) std::int32_t nic_forwarded(std::int32_t len) {
  const auto f = parse_fields(std::string_view(g.in.data(), static_cast<std::size_t>(len)));
  auto rest = f.rest;
  const auto head = next_field(rest);
  const bool have_body = head.size() < f.rest.size();
  const auto body = rest;
  auto m = parse_message(head);
  const auto target = split_url(f.url).second;
  const auto route = nic::route(f.method, target);
  const bool purge = route && route->kind == nic::RouteKind::CachePurge;
  const bool head_request = f.method == "HEAD";
  if ((m.status >= 400 || (purge && m.status / 100 == 2)) && !have_body && !head_request) {
    Json(g.out).raw("{\"inspect\":true}");
    return done();
  }
  std::vector<std::string> ids;
  if (m.status >= 400) {
    const bool health = route && route->kind == nic::RouteKind::Health;
    const bool nic_answer = is_json(m.headers) && (head_request || is_contract_error(m.status, body) ||
                                                   (health && is_health_report(body)));
    if (!nic_answer) {
      error_response(normalised_error(m), f, {});
      return done();
    }
    drop_caching_headers(m.headers);
    set_header(m.headers, "cache-control", std::string(nic::kErrorCacheControl));
  } else if (purge && m.status / 100 == 2) {
    ids = purged_ids(target, body);
    std::string list;
    for (const auto& id : ids) list += (list.empty() ? "" : ",") + id;
    set_header(m.headers, "x-edge-purged", g.settings.purge_kv ? (list.empty() ? "none" : list)
                                                               : "none (no NIC_PURGE KV binding)");
  }
  apply_cors(m.headers, f.origin);
  const std::string text(body);
  Json j(g.out);
  j.raw("{").field("status", m.status).headers("headers", m.headers).flag("body", !have_body && !head_request);
  if (have_body && !head_request) j.field("text", text);
  if (g.settings.purge_kv && !ids.empty()) {
    j.key("bump").raw("[");
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (i) j.raw(",");
      // A new generation: the purge's own request id (unique).
      j.raw("[").str(generation_key(ids[i])).raw(",").str(f.request_id).raw("]");
    }
    j.raw("]");
  }
  j.field("use", "result").raw("}");
  return done();
}

// For the benchmark: the flight table's counters and size.
NIC_EXPORT(nic_stats) std::int32_t nic_stats() {
  g.out = stats_json();
  return done();
}
