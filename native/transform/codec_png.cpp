// PNG decoding through libspng: every colour type and bit depth decodes to
// RGBA8 (palette, gray, tRNS and 16-bit included). Encoding: png_write.cpp.
#include <cstdlib>
#include <memory>
#include <string>

#include <spng.h>

#include "image.h"
#include "png_fast.h"

namespace nic::detail {
namespace {

struct SpngDeleter {
  void operator()(spng_ctx* ctx) const { spng_ctx_free(ctx); }
};
using SpngPtr = std::unique_ptr<spng_ctx, SpngDeleter>;

Error png_error(const char* what, int rc) {
  return corrupt(std::string("PNG: ") + what + ": " + spng_strerror(rc));
}

// Opens a decoder over `data` with limits on ancillary chunk memory; the
// pixel limit is checked by the caller from the header.
Result<SpngPtr> open_decoder(Bytes data) {
  // Every chunk's CRC-32 is still checked; the zlib stream's Adler-32 over
  // the inflated bytes is redundant with it and costs ~13% of the decode
  // (Chromium skips it too).
  SpngPtr ctx(spng_ctx_new(SPNG_CTX_IGNORE_ADLER32));
  if (!ctx) return make_error(ErrorCode::Internal, "PNG: out of memory");
  int rc = spng_set_png_buffer(ctx.get(), data.data(), data.size());
  if (rc == 0) rc = spng_set_image_limits(ctx.get(), 1u << 20, 1u << 20);
  // Ancillary chunks (text, ICC) are bounded: a zTXt bomb must not inflate.
  if (rc == 0) rc = spng_set_chunk_limits(ctx.get(), data.size() + 1, 64u << 20);
  if (rc != 0) return png_error("setup", rc);
  return ctx;
}

// PNG's colour chunks, in the order of precedence the specification gives:
// iCCP, then sRGB, then gAMA (with cHRM). Broken chunks are left out.
ColourTag colour_of(spng_ctx* ctx) {
  ColourTag tag;
  spng_iccp iccp{};
  if (spng_get_iccp(ctx, &iccp) == 0 && iccp.profile != nullptr && iccp.profile_len <= kMaxIccBytes) {
    tag.kind = ColourTag::Kind::Icc;
    const auto* p = reinterpret_cast<const std::uint8_t*>(iccp.profile);
    tag.icc.assign(p, p + iccp.profile_len);
    return tag;
  }
  std::uint8_t intent = 0;
  if (spng_get_srgb(ctx, &intent) == 0) return tag;
  double gamma = 0;
  if (spng_get_gama(ctx, &gamma) == 0 && gamma > 0) {
    tag.kind = ColourTag::Kind::PngGamma;
    tag.png_gamma = gamma;
    spng_chrm chrm{};
    if (spng_get_chrm(ctx, &chrm) == 0) {
      tag.png_has_chrm = true;
      tag.png_chrm = {chrm.white_point_x, chrm.white_point_y, chrm.red_x, chrm.red_y,
                      chrm.green_x,       chrm.green_y,       chrm.blue_x, chrm.blue_y};
    }
  }
  return tag;
}

}  // namespace

Result<Header> probe_png(Bytes data) {
  auto opened = open_decoder(data);
  if (!opened) return opened.take_error();
  spng_ctx* ctx = opened->get();
  spng_ihdr ihdr{};
  if (const int rc = spng_get_ihdr(ctx, &ihdr); rc != 0) {
    if (rc == SPNG_EWIDTH || rc == SPNG_EHEIGHT || rc == SPNG_EUSER_WIDTH || rc == SPNG_EUSER_HEIGHT) {
      return make_error(ErrorCode::TooManyPixels, "PNG dimensions out of range");
    }
    return png_error("header", rc);
  }
  Header h;
  h.format = ImageFormat::Png;
  h.width = static_cast<int>(ihdr.width);
  h.height = static_cast<int>(ihdr.height);
  spng_trns trns{};
  const bool has_trns = spng_get_trns(ctx, &trns) == 0;
  h.alpha = ihdr.color_type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA ||
            ihdr.color_type == SPNG_COLOR_TYPE_TRUECOLOR_ALPHA || has_trns;
  spng_exif exif{};
  if (spng_get_exif(ctx, &exif) == 0 && exif.data != nullptr) {
    h.orientation = exif_orientation(Bytes(reinterpret_cast<const std::uint8_t*>(exif.data), exif.length));
  }
  h.gray = ihdr.color_type == SPNG_COLOR_TYPE_GRAYSCALE || ihdr.color_type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA;
  h.colour = colour_of(ctx);
  return h;
}

Status decode_png(Bytes data, RowSink& sink) {
  {
    auto fast = decode_png_fast(data, sink);
    if (!fast) return fast.take_error();
    if (*fast == FastPng::Decoded) return Ok{};
  }
  auto opened = open_decoder(data);
  if (!opened) return opened.take_error();
  spng_ctx* ctx = opened->get();
  spng_ihdr ihdr{};
  if (const int rc = spng_get_ihdr(ctx, &ihdr); rc != 0) return png_error("header", rc);
  spng_trns trns{};
  const bool alpha = ihdr.color_type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA ||
                     ihdr.color_type == SPNG_COLOR_TYPE_TRUECOLOR_ALPHA ||
                     spng_get_trns(ctx, &trns) == 0;
  const auto row_bytes = rgba_bytes(ihdr.width, 1);
  if (!row_bytes) return make_error(ErrorCode::TooManyPixels, "PNG dimensions out of range");
  if (auto s = sink.begin(static_cast<int>(ihdr.width), static_cast<int>(ihdr.height), alpha); !s) {
    return s;
  }

  if (ihdr.interlace_method != SPNG_INTERLACE_NONE) {
    // Adam7 rows arrive in passes: decode the whole image, then stream it.
    size_t size = 0;
    if (const int rc = spng_decoded_image_size(ctx, SPNG_FMT_RGBA8, &size); rc != 0) {
      return png_error("size", rc);
    }
    std::vector<std::uint8_t> pixels(size);
    if (const int rc = spng_decode_image(ctx, pixels.data(), size, SPNG_FMT_RGBA8, SPNG_DECODE_TRNS);
        rc != 0) {
      return png_error("data", rc);
    }
    for (std::uint32_t y = 0; y < ihdr.height; ++y) {
      if (!sink.row(pixels.data() + *row_bytes * y)) break;
    }
    return Ok{};
  }

  if (const int rc = spng_decode_image(ctx, nullptr, 0, SPNG_FMT_RGBA8,
                                       SPNG_DECODE_TRNS | SPNG_DECODE_PROGRESSIVE);
      rc != 0) {
    return png_error("data", rc);
  }
  std::vector<std::uint8_t> row(*row_bytes);
  for (std::uint32_t y = 0; y < ihdr.height; ++y) {
    const int rc = spng_decode_row(ctx, row.data(), row.size());
    if (rc != 0 && rc != SPNG_EOI) return png_error("data", rc);
    if (!sink.row(row.data())) break;
    if (rc == SPNG_EOI && y + 1 < ihdr.height) return corrupt("PNG: image data ended early");
  }
  return Ok{};
}

}  // namespace nic::detail
