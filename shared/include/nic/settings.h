// Core settings shared by the edge and the origin, parsed from strings (the
// hosts read the environment; the core never does).
#pragma once

#include <string_view>
#include <vector>

#include "nic/error.h"

namespace nic {

struct CoreSettings {
  // Ascending, unique, each 1..8192.
  std::vector<int> allowed_widths{32,  48,  64,  96,   128,  256,  320,  384,  480,  640,
                                  750, 800, 828, 1024, 1080, 1200, 1600, 1920, 2048, 3840};
  // Ascending, unique, each 1..100.
  std::vector<int> quality_steps{60, 75, 85, 95};
};

// "32, 48,64" -> sorted unique list; each entry must be an integer in [lo, hi].
// Error (INVALID_PARAM) names `variable`.
Result<std::vector<int>> parse_int_list(std::string_view text, int lo, int hi,
                                        std::string_view variable);

// A non-negative decimal integer in [lo, hi], digits only.
Result<long long> parse_int_setting(std::string_view text, long long lo, long long hi,
                                    std::string_view variable);

}  // namespace nic
