// The response-header policy, one copy for both hosts (the origin and the
// edge): which tier answered and what X-Cache says about it, the headers an
// image response carries, what a 304 keeps, and the CORS decision.
// Pure: string_views in, small values out; header names in their usual
// spelling (compare them with header_name_equal, HTTP names are
// case-insensitive; the edge lower-cases them for its JS side).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nic {

// ---- tiers -----------------------------------------------------------------

// Who answered a request: X-Cache-Tier.
enum class Tier : std::uint8_t { Edge, Memory, Storage, Origin, Coalesced };

// "EDGE" | "MEMORY" | "STORAGE" | "ORIGIN" | "COALESCED"
std::string_view to_string(Tier tier);
std::optional<Tier> parse_tier(std::string_view text);

// X-Cache: HIT when the bytes were already stored when the request came
// (EDGE, MEMORY, STORAGE), MISS when they were made for it (ORIGIN). A
// follower (COALESCED) says what its leader found.
bool is_cache_hit(Tier tier, Tier leader = Tier::Origin);
std::string_view x_cache(Tier tier, Tier leader = Tier::Origin);  // "HIT" | "MISS"

// ---- header lists ----------------------------------------------------------

using Header = std::pair<std::string, std::string>;
using Headers = std::vector<Header>;

bool header_name_equal(std::string_view a, std::string_view b);  // ASCII case-insensitive
const std::string* find_header(const Headers& headers, std::string_view name);
// Replaces the first header of that name (dropping any others), else appends.
void set_header(Headers& headers, std::string_view name, std::string value);
// Adds a token to the one Vary header ("Accept" then "Origin" -> "Accept, Origin"), once.
void add_vary(Headers& headers, std::string_view token);

// ---- image responses -------------------------------------------------------

inline constexpr std::string_view kNoSniff = "nosniff";
// SVG is served as is, never rasterised: no script, no external loads, a sandbox.
inline constexpr std::string_view kSvgContentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; sandbox";

// What an image entry is; fixed for as long as it is stored.
struct ImageEntry {
  std::string_view content_type;
  std::string_view etag;           // strong, quoted
  std::string_view cache_control;  // image_cache_control(CACHE_TTL_SECONDS)
  std::string_view cache_key;      // canonical key; empty: no X-Cache-Key
  std::uint64_t original_size = 0;
  std::uint64_t optimized_size = 0;
};

// The headers every 200 carrying this entry has, in this order: ETag,
// Cache-Control, Content-Type, X-Cache-Key, X-Original-Size,
// X-Optimized-Size, X-Content-Type-Options: nosniff, and for image/svg+xml
// Content-Security-Policy. (A host may keep them pre-rendered per entry.)
Headers entry_headers(const ImageEntry& entry);

// How one requester was served.
struct Delivery {
  Tier tier = Tier::Origin;
  Tier leader = Tier::Origin;  // what the leader found (COALESCED only)
  bool vary_accept = false;    // the format was negotiated from Accept (fmt=auto)
};

// Per requester: Vary: Accept (when negotiated), X-Cache, X-Cache-Tier.
Headers delivery_headers(const Delivery& delivery);

// RFC 9110 §15.4.5: a 304 carries the validators and caching headers, plus
// what lets a browser use it across origins and trace it (CORS, nosniff,
// the X-Cache* and X-Request-Id headers). Everything else is dropped.
bool kept_on_not_modified(std::string_view name);
void strip_for_not_modified(Headers& headers);

struct ImageResponse {
  int status = 200;  // 200 or 304
  Headers headers;
  bool body = true;  // false for 304 (no Content-Length either)
};

// The whole decision for an image: 304 with the kept headers when
// If-None-Match matches the entry's ETag, else 200 with entry + delivery headers.
ImageResponse image_response(const ImageEntry& entry, const Delivery& delivery, std::string_view if_none_match);

// ---- CORS ------------------------------------------------------------------

inline constexpr std::string_view kCorsAllowMethods = "GET, HEAD, DELETE, OPTIONS";
inline constexpr std::string_view kCorsAllowHeaders = "Authorization, X-API-Key, If-None-Match";
inline constexpr std::string_view kCorsMaxAge = "86400";
// Response headers a page's script may read (beyond the CORS-safelisted ones).
inline constexpr std::string_view kCorsExposeHeaders =
    "ETag, Retry-After, X-Cache, X-Cache-Tier, X-Cache-Key, X-Original-Size, X-Optimized-Size, X-Request-Id";
inline constexpr int kPreflightStatus = 204;

struct CorsDecision {
  std::string allow_origin;  // Access-Control-Allow-Origin; empty: none
  bool vary_origin = false;  // the answer depends on Origin: Vary: Origin
};

// CORS_ORIGINS (`*` or a list of origins; empty = CORS off) and the request's
// Origin header. `*` allows everyone with "*" on every response, whether the
// request named an Origin or not, so one cached copy serves every page. A list
// allows exactly its members (echoing the origin) and marks every response
// Vary: Origin, also those without an Origin, so a shared cache never hands
// one origin's answer to another.
CorsDecision cors_decision(std::span<const std::string> allowed_origins, std::string_view request_origin);

// Adds Access-Control-Allow-Origin (+ Expose-Headers) and Vary: Origin as decided.
void apply_cors(Headers& headers, const CorsDecision& decision);

// The answer to an OPTIONS preflight (status kPreflightStatus, no body):
// the allowed methods, headers and max-age, with the CORS decision applied.
Headers preflight_headers(const CorsDecision& decision);

}  // namespace nic
