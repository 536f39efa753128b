// Strict percent-decoding and canonical percent-encoding.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nic/error.h"

namespace nic {

// Decodes %XX escapes. A '%' not followed by two hex digits is an error with
// `code` (INVALID_PATH for paths, INVALID_PARAM for query values), never a crash.
// With plus_as_space, '+' decodes to ' ' (query strings).
Result<std::string> percent_decode(std::string_view in, ErrorCode code, bool plus_as_space = false);

// Encodes every byte outside RFC 3986 unreserved (A-Z a-z 0-9 - . _ ~) as %XX
// (upper-case hex). Used for canonical cache keys and generated URLs.
std::string percent_encode(std::string_view in);

// One raw (still encoded) query parameter.
struct RawParam {
  std::string_view name;   // raw
  std::string_view value;  // raw
};

// Splits "a=1&b=2" into raw pairs, skipping empty pieces. A piece without '='
// has an empty value.
std::vector<RawParam> split_query(std::string_view query);

}  // namespace nic
