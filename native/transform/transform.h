// The transform engine: source bytes + normalised options + limits ->
// encoded bytes, or a contract error. No HTTP, no storage.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "nic/error.h"
#include "nic/format.h"
#include "nic/negotiate.h"
#include "nic/params.h"

namespace nic {

struct TransformLimits {
  std::uint64_t max_input_pixels = 50'000'000;  // MAX_INPUT_PIXELS
  int max_output_dimension = kMaxDimension;     // output w and h are capped to this
  // Not a limit but an encoder setting that the host reads from its
  // configuration (nic-origin: AVIF_SPEED): aom's speed 0..10, higher is
  // faster and larger (bench/README.md has the byte cost of speed 8).
  int avif_speed = 5;
  // Encoder threads (AVIF): 0 = the cores not busy with other transforms of
  // this process (a lone cold request gets them all); n > 0 = at most n. The
  // benchmark sets 1 to compare single-threaded CPU cost. The encoded bytes
  // never depend on it (codec_avif.cpp: aom always gets two or more workers).
  int max_threads = 0;
};

// What the header says, without decoding pixels.
struct SourceInfo {
  ImageFormat format{};
  int width = 0;   // after EXIF orientation
  int height = 0;
  bool animated = false;
};

struct TransformOutput {
  std::vector<std::uint8_t> bytes;
  ImageFormat format{};
  int width = 0;
  int height = 0;
  bool passthrough = false;  // the source bytes unchanged (SVG, animated GIF)
};

// UNSUPPORTED_FORMAT for unknown bytes, CORRUPT_IMAGE for broken headers,
// TOO_MANY_PIXELS above the limit.
Result<SourceInfo> probe_image(std::span<const std::uint8_t> source, const TransformLimits& limits);

// Peak bytes transform_image(source, params, choice) will hold, from the
// header alone (memory_estimate.cpp): the source, the whole frames some
// decoders keep (a progressive JPEG's coefficients, WebP, AVIF, interlaced
// PNG, GIF), the resampler's rows, the output's copies and its encoder. An
// upper bound (tested against real peaks); the origin charges it to its byte
// budget before the transform starts.
std::uint64_t estimate_transform_bytes(std::span<const std::uint8_t> source, const SourceInfo& info,
                                       const NormalizedParams& params, FormatChoice choice);

// Thread-safe; CPU-bound (the origin runs it on its transform pool).
Result<TransformOutput> transform_image(std::span<const std::uint8_t> source,
                                        const NormalizedParams& params, FormatChoice choice,
                                        const TransformLimits& limits);

}  // namespace nic
