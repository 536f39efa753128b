// Lanczos3 resampler: separable, two passes, precomputed fixed-point weights
// (14 bits), SSE2 inner loops with a portable fallback. Alpha is premultiplied
// while filtering so transparent edges get no dark fringe.
//
// It is a RowSink: the decoder streams rows into the horizontal pass; a ring
// of `taps` resized rows feeds the vertical pass, which emits each output row
// as soon as its last input row has arrived. Memory is the output plus a few
// rows, and rows below the crop are never requested, so the decoder can stop
// early. When the vertical pass first is cheaper (it filters out_h rows
// instead of every input row horizontally; e.g. 2000x1400 -> 800x560 takes
// ~40% fewer instructions) and its ring of `taps` full-width input rows is
// small, the order is swapped.
#pragma once

#include <cstdint>
#include <vector>

#include "image.h"

namespace nic::detail {

// What to resize, in the coordinates of the full-size stored image (before
// any scale-on-load): the crop region (may be fractional after scaling) and
// the output size.
struct ResizePlan {
  int source_w = 0;
  int source_h = 0;
  double crop_x = 0;
  double crop_y = 0;
  double crop_w = 0;
  double crop_h = 0;
  int out_w = 0;
  int out_h = 0;
};

// Per output pixel: the first input index and the weights of its taps.
struct FilterTaps {
  int taps = 0;                      // per output pixel, a multiple of 4
  std::vector<int> start;            // first input index per output pixel
  std::vector<std::int16_t> weight;  // taps per output pixel, sum 1 << 14
};

// Lanczos3 weights mapping [offset, offset + length) of an axis of `in_size`
// pixels onto `out_size` pixels. Taps beyond the axis are dropped and the rest
// renormalised. Padding taps have weight 0; start + taps <= max(in_size, taps).
FilterTaps lanczos3_taps(int in_size, double offset, double length, int out_size);

class Resampler final : public RowSink {
 public:
  explicit Resampler(const ResizePlan& plan) : plan_(plan) {}

  Status begin(int width, int height, bool alpha) override;
  bool row(const std::uint8_t* rgba) override;

  // The resized image (alpha un-premultiplied). CORRUPT_IMAGE when the
  // decoder delivered fewer rows than needed.
  Result<Image> finish();

 private:
  ResizePlan plan_;
  int in_w_ = 0;
  int in_h_ = 0;
  bool alpha_ = false;
  FilterTaps h_;
  FilterTaps v_;
  std::uint8_t* ring_row(int y);
  void emit(int j, int newest);  // output row j from the ring (rows up to `newest` are in)
  void emit_vertical_first(int j, int newest);

  // Vertical pass first (when cheaper and its ring is small enough): a ring
  // of full-width input rows; each output row is filtered vertically into
  // vline_ (only the columns the horizontal taps read) and then horizontally.
  bool vertical_first_ = false;
  std::size_t in_stride_ = 0;             // bytes per input row in the ring (padded)
  std::vector<std::uint8_t> in_ring_;     // ring of v_.taps input rows
  std::vector<std::uint8_t> vline_;       // one vertically filtered row
  std::size_t col_off_ = 0;               // bytes: the columns the horizontal taps read
  std::size_t col_bytes_ = 0;             //   (a multiple of 32)

  int first_row_ = 0;  // input rows [first_row_, last_row_] feed the vertical pass
  int last_row_ = -1;
  int next_row_ = 0;
  int next_out_ = 0;
  std::vector<int> need_;                 // per output row: the last input row it needs
  int ring_rows_ = 0;
  std::size_t tmp_stride_ = 0;            // bytes per horizontally resized row
  std::vector<std::uint8_t> tmp_;         // ring of ring_rows_ resized rows
  std::vector<std::uint8_t> line_;        // one vertical-pass output row (padded)
  std::vector<const std::uint8_t*> window_;
  Image out_;
  std::vector<std::uint8_t> scratch_;    // one padded input row
  bool avx2_ = false;                    // the AVX2 kernels run on this CPU
  std::vector<std::int32_t> wide_;       // horizontal weights laid out for AVX2
};

// Tests turn the AVX2 kernels off to cover the SSE2 ones (default: on where
// the CPU has AVX2). Affects resamplers begun afterwards.
void use_avx2_kernels(bool enabled);

// Tests set 0 to force the horizontal-first order (the default allows the
// vertical-first order when its ring of input rows fits in this many bytes).
void set_vertical_first_limit(std::size_t bytes);

// Premultiplies / un-premultiplies RGB by A in place (n pixels).
void premultiply(std::uint8_t* rgba, std::size_t n);
void unpremultiply(std::uint8_t* rgba, std::size_t n);

}  // namespace nic::detail
