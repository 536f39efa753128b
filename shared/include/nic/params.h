// Transform parameters: parsing (one error per bad parameter, naming the
// allowed values) and normalisation against the settings (anti cache-busting).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "nic/error.h"
#include "nic/format.h"
#include "nic/percent.h"
#include "nic/settings.h"

namespace nic {

enum class Fit : std::uint8_t { Cover, Contain, Fill, Inside, Outside };
std::optional<Fit> parse_fit(std::string_view text);
std::string_view to_string(Fit f);

inline constexpr int kMaxDimension = 8192;

// With both w and h given, the requested aspect ratio (h/w) snaps to the
// nearest of these (w:h, ordered by h/w), so h cannot open an unbounded key
// space: each width has at most kAspectRatios.size() heights.
struct AspectRatio {
  std::int64_t w;
  std::int64_t h;
};
inline constexpr std::array<AspectRatio, 19> kAspectRatios{{
    {4, 1}, {3, 1}, {21, 9}, {2, 1}, {16, 9}, {16, 10}, {3, 2}, {4, 3}, {5, 4}, {1, 1},
    {4, 5}, {3, 4}, {2, 3}, {10, 16}, {9, 16}, {1, 2}, {9, 21}, {1, 3}, {1, 4},
}};

// As requested, validated, before normalisation.
struct TransformParams {
  std::optional<int> w;           // 1..8192
  std::optional<int> h;           // 1..8192
  std::optional<Fit> fit;         // absent -> inside
  std::optional<RequestedFormat> fmt;  // absent -> auto
  std::optional<int> q;           // 1..100
  std::optional<int> dpr_tenths;  // 10..40 ("1.5" -> 15)
  std::optional<std::string_view> sig;  // raw, not validated here
};

// Reads the known parameters from raw query pairs. Unknown names are ignored.
// A known parameter given twice, empty, or with a bad value -> INVALID_PARAM.
Result<TransformParams> parse_params(const std::vector<RawParam>& query);

// After normalisation: what the output depends on (besides the format).
struct NormalizedParams {
  std::optional<int> w;  // dpr applied, snapped up to allowed_widths
  std::optional<int> h;  // dpr applied; with w: w x the snapped aspect ratio, else snapped
  Fit fit = Fit::Inside;
  bool fit_in_key = false;   // false when default or meaningless (no w/h)
  RequestedFormat fmt = RequestedFormat::Auto;
  std::optional<int> q;  // snapped to the nearest quality step
};

NormalizedParams normalize(const TransformParams& params, const CoreSettings& settings);

}  // namespace nic
