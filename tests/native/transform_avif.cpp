// The AVIF encoder's bytes depend on the image and the settings only, never
// on how many threads it was given (the origin gives it the idle cores, so
// two instances, or an instance and `nic transform`, must agree on bytes and
// ETags).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <vector>

#include "image.h"
#include "transform_fixtures.h"

namespace {

using fixture::Pixels;

using fixture::to_image;

std::vector<std::uint8_t> encode(const nic::detail::Image& img, int threads, int speed) {
  nic::detail::AvifOptions options;
  options.threads = threads;
  options.speed = speed;
  auto out = nic::detail::encode_avif(img, 50, options);
  REQUIRE(out);
  return *out;
}

}  // namespace

TEST_CASE("AVIF bytes do not depend on the encoder's thread count", "[transform][avif]") {
  // Several superblock rows, so row-parallel encoding has rows to share out.
  const auto photo = to_image(fixture::to_rgba(fixture::photo(320, 256)));
  const auto screen = to_image(fixture::to_rgba(fixture::screenshot(256, 200)));
  struct Case {
    const char* name;
    const nic::detail::Image* img;
    int speed;
  };
  for (const Case& c : {Case{"photo, speed 5", &photo, 5}, Case{"photo, speed 8", &photo, 8},
                        Case{"screenshot, speed 6", &screen, 6}}) {
    SECTION(c.name) {
      const auto one = encode(*c.img, 1, c.speed);
      for (int threads : {4, 2}) {
        const auto more = encode(*c.img, threads, c.speed);
        INFO(threads << " threads: " << more.size() << " B, 1 thread: " << one.size() << " B");
        const bool same_bytes = more == one;  // not CHECK(a == b): Catch would print every byte
        CHECK(same_bytes);
      }
    }
  }
}

TEST_CASE("AVIF: the colour of fully transparent pixels costs nothing", "[transform][avif]") {
  // A soft-edged shape over a transparent background whose hidden colour is
  // black in one copy and noise in the other: the encoder replaces hidden
  // colour (by the visible pixels' mean), so both give the same bytes, and
  // the visible pixels decode as before.
  Pixels shape = fixture::to_rgba(fixture::photo(192, 160));
  for (int y = 0; y < shape.h; ++y) {
    for (int x = 0; x < shape.w; ++x) {
      const double dx = x - 96.0, dy = y - 80.0;
      const double d = std::sqrt(dx * dx + dy * dy);
      shape.at(x, y)[3] = static_cast<std::uint8_t>(d < 40 ? 255 : d > 60 ? 0 : (60 - d) / 20 * 255);
    }
  }
  Pixels black = shape, noise = shape;
  std::uint32_t state = 12345;
  for (std::size_t i = 0; i < shape.p.size(); i += 4) {
    if (shape.p[i + 3] != 0) continue;
    for (int c = 0; c < 3; ++c) {
      black.p[i + c] = 0;
      state = state * 1664525u + 1013904223u;
      noise.p[i + c] = static_cast<std::uint8_t>(state >> 24);
    }
  }
  const auto a = encode(to_image(black), 2, 6);
  const auto b = encode(to_image(noise), 2, 6);
  INFO("black background " << a.size() << " B, noisy background " << b.size() << " B");
  const bool same_bytes = a == b;
  CHECK(same_bytes);
  const Pixels decoded = fixture::decode(a);
  REQUIRE(decoded.w == shape.w);
  REQUIRE(decoded.h == shape.h);
  // Visible pixels: close to the source where opaque (q50).
  double err = 0;
  int n = 0;
  for (int y = 0; y < shape.h; ++y) {
    for (int x = 0; x < shape.w; ++x) {
      if (shape.at(x, y)[3] != 255) continue;
      for (int c = 0; c < 3; ++c) err += std::abs(decoded.at(x, y)[c] - shape.at(x, y)[c]);
      n += 3;
    }
  }
  CHECK(err / n < 6.0);
}
