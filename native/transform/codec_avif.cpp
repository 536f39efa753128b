// AVIF through libavif (decode: whatever libavif picks, dav1d on Debian;
// encode: aom).
//
// Encoder settings (documented in the README), chosen by measuring against
// Sharp 0.33.5 (libheif + aom, cpu-used 5, 4:4:4, q50) with bench/transform
// on a photo and a screenshot, both 800 wide; the goal is no more bytes and
// no lower PSNR than Sharp, in less CPU time:
// - speed 5 (aom cpu-used 5, all-intra) by default. Speeds 6 and 7 are 2-3x faster but
//   measured worse than Sharp on screen content at every quantizer: at speed 6
//   the screenshot was 66898 B / 36.19 dB at quantizer 32 and 70870 B /
//   37.15 dB at 30 (Sharp: 65521 B / 36.40 dB), and at speed 8 85555 B /
//   34.75 dB. Speed 5 single-threaded: ~130 ms for an 800x533 photo, ~2.2 s
//   for an 800x560 screenshot (Sharp takes ~180-240 ms and ~2.8-3.1 s CPU).
// - 4:4:4 chroma for everything: at speed 5 it beats 4:2:0 at equal bytes on
//   photos too (4:2:0 needed quantizer 24 and 2659 B for the PSNR 4:4:4 gets
//   at 32 in ~2350 B), and coloured text and thin lines need it.
// - enable-chroma-deltaq=1 (finer chroma quantizer where it pays) and
//   enable-filter-intra=0 (a tool that did not pay here): photo 2385 -> 2349 B
//   at 43.94 -> 43.90 dB, screenshot 65177 -> 64305 B at 36.43 -> 36.41 dB.
// - smooth intra modes and angle deltas stay on (aom's defaults): turning
//   them off saved 13-27% of the instructions on the two synthetic images it
//   was measured on but cost real photographs 5-25% more bytes at equal
//   quality (issue 13; e.g. LadyBird q50: 9452 B / 38.37 dB off vs 8820 B /
//   38.40 dB on, Sharp 8820 B / 38.42 dB).
// - grey images are written 4:0:0 (monochrome): no chroma planes to code.
// - threads: as many as the caller says are idle (transform.cpp: the cores
//   not busy with other transforms), but never fewer than two aom workers.
//   aom encodes superblock rows in parallel (row-mt) only with two or more
//   workers, and row-mt changes the bitstream (each superblock row starts
//   from entropy contexts averaged with the row above instead of continuing
//   the previous row): with one worker LadyBird q50 was 8820 B, with 2, 3, 4
//   or 8 workers 8862 B, so the bytes (and ETags) depended on how busy the
//   machine was. With at least two workers the output is the row-mt one for
//   every thread count; one tile always (libavif's default), so nothing else
//   depends on the threads. A second worker on a busy machine costs no
//   measurable CPU (LadyBird 0.55-0.58 s either way; aom's row sync waits on
//   a condition variable, it does not spin). Test: transform_avif.cpp.
// - speed: AVIF_SPEED (default 5); the bytes each faster speed costs are in
//   bench/README.md.
// - quality q (1..100) maps linearly onto aom's quantizer 0..63:
//   quantizer = round((100 - q) * 63 / 100), min = max (constant quality,
//   what libheif's cq-level gives Sharp); alpha uses a finer quantizer (edges
//   of cut-outs are sensitive).
// - 8-bit, full range, sRGB (BT.709 primaries, sRGB transfer, BT.601
//   matrix), like avifenc does for sRGB input.
#include <cstring>
#include <memory>
#include <string>

#include <avif/avif.h>

#include "image.h"

namespace nic::detail {
namespace {

struct DecoderDeleter {
  void operator()(avifDecoder* d) const { avifDecoderDestroy(d); }
};
using DecoderPtr = std::unique_ptr<avifDecoder, DecoderDeleter>;

struct EncoderDeleter {
  void operator()(avifEncoder* e) const { avifEncoderDestroy(e); }
};
using EncoderPtr = std::unique_ptr<avifEncoder, EncoderDeleter>;

struct ImageDeleter {
  void operator()(avifImage* i) const { avifImageDestroy(i); }
};
using ImagePtr = std::unique_ptr<avifImage, ImageDeleter>;

struct RWDataDeleter {
  void operator()(avifRWData* d) const {
    avifRWDataFree(d);
    delete d;
  }
};
using RWDataPtr = std::unique_ptr<avifRWData, RWDataDeleter>;

// See "threads" above: fewer workers would select a different bitstream.
constexpr int kMinAomThreads = 2;

Error avif_error(const char* what, avifResult rc) {
  return corrupt(std::string("AVIF: ") + what + ": " + avifResultToString(rc));
}

// irot (anti-clockwise quarter turns) then imir, as one EXIF orientation.
int orientation_of(const avifImage& img) {
  int angle = (img.transformFlags & AVIF_TRANSFORM_IROT) ? (img.irot.angle & 3) : 0;
  int mirror = (img.transformFlags & AVIF_TRANSFORM_IMIR) ? (img.imir.mode == 0 ? 1 : 2) : 0;
  // mirror: 1 = top-bottom, 2 = left-right.
  static constexpr int kTable[4][3] = {
      {1, 4, 2},  // no rotation
      {8, 5, 7},  // 90 anti-clockwise
      {3, 2, 4},  // 180
      {6, 7, 5},  // 270 anti-clockwise (90 clockwise)
  };
  return kTable[angle][mirror];
}

Result<DecoderPtr> open_decoder(Bytes data) {
  DecoderPtr dec(avifDecoderCreate());
  if (!dec) return make_error(ErrorCode::Internal, "AVIF: out of memory");
  dec->maxThreads = 1;
  dec->ignoreExif = AVIF_TRUE;
  dec->ignoreXMP = AVIF_TRUE;
  avifResult rc = avifDecoderSetIOMemory(dec.get(), data.data(), data.size());
  if (rc == AVIF_RESULT_OK) rc = avifDecoderParse(dec.get());
  if (rc != AVIF_RESULT_OK) return avif_error("header", rc);
  return dec;
}

// Fully transparent pixels show nothing, whatever their colour, but aom codes
// that colour like any other. After resizing they are black (the resampler
// un-premultiplies alpha 0 to 0), so a soft shape over transparency has a hard
// black edge under it in the colour planes. They are given the mean colour of
// the visible pixels (alpha-weighted) instead: on the corpus's three alpha
// images (issue 13), bytes at equal SSIM against Sharp's went from 1.15 / 1.04
// / 1.03 (Arc-Colors-Transparent-Wallpaper, gen-cutout, Stripes) to 0.79 /
// 1.09 / 1.03. Extending each row's last visible colour (streaks: cutout
// 1.21) and a pull-push fill from a pyramid of block means (cutout 1.19) were
// worse.
Image fill_transparent(const Image& image) {
  Image filled = image;
  std::uint64_t sum[3] = {0, 0, 0}, weight = 0;
  const std::size_t n = filled.pixels.size();
  std::uint8_t* p = filled.pixels.data();
  for (std::size_t i = 0; i < n; i += 4) {
    const unsigned a = p[i + 3];
    for (int c = 0; c < 3; ++c) sum[c] += static_cast<std::uint64_t>(a) * p[i + c];
    weight += a;
  }
  if (weight == 0) return filled;
  std::uint8_t mean[3];
  for (int c = 0; c < 3; ++c) mean[c] = static_cast<std::uint8_t>((sum[c] + weight / 2) / weight);
  for (std::size_t i = 0; i < n; i += 4) {
    if (p[i + 3] == 0) std::memcpy(p + i, mean, 3);
  }
  return filled;
}

}  // namespace

Result<Header> probe_avif(Bytes data) {
  auto dec = open_decoder(data);
  if (!dec) return dec.take_error();
  const avifImage& img = *(*dec)->image;
  Header h;
  h.format = ImageFormat::Avif;
  h.width = static_cast<int>(img.width);
  h.height = static_cast<int>(img.height);
  h.alpha = (*dec)->alphaPresent != 0;
  h.animated = (*dec)->imageCount > 1;
  h.orientation = orientation_of(img);
  h.gray = img.yuvFormat == AVIF_PIXEL_FORMAT_YUV400;
  // An ICC profile wins over the nclx code points (as in browsers).
  if (img.icc.size > 0 && img.icc.size <= kMaxIccBytes) {
    h.colour.kind = ColourTag::Kind::Icc;
    h.colour.icc.assign(img.icc.data, img.icc.data + img.icc.size);
  } else if (img.icc.size == 0) {
    h.colour.kind = ColourTag::Kind::Cicp;
    h.colour.cicp_primaries = img.colorPrimaries;
    h.colour.cicp_transfer = img.transferCharacteristics;
  }
  return h;
}

Status decode_avif(Bytes data, RowSink& sink) {
  auto opened = open_decoder(data);
  if (!opened) return opened.take_error();
  avifDecoder* dec = opened->get();
  if (const avifResult rc = avifDecoderNextImage(dec); rc != AVIF_RESULT_OK) {
    return avif_error("image data", rc);
  }
  const avifImage* img = dec->image;
  const auto bytes = rgba_bytes(img->width, img->height);
  if (!bytes) return make_error(ErrorCode::TooManyPixels, "AVIF dimensions out of range");
  std::vector<std::uint8_t> pixels(*bytes, 0xFF);
  avifRGBImage rgb;
  avifRGBImageSetDefaults(&rgb, img);
  rgb.format = AVIF_RGB_FORMAT_RGBA;
  rgb.depth = 8;
  rgb.pixels = pixels.data();
  rgb.rowBytes = img->width * 4;
  if (const avifResult rc = avifImageYUVToRGB(img, &rgb); rc != AVIF_RESULT_OK) {
    return avif_error("colour conversion", rc);
  }
  const int w = static_cast<int>(img->width);
  const int h = static_cast<int>(img->height);
  if (auto s = sink.begin(w, h, img->alphaPlane != nullptr); !s) return s;
  for (int y = 0; y < h; ++y) {
    if (!sink.row(pixels.data() + static_cast<std::size_t>(y) * rgb.rowBytes)) break;
  }
  return Ok{};
}

Result<std::vector<std::uint8_t>> encode_avif(const Image& image, int quality, const AvifOptions& options) {
  const bool grey = is_grey(image);
  ImagePtr img(avifImageCreate(static_cast<std::uint32_t>(image.width),
                               static_cast<std::uint32_t>(image.height), 8,
                               grey ? AVIF_PIXEL_FORMAT_YUV400 : AVIF_PIXEL_FORMAT_YUV444));
  if (!img) return make_error(ErrorCode::Internal, "AVIF encoder: out of memory");
  img->yuvRange = AVIF_RANGE_FULL;
  img->colorPrimaries = AVIF_COLOR_PRIMARIES_BT709;
  img->transferCharacteristics = AVIF_TRANSFER_CHARACTERISTICS_SRGB;
  img->matrixCoefficients = AVIF_MATRIX_COEFFICIENTS_BT601;

  const Image filled = image.alpha ? fill_transparent(image) : Image{};
  const Image& source = image.alpha ? filled : image;
  avifRGBImage rgb;
  avifRGBImageSetDefaults(&rgb, img.get());
  rgb.format = AVIF_RGB_FORMAT_RGBA;
  rgb.depth = 8;
  rgb.ignoreAlpha = image.alpha ? AVIF_FALSE : AVIF_TRUE;
  rgb.pixels = const_cast<std::uint8_t*>(source.pixels.data());  // read only
  rgb.rowBytes = static_cast<std::uint32_t>(image.width) * 4;
  if (const avifResult rc = avifImageRGBToYUV(img.get(), &rgb); rc != AVIF_RESULT_OK) {
    return make_error(ErrorCode::Internal, std::string("AVIF encoder: ") + avifResultToString(rc));
  }

  EncoderPtr enc(avifEncoderCreate());
  if (!enc) return make_error(ErrorCode::Internal, "AVIF encoder: out of memory");
  enc->codecChoice = AVIF_CODEC_CHOICE_AOM;
  enc->maxThreads = options.threads < kMinAomThreads ? kMinAomThreads : options.threads;
  enc->speed = options.speed < AVIF_SPEED_SLOWEST ? AVIF_SPEED_SLOWEST
               : options.speed > AVIF_SPEED_FASTEST ? AVIF_SPEED_FASTEST
                                                    : options.speed;
  const int q = quality < 1 ? 1 : (quality > 100 ? 100 : quality);
  const int quantizer = ((100 - q) * 63 + 50) / 100;
  enc->minQuantizer = enc->maxQuantizer = quantizer;
  const int alpha_quantizer = quantizer / 2;
  enc->minQuantizerAlpha = enc->maxQuantizerAlpha = alpha_quantizer;
  // For the colour planes only (alpha keeps aom's defaults). libavif checks
  // the keys when the encoder starts: a typo fails avifEncoderWrite.
  avifEncoderSetCodecSpecificOption(enc.get(), "color:enable-chroma-deltaq", "1");
  avifEncoderSetCodecSpecificOption(enc.get(), "color:enable-filter-intra", "0");

  RWDataPtr out(new avifRWData{nullptr, 0});
  if (const avifResult rc = avifEncoderWrite(enc.get(), img.get(), out.get()); rc != AVIF_RESULT_OK) {
    return make_error(ErrorCode::Internal, std::string("AVIF encoder: ") + avifResultToString(rc));
  }
  return std::vector<std::uint8_t>(out->data, out->data + out->size);
}

}  // namespace nic::detail
