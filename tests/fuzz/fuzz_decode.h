// The decoder targets: bytes of one format through the entry points the
// origin uses (probe_image on download, transform_image per variant), with
// the pixel limit on, options chosen from the input's hash. Each target
// keeps only inputs that still sniff as its format, so its corpus and its
// time go to that decoder.
#pragma once

#include <algorithm>
#include <span>

#include "fuzz_support.h"
#include "nic/format.h"
#include "nic/geometry.h"
#include "nic/negotiate.h"
#include "nic/params.h"
#include "transform.h"

namespace nic_fuzz {

// 1 MP: big enough for every structure a decoder has, small enough that a
// header promising 8192 x 8192 is refused before any pixel exists.
inline constexpr std::uint64_t kFuzzMaxPixels = 1u << 20;

inline int fuzz_decode(nic::ImageFormat want, const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  const auto format = nic::sniff_format(bytes);
  if (!format || *format != want) return -1;  // not this target's format: not kept in its corpus

  const nic::TransformLimits limits{kFuzzMaxPixels, nic::kMaxDimension};
  auto info = nic::probe_image(bytes, limits);
  if (!info) {
    const auto code = info.error().code;
    NIC_FUZZ_CHECK(code == nic::ErrorCode::CorruptImage || code == nic::ErrorCode::TooManyPixels ||
                   code == nic::ErrorCode::UnsupportedFormat);
    return 0;
  }
  NIC_FUZZ_CHECK(info->width >= 1 && info->height >= 1);
  NIC_FUZZ_CHECK(static_cast<std::uint64_t>(info->width) * static_cast<std::uint64_t>(info->height) <=
                 kFuzzMaxPixels);

  std::uint32_t h = hash(data, size);
  static constexpr int kW[] = {0, 1, 7, 32, 100};
  static constexpr int kH[] = {0, 1, 9, 32};
  static constexpr nic::TargetFormat kTargets[] = {nic::TargetFormat::Original, nic::TargetFormat::Png,
                                                   nic::TargetFormat::Jpeg, nic::TargetFormat::Webp,
                                                   nic::TargetFormat::Original, nic::TargetFormat::Png,
                                                   nic::TargetFormat::Jpeg, nic::TargetFormat::Avif};
  nic::NormalizedParams params;
  if (const int w = kW[pick(h, 5)]) params.w = w;
  if (const int hh = kH[pick(h, 4)]) params.h = hh;
  params.fit = static_cast<nic::Fit>(pick(h, 5));
  if (pick(h, 2)) params.q = 60;
  nic::FormatChoice choice;
  choice.target = kTargets[pick(h, 8)];
  choice.negotiated = pick(h, 2) == 1;
  // AVIF encodes cost ~100x a PNG's (an 8192x4 one ~1 s): only small outputs,
  // so the time goes to the decoders.
  if (choice.target == nic::TargetFormat::Avif) {
    params.w = 16;
    params.h = 16;
    params.fit = nic::Fit::Inside;  // outside would leave a long side free
  }

  auto out = nic::transform_image(bytes, params, choice, limits);
  if (!out) {
    const auto code = out.error().code;
    NIC_FUZZ_CHECK(code == nic::ErrorCode::CorruptImage || code == nic::ErrorCode::TooManyPixels ||
                   code == nic::ErrorCode::UnsupportedFormat);
    return 0;
  }
  NIC_FUZZ_CHECK(!out->bytes.empty());
  if (out->passthrough) {
    NIC_FUZZ_CHECK(out->bytes.size() == size);
    return 0;
  }
  // The output has exactly the size the geometry promised, and what was
  // encoded sniffs as the format it is labelled with.
  // (Outputs never exceed the cap: a long source is shrunk to it.)
  NIC_FUZZ_CHECK(out->width >= 1 && out->width <= limits.max_output_dimension);
  NIC_FUZZ_CHECK(out->height >= 1 && out->height <= limits.max_output_dimension);
  auto g = nic::compute_geometry(info->width, info->height, params.w, params.h, params.fit);
  NIC_FUZZ_CHECK(g.ok());
  if ((params.w || params.h) && std::max(g->canvas_w, g->canvas_h) <= limits.max_output_dimension) {
    NIC_FUZZ_CHECK(out->width == g->canvas_w && out->height == g->canvas_h);
  }
  const auto out_format = nic::sniff_format(out->bytes);
  NIC_FUZZ_CHECK(out_format && *out_format == out->format);
  return 0;
}

}  // namespace nic_fuzz
