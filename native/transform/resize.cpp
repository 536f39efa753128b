#include "resize.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define NIC_AVX2_PATH 1
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

#if defined(NIC_AVX2_PATH)
// AVX2: eight taps per step. Each 128-bit lane holds four pixels; one byte
// shuffle turns pixels (k, k+1) into 16-bit channel pairs for madd with the
// weight pair (w_k, w_k+1), prepared broadcast by prepare_avx2_weights.
std::atomic<bool> g_avx2_disabled{false};

bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has && !g_avx2_disabled.load(std::memory_order_relaxed);
}

__attribute__((target("avx2"))) void horizontal_row_avx2(const std::uint8_t* src, const FilterTaps& f,
                                                          const std::int32_t* wide, int out_w,
                                                          std::uint8_t* dst) {
  const __m256i m01 = _mm256_setr_epi8(0, -1, 4, -1, 1, -1, 5, -1, 2, -1, 6, -1, 3, -1, 7, -1,  //
                                       0, -1, 4, -1, 1, -1, 5, -1, 2, -1, 6, -1, 3, -1, 7, -1);
  const __m256i m23 = _mm256_setr_epi8(8, -1, 12, -1, 9, -1, 13, -1, 10, -1, 14, -1, 11, -1, 15, -1,  //
                                       8, -1, 12, -1, 9, -1, 13, -1, 10, -1, 14, -1, 11, -1, 15, -1);
  const int groups = f.taps / 8;
  const bool tail = (f.taps % 8) != 0;
  const std::size_t stride = static_cast<std::size_t>(groups) * 16 + (tail ? 8 : 0);
  for (int x = 0; x < out_w; ++x) {
    const std::uint8_t* p = src + static_cast<std::size_t>(f.start[x]) * 4;
    const std::int32_t* w = wide + static_cast<std::size_t>(x) * stride;
    __m256i acc = _mm256_setzero_si256();
    for (int g = 0; g < groups; ++g, p += 32, w += 16) {
      const __m256i px = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
      const __m256i wa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
      const __m256i wb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 8));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_shuffle_epi8(px, m01), wa));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_shuffle_epi8(px, m23), wb));
    }
    __m128i sum = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    if (tail) {
      const __m128i px = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      const __m128i wa = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w));
      const __m128i wb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 4));
      sum = _mm_add_epi32(sum, _mm_madd_epi16(_mm_shuffle_epi8(px, _mm256_castsi256_si128(m01)), wa));
      sum = _mm_add_epi32(sum, _mm_madd_epi16(_mm_shuffle_epi8(px, _mm256_castsi256_si128(m23)), wb));
    }
    sum = _mm_srai_epi32(_mm_add_epi32(sum, _mm_set1_epi32(1 << (kShift - 1))), kShift);
    const __m128i packed = _mm_packus_epi16(_mm_packs_epi32(sum, sum), sum);
    const auto v = static_cast<std::uint32_t>(_mm_cvtsi128_si32(packed));
    std::memcpy(dst + static_cast<std::size_t>(x) * 4, &v, 4);
  }
}

__attribute__((target("avx2"))) void vertical_row_avx2(const std::uint8_t* const* rows,
                                                        const std::int16_t* w, int taps,
                                                        std::size_t bytes, std::uint8_t* dst) {
  const __m256i zero = _mm256_setzero_si256();
  const __m256i round = _mm256_set1_epi32(1 << (kShift - 1));
  for (std::size_t x = 0; x < bytes; x += 32) {
    __m256i a0 = round, a1 = round, a2 = round, a3 = round;
    for (int k = 0; k < taps; k += 2) {
      const __m256i r0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[k] + x));
      const __m256i r1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[k + 1] + x));
      std::uint32_t wp;
      std::memcpy(&wp, w + k, 4);
      const __m256i wv = _mm256_set1_epi32(static_cast<int>(wp));
      const __m256i lo = _mm256_unpacklo_epi8(r0, r1);  // per lane: bytes 0..7 interleaved
      const __m256i hi = _mm256_unpackhi_epi8(r0, r1);  // per lane: bytes 8..15
      a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_unpacklo_epi8(lo, zero), wv));
      a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_unpackhi_epi8(lo, zero), wv));
      a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(_mm256_unpacklo_epi8(hi, zero), wv));
      a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(_mm256_unpackhi_epi8(hi, zero), wv));
    }
    a0 = _mm256_srai_epi32(a0, kShift);
    a1 = _mm256_srai_epi32(a1, kShift);
    a2 = _mm256_srai_epi32(a2, kShift);
    a3 = _mm256_srai_epi32(a3, kShift);
    // Lane-wise packing keeps each lane's bytes in order.
    const __m256i out = _mm256_packus_epi16(_mm256_packs_epi32(a0, a1), _mm256_packs_epi32(a2, a3));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + x), out);
  }
}
#endif

}  // namespace

FilterTaps lanczos3_taps(int in_size, double offset, double length, int out_size) {
  FilterTaps f;
  const double scale = length / out_size;          // input pixels per output pixel
  const double stretch = std::max(scale, 1.0);     // widen the kernel when shrinking
  const double support = 3.0 * stretch;
  // A closed interval of length 2 * support holds at most floor(2s) + 1 integers.
  const int max_taps = static_cast<int>(std::floor(2.0 * support)) + 1;
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

namespace {
std::atomic<std::size_t> g_vertical_first_limit{16u << 20};
}  // namespace

void set_vertical_first_limit(std::size_t bytes) { g_vertical_first_limit.store(bytes, std::memory_order_relaxed); }

void use_avx2_kernels(bool enabled) {
#if defined(NIC_AVX2_PATH)
  g_avx2_disabled.store(!enabled, std::memory_order_relaxed);
#else
  (void)enabled;
#endif
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

  // When each output row can be made: after the last input row with a
  // non-zero weight for it (kept non-decreasing). Rows arrive in order, so a
  // ring of `taps` horizontally resized rows holds every window.
  need_.assign(static_cast<std::size_t>(plan_.out_h), 0);
  first_row_ = v_.start.front();
  int need = 0;
  for (int j = 0; j < plan_.out_h; ++j) {
    const std::int16_t* w = v_.weight.data() + static_cast<std::size_t>(j) * v_.taps;
    int used = 1;
    for (int k = 0; k < v_.taps; ++k) {
      if (w[k] != 0) used = k + 1;
    }
    need = std::max(need, std::min(in_h_ - 1, v_.start[j] + used - 1));
    need_[static_cast<std::size_t>(j)] = need;
  }
  last_row_ = need;
  tmp_stride_ = (static_cast<std::size_t>(plan_.out_w) * 4 + 31) & ~static_cast<std::size_t>(31);
  ring_rows_ = v_.taps;
  tmp_.assign(tmp_stride_ * static_cast<std::size_t>(ring_rows_), 0);
  line_.assign(tmp_stride_, 0);
  window_.assign(static_cast<std::size_t>(v_.taps), nullptr);
  auto made = make_image(plan_.out_w, plan_.out_h, alpha_);
  if (!made) return made.take_error();
  out_ = std::move(*made);
  next_out_ = 0;
  // Taps past the row end (short rows) read zeros with weight 0.
  scratch_.assign(static_cast<std::size_t>(std::max(width, h_.taps) + 4) * 4, 0);
  next_row_ = 0;

  // Vertical first? Compare multiply-adds: horizontal-first filters every
  // needed input row horizontally; vertical-first filters each output row's
  // window over the columns the horizontal taps read. A horizontal
  // multiply-add costs about twice a vertical one (callgrind: ~3.9 vs ~1.8
  // instructions with AVX2: the vertical kernel does 8 pixels a step).
  {
    int col_lo = in_w_;
    int col_hi = 0;
    for (int x = 0; x < plan_.out_w; ++x) {
      col_lo = std::min(col_lo, h_.start[static_cast<std::size_t>(x)]);
      col_hi = std::max(col_hi, h_.start[static_cast<std::size_t>(x)] + h_.taps);
    }
    col_hi = std::min(col_hi, in_w_);
    col_lo = std::min(col_lo, col_hi);
    const double rows_in = static_cast<double>(last_row_ - first_row_ + 1);
    const double h_cost = 2.0 * plan_.out_w * h_.taps;
    const double hfirst = rows_in * h_cost + static_cast<double>(plan_.out_h) * v_.taps * plan_.out_w;
    const double vfirst = static_cast<double>(plan_.out_h) * (v_.taps * static_cast<double>(col_hi - col_lo) + h_cost);
    const std::size_t line_px = static_cast<std::size_t>(std::max(width, h_.taps)) + 8;
    in_stride_ = (line_px * 4 + 31) & ~static_cast<std::size_t>(31);
    const double ring_bytes = static_cast<double>(in_stride_) * v_.taps;
    vertical_first_ = vfirst < hfirst &&
                      ring_bytes <= static_cast<double>(g_vertical_first_limit.load(std::memory_order_relaxed));
    if (vertical_first_) {
      col_off_ = static_cast<std::size_t>(col_lo) * 4;
      col_bytes_ = (static_cast<std::size_t>(col_hi - col_lo) * 4 + 31) & ~static_cast<std::size_t>(31);
      in_ring_.assign(in_stride_ * static_cast<std::size_t>(v_.taps), 0);
      vline_.assign(in_stride_, 0);
      tmp_.clear();
      tmp_.shrink_to_fit();
    }
  }
#if defined(NIC_AVX2_PATH)
  avx2_ = cpu_has_avx2();
  if (avx2_) {
    // Per output pixel and group of 8 taps: (w0,w1)x4|(w4,w5)x4 then
    // (w2,w3)x4|(w6,w7)x4; a trailing group of 4: (w0,w1)x4 then (w2,w3)x4.
    const int groups = h_.taps / 8;
    const bool tail = (h_.taps % 8) != 0;
    const std::size_t stride = static_cast<std::size_t>(groups) * 16 + (tail ? 8 : 0);
    wide_.assign(stride * static_cast<std::size_t>(plan_.out_w), 0);
    auto pair = [](const std::int16_t* w, int k) {
      return static_cast<std::int32_t>(static_cast<std::uint16_t>(w[k]) |
                                       (static_cast<std::uint32_t>(static_cast<std::uint16_t>(w[k + 1])) << 16));
    };
    for (int x = 0; x < plan_.out_w; ++x) {
      const std::int16_t* w = h_.weight.data() + static_cast<std::size_t>(x) * h_.taps;
      std::int32_t* out = wide_.data() + static_cast<std::size_t>(x) * stride;
      for (int g = 0; g < groups; ++g, w += 8, out += 16) {
        for (int i = 0; i < 4; ++i) {
          out[i] = pair(w, 0);
          out[4 + i] = pair(w, 4);
          out[8 + i] = pair(w, 2);
          out[12 + i] = pair(w, 6);
        }
      }
      if (tail) {
        for (int i = 0; i < 4; ++i) {
          out[i] = pair(w, 0);
          out[4 + i] = pair(w, 2);
        }
      }
    }
  }
#endif
  return Ok{};
}

bool Resampler::row(const std::uint8_t* rgba) {
  const int y = next_row_++;
  if (y < first_row_) return true;
  if (y > last_row_ || next_out_ >= plan_.out_h) return false;
  if (vertical_first_) {
    std::uint8_t* slot = in_ring_.data() + in_stride_ * static_cast<std::size_t>(y % v_.taps);
    std::memcpy(slot, rgba, static_cast<std::size_t>(in_w_) * 4);
    if (alpha_) premultiply(slot, static_cast<std::size_t>(in_w_));
    while (next_out_ < plan_.out_h && need_[static_cast<std::size_t>(next_out_)] <= y) {
      emit_vertical_first(next_out_++, y);
    }
    return next_out_ < plan_.out_h;
  }
  // The kernels read start..start+taps-1, inside the row unless the row is
  // shorter than the filter; premultiplying needs a copy anyway.
  const std::uint8_t* src = rgba;
  if (alpha_ || in_w_ < h_.taps) {
    std::memcpy(scratch_.data(), rgba, static_cast<std::size_t>(in_w_) * 4);
    if (alpha_) premultiply(scratch_.data(), static_cast<std::size_t>(in_w_));
    src = scratch_.data();
  }
  std::uint8_t* dst = ring_row(y);
#if defined(NIC_AVX2_PATH)
  if (avx2_) {
    horizontal_row_avx2(src, h_, wide_.data(), plan_.out_w, dst);
  } else {
    horizontal_row(src, h_, plan_.out_w, dst);
  }
#else
  horizontal_row(src, h_, plan_.out_w, dst);
#endif
  while (next_out_ < plan_.out_h && need_[static_cast<std::size_t>(next_out_)] <= y) emit(next_out_++, y);
  return next_out_ < plan_.out_h;
}

std::uint8_t* Resampler::ring_row(int y) {
  return tmp_.data() + tmp_stride_ * static_cast<std::size_t>(y % ring_rows_);
}

void Resampler::emit(int j, int newest) {
  const std::int16_t* w = v_.weight.data() + static_cast<std::size_t>(j) * v_.taps;
  for (int k = 0; k < v_.taps; ++k) {
    // Taps after the newest row have weight 0 (padding or beyond the image):
    // any row in the ring will do.
    const int r = std::min(v_.start[j] + k, newest);
    window_[static_cast<std::size_t>(k)] = ring_row(r);
  }
#if defined(NIC_AVX2_PATH)
  if (avx2_) {
    vertical_row_avx2(window_.data(), w, v_.taps, tmp_stride_, line_.data());
  } else {
    vertical_row(window_.data(), w, v_.taps, tmp_stride_, line_.data());
  }
#else
  vertical_row(window_.data(), w, v_.taps, tmp_stride_, line_.data());
#endif
  std::memcpy(out_.row(j), line_.data(), static_cast<std::size_t>(plan_.out_w) * 4);
  if (alpha_) unpremultiply(out_.row(j), static_cast<std::size_t>(plan_.out_w));
}

void Resampler::emit_vertical_first(int j, int newest) {
  const std::int16_t* w = v_.weight.data() + static_cast<std::size_t>(j) * v_.taps;
  for (int k = 0; k < v_.taps; ++k) {
    const int r = std::min(v_.start[j] + k, newest);  // weight 0 past the newest row
    window_[static_cast<std::size_t>(k)] = in_ring_.data() + in_stride_ * static_cast<std::size_t>(r % v_.taps) + col_off_;
  }
  std::uint8_t* dst = out_.row(j);
#if defined(NIC_AVX2_PATH)
  if (avx2_) {
    vertical_row_avx2(window_.data(), w, v_.taps, col_bytes_, vline_.data() + col_off_);
    horizontal_row_avx2(vline_.data(), h_, wide_.data(), plan_.out_w, dst);
  } else {
    vertical_row(window_.data(), w, v_.taps, col_bytes_, vline_.data() + col_off_);
    horizontal_row(vline_.data(), h_, plan_.out_w, dst);
  }
#else
  vertical_row(window_.data(), w, v_.taps, col_bytes_, vline_.data() + col_off_);
  horizontal_row(vline_.data(), h_, plan_.out_w, dst);
#endif
  if (alpha_) unpremultiply(dst, static_cast<std::size_t>(plan_.out_w));
}

Result<Image> Resampler::finish() {
  if (next_out_ < plan_.out_h) return corrupt("image data ended early");
  return std::move(out_);
}

}  // namespace nic::detail
