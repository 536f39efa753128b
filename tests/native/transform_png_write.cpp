// The PNG encoder and grey output: lossless in every layout it picks (grey,
// palette at 1/2/4/8 bits with tRNS, RGB, RGBA), grey sources stay grey in
// PNG and JPEG, and the output is never larger than zlib level 6 with
// adaptive filters (libspng) on the same pixels.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "image.h"
#include "nic/negotiate.h"
#include "nic/params.h"
#include "transform.h"
#include "transform_fixtures.h"

namespace {

using fixture::Bytes;
using fixture::Pixels;

using fixture::to_image;

int png_colour_type(const Bytes& png) { return png.size() > 25 ? png[25] : -1; }
int png_depth(const Bytes& png) { return png.size() > 24 ? png[24] : -1; }

Bytes encode(const Pixels& rgba, bool flat) {
  auto out = nic::detail::encode_png(to_image(rgba), flat);
  REQUIRE(out);
  return *out;
}

// libspng, zlib level 6, libpng's adaptive filter heuristic: the usual
// "level 6" PNG of these pixels.
Bytes zlib6(const Pixels& rgba) {
  const bool alpha = [&] {
    for (std::size_t i = 3; i < rgba.p.size(); i += 4) {
      if (rgba.p[i] != 255) return true;
    }
    return false;
  }();
  Pixels px = alpha ? rgba : fixture::blank(rgba.w, rgba.h, 3);
  if (!alpha) {
    for (std::size_t i = 0; i < static_cast<std::size_t>(rgba.w) * rgba.h; ++i) std::memcpy(&px.p[i * 3], &rgba.p[i * 4], 3);
  }
  spng_ctx* ctx = spng_ctx_new(SPNG_CTX_ENCODER);
  spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
  spng_set_option(ctx, SPNG_IMG_COMPRESSION_LEVEL, 6);
  spng_set_option(ctx, SPNG_FILTER_CHOICE, SPNG_FILTER_CHOICE_ALL);
  spng_ihdr ihdr{};
  ihdr.width = static_cast<std::uint32_t>(px.w);
  ihdr.height = static_cast<std::uint32_t>(px.h);
  ihdr.bit_depth = 8;
  ihdr.color_type = alpha ? SPNG_COLOR_TYPE_TRUECOLOR_ALPHA : SPNG_COLOR_TYPE_TRUECOLOR;
  spng_set_ihdr(ctx, &ihdr);
  Bytes b;
  if (spng_encode_image(ctx, px.p.data(), px.p.size(), SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE) == 0) {
    std::size_t len = 0;
    int err = 0;
    void* buf = spng_get_png_buffer(ctx, &len, &err);
    b.assign(static_cast<std::uint8_t*>(buf), static_cast<std::uint8_t*>(buf) + len);
    std::free(buf);
  }
  spng_ctx_free(ctx);
  return b;
}

Pixels with_colours(int w, int h, int colours, bool alpha) {
  Pixels px = fixture::blank(w, h, 4);
  fixture::Rng rng;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const int c = ((x / 7) * 5 + (y / 5) * 3 + static_cast<int>(rng.next() % 2)) % colours;
      std::uint8_t* p = px.at(x, y);
      p[0] = static_cast<std::uint8_t>(c * 37);
      p[1] = static_cast<std::uint8_t>(c * 11 + 40);
      p[2] = static_cast<std::uint8_t>(255 - c);
      p[3] = alpha ? static_cast<std::uint8_t>(c % 3 == 0 ? 0 : (c % 3 == 1 ? 128 : 255)) : 255;
    }
  }
  return px;
}

}  // namespace

TEST_CASE("png write: every layout decodes to the same pixels", "[png]") {
  struct Case {
    std::string name;
    Pixels px;
    int colour_type;
    int depth;
  };
  std::vector<Case> cases;
  cases.push_back({"2 colours -> 1-bit palette", with_colours(67, 31, 2, false), 3, 1});
  cases.push_back({"4 colours + alpha -> 2-bit palette, tRNS", with_colours(67, 31, 4, true), 3, 2});
  cases.push_back({"13 colours -> 4-bit palette", with_colours(67, 31, 13, false), 3, 4});
  cases.push_back({"200 colours + alpha -> 8-bit palette", with_colours(67, 31, 200, true), 3, 8});
  // Tall enough (>= 64 rows) for flat content's sample of rows (encode_png),
  // widths that leave a tail after the 16-byte filter steps.
  cases.push_back({"200 colours + alpha, 150 rows -> 8-bit palette", with_colours(67, 150, 200, true), 3, 8});
  Pixels shaded = fixture::to_rgba(fixture::screenshot(173, 150));  // a gradient over the left half: > 256 colours
  for (int y = 0; y < shaded.h; ++y) {
    for (int x = 0; x < shaded.w / 2; ++x) shaded.at(x, y)[0] = static_cast<std::uint8_t>(shaded.at(x, y)[0] ^ ((x + y) & 63));
  }
  cases.push_back({"shaded screenshot, 150 rows -> RGB", shaded, 2, 8});
  cases.push_back({"photo -> RGB", fixture::to_rgba(fixture::photo(120, 80)), 2, 8});
  Pixels rgba = fixture::to_rgba(fixture::photo(120, 80));
  for (std::size_t i = 3; i < rgba.p.size(); i += 4) rgba.p[i] = static_cast<std::uint8_t>(i * 7);
  cases.push_back({"photo with alpha -> RGBA", rgba, 6, 8});
  Pixels grey = fixture::to_rgba(fixture::photo(120, 80));
  for (std::size_t i = 0; i < grey.p.size(); i += 4) grey.p[i] = grey.p[i + 2] = grey.p[i + 1];
  cases.push_back({"grey photo -> grey", grey, 0, 8});
  Pixels grey_alpha = grey;
  for (std::size_t i = 3; i < grey_alpha.p.size(); i += 4) grey_alpha.p[i] = static_cast<std::uint8_t>(i / 4 % 256);
  cases.push_back({"grey with alpha -> grey+alpha", grey_alpha, 4, 8});
  for (const auto& c : cases) {
    for (const bool flat : {false, true}) {
      INFO(c.name << (flat ? " (flat)" : ""));
      const Bytes png = encode(c.px, flat);
      CHECK(png_colour_type(png) == c.colour_type);
      CHECK(png_depth(png) == c.depth);
      const Pixels back = fixture::decode(png);
      REQUIRE(back.w == c.px.w);
      // Lossless; fully transparent pixels may keep any colour.
      bool same = true;
      for (std::size_t i = 0; i < back.p.size(); i += 4) {
        if (back.p[i + 3] != c.px.p[i + 3]) same = false;
        if (c.px.p[i + 3] != 0 && std::memcmp(&back.p[i], &c.px.p[i], 3) != 0) same = false;
      }
      CHECK(same);
    }
  }
}

// Photos are measured on the real-photo corpus (bench/README.md): the
// synthetic photo's uniform random grain is the one input where zlib's
// default strategy beats RLE (1.09x), real photographs go the other way.
TEST_CASE("png write: never larger than zlib level 6 with adaptive filters", "[png]") {
  const Pixels photo = fixture::to_rgba(fixture::photo(400, 260));
  const Pixels screen = fixture::to_rgba(fixture::screenshot(400, 280));
  Pixels grey = photo;
  for (std::size_t i = 0; i < grey.p.size(); i += 4) grey.p[i] = grey.p[i + 2] = grey.p[i + 1];
  for (const Pixels* px : std::vector<const Pixels*>{&screen, &grey}) {
    const bool flat = nic::detail::looks_flat(to_image(*px));
    const Bytes ours = encode(*px, flat);
    const Bytes theirs = zlib6(*px);
    REQUIRE_FALSE(theirs.empty());
    INFO("flat " << flat << " ours " << ours.size() << " zlib6 " << theirs.size());
    CHECK(ours.size() <= theirs.size());
  }
}

TEST_CASE("grey sources stay grey: PNG grey, JPEG one component, AVIF 4:0:0", "[png]") {
  Pixels grey = fixture::blank(160, 120, 1);
  const Pixels photo = fixture::photo(160, 120);
  for (std::size_t i = 0; i < grey.p.size(); ++i) grey.p[i] = photo.p[i * 3 + 1];
  const Bytes jpeg = fixture::encode_jpeg(grey, {95});
  for (const auto fmt : {nic::RequestedFormat::Png, nic::RequestedFormat::Jpeg, nic::RequestedFormat::Avif}) {
    nic::NormalizedParams p;
    p.w = 80;
    p.fmt = fmt;
    auto out = nic::transform_image(jpeg, p, nic::negotiate(fmt, ""), nic::TransformLimits{});
    REQUIRE(out);
    if (fmt == nic::RequestedFormat::Png) {
      CHECK(png_colour_type(out->bytes) == 0);
    } else if (fmt == nic::RequestedFormat::Avif) {
      avifDecoder* dec = avifDecoderCreate();
      REQUIRE(avifDecoderSetIOMemory(dec, out->bytes.data(), out->bytes.size()) == AVIF_RESULT_OK);
      REQUIRE(avifDecoderParse(dec) == AVIF_RESULT_OK);
      CHECK(dec->image->yuvFormat == AVIF_PIXEL_FORMAT_YUV400);
      avifDecoderDestroy(dec);
      const Pixels back = fixture::decode(out->bytes);
      REQUIRE(back.w == 80);
      CHECK(back.at(40, 30)[0] == back.at(40, 30)[2]);
    } else {
      jpeg_decompress_struct cinfo{};
      jpeg_error_mgr err{};
      cinfo.err = jpeg_std_error(&err);
      jpeg_create_decompress(&cinfo);
      jpeg_mem_src(&cinfo, out->bytes.data(), static_cast<unsigned long>(out->bytes.size()));
      REQUIRE(jpeg_read_header(&cinfo, TRUE) == JPEG_HEADER_OK);
      CHECK(cinfo.num_components == 1);
      jpeg_destroy_decompress(&cinfo);
    }
  }
  // Flat grey content (its own progressive script) decodes back to grey.
  {
    const Pixels screen = fixture::screenshot(320, 200);
    Pixels grey_screen = fixture::blank(320, 200, 1);
    for (std::size_t i = 0; i < grey_screen.p.size(); ++i) grey_screen.p[i] = screen.p[i * 3];
    nic::NormalizedParams p;
    p.w = 160;
    p.fmt = nic::RequestedFormat::Jpeg;
    auto out = nic::transform_image(fixture::encode_png(grey_screen), p, nic::negotiate(p.fmt, ""), nic::TransformLimits{});
    REQUIRE(out);
    const Pixels back = fixture::decode(out->bytes);
    REQUIRE(back.w == 160);
    CHECK(back.at(100, 60)[0] == back.at(100, 60)[1]);
  }
  // A colour source is not made grey.
  nic::NormalizedParams p;
  p.w = 80;
  p.fmt = nic::RequestedFormat::Png;
  auto out = nic::transform_image(fixture::encode_jpeg(photo, {95}), p, nic::negotiate(p.fmt, ""), nic::TransformLimits{});
  REQUIRE(out);
  CHECK(png_colour_type(out->bytes) == 2);
}
