// Hostile input: pixel bombs, truncated files, garbage, corrupted bytes.
// Every case ends in a contract error, never a crash (run under ASan/UBSan too).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "nic/negotiate.h"
#include "transform.h"
#include "transform_fixtures.h"

namespace {

using fixture::Bytes;
using nic::ErrorCode;

nic::Result<nic::TransformOutput> to_webp(const Bytes& src, const nic::TransformLimits& limits = {}) {
  nic::NormalizedParams p;
  p.w = 64;
  p.fmt = nic::RequestedFormat::Webp;
  return nic::transform_image(src, p, nic::negotiate(p.fmt, ""), limits);
}

void put_be32(Bytes& b, std::size_t at, std::uint32_t v) {
  b[at] = static_cast<std::uint8_t>(v >> 24);
  b[at + 1] = static_cast<std::uint8_t>(v >> 16);
  b[at + 2] = static_cast<std::uint8_t>(v >> 8);
  b[at + 3] = static_cast<std::uint8_t>(v);
}

// A real 30000x30000 1-bit grey PNG: ~110 KB of zlib for 900 megapixels.
Bytes png_bomb() {
  const std::uint32_t side = 30000;
  const std::size_t row = 1 + side / 8;  // filter byte + 3750 bytes
  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  auto chunk = [&](const char* type, const Bytes& data) {
    const std::size_t at = png.size();
    png.resize(at + 4);
    put_be32(png, at, static_cast<std::uint32_t>(data.size()));
    png.insert(png.end(), type, type + 4);
    png.insert(png.end(), data.begin(), data.end());
    std::uint32_t crc = crc32(0, reinterpret_cast<const Bytef*>(type), 4);
    crc = crc32(crc, data.data(), static_cast<uInt>(data.size()));
    const std::size_t c = png.size();
    png.resize(c + 4);
    put_be32(png, c, crc);
  };
  Bytes ihdr(13, 0);
  put_be32(ihdr, 0, side);
  put_be32(ihdr, 4, side);
  ihdr[8] = 1;  // bit depth
  ihdr[9] = 0;  // grey
  chunk("IHDR", ihdr);

  z_stream z{};
  deflateInit(&z, 9);
  const std::size_t rows_per_chunk = 1000;
  Bytes zeros(row * rows_per_chunk, 0);
  Bytes idat;
  Bytes out(1 << 20);
  for (std::uint32_t done = 0; done < side; done += rows_per_chunk) {
    z.next_in = zeros.data();
    z.avail_in = static_cast<uInt>(zeros.size());
    const bool last = done + rows_per_chunk >= side;
    do {
      z.next_out = out.data();
      z.avail_out = static_cast<uInt>(out.size());
      deflate(&z, last ? Z_FINISH : Z_NO_FLUSH);
      idat.insert(idat.end(), out.begin(), out.end() - z.avail_out);
    } while (z.avail_out == 0);
  }
  deflateEnd(&z);
  chunk("IDAT", idat);
  chunk("IEND", {});
  return png;
}

// Patches the frame size in a JPEG's SOF segment.
Bytes jpeg_with_size(Bytes jpeg, int w, int h) {
  for (std::size_t i = 2; i + 9 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xFF && (jpeg[i + 1] == 0xC0 || jpeg[i + 1] == 0xC2)) {
      jpeg[i + 5] = static_cast<std::uint8_t>(h >> 8);
      jpeg[i + 6] = static_cast<std::uint8_t>(h);
      jpeg[i + 7] = static_cast<std::uint8_t>(w >> 8);
      jpeg[i + 8] = static_cast<std::uint8_t>(w);
      break;
    }
  }
  return jpeg;
}

// Patches the 14-bit width/height fields of a lossless WebP (VP8L) header.
Bytes webp_with_size(Bytes webp, int w, int h) {
  for (std::size_t i = 12; i + 13 < webp.size(); ++i) {
    if (std::memcmp(&webp[i], "VP8L", 4) == 0) {
      const std::size_t at = i + 9;  // after chunk size (4) and signature byte 0x2f
      const std::uint32_t bits = static_cast<std::uint32_t>(w - 1) | (static_cast<std::uint32_t>(h - 1) << 14) |
                                 (static_cast<std::uint32_t>(webp[at + 3] >> 4) << 28);
      webp[at] = static_cast<std::uint8_t>(bits);
      webp[at + 1] = static_cast<std::uint8_t>(bits >> 8);
      webp[at + 2] = static_cast<std::uint8_t>(bits >> 16);
      webp[at + 3] = static_cast<std::uint8_t>(bits >> 24);
      break;
    }
  }
  return webp;
}

Bytes avif_with_size(Bytes avif, std::uint32_t w, std::uint32_t h) {
  for (std::size_t i = 0; i + 16 < avif.size(); ++i) {
    if (std::memcmp(&avif[i], "ispe", 4) == 0) {
      put_be32(avif, i + 8, w);
      put_be32(avif, i + 12, h);
      break;
    }
  }
  return avif;
}

struct Source {
  std::string name;
  Bytes bytes;
};

std::vector<Source> valid_sources() {
  const fixture::Pixels photo = fixture::photo(96, 64);
  const std::vector<GifColorType> colours = {{0, 0, 0}, {200, 30, 30}, {30, 200, 30}};
  fixture::JpegOptions progressive;
  progressive.progressive = true;
  fixture::PngOptions interlaced;
  interlaced.interlace = true;
  return {
      {"JPEG", fixture::encode_jpeg(photo, {90})},
      {"progressive JPEG", fixture::encode_jpeg(photo, progressive)},
      {"PNG", fixture::encode_png(photo)},
      {"interlaced PNG", fixture::encode_png(photo, interlaced)},
      {"WebP", fixture::encode_webp_rgba(photo)},
      {"lossless WebP", fixture::encode_webp_rgba(photo, true)},
      {"AVIF", fixture::encode_avif_rgb(photo, 30)},
      {"GIF", fixture::encode_gif(96, 64, 1, false, colours, true)},
  };
}

bool is_refusal(ErrorCode c) {
  return c == ErrorCode::CorruptImage || c == ErrorCode::UnsupportedFormat || c == ErrorCode::TooManyPixels;
}

}  // namespace

TEST_CASE("transform: the pixel limit is checked from the header", "[transform][limits]") {
  SECTION("a 30000x30000 PNG bomb of ~110 KB") {
    const Bytes bomb = png_bomb();
    CHECK(bomb.size() < 800 * 1024);
    auto info = nic::probe_image(bomb, {});
    REQUIRE_FALSE(info.ok());
    CHECK(info.error().code == ErrorCode::TooManyPixels);
    auto out = to_webp(bomb);
    REQUIRE_FALSE(out.ok());
    CHECK(out.error().code == ErrorCode::TooManyPixels);
    CHECK(out.error().message.find("30000x30000") != std::string::npos);
  }
  const fixture::Pixels small = fixture::photo(32, 32);
  const std::vector<GifColorType> colours = {{0, 0, 0}, {200, 30, 30}};
  Bytes gif = fixture::encode_gif(32, 32, 1, false, colours);
  gif[6] = gif[7] = gif[8] = gif[9] = 0xFF;  // logical screen 65535x65535
  const std::vector<Source> bombs = {
      {"JPEG claiming 30000x30000", jpeg_with_size(fixture::encode_jpeg(small, {90}), 30000, 30000)},
      {"WebP claiming 16384x16384", webp_with_size(fixture::encode_webp_rgba(small, true), 16384, 16384)},
      {"AVIF claiming 10000x10000", avif_with_size(fixture::encode_avif_rgb(small), 10000, 10000)},
      {"GIF claiming 65535x65535", gif},
  };
  for (const auto& b : bombs) {
    SECTION(b.name) {
      auto out = to_webp(b.bytes);
      REQUIRE_FALSE(out.ok());
      INFO(out.error().message);
      CHECK(out.error().code == ErrorCode::TooManyPixels);
    }
  }
  SECTION("the limit is the configured one") {
    const Bytes png = fixture::encode_png(fixture::photo(100, 80));
    nic::TransformLimits tight;
    tight.max_input_pixels = 100 * 80 - 1;
    auto refused = to_webp(png, tight);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == ErrorCode::TooManyPixels);
    tight.max_input_pixels = 100 * 80;
    CHECK(to_webp(png, tight).ok());
  }
  SECTION("the output is capped to max_output_dimension") {
    const Bytes png = fixture::encode_png(fixture::photo(300, 200));
    nic::TransformLimits capped;
    capped.max_output_dimension = 100;
    nic::NormalizedParams p;  // no w/h: would be the source size
    p.fmt = nic::RequestedFormat::Png;
    auto out = nic::transform_image(png, p, nic::negotiate(p.fmt, ""), capped);
    REQUIRE(out.ok());
    CHECK(out->width == 100);
    CHECK(out->height == 67);
    p.w = 250;
    p.h = 250;
    p.fit = nic::Fit::Cover;
    out = nic::transform_image(png, p, nic::negotiate(p.fmt, ""), capped);
    REQUIRE(out.ok());
    CHECK(out->width == 100);
    CHECK(out->height == 100);
  }
}

TEST_CASE("transform: truncated files are CORRUPT_IMAGE", "[transform][hostile]") {
  for (const auto& s : valid_sources()) {
    SECTION(s.name) {
      REQUIRE(s.bytes.size() > 200);
      REQUIRE(to_webp(s.bytes).ok());
      for (double keep : {0.98, 0.75, 0.5, 0.25}) {
        const auto n = static_cast<std::size_t>(static_cast<double>(s.bytes.size()) * keep);
        const Bytes cut(s.bytes.begin(), s.bytes.begin() + static_cast<std::ptrdiff_t>(n));
        auto out = to_webp(cut);
        INFO("kept " << n << " of " << s.bytes.size() << " bytes");
        REQUIRE_FALSE(out.ok());
        CHECK(out.error().code == ErrorCode::CorruptImage);
      }
      for (std::size_t n : {std::size_t{12}, std::size_t{40}}) {  // magic present, header cut
        const Bytes cut(s.bytes.begin(), s.bytes.begin() + static_cast<std::ptrdiff_t>(n));
        auto out = to_webp(cut);
        INFO("kept " << n << " bytes");
        REQUIRE_FALSE(out.ok());
        CHECK(out.error().code == ErrorCode::CorruptImage);
      }
    }
  }
}

TEST_CASE("transform: unknown bytes are UNSUPPORTED_FORMAT", "[transform][hostile]") {
  fixture::Rng rng;
  Bytes garbage(4096);
  for (auto& b : garbage) b = static_cast<std::uint8_t>(rng.next());
  garbage[0] = 0x42;  // make sure no magic matches by chance
  const std::vector<Source> cases = {
      {"random bytes", garbage},
      {"empty", {}},
      {"text", Bytes{'h', 'e', 'l', 'l', 'o'}},
      {"HTML error page", Bytes{'<', 'h', 't', 'm', 'l', '>', '<', '/', 'h', 't', 'm', 'l', '>'}},
      {"BMP", Bytes{'B', 'M', 0, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0}},
  };
  for (const auto& c : cases) {
    SECTION(c.name) {
      auto out = to_webp(c.bytes);
      REQUIRE_FALSE(out.ok());
      CHECK(out.error().code == ErrorCode::UnsupportedFormat);
      auto info = nic::probe_image(c.bytes, {});
      REQUIRE_FALSE(info.ok());
      CHECK(info.error().code == ErrorCode::UnsupportedFormat);
    }
  }
}

TEST_CASE("transform: magic bytes followed by garbage are CORRUPT_IMAGE", "[transform][hostile]") {
  fixture::Rng rng;
  const std::vector<Bytes> magics = {
      {0xFF, 0xD8, 0xFF},
      {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'},
      {'G', 'I', 'F', '8', '9', 'a'},
      {'R', 'I', 'F', 'F', 0, 1, 0, 0, 'W', 'E', 'B', 'P'},
      {0, 0, 0, 0x20, 'f', 't', 'y', 'p', 'a', 'v', 'i', 'f'},
  };
  for (const auto& magic : magics) {
    Bytes b = magic;
    for (int i = 0; i < 2000; ++i) b.push_back(static_cast<std::uint8_t>(rng.next()));
    auto out = to_webp(b);
    REQUIRE_FALSE(out.ok());
    CHECK(out.error().code == ErrorCode::CorruptImage);
  }
}

TEST_CASE("transform: corrupted bytes never crash", "[transform][hostile]") {
  // Flip bytes all over valid files; whatever the decoder makes of it, the
  // result is an image or one of the three refusals.
  fixture::Rng rng;
  int refused = 0, decoded = 0;
  for (const auto& s : valid_sources()) {
    for (int round = 0; round < 40; ++round) {
      Bytes b = s.bytes;
      const int flips = 1 + static_cast<int>(rng.next() % 8);
      for (int i = 0; i < flips; ++i) {
        b[rng.next() % b.size()] = static_cast<std::uint8_t>(rng.next());
      }
      auto out = to_webp(b);
      if (out.ok()) {
        ++decoded;
        CHECK(out->width >= 1);
      } else {
        ++refused;
        INFO(s.name << ": " << out.error().message);
        CHECK(is_refusal(out.error().code));
      }
    }
  }
  // The flips come from a fixed seed, so the outcome is fixed too (with
  // Debian 12's codec libraries): a change here means a decoder now accepts
  // or refuses damage it did not before, which deserves a look. (179/141
  // before this session's colour management and 8192 output-cap fit.)
  CHECK(refused == 178);
  CHECK(decoded == 142);
}

TEST_CASE("transform: a progressive JPEG with too many scans is refused", "[transform][hostile]") {
  // Hundreds of scans: each is a full pass over the coefficients, a CPU bomb.
  const fixture::Pixels gray = [] {
    fixture::Pixels p = fixture::blank(64, 64, 1);
    for (std::size_t i = 0; i < p.p.size(); ++i) p.p[i] = static_cast<std::uint8_t>(i * 7);
    return p;
  }();
  const Bytes base = fixture::encode_jpeg(gray, {90});
  fixture::JpegOptions o;
  o.progressive = true;
  Bytes prog = fixture::encode_jpeg(gray, o);
  // Repeat the last scan (an AC refinement) 300 times before EOI: libjpeg only
  // warns about the bogus progression, so the scan limit has to stop it.
  std::size_t last_sos = 0;
  for (std::size_t i = 2; i + 1 < prog.size(); ++i) {
    if (prog[i] == 0xFF && prog[i + 1] == 0xDA) last_sos = i;
  }
  REQUIRE(last_sos > 0);
  const Bytes scan(prog.begin() + static_cast<std::ptrdiff_t>(last_sos), prog.end() - 2);
  Bytes bomb(prog.begin(), prog.end() - 2);
  for (int i = 0; i < 300; ++i) bomb.insert(bomb.end(), scan.begin(), scan.end());
  bomb.push_back(0xFF);
  bomb.push_back(0xD9);
  auto out = to_webp(bomb);
  REQUIRE_FALSE(out.ok());
  CHECK(out.error().code == ErrorCode::CorruptImage);
  CHECK(to_webp(base).ok());
}

// Found by the gif fuzz target: a GIF 8x32776 with w given (inside, the width
// is no limit) came out 8x32776, above the 8192 output cap, and WebP (max
// 16383) failed with INTERNAL. The output is shrunk to the cap instead.
TEST_CASE("transform: a very long source never exceeds the output cap", "[transform][limits]") {
  const fixture::Pixels tall = fixture::photo(4, 20000);
  const Bytes png = fixture::encode_png(tall);
  REQUIRE_FALSE(png.empty());
  for (auto fmt : {nic::RequestedFormat::Webp, nic::RequestedFormat::Png, nic::RequestedFormat::Jpeg}) {
    CAPTURE(static_cast<int>(fmt));
    nic::NormalizedParams p;
    p.w = 64;
    p.fmt = fmt;
    auto out = nic::transform_image(png, p, nic::negotiate(fmt, ""), {});
    REQUIRE(out.ok());
    CHECK(out->height == nic::kMaxDimension);
    CHECK(out->width == 2);  // 4 x 8192/20000 = 1.6 -> 2
    const auto decoded = fixture::decode(out->bytes);
    CHECK(decoded.h == nic::kMaxDimension);
  }
}
