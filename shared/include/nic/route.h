// Routing: method + request target -> which endpoint, with strict decoding.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "nic/error.h"

namespace nic {

inline constexpr std::size_t kMaxTargetLength = 8192;
inline constexpr std::size_t kMaxFilenameBytes = 255;

enum class RouteKind : std::uint8_t { Image, Proxy, CachePurge, Health, Stats, Metrics, Page };
std::string_view to_string(RouteKind kind);  // "image", "proxy", ... (metrics label)

struct ImagePath {
  std::string workspace;  // canonical: UUID -> 32 lower-case hex; slug as given
  std::string id;         // canonical: 32 lower-case hex
  std::string filename;   // percent-decoded, 1..255 bytes
};

struct Route {
  RouteKind kind{};
  bool head = false;        // HEAD request (send headers only)
  std::string_view path;    // raw path, as received
  std::string_view query;   // raw query, without '?'
  ImagePath image;          // for RouteKind::Image
};

// GET|HEAD /img/{ws}/{id}/{filename}; GET /api/v1/proxy; DELETE /api/v1/cache;
// GET /health; GET /api/v1/stats; GET /metrics; GET|HEAD / and /page/... (the
// CDN's own page; which files exist is the origin's business). Target longer than
// kMaxTargetLength -> URL_TOO_LONG; unknown path -> NOT_FOUND; wrong method ->
// METHOD_NOT_ALLOWED; bad /img path -> INVALID_PATH.
Result<Route> route(std::string_view method, std::string_view target);

// Parses /img/{ws}/{id}/{filename} (path only, no query).
Result<ImagePath> parse_image_path(std::string_view path);

// UUID with or without dashes -> 32 lower-case hex; anything else -> empty.
std::string canonical_uuid(std::string_view text);
// Workspace: a UUID (canonicalised) or [A-Za-z0-9_-]{1,64} as given; else empty.
std::string canonical_workspace(std::string_view text);

}  // namespace nic
