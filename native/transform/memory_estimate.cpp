// How much memory a transform needs at its peak, from the source's header and
// the request alone (before anything is decoded). The origin charges it to
// TRANSFORM_MEMORY_BYTES, so it must not be below what the transform really
// uses (tests/cli/test_memory_estimate.py runs `nic transform` over a matrix of
// sources and outputs and checks the process's peak against it), nor so far
// above that the budget admits fewer transforms than fit.
//
// The pipeline streams (transform.cpp): decoders hand rows to the resampler,
// which keeps a few rows, so most of a transform's memory is the output and
// its encoder, not the source's pixels. What does hold a whole frame is named
// here: a progressive JPEG's coefficients, an interlaced PNG, WebP and AVIF
// decoders (they decode the whole picture before the first row), a GIF's
// canvas.
#include <algorithm>
#include <cstdint>
#include <span>

#include "nic/geometry.h"
#include "nic/negotiate.h"
#include "transform.h"

namespace nic {
namespace {

using Bytes = std::span<const std::uint8_t>;

std::uint32_t be16(Bytes d, std::size_t i) { return (std::uint32_t{d[i]} << 8) | d[i + 1]; }
std::uint32_t be32(Bytes d, std::size_t i) { return (be16(d, i) << 16) | be16(d, i + 2); }

// A JPEG's whole-image coefficient arrays (libjpeg keeps them for a
// progressive or multi-scan file: 64 coefficients x 2 bytes per 8x8 block of
// every component, padded to whole MCUs), or 0 for a baseline one (decoded
// an MCU row at a time).
std::uint64_t jpeg_coefficient_bytes(Bytes d) {
  std::size_t i = 2;
  while (i + 4 <= d.size()) {
    if (d[i] != 0xFF) return 0;
    const std::uint8_t marker = d[i + 1];
    if (marker == 0xFF) {
      ++i;
      continue;
    }
    const std::size_t len = be16(d, i + 2);
    const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof) {
      const bool multi_scan = marker != 0xC0 && marker != 0xC1;  // progressive, lossless, arithmetic...
      if (!multi_scan || i + 10 > d.size()) return 0;
      const std::uint64_t h = be16(d, i + 5);
      const std::uint64_t w = be16(d, i + 7);
      const std::size_t comps = d[i + 9];
      if (i + 10 + 3 * comps > d.size()) return 0;
      int hmax = 1;
      int vmax = 1;
      for (std::size_t c = 0; c < comps; ++c) {
        hmax = std::max(hmax, d[i + 11 + 3 * c] >> 4);
        vmax = std::max(vmax, d[i + 11 + 3 * c] & 15);
      }
      const std::uint64_t mcu_w = 8ULL * static_cast<std::uint64_t>(hmax);
      const std::uint64_t mcu_h = 8ULL * static_cast<std::uint64_t>(vmax);
      const std::uint64_t padded = ((w + mcu_w - 1) / mcu_w * mcu_w) * ((h + mcu_h - 1) / mcu_h * mcu_h);
      std::uint64_t bytes = 0;
      for (std::size_t c = 0; c < comps; ++c) {
        const int hs = d[i + 11 + 3 * c] >> 4;
        const int vs = d[i + 11 + 3 * c] & 15;
        bytes += padded * static_cast<std::uint64_t>(hs * vs) / static_cast<std::uint64_t>(hmax * vmax) * 2;
      }
      return bytes;
    }
    if (marker == 0xDA || len < 2) return 0;  // scan data before any SOF: not ours to judge
    i += 2 + len;
  }
  return 0;
}

// IHDR's fields (the first chunk: bytes 16..28 of the file).
bool png_interlaced(Bytes d) { return d.size() > 28 && d[28] != 0; }
int png_bit_depth(Bytes d) { return d.size() > 24 ? d[24] : 16; }
int png_samples(Bytes d) {
  switch (d.size() > 25 ? d[25] : 6) {
    case 0: return 1;  // grey
    case 2: return 3;  // RGB
    case 3: return 1;  // palette
    case 4: return 2;  // grey + alpha
    default: return 4;
  }
}

bool webp_lossless(Bytes d) {
  // RIFF....WEBP then chunks; a simple file starts with VP8L, an extended one
  // (VP8X) names its image chunk later.
  for (std::size_t i = 12; i + 8 <= d.size() && i < 4096;) {
    if (d[i] == 'V' && d[i + 1] == 'P' && d[i + 2] == '8' && d[i + 3] == 'L') return true;
    if (d[i] == 'V' && d[i + 1] == 'P' && d[i + 2] == '8' && d[i + 3] == ' ') return false;
    const std::uint32_t len = static_cast<std::uint32_t>(d[i + 4]) | (static_cast<std::uint32_t>(d[i + 5]) << 8) |
                              (static_cast<std::uint32_t>(d[i + 6]) << 16) |
                              (static_cast<std::uint32_t>(d[i + 7]) << 24);
    i += 8 + len + (len & 1);
  }
  return true;  // unknown: assume the costlier decoder
}

// Bytes of the whole frame a decoder holds before handing out rows (on top of
// the streamed rows), in stored orientation.
std::uint64_t decoder_bytes(Bytes d, ImageFormat format, std::uint64_t pixels) {
  switch (format) {
    case ImageFormat::Jpeg: return jpeg_coefficient_bytes(d);
    case ImageFormat::Png: {
      if (png_interlaced(d)) return pixels * (png_bit_depth(d) > 8 ? 8 : 4);  // libspng's whole image
      // 8-bit PNGs are inflated in one piece (png_fast.cpp, libdeflate): the
      // filtered rows, a filter byte each.
      if (d.size() < 24) return 0;
      const std::uint64_t w = be32(d, 16);
      const std::uint64_t h = be32(d, 20);
      return h * (1 + (w * static_cast<std::uint64_t>(png_samples(d) * png_bit_depth(d)) + 7) / 8);
    }
    // libwebp decodes into one RGBA buffer of the (scaled) picture; lossless
    // also keeps its ARGB frame.
    case ImageFormat::Webp: return pixels * (webp_lossless(d) ? 8 : 4);
    // libavif: the YUV(A) planes at up to 16 bits, then our RGBA copy.
    case ImageFormat::Avif: return pixels * (8 + 4);
    // giflib's indices for the screen plus our RGBA canvas.
    case ImageFormat::Gif: return pixels * (1 + 4);
    case ImageFormat::Svg: return 0;
  }
  return 0;
}

// Bytes per output pixel of each encoder with its own copies (measured with
// tests/cli/test_memory_estimate.py at 800-3840 px outputs, the thread count
// of a 2-core machine; libaom keeps several 4:4:4 frame buffers with borders).
std::uint64_t encoder_bytes_per_pixel(ImageFormat format) {
  switch (format) {
    case ImageFormat::Avif: return 32;
    case ImageFormat::Webp: return 2;
    case ImageFormat::Jpeg: return 2;
    case ImageFormat::Png: return 4;
    case ImageFormat::Gif:
    case ImageFormat::Svg: return 0;
  }
  return 0;
}

}  // namespace

std::uint64_t estimate_transform_bytes(std::span<const std::uint8_t> source, const SourceInfo& info,
                                       const NormalizedParams& params, FormatChoice choice) {
  constexpr std::uint64_t kFixed = 2ULL << 20;        // codec state, tables, row buffers
  constexpr std::uint64_t kAvifFixed = 14ULL << 20;   // libaom's encoder state, its threads' buffers
  const std::uint64_t source_bytes = source.size();
  // Passed through unchanged (SVG, animations): the source and one copy.
  if (info.format == ImageFormat::Svg || info.animated) return 2 * source_bytes + kFixed;
  const int w = std::max(1, info.width);
  const int h = std::max(1, info.height);
  const std::uint64_t in_pixels = static_cast<std::uint64_t>(w) * static_cast<std::uint64_t>(h);

  // The output box as transform_image computes it (the cap aside: a larger
  // box only overestimates).
  std::uint64_t out_pixels = in_pixels;
  bool letterboxed = false;
  if (auto geo = compute_geometry(w, h, params.w, params.h, params.fit)) {
    out_pixels = static_cast<std::uint64_t>(std::max(geo->canvas_w, geo->resize_w)) *
                 static_cast<std::uint64_t>(std::max(geo->canvas_h, geo->resize_h));
    letterboxed = geo->canvas_w != geo->resize_w || geo->canvas_h != geo->resize_h;
  }
  ImageFormat out = output_format(choice, info.format, info.animated);
  if (out == ImageFormat::Gif) out = ImageFormat::Png;  // a resized still GIF

  std::uint64_t bytes = kFixed + source_bytes;
  bytes += decoder_bytes(source, info.format, in_pixels);
  // The resampler's rings: a few rows of the input's width (taps of up to
  // 3x the shrink factor each side, 4 bytes a pixel).
  bytes += static_cast<std::uint64_t>(std::max(w, h)) * 4 * 64;
  // The resized image and its oriented copy (4 bytes a pixel each), a
  // letterbox canvas, and the encoder.
  bytes += out_pixels * (8 + (letterboxed ? 4 : 0) + encoder_bytes_per_pixel(out));
  if (out == ImageFormat::Avif) bytes += kAvifFixed;
  return bytes;
}

}  // namespace nic
