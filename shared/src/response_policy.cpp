#include "nic/response_policy.h"

#include <array>
#include <charconv>

#include "nic/cache_policy.h"

namespace nic {
namespace {

struct TierInfo {
  Tier tier;
  std::string_view name;
  bool stored;  // the bytes existed before the request: X-Cache HIT
};

constexpr std::array<TierInfo, 5> kTiers{{
    {Tier::Edge, "EDGE", true},
    {Tier::Memory, "MEMORY", true},
    {Tier::Storage, "STORAGE", true},
    {Tier::Origin, "ORIGIN", false},
    {Tier::Coalesced, "COALESCED", false},
}};

const TierInfo& info(Tier tier) {
  for (const auto& t : kTiers) {
    if (t.tier == tier) return t;
  }
  return kTiers[3];
}

// Kept on a 304 (RFC 9110 §15.4.5 plus CORS, nosniff and tracing).
constexpr std::array<std::string_view, 15> kKeptOn304{
    "Cache-Control", "Content-Location", "Date", "ETag", "Expires", "Vary",
    "X-Cache", "X-Cache-Tier", "X-Cache-Key", "X-Request-Id", "X-Content-Type-Options",
    "Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "Access-Control-Allow-Credentials",
    "Content-Security-Policy",
};

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string decimal(std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string_view to_string(Tier tier) { return info(tier).name; }

std::optional<Tier> parse_tier(std::string_view text) {
  for (const auto& t : kTiers) {
    if (t.name == text) return t.tier;
  }
  return std::nullopt;
}

bool is_cache_hit(Tier tier, Tier leader) {
  if (tier == Tier::Coalesced) return leader != Tier::Coalesced && info(leader).stored;
  return info(tier).stored;
}

std::string_view x_cache(Tier tier, Tier leader) { return is_cache_hit(tier, leader) ? "HIT" : "MISS"; }

bool header_name_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

const std::string* find_header(const Headers& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (header_name_equal(n, name)) return &v;
  }
  return nullptr;
}

void set_header(Headers& headers, std::string_view name, std::string value) {
  bool placed = false;
  for (auto it = headers.begin(); it != headers.end();) {
    if (!header_name_equal(it->first, name)) {
      ++it;
    } else if (!placed) {
      it->second = std::move(value);
      placed = true;
      ++it;
    } else {
      it = headers.erase(it);
    }
  }
  if (!placed) headers.emplace_back(std::string(name), std::move(value));
}

void add_vary(Headers& headers, std::string_view token) {
  for (auto& [name, value] : headers) {
    if (!header_name_equal(name, "Vary")) continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      if (header_name_equal(trim(rest.substr(0, comma)), token) || trim(rest.substr(0, comma)) == "*") return;
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
    if (!trim(value).empty()) value += ", ";
    value += token;
    return;
  }
  headers.emplace_back("Vary", std::string(token));
}

Headers entry_headers(const ImageEntry& entry) {
  Headers h;
  h.reserve(8);
  h.emplace_back("ETag", std::string(entry.etag));
  h.emplace_back("Cache-Control", std::string(entry.cache_control));
  h.emplace_back("Content-Type", std::string(entry.content_type));
  if (!entry.cache_key.empty()) h.emplace_back("X-Cache-Key", std::string(entry.cache_key));
  h.emplace_back("X-Original-Size", decimal(entry.original_size));
  h.emplace_back("X-Optimized-Size", decimal(entry.optimized_size));
  h.emplace_back("X-Content-Type-Options", std::string(kNoSniff));
  if (header_name_equal(entry.content_type, "image/svg+xml")) {
    h.emplace_back("Content-Security-Policy", std::string(kSvgContentSecurityPolicy));
  }
  return h;
}

Headers delivery_headers(const Delivery& d) {
  Headers h;
  h.reserve(3);
  if (d.vary_accept) h.emplace_back("Vary", "Accept");
  h.emplace_back("X-Cache", std::string(x_cache(d.tier, d.leader)));
  h.emplace_back("X-Cache-Tier", std::string(to_string(d.tier)));
  return h;
}

bool kept_on_not_modified(std::string_view name) {
  for (const auto keep : kKeptOn304) {
    if (header_name_equal(name, keep)) return true;
  }
  return false;
}

void strip_for_not_modified(Headers& headers) {
  std::erase_if(headers, [](const Header& h) { return !kept_on_not_modified(h.first); });
}

ImageResponse image_response(const ImageEntry& entry, const Delivery& delivery, std::string_view inm) {
  ImageResponse r;
  r.headers = entry_headers(entry);
  for (auto& h : delivery_headers(delivery)) r.headers.push_back(std::move(h));
  if (!inm.empty() && if_none_match(inm, entry.etag)) {
    r.status = 304;
    r.body = false;
    strip_for_not_modified(r.headers);
  }
  return r;
}

CorsDecision cors_decision(std::span<const std::string> allowed, std::string_view request_origin) {
  CorsDecision d;
  for (const auto& o : allowed) {
    if (o == "*") {
      d.allow_origin.assign(1, '*');  // (assigning "*" trips a GCC 12 -Wrestrict false positive)
      d.vary_origin = false;
      return d;
    }
  }
  if (allowed.empty()) return d;
  d.vary_origin = true;
  if (request_origin.empty()) return d;
  for (const auto& o : allowed) {
    if (o == request_origin) {
      d.allow_origin = std::string(request_origin);
      break;
    }
  }
  return d;
}

void apply_cors(Headers& headers, const CorsDecision& d) {
  if (!d.allow_origin.empty()) {
    set_header(headers, "Access-Control-Allow-Origin", d.allow_origin);
    set_header(headers, "Access-Control-Expose-Headers", std::string(kCorsExposeHeaders));
  }
  if (d.vary_origin) add_vary(headers, "Origin");
}

Headers preflight_headers(const CorsDecision& d) {
  Headers h{{"Access-Control-Allow-Methods", std::string(kCorsAllowMethods)},
            {"Access-Control-Allow-Headers", std::string(kCorsAllowHeaders)},
            {"Access-Control-Max-Age", std::string(kCorsMaxAge)}};
  apply_cors(h, d);
  return h;
}

}  // namespace nic
