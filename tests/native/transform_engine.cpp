// The transform engine end to end: inputs made with the codec libraries,
// outputs decoded with them and measured (size, pixels, PSNR).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "nic/negotiate.h"
#include "nic/params.h"
#include "transform.h"
#include "transform_fixtures.h"

namespace {

using fixture::Bytes;
using fixture::Pixels;
using nic::Fit;
using nic::ImageFormat;

struct Request {
  std::optional<int> w;
  std::optional<int> h;
  Fit fit = Fit::Inside;
  nic::RequestedFormat fmt = nic::RequestedFormat::Auto;
  std::optional<int> q;
  std::string accept;
  nic::TransformLimits limits{};
};

nic::Result<nic::TransformOutput> run(const Bytes& src, const Request& r) {
  nic::NormalizedParams p;
  p.w = r.w;
  p.h = r.h;
  p.fit = r.fit;
  p.fmt = r.fmt;
  p.q = r.q;
  return nic::transform_image(src, p, nic::negotiate(r.fmt, r.accept), r.limits);
}

nic::RequestedFormat requested(ImageFormat f) {
  switch (f) {
    case ImageFormat::Jpeg: return nic::RequestedFormat::Jpeg;
    case ImageFormat::Png: return nic::RequestedFormat::Png;
    case ImageFormat::Webp: return nic::RequestedFormat::Webp;
    case ImageFormat::Avif: return nic::RequestedFormat::Avif;
    default: return nic::RequestedFormat::Original;
  }
}

// An RGBA source image with a transparent hole and a soft edge.
Pixels with_alpha(const Pixels& rgb) {
  Pixels out = fixture::to_rgba(rgb);
  for (int y = 0; y < out.h; ++y) {
    for (int x = 0; x < out.w; ++x) {
      const double dx = x - out.w * 0.3, dy = y - out.h * 0.5;
      const double d = std::sqrt(dx * dx + dy * dy) / (out.h * 0.3);
      const int a = d < 0.8 ? 0 : (d > 1.2 ? 255 : static_cast<int>((d - 0.8) / 0.4 * 255));
      out.at(x, y)[3] = static_cast<std::uint8_t>(a);
    }
  }
  return out;
}

Pixels flatten_white(const Pixels& rgba) {
  Pixels out = rgba;
  for (int y = 0; y < out.h; ++y) {
    for (int x = 0; x < out.w; ++x) {
      std::uint8_t* p = out.at(x, y);
      for (int c = 0; c < 3; ++c) p[c] = static_cast<std::uint8_t>((p[c] * p[3] + 255 * (255 - p[3]) + 127) / 255);
      p[3] = 255;
    }
  }
  return out;
}

// The displayed image `d` stored so that EXIF orientation `o` displays it.
Pixels store_for_orientation(const Pixels& d, int o) {
  const bool swap = o >= 5;
  const int sw = swap ? d.h : d.w;
  const int sh = swap ? d.w : d.h;
  Pixels s = fixture::blank(sw, sh, d.c);
  for (int y = 0; y < d.h; ++y) {
    for (int x = 0; x < d.w; ++x) {
      int sx = x, sy = y;
      switch (o) {
        case 2: sx = sw - 1 - x; break;
        case 3: sx = sw - 1 - x; sy = sh - 1 - y; break;
        case 4: sy = sh - 1 - y; break;
        case 5: sx = y; sy = x; break;
        case 6: sx = y; sy = sh - 1 - x; break;
        case 7: sx = sw - 1 - y; sy = sh - 1 - x; break;
        case 8: sx = sw - 1 - y; sy = x; break;
        default: break;
      }
      std::memcpy(s.at(sx, sy), d.at(x, y), static_cast<std::size_t>(d.c));
    }
  }
  return s;
}

// Quadrants: red top-left, green top-right, blue bottom-left, white bottom-right.
Pixels quadrants(int w, int h) {
  Pixels px = fixture::blank(w, h, 3);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      std::uint8_t* p = px.at(x, y);
      const bool right = x >= w / 2, bottom = y >= h / 2;
      if (!right && !bottom) { p[0] = 255; p[1] = 0; p[2] = 0; }
      if (right && !bottom) { p[0] = 0; p[1] = 255; p[2] = 0; }
      if (!right && bottom) { p[0] = 0; p[1] = 0; p[2] = 255; }
      if (right && bottom) { p[0] = 255; p[1] = 255; p[2] = 255; }
    }
  }
  return px;
}

bool near(const std::uint8_t* p, int r, int g, int b, int tol) {
  return std::abs(p[0] - r) <= tol && std::abs(p[1] - g) <= tol && std::abs(p[2] - b) <= tol;
}

std::string describe(const std::uint8_t* p) {
  return std::to_string(p[0]) + "," + std::to_string(p[1]) + "," + std::to_string(p[2]) + "," +
         std::to_string(p[3]);
}

struct Input {
  std::string name;
  Bytes bytes;
  Pixels shown;       // the source as displayed (oriented), RGBA
  // PSNR floors against an area-average reference downscale: for the PNG
  // output (lossless after resizing) and for the lossy outputs.
  double png_floor;
  double lossy_floor;
};

std::vector<Input> input_kinds() {
  const Pixels photo = fixture::photo(160, 120);
  const Pixels shown = fixture::to_rgba(photo);
  std::vector<Input> in;
  in.push_back({"baseline JPEG", fixture::encode_jpeg(photo, {95}), shown, 40, 31});
  {
    fixture::JpegOptions o;
    o.quality = 95;
    o.progressive = true;
    in.push_back({"progressive JPEG", fixture::encode_jpeg(photo, o), shown, 40, 31});
  }
  {
    Pixels gray = fixture::blank(160, 120, 1);
    for (std::size_t i = 0; i < gray.p.size(); ++i) gray.p[i] = photo.p[i * 3 + 1];
    in.push_back({"grayscale JPEG", fixture::encode_jpeg(gray, {95}), fixture::to_rgba(gray), 40, 31});
  }
  for (int o : {3, 6, 8}) {
    fixture::JpegOptions opt;
    opt.quality = 95;
    opt.orientation = o;
    in.push_back({"EXIF orientation " + std::to_string(o) + " JPEG",
                  fixture::encode_jpeg(store_for_orientation(photo, o), opt), shown, 40, 31});
  }
  for (bool adobe : {true, false}) {
    // CMYK made from the photo: K = 0, C = 255 - R ... (Adobe files store inverted values).
    Pixels cmyk = fixture::blank(160, 120, 4);
    for (int y = 0; y < 120; ++y) {
      for (int x = 0; x < 160; ++x) {
        const std::uint8_t* p = photo.at(x, y);
        std::uint8_t* q = cmyk.at(x, y);
        for (int c = 0; c < 3; ++c) q[c] = adobe ? p[c] : static_cast<std::uint8_t>(255 - p[c]);
        q[3] = adobe ? 255 : 0;
      }
    }
    fixture::JpegOptions o;
    o.quality = 95;
    o.cmyk = true;
    o.adobe_inverted = adobe;
    in.push_back({adobe ? "CMYK JPEG (Adobe, inverted)" : "CMYK JPEG (plain)", fixture::encode_jpeg(cmyk, o),
                  shown, 40, 31});
  }
  in.push_back({"RGB PNG", fixture::encode_png(photo), shown, 40, 31});
  in.push_back({"16-bit PNG", fixture::encode_png16(photo), shown, 40, 31});
  {
    // Palette + tRNS: 8 colours in 10-pixel cells, entry 0 fully transparent, entry 1 half.
    std::vector<std::uint8_t> raw(160 * 120);
    Pixels shown_pal = fixture::blank(160, 120, 4);
    fixture::PngOptions o;
    o.color_type = SPNG_COLOR_TYPE_INDEXED;
    o.palette = {10, 10, 10, 200, 30, 30, 30, 200, 30, 30, 30, 200, 220, 220, 40, 40, 220, 220, 220, 40, 220, 250, 250, 250};
    o.trns = {0, 128};
    for (int y = 0; y < 120; ++y) {
      for (int x = 0; x < 160; ++x) {
        const int i = ((x / 20) + (y / 20) * 3) % 8;
        raw[static_cast<std::size_t>(y) * 160 + x] = static_cast<std::uint8_t>(i);
        std::uint8_t* p = shown_pal.at(x, y);
        p[0] = o.palette[i * 3];
        p[1] = o.palette[i * 3 + 1];
        p[2] = o.palette[i * 3 + 2];
        p[3] = i == 0 ? 0 : (i == 1 ? 128 : 255);
      }
    }
    in.push_back({"palette PNG with tRNS", fixture::encode_png_raw(160, 120, raw, o), shown_pal, 29, 20});
  }
  {
    Pixels ga = fixture::blank(160, 120, 2);
    const Pixels a = with_alpha(photo);
    for (int y = 0; y < 120; ++y) {
      for (int x = 0; x < 160; ++x) {
        ga.at(x, y)[0] = photo.at(x, y)[1];
        ga.at(x, y)[1] = a.at(x, y)[3];
      }
    }
    in.push_back({"gray+alpha PNG", fixture::encode_png(ga), fixture::to_rgba(ga), 40, 31});
  }
  {
    const Pixels rgba = with_alpha(photo);
    fixture::PngOptions o;
    o.interlace = true;
    in.push_back({"interlaced RGBA PNG", fixture::encode_png(rgba, o), rgba, 40, 31});
    in.push_back({"lossy WebP with alpha", fixture::encode_webp_rgba(rgba), rgba, 40, 31});
    in.push_back({"lossless WebP", fixture::encode_webp_rgba(photo, true), shown, 40, 31});
    in.push_back({"AVIF", fixture::encode_avif_rgb(photo), shown, 40, 31});
    in.push_back({"AVIF with alpha", fixture::encode_avif_rgb(rgba), rgba, 40, 31});
  }
  {
    const std::vector<GifColorType> colours = {{0, 0, 0}, {200, 30, 30}, {30, 200, 30}, {30, 30, 200}};
    Pixels first = fixture::blank(160, 120, 4);
    for (int y = 0; y < 120; ++y) {
      for (int x = 0; x < 160; ++x) {
        std::uint8_t* p = first.at(x, y);
        if (x < 40) continue;  // transparent column band
        p[0] = 200; p[1] = 30; p[2] = 30; p[3] = 255;
      }
    }
    in.push_back({"GIF with transparency", fixture::encode_gif(160, 120, 1, true, colours), first, 42, 33});
    in.push_back({"animated GIF (first frame)", fixture::encode_gif(160, 120, 3, true, colours), first, 42, 33});
  }
  return in;
}

}  // namespace

TEST_CASE("transform: every input kind to every output format", "[transform]") {
  const auto inputs = input_kinds();
  const ImageFormat outputs[] = {ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Webp, ImageFormat::Avif};
  int checked = 0;
  for (const auto& input : inputs) {
    REQUIRE_FALSE(input.bytes.empty());
    const Pixels ref = fixture::area_resize(input.shown, 0, 0, input.shown.w, input.shown.h, 64, 48);
    const bool source_alpha = [&] {
      for (std::size_t i = 3; i < input.shown.p.size(); i += 4) {
        if (input.shown.p[i] != 255) return true;
      }
      return false;
    }();
    for (ImageFormat f : outputs) {
      INFO(input.name << " -> " << nic::to_string(f));
      Request r;
      r.w = 64;
      r.fmt = requested(f);
      auto out = run(input.bytes, r);
      REQUIRE(out.ok());
      CHECK_FALSE(out->passthrough);
      CHECK(out->format == f);
      CHECK(out->width == 64);
      CHECK(out->height == 48);
      CHECK_FALSE(fixture::has_metadata(out->bytes));
      const Pixels got = fixture::decode(out->bytes);
      REQUIRE(got.w == 64);
      REQUIRE(got.h == 48);
      const bool keeps_alpha = f != ImageFormat::Jpeg;
      const Pixels& want = keeps_alpha ? ref : flatten_white(ref);
      const double floor = f == ImageFormat::Png ? input.png_floor : input.lossy_floor;
      const double score = fixture::psnr(got, want);
      INFO("PSNR " << score << " dB, floor " << floor);
      CHECK(score >= floor);
      if (source_alpha && keeps_alpha) {
        // Alpha kept: where the reference is clear the output is clear, and opaque where opaque.
        int clear = 0, opaque = 0, wrong = 0;
        for (int y = 0; y < 48; ++y) {
          for (int x = 0; x < 64; ++x) {
            const int a = want.at(x, y)[3];
            const int b = got.at(x, y)[3];
            if (a == 0) ++clear;
            if (a == 255) ++opaque;
            if ((a == 0 && b > 24) || (a == 255 && b < 231)) ++wrong;
          }
        }
        CHECK(clear > 0);
        CHECK(opaque > 0);
        CHECK(wrong <= (clear + opaque) / 50);
      }
      if (!source_alpha || !keeps_alpha) {
        for (std::size_t i = 3; i < got.p.size(); i += 4) {
          if (got.p[i] != 255) {
            FAIL("an opaque result has transparent pixels");
            break;
          }
        }
      }
      ++checked;
    }
  }
  CHECK(checked == static_cast<int>(inputs.size()) * 4);
}

TEST_CASE("transform: EXIF orientation, all eight values, is applied", "[transform]") {
  const Pixels shown = quadrants(64, 48);
  for (int o = 1; o <= 8; ++o) {
    for (bool png : {false, true}) {
      SECTION(std::string(png ? "PNG eXIf " : "JPEG APP1 ") + "orientation " + std::to_string(o)) {
        const Pixels stored = store_for_orientation(shown, o);
        Bytes src;
        if (png) {
          fixture::PngOptions opt;
          opt.orientation = o;
          src = fixture::encode_png(stored, opt);
        } else {
          fixture::JpegOptions opt;
          opt.quality = 95;
          opt.orientation = o;
          src = fixture::encode_jpeg(stored, opt);
        }
        auto info = nic::probe_image(src, {});
        REQUIRE(info.ok());
        CHECK(info->width == 64);
        CHECK(info->height == 48);
        Request r;
        r.w = 32;
        r.fmt = nic::RequestedFormat::Png;
        auto out = run(src, r);
        REQUIRE(out.ok());
        const Pixels got = fixture::decode(out->bytes);
        REQUIRE(got.w == 32);
        REQUIRE(got.h == 24);
        INFO("top-left " << describe(got.at(6, 5)) << " top-right " << describe(got.at(25, 5)));
        CHECK(near(got.at(6, 5), 255, 0, 0, 40));      // red
        CHECK(near(got.at(25, 5), 0, 255, 0, 40));     // green
        CHECK(near(got.at(6, 18), 0, 0, 255, 40));     // blue
        CHECK(near(got.at(25, 18), 255, 255, 255, 40));  // white
        CHECK_FALSE(fixture::has_metadata(out->bytes));
      }
    }
  }
}

TEST_CASE("transform: AVIF irot/imir are applied like EXIF orientation", "[transform]") {
  const Pixels shown = quadrants(64, 48);
  struct Case {
    int angle, mode, exif;  // the EXIF orientation the boxes amount to
  };
  const std::vector<Case> cases = {{1, -1, 8}, {2, -1, 3}, {3, -1, 6}, {-1, 1, 2}, {-1, 0, 4}, {1, 1, 7}, {3, 1, 5}};
  for (const auto& c : cases) {
    SECTION("irot " + std::to_string(c.angle) + " imir " + std::to_string(c.mode)) {
      const Bytes src = fixture::encode_avif_rgb(store_for_orientation(shown, c.exif), 0, c.angle, c.mode);
      REQUIRE_FALSE(src.empty());
      auto info = nic::probe_image(src, {});
      REQUIRE(info.ok());
      CHECK(info->width == 64);
      CHECK(info->height == 48);
      Request r;
      r.w = 32;
      r.fmt = nic::RequestedFormat::Png;
      auto out = run(src, r);
      REQUIRE(out.ok());
      const Pixels got = fixture::decode(out->bytes);
      REQUIRE(got.w == 32);
      REQUIRE(got.h == 24);
      INFO("top-left " << describe(got.at(6, 5)) << " top-right " << describe(got.at(25, 5)));
      CHECK(near(got.at(6, 5), 255, 0, 0, 48));
      CHECK(near(got.at(25, 5), 0, 255, 0, 48));
      CHECK(near(got.at(6, 18), 0, 0, 255, 48));
      CHECK(near(got.at(25, 18), 255, 255, 255, 48));
    }
  }
}

TEST_CASE("transform: an animated WebP stays animated in its own format", "[transform]") {
  const Bytes anim = fixture::encode_animated_webp(120, 80, {{200, 30, 30}, {30, 200, 30}, {30, 30, 200}});
  REQUIRE_FALSE(anim.empty());
  auto info = nic::probe_image(anim, {});
  REQUIRE(info.ok());
  CHECK(info->animated);
  SECTION("auto with WebP accepted: passthrough") {
    Request r;
    r.w = 64;
    r.accept = "image/webp";
    auto out = run(anim, r);
    REQUIRE(out.ok());
    CHECK(out->passthrough);
    CHECK(out->format == ImageFormat::Webp);
    CHECK(out->bytes == anim);
  }
  SECTION("explicit png: the first frame") {
    Request r;
    r.w = 64;
    r.fmt = nic::RequestedFormat::Png;
    auto out = run(anim, r);
    REQUIRE(out.ok());
    CHECK_FALSE(out->passthrough);
    const Pixels got = fixture::decode(out->bytes);
    REQUIRE(got.w == 64);
    REQUIRE(got.h == 43);
    CHECK(near(got.at(32, 20), 200, 30, 30, 12));
  }
}

TEST_CASE("transform: fit modes give Sharp's sizes without enlarging", "[transform]") {
  const Pixels photo = fixture::photo(300, 200);
  const Bytes src = fixture::encode_png(photo);
  struct Case {
    const char* name;
    std::optional<int> w, h;
    Fit fit;
    int want_w, want_h;
    double crop_x, crop_y, crop_w, crop_h;  // reference region
  };
  const std::vector<Case> cases = {
      {"inside", 100, 100, Fit::Inside, 100, 67, 0, 0, 300, 200},
      {"outside", 100, 100, Fit::Outside, 150, 100, 0, 0, 300, 200},
      {"cover crops the centre", 100, 100, Fit::Cover, 100, 100, 50, 0, 200, 200},
      {"fill stretches", 100, 100, Fit::Fill, 100, 100, 0, 0, 300, 200},
      {"width only", 120, std::nullopt, Fit::Cover, 120, 80, 0, 0, 300, 200},
      {"inside never enlarges", 600, 600, Fit::Inside, 300, 200, 0, 0, 300, 200},
      {"cover shrinks the box instead of enlarging", 400, 400, Fit::Cover, 200, 200, 50, 0, 200, 200},
  };
  for (const auto& c : cases) {
    SECTION(c.name) {
      Request r;
      r.w = c.w;
      r.h = c.h;
      r.fit = c.fit;
      r.fmt = nic::RequestedFormat::Png;
      auto out = run(src, r);
      REQUIRE(out.ok());
      const Pixels got = fixture::decode(out->bytes);
      CHECK(got.w == c.want_w);
      CHECK(got.h == c.want_h);
      CHECK(out->width == c.want_w);
      CHECK(out->height == c.want_h);
      const Pixels ref = fixture::area_resize(fixture::to_rgba(photo), c.crop_x, c.crop_y, c.crop_w,
                                              c.crop_h, c.want_w, c.want_h);
      const double score = fixture::psnr(got, ref);
      INFO("PSNR " << score);
      CHECK(score > 30);
    }
  }
}

TEST_CASE("transform: contain letterboxes transparent, or white without alpha", "[transform]") {
  const Bytes src = fixture::encode_png(fixture::photo(300, 200));
  for (ImageFormat f : {ImageFormat::Png, ImageFormat::Webp, ImageFormat::Avif, ImageFormat::Jpeg}) {
    SECTION(std::string(nic::to_string(f))) {
      Request r;
      r.w = 100;
      r.h = 100;
      r.fit = Fit::Contain;
      r.fmt = requested(f);
      auto out = run(src, r);
      REQUIRE(out.ok());
      const Pixels got = fixture::decode(out->bytes);
      REQUIRE(got.w == 100);
      REQUIRE(got.h == 100);
      // 300x200 -> 100x67 centred: bands of 16/17 rows above and below.
      const std::uint8_t* band = got.at(50, 5);
      const std::uint8_t* image = got.at(50, 50);
      INFO("band " << describe(band) << " image " << describe(image));
      if (f == ImageFormat::Jpeg) {
        CHECK(near(band, 255, 255, 255, 6));
        CHECK(band[3] == 255);
      } else {
        CHECK(band[3] <= 2);
      }
      CHECK(image[3] >= 250);
      CHECK_FALSE(near(image, 255, 255, 255, 30));
    }
  }
}

TEST_CASE("transform: CMYK comes out in the right colours", "[transform]") {
  // Patches: cyan, magenta, yellow, black, red (M+Y), white (no ink). Values are ink amounts.
  struct Patch {
    int c, m, y, k;
    int r, g, b;
  };
  const std::vector<Patch> patches = {
      {255, 0, 0, 0, 0, 255, 255},   {0, 255, 0, 0, 255, 0, 255}, {0, 0, 255, 0, 255, 255, 0},
      {0, 0, 0, 255, 0, 0, 0},       {0, 255, 255, 0, 255, 0, 0}, {0, 0, 0, 0, 255, 255, 255},
  };
  for (bool adobe : {true, false}) {
    SECTION(adobe ? "Adobe (inverted) YCCK" : "plain CMYK") {
      Pixels cmyk = fixture::blank(96, 16, 4);
      for (int y = 0; y < 16; ++y) {
        for (int x = 0; x < 96; ++x) {
          const Patch& p = patches[static_cast<std::size_t>(x / 16)];
          std::uint8_t* q = cmyk.at(x, y);
          const int ink[4] = {p.c, p.m, p.y, p.k};
          for (int c = 0; c < 4; ++c) q[c] = static_cast<std::uint8_t>(adobe ? 255 - ink[c] : ink[c]);
        }
      }
      fixture::JpegOptions o;
      o.quality = 100;
      o.cmyk = true;
      o.adobe_inverted = adobe;
      const Bytes src = fixture::encode_jpeg(cmyk, o);
      REQUIRE_FALSE(src.empty());
      Request r;
      r.fmt = nic::RequestedFormat::Png;
      auto out = run(src, r);
      REQUIRE(out.ok());
      const Pixels got = fixture::decode(out->bytes);
      REQUIRE(got.w == 96);
      for (std::size_t i = 0; i < patches.size(); ++i) {
        const std::uint8_t* px = got.at(static_cast<int>(i) * 16 + 8, 8);
        INFO("patch " << i << " got " << describe(px));
        CHECK(near(px, patches[i].r, patches[i].g, patches[i].b, 12));
      }
    }
  }
}

TEST_CASE("transform: premultiplied alpha leaves no dark fringe", "[transform]") {
  // White opaque disc on fully transparent BLACK: a non-premultiplied filter
  // would pull the edge towards black.
  Pixels px = fixture::blank(200, 200, 4);
  for (int y = 0; y < 200; ++y) {
    for (int x = 0; x < 200; ++x) {
      const double dx = x - 100, dy = y - 100;
      if (dx * dx + dy * dy < 70 * 70) {
        std::uint8_t* p = px.at(x, y);
        p[0] = p[1] = p[2] = p[3] = 255;
      }
    }
  }
  const Bytes src = fixture::encode_png(px);
  for (ImageFormat f : {ImageFormat::Png, ImageFormat::Webp}) {
    SECTION(std::string(nic::to_string(f))) {
      Request r;
      r.w = 64;
      r.fmt = requested(f);
      auto out = run(src, r);
      REQUIRE(out.ok());
      const Pixels got = fixture::decode(out->bytes);
      int edge = 0;
      int darkest = 255;
      for (int y = 0; y < got.h; ++y) {
        for (int x = 0; x < got.w; ++x) {
          const std::uint8_t* p = got.at(x, y);
          if (p[3] > 40 && p[3] < 215) {
            ++edge;
            darkest = std::min<int>(darkest, p[0]);
          }
        }
      }
      INFO("edge pixels " << edge << ", darkest " << darkest);
      CHECK(edge > 20);
      CHECK(darkest >= (f == ImageFormat::Png ? 245 : 200));
    }
  }
}

TEST_CASE("transform: SVG is passed through, never rasterised", "[transform]") {
  const std::string svg = "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"></svg>";
  const Bytes src(svg.begin(), svg.end());
  for (auto fmt : {nic::RequestedFormat::Auto, nic::RequestedFormat::Webp, nic::RequestedFormat::Png}) {
    Request r;
    r.w = 64;
    r.fmt = fmt;
    r.accept = "image/avif,image/webp";
    auto out = run(src, r);
    REQUIRE(out.ok());
    CHECK(out->passthrough);
    CHECK(out->format == ImageFormat::Svg);
    CHECK(out->bytes == src);
  }
}

TEST_CASE("transform: animated GIF passes through for auto, first frame otherwise", "[transform]") {
  const std::vector<GifColorType> colours = {{0, 0, 0}, {200, 30, 30}, {30, 200, 30}, {30, 30, 200}};
  const Bytes anim = fixture::encode_gif(120, 80, 4, false, colours);
  auto info = nic::probe_image(anim, {});
  REQUIRE(info.ok());
  CHECK(info->animated);
  CHECK(info->format == ImageFormat::Gif);

  SECTION("auto with an AVIF-capable Accept: passthrough") {
    Request r;
    r.w = 64;
    r.accept = "image/avif,image/webp,*/*";
    auto out = run(anim, r);
    REQUIRE(out.ok());
    CHECK(out->passthrough);
    CHECK(out->format == ImageFormat::Gif);
    CHECK(out->bytes == anim);
  }
  SECTION("original: passthrough") {
    Request r;
    r.w = 64;
    r.fmt = nic::RequestedFormat::Original;
    auto out = run(anim, r);
    REQUIRE(out.ok());
    CHECK(out->passthrough);
    CHECK(out->bytes == anim);
  }
  SECTION("explicit webp: the first frame, resized") {
    Request r;
    r.w = 64;
    r.fmt = nic::RequestedFormat::Webp;
    auto out = run(anim, r);
    REQUIRE(out.ok());
    CHECK_FALSE(out->passthrough);
    CHECK(out->format == ImageFormat::Webp);
    const Pixels got = fixture::decode(out->bytes);
    REQUIRE(got.w == 64);
    REQUIRE(got.h == 43);
    CHECK(near(got.at(32, 20), 200, 30, 30, 20));  // frame 0 uses colour 1
  }
  SECTION("a still GIF under auto stays GIF when unchanged, becomes PNG when resized") {
    const Bytes still = fixture::encode_gif(120, 80, 1, false, colours);
    Request same;
    auto unchanged = run(still, same);
    REQUIRE(unchanged.ok());
    CHECK(unchanged->passthrough);
    CHECK(unchanged->format == ImageFormat::Gif);
    Request smaller;
    smaller.w = 64;
    auto resized = run(still, smaller);
    REQUIRE(resized.ok());
    CHECK(resized->format == ImageFormat::Png);
    const Pixels got = fixture::decode(resized->bytes);
    CHECK(got.w == 64);
    CHECK(near(got.at(10, 10), 200, 30, 30, 4));
  }
}

TEST_CASE("transform: fmt=auto follows Accept and the source", "[transform]") {
  const Bytes jpeg = fixture::encode_jpeg(fixture::photo(100, 80), {90});
  struct Case {
    const char* accept;
    ImageFormat want;
  };
  const std::vector<Case> cases = {
      {"image/avif,image/webp,*/*", ImageFormat::Avif},
      {"image/webp,*/*", ImageFormat::Webp},
      {"*/*", ImageFormat::Jpeg},
      {"image/avif;q=0,image/webp", ImageFormat::Webp},
  };
  for (const auto& c : cases) {
    SECTION(c.accept) {
      Request r;
      r.w = 50;
      r.accept = c.accept;
      auto out = run(jpeg, r);
      REQUIRE(out.ok());
      CHECK(out->format == c.want);
      const Pixels got = fixture::decode(out->bytes);
      CHECK(got.w == 50);
      CHECK(got.h == 40);
    }
  }
}

TEST_CASE("transform: quality changes the bytes the way it should", "[transform]") {
  const Bytes src = fixture::encode_png(fixture::photo(256, 192));
  for (auto fmt : {nic::RequestedFormat::Jpeg, nic::RequestedFormat::Webp, nic::RequestedFormat::Avif}) {
    SECTION(std::string(nic::to_string(fmt))) {
      Request lo, hi;
      lo.fmt = hi.fmt = fmt;
      lo.q = 60;
      hi.q = 95;
      auto a = run(src, lo);
      auto b = run(src, hi);
      REQUIRE(a.ok());
      REQUIRE(b.ok());
      CHECK(a->bytes.size() < b->bytes.size());
      const Pixels ref = fixture::to_rgba(fixture::photo(256, 192));
      CHECK(fixture::psnr(fixture::decode(a->bytes), ref) < fixture::psnr(fixture::decode(b->bytes), ref));
    }
  }
}

// Scaling on load (libjpeg's scaled IDCT, libwebp's rescaler) is cheap but
// softer or aliased: it only takes part of a reduction of 3x or more (Sharp's
// shrink-on-load rule), so a JPEG or WebP reduced by less comes out exactly
// like the same pixels from a PNG (full decode, all Lanczos), and one reduced
// by more does not (decoded at 1/2 scale).
TEST_CASE("transform: JPEG and WebP scale on load only from a 3x reduction", "[transform]") {
  const Pixels photo = fixture::photo(960, 600);
  for (const bool webp : {false, true}) {
    const Bytes source = webp ? fixture::encode_webp_rgba(fixture::to_rgba(photo)) : fixture::encode_jpeg(photo, {92});
    const Pixels rgba = fixture::decode(source);
    REQUIRE(rgba.w == 960);
    Pixels rgb = fixture::blank(rgba.w, rgba.h, 3);
    for (std::size_t i = 0; i < static_cast<std::size_t>(rgba.w) * rgba.h; ++i) std::memcpy(&rgb.p[i * 3], &rgba.p[i * 4], 3);
    const Bytes png = fixture::encode_png(rgb);
    for (const int w : {400, 300}) {  // 2.4x and 3.2x
      SECTION(std::string(webp ? "WebP" : "JPEG") + " to " + std::to_string(w) + " wide") {
        Request r;
        r.w = w;
        r.fmt = nic::RequestedFormat::Png;
        auto from_source = run(source, r);
        auto from_png = run(png, r);
        REQUIRE(from_source.ok());
        REQUIRE(from_png.ok());
        const Pixels a = fixture::decode(from_source->bytes), b = fixture::decode(from_png->bytes);
        REQUIRE(a.w == w);
        REQUIRE(b.w == w);
        CHECK((a.p == b.p) == (w == 400));
        // Scaled on load or not, the result stays close to the exact downscale.
        CHECK(fixture::psnr(a, fixture::lanczos_reference(rgba, 0, 0, rgba.w, rgba.h, a.w, a.h)) > 35);
      }
    }
  }
}
