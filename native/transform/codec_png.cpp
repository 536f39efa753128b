// PNG through libspng: every colour type and bit depth decodes to RGBA8
// (palette, gray, tRNS and 16-bit included); encodes RGB or RGBA, 8-bit.
#include <cstdlib>
#include <memory>
#include <string>

#include <spng.h>
#include <zlib.h>

#include "image.h"
#include "png_fast.h"

namespace nic::detail {
namespace {

struct SpngDeleter {
  void operator()(spng_ctx* ctx) const { spng_ctx_free(ctx); }
};
using SpngPtr = std::unique_ptr<spng_ctx, SpngDeleter>;

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

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

// Compression, measured on photos and screenshots resized to 800 wide with
// Debian's zlib (bench/transform): photos compress best and fastest with the
// Average filter on every row and zlib's run-length strategy (long matches
// are rare in filtered noise: as small as adaptive filters + level 6 at 1/20
// of the time). Flat content (UI, text) is best left unfiltered, with real
// LZ77 matches at a low level (Sharp's default is unfiltered too).
Result<std::vector<std::uint8_t>> encode_png(const Image& image, bool flat) {
  SpngPtr ctx(spng_ctx_new(SPNG_CTX_ENCODER));
  if (!ctx) return make_error(ErrorCode::Internal, "PNG encoder: out of memory");
  spng_ihdr ihdr{};
  ihdr.width = static_cast<std::uint32_t>(image.width);
  ihdr.height = static_cast<std::uint32_t>(image.height);
  ihdr.bit_depth = 8;
  ihdr.color_type = image.alpha ? SPNG_COLOR_TYPE_TRUECOLOR_ALPHA : SPNG_COLOR_TYPE_TRUECOLOR;
  int rc = spng_set_option(ctx.get(), SPNG_ENCODE_TO_BUFFER, 1);
  if (rc == 0) rc = spng_set_ihdr(ctx.get(), &ihdr);
  if (rc == 0) {
    rc = spng_set_option(ctx.get(), SPNG_FILTER_CHOICE, flat ? SPNG_FILTER_CHOICE_NONE : SPNG_FILTER_CHOICE_AVG);
  }
  if (rc == 0) rc = spng_set_option(ctx.get(), SPNG_IMG_COMPRESSION_LEVEL, flat ? 2 : 6);
  if (rc == 0) {
    rc = spng_set_option(ctx.get(), SPNG_IMG_COMPRESSION_STRATEGY, flat ? Z_DEFAULT_STRATEGY : Z_RLE);
  }
  if (rc != 0) return make_error(ErrorCode::Internal, std::string("PNG encoder: ") + spng_strerror(rc));

  const std::uint8_t* pixels = image.pixels.data();
  std::size_t size = image.pixels.size();
  std::vector<std::uint8_t> rgb;
  if (!image.alpha) {  // RGBX -> RGB
    const std::size_t n = static_cast<std::size_t>(image.width) * image.height;
    rgb.resize(n * 3);
    for (std::size_t i = 0; i < n; ++i) {
      rgb[i * 3] = pixels[i * 4];
      rgb[i * 3 + 1] = pixels[i * 4 + 1];
      rgb[i * 3 + 2] = pixels[i * 4 + 2];
    }
    pixels = rgb.data();
    size = rgb.size();
  }
  rc = spng_encode_image(ctx.get(), pixels, size, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
  if (rc != 0) return make_error(ErrorCode::Internal, std::string("PNG encoder: ") + spng_strerror(rc));
  std::size_t len = 0;
  int err = 0;
  std::unique_ptr<void, FreeDeleter> buf(spng_get_png_buffer(ctx.get(), &len, &err));
  if (!buf || err != 0) {
    return make_error(ErrorCode::Internal, std::string("PNG encoder: ") + spng_strerror(err));
  }
  const auto* b = static_cast<const std::uint8_t*>(buf.get());
  return std::vector<std::uint8_t>(b, b + len);
}

}  // namespace nic::detail
