#include "png_fast.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include <libdeflate.h>

#include "big_buffer.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define NIC_SSSE3_PATH 1
#endif

namespace nic::detail {
namespace {

constexpr std::uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

struct DecompressorDeleter {
  void operator()(libdeflate_decompressor* d) const { libdeflate_free_decompressor(d); }
};
using DecompressorPtr = std::unique_ptr<libdeflate_decompressor, DecompressorDeleter>;

std::uint32_t be32(const std::uint8_t* p) {
  return (static_cast<std::uint32_t>(p[0]) << 24) | (static_cast<std::uint32_t>(p[1]) << 16) |
         (static_cast<std::uint32_t>(p[2]) << 8) | p[3];
}

bool is_type(const std::uint8_t* t, const char* name) { return std::memcmp(t, name, 4) == 0; }

std::uint8_t paeth(int a, int b, int c) {
  const int p = a + b - c;
  const int pa = p > a ? p - a : a - p;
  const int pb = p > b ? p - b : b - p;
  const int pc = p > c ? p - c : c - p;
  if (pa <= pb && pa <= pc) return static_cast<std::uint8_t>(a);
  return static_cast<std::uint8_t>(pb <= pc ? b : c);
}

#if defined(__SSE2__)
// One pixel of bpp (3 or 4) bytes as 16-bit lanes, and back.
template <int Bpp>
__m128i load_px(const std::uint8_t* p) {
  std::uint32_t v = 0;
  std::memcpy(&v, p, Bpp);
  return _mm_unpacklo_epi8(_mm_cvtsi32_si128(static_cast<int>(v)), _mm_setzero_si128());
}

template <int Bpp>
void store_px(std::uint8_t* p, __m128i v) {
  const auto packed = static_cast<std::uint32_t>(_mm_cvtsi128_si32(_mm_packus_epi16(v, v)));
  std::memcpy(p, &packed, Bpp);
}

__m128i abs16(__m128i x) { return _mm_max_epi16(x, _mm_sub_epi16(_mm_setzero_si128(), x)); }

// Sub, Avg and Paeth carry a dependency from pixel to pixel; the channels of
// a pixel are independent, so one pixel is one vector.
template <int Bpp>
void unfilter_sse2(std::uint8_t filter, std::uint8_t* row, const std::uint8_t* prev, std::size_t bytes) {
  const __m128i low = _mm_set1_epi16(0xFF);
  __m128i a = _mm_setzero_si128();  // the pixel to the left, unfiltered
  __m128i c = _mm_setzero_si128();  // the pixel above-left
  const std::size_t n = bytes / Bpp;
  switch (filter) {
    case 1:
      for (std::size_t i = 0; i < n; ++i) {
        a = _mm_and_si128(_mm_add_epi16(load_px<Bpp>(row + i * Bpp), a), low);
        store_px<Bpp>(row + i * Bpp, a);
      }
      break;
    case 3:
      for (std::size_t i = 0; i < n; ++i) {
        const __m128i b = load_px<Bpp>(prev + i * Bpp);
        const __m128i avg = _mm_srli_epi16(_mm_add_epi16(a, b), 1);
        a = _mm_and_si128(_mm_add_epi16(load_px<Bpp>(row + i * Bpp), avg), low);
        store_px<Bpp>(row + i * Bpp, a);
      }
      break;
    case 4:
      for (std::size_t i = 0; i < n; ++i) {
        const __m128i b = load_px<Bpp>(prev + i * Bpp);
        const __m128i bc = _mm_sub_epi16(b, c);
        const __m128i ac = _mm_sub_epi16(a, c);
        const __m128i pa = abs16(bc);                     // |p - a|
        const __m128i pb = abs16(ac);                     // |p - b|
        const __m128i pc = abs16(_mm_add_epi16(ac, bc));  // |p - c|
        const __m128i not_a = _mm_or_si128(_mm_cmpgt_epi16(pa, pb), _mm_cmpgt_epi16(pa, pc));
        const __m128i take_c = _mm_cmpgt_epi16(pb, pc);
        const __m128i b_or_c = _mm_or_si128(_mm_and_si128(take_c, c), _mm_andnot_si128(take_c, b));
        const __m128i pred = _mm_or_si128(_mm_and_si128(not_a, b_or_c), _mm_andnot_si128(not_a, a));
        a = _mm_and_si128(_mm_add_epi16(load_px<Bpp>(row + i * Bpp), pred), low);
        c = b;
        store_px<Bpp>(row + i * Bpp, a);
      }
      break;
    default: break;
  }
}
#endif

template <int Bpp>
void unfilter_scalar(std::uint8_t filter, std::uint8_t* row, const std::uint8_t* prev, std::size_t bytes) {
  switch (filter) {
    case 1:
      for (std::size_t i = Bpp; i < bytes; ++i) row[i] = static_cast<std::uint8_t>(row[i] + row[i - Bpp]);
      break;
    case 3:
      for (std::size_t i = 0; i < bytes; ++i) {
        const int left = i >= Bpp ? row[i - Bpp] : 0;
        row[i] = static_cast<std::uint8_t>(row[i] + ((left + prev[i]) >> 1));
      }
      break;
    case 4:
      for (std::size_t i = 0; i < bytes; ++i) {
        const int left = i >= Bpp ? row[i - Bpp] : 0;
        const int up_left = i >= Bpp ? prev[i - Bpp] : 0;
        row[i] = static_cast<std::uint8_t>(row[i] + paeth(left, prev[i], up_left));
      }
      break;
    default: break;
  }
}

// The image as the header and the palette describe it.
struct Layout {
  std::uint32_t width = 0;
  std::uint32_t height = 0;
  int colour_type = 0;
  int channels = 0;  // bytes per pixel (8-bit samples)
  bool alpha = false;
  std::uint32_t palette[256] = {};  // RGBA, little-endian byte order in memory
  int palette_size = 0;
};

#if defined(NIC_SSSE3_PATH)
bool cpu_has_ssse3() {
  static const bool has = __builtin_cpu_supports("ssse3");
  return has;
}

// RGB -> RGBX, 16 pixels per step (48 bytes in, 64 out); returns the pixels done.
__attribute__((target("ssse3"))) std::uint32_t rgb_to_rgbx_ssse3(const std::uint8_t* in, std::uint8_t* out,
                                                                 std::uint32_t w) {
  const __m128i spread = _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1);
  const __m128i opaque = _mm_set1_epi32(static_cast<int>(0xFF000000u));
  std::uint32_t x = 0;
  // Reads 16 bytes at in + 36: stay 16 pixels (48 bytes) clear of the end.
  for (; x + 16 <= w; x += 16, in += 48, out += 64) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in));       // px 0..5
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 12));  // px 4..9
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 24));  // px 8..13
    const __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 32));  // px 10..15 (+4)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_or_si128(_mm_shuffle_epi8(a, spread), opaque));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16), _mm_or_si128(_mm_shuffle_epi8(b, spread), opaque));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 32), _mm_or_si128(_mm_shuffle_epi8(c, spread), opaque));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 48),
                     _mm_or_si128(_mm_shuffle_epi8(_mm_srli_si128(d, 4), spread), opaque));
  }
  return x;
}
#endif

void expand_row(const Layout& l, const std::uint8_t* in, std::uint8_t* out) {
  const std::uint32_t w = l.width;
  switch (l.colour_type) {
    case 0:
      for (std::uint32_t x = 0; x < w; ++x, out += 4) {
        out[0] = out[1] = out[2] = in[x];
        out[3] = 255;
      }
      break;
    case 2: {
      std::uint32_t x = 0;
#if defined(NIC_SSSE3_PATH)
      if (cpu_has_ssse3()) {
        x = rgb_to_rgbx_ssse3(in, out, w);
        in += static_cast<std::size_t>(x) * 3;
        out += static_cast<std::size_t>(x) * 4;
      }
#endif
      // Four-byte loads but for the last pixel; the fourth byte is then set.
      for (; x + 1 < w; ++x, in += 3, out += 4) {
        std::memcpy(out, in, 4);
        out[3] = 255;
      }
      if (x < w) {
        std::memcpy(out, in, 3);
        out[3] = 255;
      }
      break;
    }
    case 3:
      for (std::uint32_t x = 0; x < w; ++x, out += 4) std::memcpy(out, &l.palette[in[x]], 4);
      break;
    case 4:
      for (std::uint32_t x = 0; x < w; ++x, in += 2, out += 4) {
        out[0] = out[1] = out[2] = in[0];
        out[3] = in[1];
      }
      break;
    default: break;
  }
}

}  // namespace

bool png_unfilter(std::uint8_t filter, std::uint8_t* row, const std::uint8_t* prev, std::size_t bytes, int bpp) {
  if (filter > 4) return false;
  if (filter == 0) return true;
  if (filter == 2) {  // the most common filter on screen content
    std::size_t i = 0;
#if defined(__SSE2__)
    for (; i + 16 <= bytes; i += 16) {
      const __m128i r = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + i));
      const __m128i u = _mm_loadu_si128(reinterpret_cast<const __m128i*>(prev + i));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(row + i), _mm_add_epi8(r, u));
    }
#endif
    for (; i < bytes; ++i) row[i] = static_cast<std::uint8_t>(row[i] + prev[i]);
    return true;
  }
  switch (bpp) {
    case 1: unfilter_scalar<1>(filter, row, prev, bytes); break;
    case 2: unfilter_scalar<2>(filter, row, prev, bytes); break;
#if defined(__SSE2__)
    case 3: unfilter_sse2<3>(filter, row, prev, bytes); break;
    case 4: unfilter_sse2<4>(filter, row, prev, bytes); break;
#else
    case 3: unfilter_scalar<3>(filter, row, prev, bytes); break;
    case 4: unfilter_scalar<4>(filter, row, prev, bytes); break;
#endif
    default: return false;
  }
  return true;
}

Result<FastPng> decode_png_fast(Bytes data, RowSink& sink) {
  const std::uint8_t* p = data.data();
  const std::size_t size = data.size();
  if (size < 8 + 25 || std::memcmp(p, kSignature, 8) != 0) return FastPng::NotHandled;

  Layout l;
  // Indices past the palette's end: opaque black (libpng's choice).
  const std::uint8_t black[4] = {0, 0, 0, 255};
  for (auto& entry : l.palette) std::memcpy(&entry, black, 4);
  bool have_plte = false;
  bool have_trns = false;
  // The IDAT chunks' data: one span when they are a single chunk (the usual
  // case for small images and for most encoders' output up to their chunk
  // size), else concatenated.
  const std::uint8_t* idat = nullptr;
  std::size_t idat_size = 0;
  std::vector<std::uint8_t> joined;
  bool idat_done = false;

  std::size_t at = 8;
  bool first = true;
  while (!idat_done) {
    if (size - at < 12) return corrupt("PNG: file ends inside a chunk header");
    const std::uint32_t length = be32(p + at);
    const std::uint8_t* type = p + at + 4;
    if (length > 0x7FFFFFFFu || size - at - 12 < length) return corrupt("PNG: a chunk runs past the end of the file");
    const std::uint8_t* body = p + at + 8;
    const bool critical = (type[0] & 0x20) == 0;
    const std::uint32_t stored_crc = be32(body + length);
    const bool crc_ok = libdeflate_crc32(0, type, 4 + static_cast<std::size_t>(length)) == stored_crc;
    if (!crc_ok) {
      if (critical) return corrupt("PNG: bad CRC in a " + std::string(reinterpret_cast<const char*>(type), 4) + " chunk");
      return FastPng::NotHandled;  // libspng decides what a damaged ancillary chunk means
    }
    if (first != is_type(type, "IHDR")) return corrupt("PNG: IHDR is not the first chunk");
    first = false;

    if (is_type(type, "IHDR")) {
      if (length != 13) return corrupt("PNG: bad IHDR length");
      l.width = be32(body);
      l.height = be32(body + 4);
      const int depth = body[8];
      l.colour_type = body[9];
      if (body[10] != 0 || body[11] != 0) return corrupt("PNG: unknown compression or filter method");
      if (l.width == 0 || l.height == 0 || l.width > 0x7FFFFFFFu || l.height > 0x7FFFFFFFu) {
        return corrupt("PNG: image has no pixels");
      }
      if (depth != 8 || body[12] != 0) return FastPng::NotHandled;  // 1/2/4/16-bit or Adam7
      switch (l.colour_type) {
        case 0: l.channels = 1; break;
        case 2: l.channels = 3; break;
        case 3: l.channels = 1; break;
        case 4: l.channels = 2; l.alpha = true; break;
        case 6: l.channels = 4; l.alpha = true; break;
        default: return corrupt("PNG: unknown colour type");
      }
    } else if (is_type(type, "PLTE")) {
      if (have_plte || idat != nullptr || length % 3 != 0 || length == 0 || length > 768) {
        return FastPng::NotHandled;
      }
      have_plte = true;
      if (l.colour_type == 3) {
        l.palette_size = static_cast<int>(length / 3);
        for (int i = 0; i < l.palette_size; ++i) {
          const std::uint8_t rgba[4] = {body[i * 3], body[i * 3 + 1], body[i * 3 + 2], 255};
          std::memcpy(&l.palette[i], rgba, 4);
        }
      }
    } else if (is_type(type, "tRNS")) {
      // A colour key on grey or RGB is rare: libspng handles it.
      if (l.colour_type != 3 || !have_plte || have_trns || idat != nullptr ||
          length > static_cast<std::uint32_t>(l.palette_size)) {
        return FastPng::NotHandled;
      }
      have_trns = true;
      l.alpha = true;
      for (std::uint32_t i = 0; i < length; ++i) {
        reinterpret_cast<std::uint8_t*>(&l.palette[i])[3] = body[i];
      }
    } else if (is_type(type, "IDAT")) {
      if (l.colour_type == 3 && !have_plte) return corrupt("PNG: palette image without PLTE");
      if (idat == nullptr) {
        idat = body;
        idat_size = length;
      } else {
        if (joined.empty()) joined.assign(idat, idat + idat_size);
        joined.insert(joined.end(), body, body + length);
      }
      // The IDATs must be consecutive: look at the next chunk's type.
      const std::size_t next = at + 12 + length;
      if (size - next < 8 || !is_type(p + next + 4, "IDAT")) idat_done = true;
    } else if (is_type(type, "IEND")) {
      return corrupt("PNG: no image data");
    } else if (critical) {
      return FastPng::NotHandled;  // an unknown critical chunk: libspng refuses it
    }
    at += 12 + static_cast<std::size_t>(length);
  }
  if (!joined.empty()) {
    idat = joined.data();
    idat_size = joined.size();
  }

  // Sizes, checked before anything pixel-sized is allocated.
  if (!rgba_bytes(l.width, l.height)) return make_error(ErrorCode::TooManyPixels, "PNG dimensions out of range");
  const std::size_t stride = static_cast<std::size_t>(l.width) * static_cast<std::size_t>(l.channels);
  const std::size_t filtered = (stride + 1) * l.height;  // < 2^20 * (2^22 + 1): fits

  // Not zeroed: libdeflate fills all of it or the decode is refused. Huge
  // pages (big_buffer.h): a 2560x1600 RGBA PNG inflates to 16 MB.
  BigBuffer raw_buffer(filtered);
  if (!raw_buffer) return make_error(ErrorCode::Internal, "PNG: out of memory");
  std::uint8_t* const raw = raw_buffer.get();
  DecompressorPtr inflater(libdeflate_alloc_decompressor());
  if (!inflater) return make_error(ErrorCode::Internal, "PNG: out of memory");
  switch (libdeflate_zlib_decompress(inflater.get(), idat, idat_size, raw, filtered, nullptr)) {
    case LIBDEFLATE_SUCCESS: break;
    case LIBDEFLATE_SHORT_OUTPUT: return corrupt("PNG: image data ended early");
    case LIBDEFLATE_INSUFFICIENT_SPACE: return FastPng::NotHandled;  // more data than the image: libspng decides
    default: return corrupt("PNG: corrupt image data");
  }
  for (std::uint32_t y = 0; y < l.height; ++y) {
    if (raw[y * (stride + 1)] > 4) return corrupt("PNG: bad row filter type");
  }

  if (auto s = sink.begin(static_cast<int>(l.width), static_cast<int>(l.height), l.alpha); !s) return s.take_error();
  std::vector<std::uint8_t> zeros(stride, 0);
  std::vector<std::uint8_t> rgba(l.colour_type == 6 ? 0 : static_cast<std::size_t>(l.width) * 4);
  const std::uint8_t* prev = zeros.data();
  for (std::uint32_t y = 0; y < l.height; ++y) {
    std::uint8_t* row = raw + y * (stride + 1);
    png_unfilter(row[0], row + 1, prev, stride, l.channels);
    prev = row + 1;
    const std::uint8_t* out = row + 1;
    if (l.colour_type != 6) {
      expand_row(l, row + 1, rgba.data());
      out = rgba.data();
    }
    if (!sink.row(out)) break;
  }
  return FastPng::Decoded;
}

}  // namespace nic::detail
