// Range requests (RFC 9110 §14): which bytes of a stored image to send.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace nic {

struct RangeDecision {
  enum class Kind : std::uint8_t {
    Whole,          // 200 with every byte: no Range, or one we do not serve as a range
    Partial,        // 206 with bytes [first, last]
    Unsatisfiable,  // 416: the range starts at or past the end
  };
  Kind kind = Kind::Whole;
  std::int64_t first = 0;  // inclusive
  std::int64_t last = 0;   // inclusive
};

// `range`: the Range header; `if_range`: the If-Range header; `etag`: the
// representation's strong ETag (empty: none); `length`: its size in bytes.
// One "bytes=" range (a-b, a-, or -suffix) is served; several ranges, another
// unit or a malformed header get the whole body (RFC 9110 §14.2 allows it),
// as does an If-Range that is not the current strong ETag (a date included).
RangeDecision decide_range(std::string_view range, std::string_view if_range, std::string_view etag,
                           std::int64_t length);

// "bytes first-last/length" for Partial, "bytes */length" for Unsatisfiable.
std::string content_range(const RangeDecision& decision, std::int64_t length);

}  // namespace nic
