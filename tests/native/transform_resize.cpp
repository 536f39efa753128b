// The resampler against a double-precision Lanczos3 computed here, and its
// invariants (unity gain, tap layout, alpha handling).
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "resize.h"
#include "transform_fixtures.h"

namespace {

using fixture::Pixels;

using fixture::lanczos_reference;

Pixels run(const Pixels& src, double x0, double y0, double cw, double ch, int w, int h, bool alpha) {
  nic::detail::ResizePlan plan;
  plan.source_w = src.w;
  plan.source_h = src.h;
  plan.crop_x = x0;
  plan.crop_y = y0;
  plan.crop_w = cw;
  plan.crop_h = ch;
  plan.out_w = w;
  plan.out_h = h;
  nic::detail::Resampler r(plan);
  REQUIRE(r.begin(src.w, src.h, alpha).ok());
  for (int y = 0; y < src.h; ++y) {
    if (!r.row(src.at(0, y))) break;
  }
  auto img = r.finish();
  REQUIRE(img.ok());
  Pixels out = fixture::blank(img->width, img->height, 4);
  out.p = img->pixels;
  return out;
}

}  // namespace

TEST_CASE("resize: matches a double-precision Lanczos3", "[transform][resize]") {
  const Pixels photo = fixture::to_rgba(fixture::photo(300, 200));
  // Both kernel sets: AVX2 (where the CPU has it) and SSE2.
  const bool avx2 = GENERATE(true, false);
  nic::detail::use_avx2_kernels(avx2);
  INFO((avx2 ? "AVX2 kernels" : "SSE2 kernels"));
  // Both orders: vertical pass first where it is cheaper, and horizontal first always.
  const bool vertical_first = GENERATE(true, false);
  nic::detail::set_vertical_first_limit(vertical_first ? (16u << 20) : 0);
  INFO((vertical_first ? "vertical first where cheaper" : "horizontal first"));
  struct Case {
    const char* name;
    double x0, y0, cw, ch;
    int w, h;
  };
  const std::vector<Case> cases = {
      {"2.5x down", 0, 0, 300, 200, 120, 80},
      {"3.7x down, odd size", 0, 0, 300, 200, 81, 54},
      {"8x down", 0, 0, 300, 200, 37, 25},
      {"identity", 0, 0, 300, 200, 300, 200},
      {"fractional crop", 40.5, 10.25, 200.5, 150.0, 97, 71},
      {"stretch one axis", 0, 0, 300, 200, 300, 50},
      {"slight upscale", 10, 10, 100, 100, 130, 130},
      {"to one pixel", 0, 0, 300, 200, 1, 1},
  };
  for (const auto& c : cases) {
    SECTION(c.name) {
      const Pixels got = run(photo, c.x0, c.y0, c.cw, c.ch, c.w, c.h, false);
      const Pixels want = lanczos_reference(photo, c.x0, c.y0, c.cw, c.ch, c.w, c.h);
      const double score = fixture::psnr(got, want);
      INFO("PSNR " << score);
      CHECK(score > 45);
    }
  }
  SECTION("with alpha, premultiplied") {
    Pixels rgba = photo;
    for (int y = 0; y < rgba.h; ++y) {
      for (int x = 0; x < rgba.w; ++x) rgba.at(x, y)[3] = static_cast<std::uint8_t>((x * 255) / (rgba.w - 1));
    }
    const Pixels got = run(rgba, 0, 0, 300, 200, 90, 60, true);
    const Pixels want = lanczos_reference(rgba, 0, 0, 300, 200, 90, 60);
    const double score = fixture::psnr(got, want);
    INFO("PSNR " << score);
    CHECK(score > 40);
  }
  nic::detail::use_avx2_kernels(true);
  nic::detail::set_vertical_first_limit(16u << 20);
}

TEST_CASE("resize: a flat image stays exactly flat", "[transform][resize]") {
  Pixels flat = fixture::blank(123, 77, 4);
  for (std::size_t i = 0; i < flat.p.size(); i += 4) {
    flat.p[i] = 13;
    flat.p[i + 1] = 200;
    flat.p[i + 2] = 255;
    flat.p[i + 3] = 255;
  }
  for (int w : {1, 7, 40, 61, 123}) {
    const Pixels got = run(flat, 0, 0, 123, 77, w, std::max(1, w * 77 / 123), false);
    for (std::size_t i = 0; i < got.p.size(); i += 4) {
      if (got.p[i] != 13 || got.p[i + 1] != 200 || got.p[i + 2] != 255) {
        FAIL("pixel " << i / 4 << " changed at width " << w);
      }
    }
  }
}

TEST_CASE("resize: taps have unity gain and stay within the row", "[transform][resize]") {
  struct Case {
    int in;
    double off, len;
    int out;
  };
  const std::vector<Case> cases = {{300, 0, 300, 120}, {300, 0, 300, 300}, {5, 0, 5, 1},
                                   {3, 0, 3, 3},       {1000, 250.5, 400, 17}, {2, 0, 2, 1}};
  for (const auto& c : cases) {
    const auto f = nic::detail::lanczos3_taps(c.in, c.off, c.len, c.out);
    REQUIRE(f.taps % 4 == 0);
    REQUIRE(f.start.size() == static_cast<std::size_t>(c.out));
    for (int i = 0; i < c.out; ++i) {
      int sum = 0;
      for (int k = 0; k < f.taps; ++k) sum += f.weight[static_cast<std::size_t>(i) * f.taps + k];
      CHECK(sum == 1 << 14);
      CHECK(f.start[i] >= 0);
      CHECK(f.start[i] + f.taps <= std::max(c.in, f.taps));
      // Weights on taps beyond the axis are zero.
      for (int k = 0; k < f.taps; ++k) {
        if (f.start[i] + k >= c.in) CHECK(f.weight[static_cast<std::size_t>(i) * f.taps + k] == 0);
      }
    }
  }
}

TEST_CASE("resize: premultiply round trip", "[transform][resize]") {
  std::vector<std::uint8_t> px = {200, 100, 50, 255, 200, 100, 50, 0, 255, 255, 255, 128, 10, 20, 30, 1};
  nic::detail::premultiply(px.data(), 4);
  CHECK(px[0] == 200);  // opaque untouched
  CHECK(px[4] == 0);    // clear -> 0
  CHECK(px[8] == 128);  // 255 * 128 / 255
  nic::detail::unpremultiply(px.data(), 4);
  CHECK(px[0] == 200);
  CHECK(px[1] == 100);
  CHECK(px[4] == 0);
  CHECK(px[8] == 255);
  CHECK(px[9] == 255);
  CHECK(px[11] == 128);
}
