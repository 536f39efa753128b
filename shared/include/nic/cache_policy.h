// Cache-Control for images and errors; strong ETags and If-None-Match.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace nic {

inline constexpr std::string_view kErrorCacheControl = "no-store";
inline constexpr std::int64_t kBrowserMaxAge = 3600;
inline constexpr std::int64_t kStaleWhileRevalidate = 3600;

// "public, max-age=3600, s-maxage={ttl}, stale-while-revalidate=3600"
std::string image_cache_control(std::int64_t cache_ttl_seconds);

// Strong ETag of a stored variant: "\"" + first 32 hex of its SHA-256 + "\"".
std::string etag_for(std::string_view bytes);

// If-None-Match (RFC 9110 §13.1.2, weak comparison): "*" or a list of tags.
bool if_none_match(std::string_view header, std::string_view etag);

}  // namespace nic
