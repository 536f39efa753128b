// Comparing a caller's API key or edge secret with ours without a timing leak.
#pragma once

#include <cstdint>
#include <string_view>

#include "nic/sha256.h"

namespace nic::origin {

inline bool constant_time_string_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return constant_time_equal({reinterpret_cast<const std::uint8_t*>(a.data()), a.size()},
                             {reinterpret_cast<const std::uint8_t*>(b.data()), b.size()});
}

}  // namespace nic::origin
