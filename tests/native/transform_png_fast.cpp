// The engine's own PNG decode path (png_fast.cpp): exact pixels against
// libspng for every colour type it takes and every row filter, and refusals
// for the ways a file can be broken inside it (CRC, zlib length, filter type).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "nic/negotiate.h"
#include "png_fast.h"
#include "transform.h"
#include "transform_fixtures.h"

namespace {

using fixture::Bytes;
using nic::ErrorCode;
using nic::detail::FastPng;

// Collects what the decoder sends.
class Capture final : public nic::detail::RowSink {
 public:
  nic::Status begin(int width, int height, bool alpha) override {
    w = width;
    h = height;
    has_alpha = alpha;
    ++begins;
    return nic::Ok{};
  }
  bool row(const std::uint8_t* rgba) override {
    pixels.insert(pixels.end(), rgba, rgba + static_cast<std::size_t>(w) * 4);
    return true;
  }
  int w = 0, h = 0, begins = 0;
  bool has_alpha = false;
  std::vector<std::uint8_t> pixels;
};

void put_be32(Bytes& b, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s));
}

void chunk(Bytes& png, const char* type, const Bytes& data) {
  put_be32(png, static_cast<std::uint32_t>(data.size()));
  png.insert(png.end(), type, type + 4);
  png.insert(png.end(), data.begin(), data.end());
  std::uint32_t crc = crc32(0, reinterpret_cast<const Bytef*>(type), 4);
  crc = crc32(crc, data.data(), static_cast<uInt>(data.size()));
  put_be32(png, crc);
}

int paeth(int a, int b, int c) {
  const int p = a + b - c;
  const int pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

struct Spec {
  int w = 0, h = 0;
  int colour_type = 2;
  int channels = 3;
  Bytes raw;       // unfiltered rows, packed
  Bytes palette;   // PLTE data
  Bytes trns;      // tRNS data (palette alpha)
  int filter = -1; // 0..4 for every row; -1: row y uses filter y % 5
  int idat_parts = 1;
  int extra_rows = 0;  // < 0: fewer rows of data than the header says
  int bad_filter_row = -1;
};

// Filters with PNG's own definitions, zlib-compresses, splits into IDATs.
Bytes build_png(const Spec& s) {
  const std::size_t stride = static_cast<std::size_t>(s.w) * s.channels;
  const int bpp = s.channels;
  Bytes filtered;
  const int rows = s.h + s.extra_rows;
  for (int y = 0; y < rows; ++y) {
    const int src_y = y % s.h;
    const std::uint8_t* row = s.raw.data() + stride * src_y;
    const std::uint8_t* prev = src_y > 0 ? s.raw.data() + stride * (src_y - 1) : nullptr;
    const int f = s.filter >= 0 ? s.filter : y % 5;
    filtered.push_back(static_cast<std::uint8_t>(y == s.bad_filter_row ? 5 : f));
    for (std::size_t i = 0; i < stride; ++i) {
      const int a = i >= static_cast<std::size_t>(bpp) ? row[i - bpp] : 0;
      const int b = prev ? prev[i] : 0;
      const int c = (prev && i >= static_cast<std::size_t>(bpp)) ? prev[i - bpp] : 0;
      int pred = 0;
      switch (f) {
        case 1: pred = a; break;
        case 2: pred = b; break;
        case 3: pred = (a + b) / 2; break;
        case 4: pred = paeth(a, b, c); break;
        default: break;
      }
      filtered.push_back(static_cast<std::uint8_t>(row[i] - pred));
    }
  }
  uLongf zsize = compressBound(static_cast<uLong>(filtered.size()));
  Bytes z(zsize);
  compress2(z.data(), &zsize, filtered.data(), static_cast<uLong>(filtered.size()), 6);
  z.resize(zsize);

  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  Bytes ihdr;
  put_be32(ihdr, static_cast<std::uint32_t>(s.w));
  put_be32(ihdr, static_cast<std::uint32_t>(s.h));
  ihdr.insert(ihdr.end(), {8, static_cast<std::uint8_t>(s.colour_type), 0, 0, 0});
  chunk(png, "IHDR", ihdr);
  chunk(png, "tEXt", Bytes{'a', 0, 'b'});
  if (!s.palette.empty()) chunk(png, "PLTE", s.palette);
  if (!s.trns.empty()) chunk(png, "tRNS", s.trns);
  const std::size_t part = z.size() / static_cast<std::size_t>(s.idat_parts) + 1;
  for (std::size_t at = 0; at < z.size(); at += part) {
    chunk(png, "IDAT", Bytes(z.begin() + static_cast<std::ptrdiff_t>(at),
                             z.begin() + static_cast<std::ptrdiff_t>(std::min(z.size(), at + part))));
  }
  chunk(png, "IEND", {});
  return png;
}

Spec make_spec(int colour_type, int w, int h) {
  static constexpr int kChannels[7] = {1, 0, 3, 1, 2, 0, 4};
  Spec s;
  s.w = w;
  s.h = h;
  s.colour_type = colour_type;
  s.channels = kChannels[colour_type];
  fixture::Rng rng;
  s.raw.resize(static_cast<std::size_t>(w) * h * s.channels);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w * s.channels; ++x) {
      // Gradients (where the predictors matter) plus noise (where they disagree).
      const auto v = static_cast<std::uint32_t>(x * 3 + y * 5) + (rng.next() % 23);
      s.raw[static_cast<std::size_t>(y) * w * s.channels + x] =
          static_cast<std::uint8_t>(colour_type == 3 ? v % 200 : v);
    }
  }
  if (colour_type == 3) {  // 180 entries: some indices point past the palette
    for (int i = 0; i < 180; ++i) {
      s.palette.insert(s.palette.end(), {static_cast<std::uint8_t>(i), static_cast<std::uint8_t>(255 - i),
                                         static_cast<std::uint8_t>(i * 7)});
    }
  }
  return s;
}

// libspng's decode of the same bytes, RGBA8 with tRNS applied.
Bytes spng_rgba(const Bytes& png) {
  spng_ctx* ctx = spng_ctx_new(0);
  spng_set_png_buffer(ctx, png.data(), png.size());
  std::size_t size = 0;
  Bytes out;
  if (spng_decoded_image_size(ctx, SPNG_FMT_RGBA8, &size) == 0) {
    out.resize(size);
    if (spng_decode_image(ctx, out.data(), size, SPNG_FMT_RGBA8, SPNG_DECODE_TRNS) != 0) out.clear();
  }
  spng_ctx_free(ctx);
  return out;
}

nic::Result<FastPng> fast(const Bytes& png, Capture& sink) {
  return nic::detail::decode_png_fast(nic::detail::Bytes(png.data(), png.size()), sink);
}

nic::Result<nic::TransformOutput> to_png(const Bytes& src) {
  nic::NormalizedParams p;
  p.w = 16;
  p.fmt = nic::RequestedFormat::Png;
  return nic::transform_image(src, p, nic::negotiate(p.fmt, ""), {});
}

}  // namespace

TEST_CASE("png fast path: the same pixels as libspng for every colour type and filter", "[transform][png]") {
  for (int type : {0, 2, 3, 4, 6}) {
    for (int filter = -1; filter <= 4; ++filter) {
      for (auto [w, h] : {std::pair{1, 1}, std::pair{7, 5}, std::pair{32, 3}, std::pair{33, 17}}) {
        Spec s = make_spec(type, w, h);
        s.filter = filter;
        s.idat_parts = (w + filter + 2) % 3 + 1;
        const Bytes png = build_png(s);
        INFO("type " << type << " filter " << filter << " " << w << "x" << h << " in " << s.idat_parts
                     << " IDAT(s)");
        const Bytes want = spng_rgba(png);
        REQUIRE(want.size() == static_cast<std::size_t>(w) * h * 4);
        Capture got;
        auto r = fast(png, got);
        REQUIRE(r.ok());
        REQUIRE(*r == FastPng::Decoded);
        CHECK(got.begins == 1);
        CHECK(got.w == w);
        CHECK(got.h == h);
        CHECK(got.has_alpha == (type == 4 || type == 6));
        if (type == 3) {
          // Indices past the palette: libspng gives transparent or opaque
          // black depending on version; ours opaque black. Compare the rest.
          for (std::size_t i = 0; i < s.raw.size(); ++i) {
            if (s.raw[i] >= 180) {
              CHECK(got.pixels[i * 4 + 3] == 255);
              continue;
            }
            CHECK(std::equal(want.begin() + static_cast<std::ptrdiff_t>(i * 4),
                             want.begin() + static_cast<std::ptrdiff_t>(i * 4 + 4),
                             got.pixels.begin() + static_cast<std::ptrdiff_t>(i * 4)));
          }
        } else if (type == 6) {
          CHECK(got.pixels == want);
        } else {  // RGBX: the fourth byte is 255
          CHECK(got.pixels == want);
        }
      }
    }
  }
}

TEST_CASE("png fast path: palette with tRNS", "[transform][png]") {
  Spec s = make_spec(3, 40, 9);
  for (int i = 0; i < 100; ++i) s.trns.push_back(static_cast<std::uint8_t>(i * 2));
  const Bytes png = build_png(s);
  Capture got;
  auto r = fast(png, got);
  REQUIRE(r.ok());
  REQUIRE(*r == FastPng::Decoded);
  CHECK(got.has_alpha);
  const Bytes want = spng_rgba(png);
  for (std::size_t i = 0; i < s.raw.size(); ++i) {
    const std::uint8_t idx = s.raw[i];
    if (idx >= 180) continue;
    INFO("pixel " << i << " index " << int(idx));
    CHECK(got.pixels[i * 4 + 3] == (idx < 100 ? idx * 2 : 255));
    CHECK(std::equal(want.begin() + static_cast<std::ptrdiff_t>(i * 4),
                     want.begin() + static_cast<std::ptrdiff_t>(i * 4 + 4),
                     got.pixels.begin() + static_cast<std::ptrdiff_t>(i * 4)));
  }
}

TEST_CASE("png fast path: what it leaves to libspng", "[transform][png]") {
  fixture::Pixels px = fixture::photo(20, 10);
  fixture::PngOptions interlaced;
  interlaced.interlace = true;
  Capture sink;
  for (const Bytes& png : {fixture::encode_png(px, interlaced), fixture::encode_png16(px)}) {
    auto r = fast(png, sink);
    REQUIRE(r.ok());
    CHECK(*r == FastPng::NotHandled);
    CHECK(sink.begins == 0);
    auto out = to_png(png);  // and libspng decodes it
    REQUIRE(out.ok());
    CHECK(out->width == 16);
  }
}

TEST_CASE("png fast path: broken files are CORRUPT_IMAGE", "[transform][png][hostile]") {
  const Spec good = make_spec(2, 64, 48);
  const Bytes png = build_png(good);
  REQUIRE(to_png(png).ok());

  auto refused_fast = [](const Bytes& b) {
    Capture sink;
    auto r = fast(b, sink);
    CHECK(sink.begins == 0);  // nothing reached the sink
    return !r.ok() && r.error().code == ErrorCode::CorruptImage;
  };
  auto refused = [](const Bytes& b) {
    auto out = to_png(b);
    INFO((out.ok() ? std::string("decoded") : out.error().message));
    return !out.ok() && out.error().code == ErrorCode::CorruptImage;
  };

  SECTION("a bad CRC in IDAT") {
    Bytes b = png;
    const std::size_t at = std::string(b.begin(), b.end()).find("IDAT");
    REQUIRE(at != std::string::npos);
    b[at + 10] ^= 0x01;  // a data byte, CRC unchanged
    CHECK(refused_fast(b));
    CHECK(refused(b));
  }
  SECTION("a bad CRC in IHDR") {
    Bytes b = png;
    b[8 + 8 + 12] ^= 0x01;  // the interlace byte's neighbour, the CRC's first byte
    CHECK(refused_fast(b));
    CHECK(refused(b));
  }
  SECTION("IDAT data shorter than the image") {
    // Three rows fewer of data than the header says.
    Spec shorter = good;
    shorter.h = 45;
    Bytes b = build_png(shorter);
    b[16 + 4 + 3] = 48;  // IHDR height (low byte) 45 -> 48, CRC fixed below
    const std::uint32_t crc = crc32(0, b.data() + 12, 17);
    b[29] = static_cast<std::uint8_t>(crc >> 24);
    b[30] = static_cast<std::uint8_t>(crc >> 16);
    b[31] = static_cast<std::uint8_t>(crc >> 8);
    b[32] = static_cast<std::uint8_t>(crc);
    CHECK(refused_fast(b));
    CHECK(refused(b));
  }
  SECTION("IDAT data longer than the image") {
    Spec s = good;
    s.extra_rows = 5;
    const Bytes b = build_png(s);
    // Not ours to decide: libspng reads the rows it needs and ignores the rest.
    Capture sink;
    auto r = fast(b, sink);
    REQUIRE(r.ok());
    CHECK(*r == FastPng::NotHandled);
    CHECK(sink.begins == 0);
    auto out = to_png(b);
    REQUIRE(out.ok());
    CHECK(out->width == 16);
  }
  SECTION("a row filter type above 4") {
    Spec s = good;
    s.bad_filter_row = 30;
    const Bytes b = build_png(s);
    CHECK(refused_fast(b));
    CHECK(refused(b));
  }
  SECTION("a chunk length past the end") {
    Bytes b = png;
    b.resize(b.size() - 20);  // cuts IDAT's tail or IEND
    CHECK(refused(b));
  }
}

// Past 4 MB of inflated data the buffer comes from huge-page-aligned memory
// (BigBuffer): the same pixels as libspng there too.
TEST_CASE("png fast path: a big image (huge-page buffer) decodes exactly", "[transform][png]") {
  Spec s = make_spec(6, 1100, 1000);  // (1100 * 4 + 1) * 1000 bytes inflated: > 4 MB
  s.filter = -1;
  const Bytes png = build_png(s);
  const Bytes want = spng_rgba(png);
  REQUIRE(want.size() == std::size_t{1100} * 1000 * 4);
  Capture got;
  auto r = fast(png, got);
  REQUIRE(r.ok());
  REQUIRE(*r == FastPng::Decoded);
  CHECK(got.w == 1100);
  CHECK(got.pixels == want);
}
