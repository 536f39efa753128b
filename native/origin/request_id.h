// Request ids: every response, errors included, carries one. An id from the
// front (the edge sends a UUID) is kept so one request can be followed across
// tiers; anything else is replaced by a fresh random one, never echoed.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace nic::origin {

inline std::string new_request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::uint64_t v = rng();
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = kHex[v & 15];
    v >>= 4;
  }
  return out;
}

// 1..64 of [A-Za-z0-9._-].
inline bool usable_request_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace nic::origin
