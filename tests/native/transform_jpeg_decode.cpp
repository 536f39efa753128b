// Progressive JPEGs decode through whole-image coefficient arrays that
// codec_jpeg.cpp keeps in its own (huge-page) memory instead of libjpeg's:
// the pixels must be exactly those of the same image coded as baseline (both
// hold the same quantised coefficients; only the scan order differs).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "image.h"
#include "transform_fixtures.h"

namespace {

using fixture::Bytes;
using fixture::Pixels;

struct Collect : nic::detail::RowSink {
  int w = 0, h = 0;
  std::vector<std::uint8_t> pixels;
  nic::Status begin(int width, int height, bool) override {
    w = width;
    h = height;
    pixels.reserve(static_cast<std::size_t>(width) * height * 4);
    return nic::Ok{};
  }
  bool row(const std::uint8_t* rgba) override {
    pixels.insert(pixels.end(), rgba, rgba + static_cast<std::size_t>(w) * 4);
    return true;
  }
};

Collect decode(const Bytes& jpeg, int scale_num = 8) {
  Collect sink;
  nic::detail::DecodeHints hints;
  hints.scale_num = scale_num;
  const nic::Status s = nic::detail::decode_jpeg(jpeg, hints, sink);
  INFO((s ? std::string("ok") : s.error().message));
  REQUIRE(s);
  return sink;
}

}  // namespace

TEST_CASE("JPEG: a progressive file decodes to its baseline twin's pixels", "[transform][jpeg]") {
  struct Case {
    const char* name;
    int w, h;
    bool grey;
    int scale_num;
  };
  // 1280x1024 4:2:0 needs ~3.9 MB of coefficients (the 2 MB-page path);
  // the small ones stay in ordinary pages; odd sizes leave partial blocks.
  for (const Case& c : {Case{"1280x1024 colour", 1280, 1024, false, 8}, Case{"333x251 colour", 333, 251, false, 8},
                        Case{"1280x1024 colour at 1/4 scale", 1280, 1024, false, 2},
                        Case{"517x389 grey", 517, 389, true, 8}}) {
    SECTION(c.name) {
      const Pixels rgb = fixture::photo(c.w, c.h);
      Pixels src = rgb;
      if (c.grey) {
        src = fixture::blank(c.w, c.h, 1);
        for (std::size_t i = 0; i < src.p.size(); ++i) src.p[i] = rgb.p[i * 3 + 1];
      }
      fixture::JpegOptions baseline;
      baseline.quality = 85;
      baseline.grayscale = c.grey;
      fixture::JpegOptions progressive = baseline;
      progressive.progressive = true;
      const Bytes a = fixture::encode_jpeg(src, baseline);
      const Bytes b = fixture::encode_jpeg(src, progressive);
      REQUIRE(a != b);
      const Collect da = decode(a, c.scale_num);
      const Collect db = decode(b, c.scale_num);
      CHECK(db.w == da.w);
      CHECK(db.h == da.h);
      CHECK(da.pixels.size() == static_cast<std::size_t>(da.w) * da.h * 4);
      const bool same_pixels = db.pixels == da.pixels;  // not CHECK(a == b): Catch would print every byte
      CHECK(same_pixels);
    }
  }
}

TEST_CASE("JPEG: decoding progressive files back to back reuses nothing stale", "[transform][jpeg]") {
  // Two different images in a row on one thread: the second must not show
  // coefficients of the first (the arrays are zeroed for every decode).
  fixture::JpegOptions o;
  o.quality = 85;
  o.progressive = true;
  const Pixels first = fixture::photo(640, 480);
  const Pixels second = fixture::screenshot(640, 480);
  fixture::JpegOptions base = o;
  base.progressive = false;
  const Collect expected = decode(fixture::encode_jpeg(second, base));
  (void)decode(fixture::encode_jpeg(first, o));
  const Collect got = decode(fixture::encode_jpeg(second, o));
  const bool same_pixels = got.pixels == expected.pixels;
  CHECK(same_pixels);
}
