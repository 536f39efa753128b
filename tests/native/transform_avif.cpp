// The AVIF encoder's bytes depend on the image and the settings only, never
// on how many threads it was given (the origin gives it the idle cores, so
// two instances, or an instance and `nic transform`, must agree on bytes and
// ETags).
#include <catch2/catch.hpp>

#include <vector>

#include "image.h"
#include "transform_fixtures.h"

namespace {

using fixture::Pixels;

nic::detail::Image to_image(const Pixels& rgba) {
  nic::detail::Image img;
  img.width = rgba.w;
  img.height = rgba.h;
  img.pixels = rgba.p;
  img.alpha = false;
  for (std::size_t i = 3; i < img.pixels.size(); i += 4) img.alpha = img.alpha || img.pixels[i] != 255;
  return img;
}

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
