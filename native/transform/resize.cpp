#include "resize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace nic::detail {
namespace {

constexpr int kShift = 14;
constexpr int kOne = 1 << kShift;
constexpr double kPi = 3.14159265358979323846;

double sinc(double x) {
  if (x == 0.0) return 1.0;
  const double px = kPi * x;
  return std::sin(px) / px;
}

double lanczos3(double x) {
  if (x <= -3.0 || x >= 3.0) return 0.0;
  return sinc(x) * sinc(x / 3.0);
}

#if !defined(__SSE2__)
std::uint8_t clamp_u8(int v) { return static_cast<std::uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v)); }
#endif

// One output row of the horizontal pass: `src` is a padded input row.
void horizontal_row(const std::uint8_t* src, const FilterTaps& f, int out_w, std::uint8_t* dst) {
  const int taps = f.taps;
#if defined(__SSE2__)
  const __m128i zero = _mm_setzero_si128();
  for (int x = 0; x < out_w; ++x) {
    const std::uint8_t* p = src + static_cast<std::size_t>(f.start[x]) * 4;
    const std::int16_t* w = f.weight.data() + static_cast<std::size_t>(x) * taps;
    __m128i acc = _mm_set1_epi32(1 << (kShift - 1));
    for (int k = 0; k < taps; k += 4) {
      const __m128i px = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k * 4));
      const __m128i lo = _mm_unpacklo_epi8(px, zero);  // p0 p1 as 16-bit
      const __m128i hi = _mm_unpackhi_epi8(px, zero);  // p2 p3
      // r0 r1 g0 g1 b0 b1 a0 a1: pairs for madd with (w0, w1).
      const __m128i p01 = _mm_unpacklo_epi16(lo, _mm_srli_si128(lo, 8));
      const __m128i p23 = _mm_unpacklo_epi16(hi, _mm_srli_si128(hi, 8));
      std::uint32_t w01;
      std::uint32_t w23;
      std::memcpy(&w01, w + k, 4);
      std::memcpy(&w23, w + k + 2, 4);
      acc = _mm_add_epi32(acc, _mm_madd_epi16(p01, _mm_set1_epi32(static_cast<int>(w01))));
      acc = _mm_add_epi32(acc, _mm_madd_epi16(p23, _mm_set1_epi32(static_cast<int>(w23))));
    }
    acc = _mm_srai_epi32(acc, kShift);
    const __m128i packed = _mm_packus_epi16(_mm_packs_epi32(acc, acc), zero);
    const auto v = static_cast<std::uint32_t>(_mm_cvtsi128_si32(packed));
    std::memcpy(dst + static_cast<std::size_t>(x) * 4, &v, 4);
  }
#else
  for (int x = 0; x < out_w; ++x) {
    const std::uint8_t* p = src + static_cast<std::size_t>(f.start[x]) * 4;
    const std::int16_t* w = f.weight.data() + static_cast<std::size_t>(x) * taps;
    int acc[4] = {1 << (kShift - 1), 1 << (kShift - 1), 1 << (kShift - 1), 1 << (kShift - 1)};
    for (int k = 0; k < taps; ++k) {
      for (int c = 0; c < 4; ++c) acc[c] += w[k] * p[k * 4 + c];
    }
    for (int c = 0; c < 4; ++c) dst[x * 4 + c] = clamp_u8(acc[c] >> kShift);
  }
#endif
}

// One output row of the vertical pass over `bytes` bytes (a multiple of 16).
void vertical_row(const std::uint8_t* const* rows, const std::int16_t* w, int taps,
                  std::size_t bytes, std::uint8_t* dst) {
#if defined(__SSE2__)
  const __m128i zero = _mm_setzero_si128();
  for (std::size_t x = 0; x < bytes; x += 16) {
    __m128i a0 = _mm_set1_epi32(1 << (kShift - 1));
    __m128i a1 = a0;
    __m128i a2 = a0;
    __m128i a3 = a0;
    for (int k = 0; k < taps; k += 2) {
      const __m128i r0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[k] + x));
      const __m128i r1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[k + 1] + x));
      std::uint32_t wp;
      std::memcpy(&wp, w + k, 4);
      const __m128i wv = _mm_set1_epi32(static_cast<int>(wp));
      const __m128i lo = _mm_unpacklo_epi8(r0, r1);  // a0 b0 a1 b1 ... (bytes 0..7)
      const __m128i hi = _mm_unpackhi_epi8(r0, r1);  // bytes 8..15
      a0 = _mm_add_epi32(a0, _mm_madd_epi16(_mm_unpacklo_epi8(lo, zero), wv));
      a1 = _mm_add_epi32(a1, _mm_madd_epi16(_mm_unpackhi_epi8(lo, zero), wv));
      a2 = _mm_add_epi32(a2, _mm_madd_epi16(_mm_unpacklo_epi8(hi, zero), wv));
      a3 = _mm_add_epi32(a3, _mm_madd_epi16(_mm_unpackhi_epi8(hi, zero), wv));
    }
    a0 = _mm_srai_epi32(a0, kShift);
    a1 = _mm_srai_epi32(a1, kShift);
    a2 = _mm_srai_epi32(a2, kShift);
    a3 = _mm_srai_epi32(a3, kShift);
    const __m128i out = _mm_packus_epi16(_mm_packs_epi32(a0, a1), _mm_packs_epi32(a2, a3));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + x), out);
  }
#else
  for (std::size_t x = 0; x < bytes; ++x) {
    int acc = 1 << (kShift - 1);
    for (int k = 0; k < taps; ++k) acc += w[k] * rows[k][x];
    dst[x] = clamp_u8(acc >> kShift);
  }
#endif
}

}  // namespace

FilterTaps lanczos3_taps(int in_size, double offset, double length, int out_size) {
  FilterTaps f;
  const double scale = length / out_size;          // input pixels per output pixel
  const double stretch = std::max(scale, 1.0);     // widen the kernel when shrinking
  const double support = 3.0 * stretch;
  const int max_taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  f.taps = (max_taps + 3) & ~3;
  f.start.resize(static_cast<std::size_t>(out_size));
  f.weight.assign(static_cast<std::size_t>(out_size) * f.taps, 0);

  std::vector<double> tmp(static_cast<std::size_t>(max_taps));
  for (int i = 0; i < out_size; ++i) {
    const double centre = offset + (i + 0.5) * scale - 0.5;
    int lo = static_cast<int>(std::ceil(centre - support));
    int hi = static_cast<int>(std::floor(centre + support));
    lo = std::max(lo, 0);
    hi = std::min(hi, in_size - 1);
    if (hi - lo + 1 > max_taps) hi = lo + max_taps - 1;
    if (hi < lo) {  // degenerate (should not happen): nearest pixel
      lo = hi = std::clamp(static_cast<int>(std::lround(centre)), 0, in_size - 1);
    }
    double sum = 0;
    const int n = hi - lo + 1;
    for (int k = 0; k < n; ++k) {
      tmp[k] = lanczos3((lo + k - centre) / stretch);
      sum += tmp[k];
    }
    if (sum == 0) {
      tmp[0] = 1;
      sum = 1;
      for (int k = 1; k < n; ++k) tmp[k] = 0;
    }
    std::int16_t* w = f.weight.data() + static_cast<std::size_t>(i) * f.taps;
    int isum = 0;
    int biggest = 0;
    for (int k = 0; k < n; ++k) {
      w[k] = static_cast<std::int16_t>(std::lround(tmp[k] / sum * kOne));
      isum += w[k];
      if (w[k] > w[biggest]) biggest = k;
    }
    w[biggest] = static_cast<std::int16_t>(w[biggest] + (kOne - isum));  // exact unity gain
    // Keep start + taps within the axis where possible (the SIMD loops read
    // all taps): move the window left and the weights right.
    const int shifted = std::max(0, std::min(lo, in_size - f.taps));
    if (shifted < lo) {
      const int by = lo - shifted;
      std::memmove(w + by, w, static_cast<std::size_t>(n) * sizeof(std::int16_t));
      std::fill(w, w + by, std::int16_t{0});
    }
    f.start[i] = shifted;
  }
  return f;
}

void premultiply(std::uint8_t* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i, p += 4) {
    const unsigned a = p[3];
    if (a == 255) continue;
    for (int c = 0; c < 3; ++c) {
      const unsigned t = p[c] * a + 128;
      p[c] = static_cast<std::uint8_t>((t + (t >> 8)) >> 8);
    }
  }
}

void unpremultiply(std::uint8_t* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i, p += 4) {
    const unsigned a = p[3];
    if (a == 255) continue;
    if (a == 0) {
      p[0] = p[1] = p[2] = 0;
      continue;
    }
    for (int c = 0; c < 3; ++c) {
      const unsigned v = (p[c] * 255u + a / 2) / a;
      p[c] = static_cast<std::uint8_t>(v > 255 ? 255 : v);
    }
  }
}

Status Resampler::begin(int width, int height, bool alpha) {
  if (width < 1 || height < 1 || plan_.out_w < 1 || plan_.out_h < 1) {
    return corrupt("image has no pixels");
  }
  in_w_ = width;
  in_h_ = height;
  alpha_ = alpha;
  // The decoder may have scaled on load: map the crop into its pixel grid.
  const double sx = static_cast<double>(width) / plan_.source_w;
  const double sy = static_cast<double>(height) / plan_.source_h;
  h_ = lanczos3_taps(width, plan_.crop_x * sx, plan_.crop_w * sx, plan_.out_w);
  v_ = lanczos3_taps(height, plan_.crop_y * sy, plan_.crop_h * sy, plan_.out_h);

  // Rows the vertical pass reads (its padding taps re-read a real row).
  first_row_ = v_.start.front();
  last_row_ = first_row_;
  for (int j = 0; j < plan_.out_h; ++j) {
    const std::int16_t* w = v_.weight.data() + static_cast<std::size_t>(j) * v_.taps;
    int used = 0;
    for (int k = 0; k < v_.taps; ++k) {
      if (w[k] != 0) used = k + 1;
    }
    first_row_ = std::min(first_row_, v_.start[j]);
    last_row_ = std::max(last_row_, std::min(in_h_ - 1, v_.start[j] + std::max(used, 1) - 1));
  }
  tmp_stride_ = (static_cast<std::size_t>(plan_.out_w) * 4 + 15) & ~static_cast<std::size_t>(15);
  tmp_.assign(tmp_stride_ * static_cast<std::size_t>(last_row_ - first_row_ + 1), 0);
  // Taps past the row end (short rows) read zeros with weight 0.
  scratch_.assign(static_cast<std::size_t>(std::max(width, h_.taps) + 4) * 4, 0);
  next_row_ = 0;
  return Ok{};
}

bool Resampler::row(const std::uint8_t* rgba) {
  const int y = next_row_++;
  if (y < first_row_) return true;
  if (y > last_row_) return false;
  const std::size_t bytes = static_cast<std::size_t>(in_w_) * 4;
  std::memcpy(scratch_.data(), rgba, bytes);
  if (alpha_) premultiply(scratch_.data(), static_cast<std::size_t>(in_w_));
  horizontal_row(scratch_.data(), h_, plan_.out_w,
                 tmp_.data() + tmp_stride_ * static_cast<std::size_t>(y - first_row_));
  return y < last_row_;
}

Result<Image> Resampler::finish() {
  if (next_row_ <= last_row_) return corrupt("image data ended early");
  auto made = make_image(plan_.out_w, plan_.out_h, alpha_);
  if (!made) return made.take_error();
  Image out = std::move(*made);

  std::vector<const std::uint8_t*> rows(static_cast<std::size_t>(v_.taps));
  std::vector<std::uint8_t> line(tmp_stride_);
  const std::size_t out_bytes = static_cast<std::size_t>(plan_.out_w) * 4;
  for (int j = 0; j < plan_.out_h; ++j) {
    const std::int16_t* w = v_.weight.data() + static_cast<std::size_t>(j) * v_.taps;
    for (int k = 0; k < v_.taps; ++k) {
      // Padding taps (weight 0) may point past the rows kept: re-read a kept one.
      const int r = std::clamp(v_.start[j] + k, first_row_, last_row_);
      rows[k] = tmp_.data() + tmp_stride_ * static_cast<std::size_t>(r - first_row_);
    }
    vertical_row(rows.data(), w, v_.taps, tmp_stride_, line.data());
    std::memcpy(out.row(j), line.data(), out_bytes);
  }
  if (alpha_) unpremultiply(out.pixels.data(), static_cast<std::size_t>(out.width) * out.height);
  return out;
}

}  // namespace nic::detail
