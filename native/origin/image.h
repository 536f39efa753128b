// A stored image (a transformed variant or a source): one immutable byte
// buffer shared by every response that sends it, so a herd of followers does
// not multiply memory.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace nic::origin {

using Bytes = std::vector<std::uint8_t>;
using SharedBytes = std::shared_ptr<const Bytes>;

inline std::string_view as_text(const Bytes& bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// Seconds since the epoch: stored ages, expiries and uptime.
inline std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct StoredImage {
  SharedBytes bytes;
  std::string content_type;
  std::string etag;                 // strong, quoted
  std::uint64_t original_size = 0; // bytes of the source it came from
  std::string key;                  // canonical key
  // The response headers that never change for this entry, in wire form
  // (ETag, Cache-Control, Content-Type, X-Cache-Key, sizes), built once when
  // it is stored so that a hit only copies them. Empty: built per response.
  std::string header_block;
  // Memory hits look at the source's age (revalidation) at most once a second.
  mutable std::atomic<std::int64_t> next_source_check{0};
};

using SharedImage = std::shared_ptr<const StoredImage>;

}  // namespace nic::origin
