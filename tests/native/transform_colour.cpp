// Colour management: sources tagged with an ICC profile (JPEG APP2, PNG iCCP,
// WebP ICCP, AVIF colr), PNG gAMA/cHRM/sRGB and AVIF nclx code points come
// out as sRGB, within 2 levels of Little CMS's own conversion of the same
// decoded pixels; sRGB stays untouched; broken profiles are ignored.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include "colour.h"
#include "nic/negotiate.h"
#include "nic/params.h"
#include "transform.h"
#include "transform_fixtures.h"

namespace {

using fixture::Bytes;
using fixture::Pixels;

constexpr int kPatch = 16;

// Patches of flat colour, 8 x 4 of kPatch pixels: saturated primaries and
// secondaries (where wide gamuts differ most), mid tones, skin, greys.
Pixels patches(int channels = 3) {
  static constexpr std::uint8_t kColours[32][3] = {
      {255, 0, 0},     {0, 255, 0},     {0, 0, 255},     {255, 255, 0},   {0, 255, 255},   {255, 0, 255},
      {200, 60, 40},   {40, 160, 60},   {50, 70, 180},   {230, 190, 60},  {60, 190, 200},  {170, 60, 170},
      {224, 172, 140}, {190, 130, 100}, {120, 80, 60},   {250, 220, 200}, {0, 0, 0},       {32, 32, 32},
      {64, 64, 64},    {128, 128, 128}, {192, 192, 192}, {255, 255, 255}, {100, 120, 90},  {90, 100, 140},
      {180, 30, 90},   {20, 120, 140},  {140, 180, 30},  {250, 120, 20},  {10, 40, 20},    {240, 240, 200},
      {128, 0, 0},     {0, 0, 128}};
  Pixels px = fixture::blank(8 * kPatch, 4 * kPatch, channels);
  for (int y = 0; y < px.h; ++y) {
    for (int x = 0; x < px.w; ++x) {
      const auto& c = kColours[(y / kPatch) * 8 + x / kPatch];
      std::uint8_t* p = px.at(x, y);
      if (channels == 1) {
        p[0] = static_cast<std::uint8_t>((c[0] * 3 + c[1] * 6 + c[2]) / 10);
      } else {
        p[0] = c[0];
        p[1] = c[1];
        p[2] = c[2];
        if (channels == 4) p[3] = 255;
      }
    }
  }
  return px;
}

// The engine's output at full size (or `width`), as lossless PNG, decoded.
Pixels engine(const Bytes& source, std::optional<int> width = std::nullopt) {
  nic::NormalizedParams p;
  p.w = width;
  p.fmt = nic::RequestedFormat::Png;
  auto out = nic::transform_image(source, p, nic::negotiate(p.fmt, ""), nic::TransformLimits{});
  REQUIRE(out);
  return fixture::decode(out->bytes);
}

// The largest difference of any channel between `got` and `want` at the
// centre of every patch (`scale` = output size / source size).
int worst_patch_difference(const Pixels& got, const Pixels& want, double scale = 1.0) {
  int worst = 0;
  for (int py = 0; py < 4; ++py) {
    for (int px = 0; px < 8; ++px) {
      const int sx = px * kPatch + kPatch / 2, sy = py * kPatch + kPatch / 2;
      const std::uint8_t* g = got.at(static_cast<int>(sx * scale), static_cast<int>(sy * scale));
      const std::uint8_t* w = want.at(sx, sy);
      for (int c = 0; c < 3; ++c) worst = std::max(worst, std::abs(int(g[c]) - int(w[c])));
    }
  }
  return worst;
}

// The same patches, interpreted as sRGB without conversion.
int worst_untagged_difference(const Pixels& decoded, const Pixels& reference) {
  return worst_patch_difference(decoded, reference);
}

// `source` carries `icc`; its pixels as any decoder reads them are `decoded`.
void check_against_lcms(const Bytes& source, const Bytes& icc) {
  REQUIRE_FALSE(source.empty());
  const Pixels decoded = fixture::to_rgba(fixture::decode(source));
  REQUIRE(decoded.w == 8 * kPatch);
  const Pixels reference = fixture::lcms_to_srgb(decoded, icc, TYPE_RGBA_8);
  // The test means something: the profile moves some patch by many levels.
  CHECK(worst_untagged_difference(decoded, reference) >= 12);
  CHECK(worst_patch_difference(engine(source), reference) <= 2);
  // Resized (converted after the resize): flat patches keep their colour.
  CHECK(worst_patch_difference(engine(source, 64), reference, 0.5) <= 2);
}

Bytes lossless_webp(const Pixels& px) { return fixture::encode_webp_rgba(px, true); }

}  // namespace

TEST_CASE("colour: Display P3 and Adobe RGB sources are converted to sRGB like Little CMS does", "[colour]") {
  const Pixels px = patches();
  for (const bool p3 : {true, false}) {
    const Bytes icc = p3 ? fixture::display_p3_icc() : fixture::adobe_rgb_icc();
    REQUIRE(icc.size() > 128);
    SECTION(std::string(p3 ? "P3" : "Adobe RGB") + " JPEG (APP2)") {
      fixture::JpegOptions o;
      o.quality = 95;
      o.icc = icc;
      check_against_lcms(fixture::encode_jpeg(px, o), icc);
    }
    SECTION(std::string(p3 ? "P3" : "Adobe RGB") + " PNG (iCCP)") {
      fixture::PngOptions o;
      o.icc = icc;
      check_against_lcms(fixture::encode_png(px, o), icc);
    }
    SECTION(std::string(p3 ? "P3" : "Adobe RGB") + " WebP (ICCP)") {
      check_against_lcms(fixture::webp_with_icc(lossless_webp(px), icc), icc);
    }
    SECTION(std::string(p3 ? "P3" : "Adobe RGB") + " AVIF (colr ICC)") {
      fixture::AvifColour c;
      c.icc = icc;
      check_against_lcms(fixture::encode_avif_rgb(px, 4, -1, -1, c), icc);
    }
  }
}

TEST_CASE("colour: a profile in several JPEG APP2 parts is reassembled", "[colour]") {
  const Bytes icc = fixture::display_p3_icc(150000);  // three APP2 segments
  REQUIRE(icc.size() > 2 * 65519);
  fixture::JpegOptions o;
  o.quality = 95;
  o.icc = icc;
  check_against_lcms(fixture::encode_jpeg(patches(), o), icc);
}

TEST_CASE("colour: AVIF nclx Display P3 code points are converted", "[colour]") {
  const Pixels px = patches();
  fixture::AvifColour c;
  c.primaries = 12;  // SMPTE EG 432-1 (Display P3)
  c.transfer = 13;   // sRGB
  const Bytes avif = fixture::encode_avif_rgb(px, 4, -1, -1, c);
  // The same conversion as a P3 profile with the sRGB curve.
  check_against_lcms(avif, fixture::display_p3_icc());

  SECTION("PQ (HDR) is not converted: taken as sRGB") {
    c.transfer = 16;
    const Bytes hdr = fixture::encode_avif_rgb(px, 4, -1, -1, c);
    const Pixels decoded = fixture::to_rgba(fixture::decode(hdr));
    CHECK(worst_patch_difference(engine(hdr), decoded) == 0);
  }
}

TEST_CASE("colour: PNG gAMA and cHRM without a profile", "[colour]") {
  const Pixels px = patches();
  SECTION("gAMA 1/1.8 with P3's cHRM converts like the matching profile") {
    fixture::PngOptions o;
    o.gamma = 1 / 1.8;
    o.chrm = {0.3127, 0.3290, 0.680, 0.320, 0.265, 0.690, 0.150, 0.060};
    const Bytes png = fixture::encode_png(px, o);
    static constexpr double kXy[8] = {0.3127, 0.3290, 0.680, 0.320, 0.265, 0.690, 0.150, 0.060};
    const Bytes icc = fixture::save_profile(fixture::rgb_profile(kXy, cmsBuildGamma(nullptr, 1.8)));
    check_against_lcms(png, icc);
  }
  SECTION("gAMA 1/2.2 alone, and the sRGB chunk, are sRGB: untouched") {
    fixture::PngOptions g22;
    g22.gamma = 1 / 2.2;
    fixture::PngOptions srgb;
    srgb.srgb = true;
    srgb.gamma = 1 / 1.8;  // the sRGB chunk wins over gAMA
    for (const auto& o : {g22, srgb}) {
      const Bytes png = fixture::encode_png(px, o);
      CHECK(worst_patch_difference(engine(png), fixture::to_rgba(px)) == 0);
    }
  }
}

TEST_CASE("colour: a grey JPEG and PNG with a grey profile", "[colour]") {
  const Pixels grey = patches(1);
  const Bytes icc = fixture::gray_icc(1.0);  // linear light: much brighter as sRGB
  fixture::JpegOptions jo;
  jo.quality = 95;
  jo.icc = icc;
  fixture::PngOptions po;
  po.icc = icc;
  for (const Bytes& source : {fixture::encode_jpeg(grey, jo), fixture::encode_png(grey, po)}) {
    const Pixels decoded = fixture::decode(source);
    Pixels one = fixture::blank(decoded.w, decoded.h, 1);
    for (std::size_t i = 0; i < one.p.size(); ++i) one.p[i] = decoded.p[i * 4];
    const Pixels reference =
        fixture::lcms_to_srgb(one, icc, COLORSPACE_SH(PT_GRAY) | CHANNELS_SH(1) | BYTES_SH(1));
    CHECK(worst_untagged_difference(fixture::to_rgba(decoded), reference) >= 12);
    CHECK(worst_patch_difference(engine(source), reference) <= 2);
  }
}

TEST_CASE("colour: a CMYK JPEG with a profile is converted through it", "[colour]") {
  // Inverted (Adobe) CMYK patches: C, M, Y, K ramps and mixtures.
  Pixels cmyk = fixture::blank(8 * kPatch, 4 * kPatch, 4);
  for (int y = 0; y < cmyk.h; ++y) {
    for (int x = 0; x < cmyk.w; ++x) {
      const int i = (y / kPatch) * 8 + x / kPatch;
      std::uint8_t* p = cmyk.at(x, y);
      p[0] = static_cast<std::uint8_t>(255 - (i * 37) % 256);
      p[1] = static_cast<std::uint8_t>(255 - (i * 71) % 256);
      p[2] = static_cast<std::uint8_t>(255 - (i * 113) % 256);
      p[3] = static_cast<std::uint8_t>(255 - (i % 4) * 40);
    }
  }
  const Bytes icc = fixture::cmyk_icc();
  REQUIRE(icc.size() > 128);
  fixture::JpegOptions o;
  o.quality = 95;
  o.cmyk = true;
  o.icc = icc;
  const Bytes jpeg = fixture::encode_jpeg(cmyk, o);
  REQUIRE_FALSE(jpeg.empty());

  // The CMYK samples as libjpeg decodes them (still inverted).
  Pixels decoded = fixture::blank(cmyk.w, cmyk.h, 4);
  {
    jpeg_decompress_struct cinfo{};
    fixture::JpegErr err{};
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = fixture::jpeg_err_exit;
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, jpeg.data(), static_cast<unsigned long>(jpeg.size()));
    jpeg_read_header(&cinfo, TRUE);
    cinfo.out_color_space = JCS_CMYK;
    jpeg_start_decompress(&cinfo);
    while (cinfo.output_scanline < cinfo.output_height) {
      JSAMPROW row = decoded.at(0, static_cast<int>(cinfo.output_scanline));
      jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
  }
  Pixels reference = fixture::lcms_to_srgb(decoded, icc, TYPE_CMYK_8_REV);
  for (std::size_t i = 3; i < reference.p.size(); i += 4) reference.p[i] = 255;
  // Without the profile (the naive formula) the result would be far off.
  const Bytes plain = [&] {
    fixture::JpegOptions no_icc = o;
    no_icc.icc.clear();
    return fixture::encode_jpeg(cmyk, no_icc);
  }();
  CHECK(worst_patch_difference(engine(plain), reference) >= 12);
  CHECK(worst_patch_difference(engine(jpeg), reference) <= 2);
}

TEST_CASE("colour: sRGB-tagged sources are left exactly as they are", "[colour]") {
  const Pixels px = patches();
  const Bytes icc = fixture::srgb_icc();
  fixture::JpegOptions tagged;
  tagged.quality = 95;
  tagged.icc = icc;
  fixture::JpegOptions untagged = tagged;
  untagged.icc.clear();
  const auto before = nic::detail::colour_stats();
  const Pixels a = engine(fixture::encode_jpeg(px, tagged));
  const Pixels b = engine(fixture::encode_jpeg(px, untagged));
  CHECK(a.p == b.p);  // every pixel
  fixture::PngOptions po;
  po.icc = icc;
  CHECK(worst_patch_difference(engine(fixture::encode_png(px, po)), fixture::to_rgba(px)) == 0);
  // No transform was built for it (the identity is recognised and cached).
  CHECK(nic::detail::colour_stats().built == before.built);
}

TEST_CASE("colour: broken and hostile profiles are ignored (sRGB assumed)", "[colour]") {
  const Pixels px = patches();
  const Pixels plain = fixture::to_rgba(px);
  Bytes truncated = fixture::display_p3_icc();
  truncated.resize(truncated.size() / 2);
  Bytes garbage(3000);
  fixture::Rng rng;
  for (auto& b : garbage) b = static_cast<std::uint8_t>(rng.next());
  Bytes lying = fixture::display_p3_icc();  // header claims 2 GB, every tag's offset past the end
  lying[0] = 0x7F;
  const std::size_t tags = (std::size_t{lying[130]} << 8) | lying[131];
  REQUIRE(tags > 3);
  for (std::size_t i = 0; i < tags && 132 + 12 * i + 12 <= lying.size(); ++i) lying[132 + 12 * i + 4] = 0xFF;
  Bytes too_big = fixture::display_p3_icc(nic::detail::kMaxIccBytes + 1000);
  REQUIRE(too_big.size() > nic::detail::kMaxIccBytes);
  const Bytes grey_on_rgb = fixture::gray_icc(1.0);  // wrong colour space for RGB pixels
  Bytes device_link;
  {
    cmsHPROFILE a = cmsCreate_sRGBProfile();
    cmsHTRANSFORM t = cmsCreateTransform(a, TYPE_RGB_8, a, TYPE_RGB_8, INTENT_PERCEPTUAL, 0);
    device_link = fixture::save_profile(cmsTransform2DeviceLink(t, 4.3, 0));
    cmsDeleteTransform(t);
    cmsCloseProfile(a);
  }
  const auto before = nic::detail::colour_stats();
  const std::pair<const char*, const Bytes*> cases[] = {{"truncated", &truncated}, {"garbage", &garbage},
                                                        {"lying", &lying},         {"too big", &too_big},
                                                        {"grey on RGB", &grey_on_rgb}, {"device link", &device_link}};
  for (const auto& [name, icc] : cases) {
    INFO(name);
    fixture::PngOptions o;
    o.icc = *icc;
    CHECK(worst_patch_difference(engine(fixture::encode_png(px, o)), plain) == 0);
    CHECK(worst_patch_difference(engine(fixture::webp_with_icc(lossless_webp(px), *icc)), plain) == 0);
  }
  // Each broken profile was looked at once (then remembered as ignored); the
  // one over the size limit never reached Little CMS.
  CHECK(nic::detail::colour_stats().ignored - before.ignored == 5);
  CHECK(nic::detail::colour_stats().built == before.built);

  SECTION("a JPEG with an inconsistent APP2 sequence decodes as untagged") {
    fixture::JpegOptions o;
    o.quality = 95;
    o.icc = fixture::display_p3_icc(150000);
    Bytes jpeg = fixture::encode_jpeg(px, o);
    // Renumber the second ICC_PROFILE part as a third of three: a duplicate.
    const std::string s(jpeg.begin(), jpeg.end());
    const auto first = s.find("ICC_PROFILE");
    const auto second = s.find("ICC_PROFILE", first + 1);
    REQUIRE(second != std::string::npos);
    jpeg[second + 12] = 3;
    fixture::JpegOptions untagged;
    untagged.quality = 95;
    CHECK(worst_patch_difference(engine(jpeg), engine(fixture::encode_jpeg(px, untagged))) == 0);
  }
}
