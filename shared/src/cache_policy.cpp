#include "nic/cache_policy.h"

#include "nic/sha256.h"

namespace nic {

std::string image_cache_control(std::int64_t cache_ttl_seconds) {
  return "public, max-age=" + std::to_string(kBrowserMaxAge) +
         ", s-maxage=" + std::to_string(cache_ttl_seconds) +
         ", stale-while-revalidate=" + std::to_string(kStaleWhileRevalidate);
}

std::string etag_for(std::string_view bytes) {
  return "\"" + sha256_hex(bytes).substr(0, 32) + "\"";
}

bool if_none_match(std::string_view header, std::string_view etag) {
  auto opaque = [](std::string_view tag) {
    if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
    return tag;
  };
  const std::string_view mine = opaque(etag);
  std::string_view rest = header;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    std::string_view tag = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (tag == "*") return true;
    if (!tag.empty() && opaque(tag) == mine) return true;
  }
  return false;
}

}  // namespace nic
