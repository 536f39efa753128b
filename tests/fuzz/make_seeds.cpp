// Writes the image seeds of the fuzz corpora (tests/fuzz/corpus/<target>/),
// small files made with the codec libraries themselves (the fixtures the
// engine's tests use). Run once by hand after changing it:
//   cmake --build BUILD --target fuzz_make_seeds && BUILD/tests/fuzz/fuzz_make_seeds tests/fuzz/corpus
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "transform_fixtures.h"

namespace {

using fixture::Bytes;
using fixture::Pixels;
namespace fs = std::filesystem;

void put(const fs::path& dir, const std::string& name, const Bytes& b) {
  if (b.empty()) {
    std::fprintf(stderr, "empty seed %s\n", name.c_str());
    std::exit(1);
  }
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary).write(reinterpret_cast<const char*>(b.data()),
                                                    static_cast<std::streamsize>(b.size()));
}

Pixels with_alpha(const Pixels& rgb) {
  Pixels px = fixture::blank(rgb.w, rgb.h, 4);
  for (int y = 0; y < rgb.h; ++y) {
    for (int x = 0; x < rgb.w; ++x) {
      std::copy(rgb.at(x, y), rgb.at(x, y) + 3, px.at(x, y));
      px.at(x, y)[3] = static_cast<std::uint8_t>(x * 16);
    }
  }
  return px;
}

Pixels channels(const Pixels& rgb, int c) {
  Pixels px = fixture::blank(rgb.w, rgb.h, c);
  for (int y = 0; y < rgb.h; ++y) {
    for (int x = 0; x < rgb.w; ++x) {
      for (int i = 0; i < c; ++i) px.at(x, y)[i] = rgb.at(x, y)[i % 3];
    }
  }
  return px;
}

// Packed rows of a `depth`-bit single-sample image (grey or palette index).
std::vector<std::uint8_t> packed(int w, int h, int depth) {
  const int row = (w * depth + 7) / 8;
  std::vector<std::uint8_t> raw(static_cast<std::size_t>(row) * h);
  for (std::size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<std::uint8_t>(i * 37 + 11);
  return raw;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds CORPUS_DIR\n");
    return 2;
  }
  const fs::path root(argv[1]);
  const Pixels rgb = fixture::photo(16, 12);
  const Pixels rgba = with_alpha(rgb);

  // JPEG: baseline, progressive, grey, CMYK (Adobe), EXIF orientations.
  {
    fixture::JpegOptions o;
    o.quality = 50;
    put(root / "jpeg", "baseline.jpg", fixture::encode_jpeg(rgb, o));
    o.progressive = true;
    put(root / "jpeg", "progressive.jpg", fixture::encode_jpeg(rgb, o));
    o.progressive = false;
    o.grayscale = true;
    put(root / "jpeg", "grey.jpg", fixture::encode_jpeg(channels(rgb, 1), o));
    o.grayscale = false;
    o.cmyk = true;
    put(root / "jpeg", "cmyk-adobe.jpg", fixture::encode_jpeg(channels(rgb, 4), o));
    o.cmyk = false;
    o.orientation = 6;
    put(root / "jpeg", "exif-6.jpg", fixture::encode_jpeg(rgb, o));
    o.orientation = 3;
    put(root / "jpeg", "exif-3.jpg", fixture::encode_jpeg(rgb, o));
  }
  // PNG the fast path decodes: 8-bit, not interlaced.
  {
    put(root / "png_fast", "rgb.png", fixture::encode_png(rgb));
    put(root / "png_fast", "rgba.png", fixture::encode_png(rgba));
    put(root / "png_fast", "grey.png", fixture::encode_png(channels(rgb, 1)));
    put(root / "png_fast", "grey-alpha.png", fixture::encode_png(channels(rgba, 2)));
    fixture::PngOptions pal;
    pal.color_type = SPNG_COLOR_TYPE_INDEXED;
    pal.bit_depth = 8;
    for (int i = 0; i < 16; ++i) {
      pal.palette.insert(pal.palette.end(), {static_cast<std::uint8_t>(i * 16), static_cast<std::uint8_t>(255 - i * 16),
                                             static_cast<std::uint8_t>(i * 7)});
    }
    std::vector<std::uint8_t> idx(16 * 12);
    for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<std::uint8_t>(i % 16);
    put(root / "png_fast", "palette.png", fixture::encode_png_raw(16, 12, idx, pal));
    pal.trns = {0, 64, 128, 255};
    put(root / "png_fast", "palette-trns.png", fixture::encode_png_raw(16, 12, idx, pal));
    fixture::PngOptions ex;
    ex.orientation = 8;
    put(root / "png_fast", "exif-8.png", fixture::encode_png(rgb, ex));

    // What the fast path hands to libspng: 16-bit, sub-byte, Adam7.
    put(root / "png_spng", "rgb16.png", fixture::encode_png16(rgb));
    put(root / "png_spng", "rgba16.png", fixture::encode_png16(rgba));
    fixture::PngOptions il;
    il.interlace = true;
    il.color_type = SPNG_COLOR_TYPE_TRUECOLOR;
    il.bit_depth = 8;
    put(root / "png_spng", "adam7.png", fixture::encode_png_raw(16, 12, rgb.p, il));
    for (int depth : {1, 2, 4}) {
      fixture::PngOptions g;
      g.color_type = SPNG_COLOR_TYPE_GRAYSCALE;
      g.bit_depth = depth;
      put(root / "png_spng", "grey" + std::to_string(depth) + ".png", fixture::encode_png_raw(16, 12, packed(16, 12, depth), g));
    }
    pal.bit_depth = 4;
    put(root / "png_spng", "palette4-trns.png", fixture::encode_png_raw(16, 12, packed(16, 12, 4), pal));
  }
  // WebP: lossy, lossless, alpha, animated.
  {
    put(root / "webp", "lossy.webp", fixture::encode_webp_rgba(rgb));
    put(root / "webp", "lossless.webp", fixture::encode_webp_rgba(rgb, true));
    put(root / "webp", "alpha.webp", fixture::encode_webp_rgba(rgba));
    put(root / "webp", "animated.webp", fixture::encode_animated_webp(8, 8, {{255, 0, 0}, {0, 0, 255}}));
  }
  // GIF: still, transparent, animated, patterned.
  {
    const std::vector<GifColorType> colours = {{0, 0, 0},     {255, 0, 0},   {0, 255, 0},  {0, 0, 255},
                                               {255, 255, 0}, {0, 255, 255}, {255, 0, 255}, {255, 255, 255}};
    put(root / "gif", "still.gif", fixture::encode_gif(16, 12, 1, false, colours, true));
    put(root / "gif", "transparent.gif", fixture::encode_gif(16, 12, 1, true, colours));
    put(root / "gif", "animated.gif", fixture::encode_gif(8, 8, 3, false, colours));
  }
  // AVIF: plain, rotated (irot), mirrored (imir).
  {
    const Pixels small = fixture::photo(8, 8);
    put(root / "avif", "plain.avif", fixture::encode_avif_rgb(small, 40));
    put(root / "avif", "irot.avif", fixture::encode_avif_rgb(small, 40, 1));
    put(root / "avif", "imir.avif", fixture::encode_avif_rgb(small, 40, -1, 1));
  }
  // EXIF blocks (as in JPEG APP1 and, without the "Exif\0\0" prefix, PNG eXIf).
  for (int o = 1; o <= 8; ++o) {
    put(root / "exif", "be-" + std::to_string(o), fixture::exif_app1(o));
    Bytes le = fixture::exif_app1(o, true);
    put(root / "exif", "le-" + std::to_string(o), Bytes(le.begin() + 6, le.end()));
  }
  // Sniffing: one of each format.
  for (const char* dir : {"jpeg", "png_fast", "webp", "gif", "avif"}) {
    for (const auto& entry : fs::directory_iterator(root / dir)) {
      if (entry.path().filename().string().find("exif") != std::string::npos) continue;
      fs::create_directories(root / "sniff");
      fs::copy_file(entry.path(), root / "sniff" / entry.path().filename(), fs::copy_options::overwrite_existing);
      break;
    }
  }
  std::printf("seeds written under %s\n", root.c_str());
  return 0;
}
