// Test inputs made in code with the codec libraries themselves (not through
// the engine), decoders for the engine's outputs, and image measures.
// Header-only so the benchmark can reuse the generators.
#pragma once

#include <avif/avif.h>
#include <gif_lib.h>
#include <lcms2.h>
#include <spng.h>
#include <webp/decode.h>
#include <webp/encode.h>
#include <webp/mux.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <jpeglib.h>

#include "image.h"  // the transform engine's pixel buffer (native/transform)

namespace fixture {

using Bytes = std::vector<std::uint8_t>;

// Interleaved 8-bit pixels; channels 1..4.
struct Pixels {
  int w = 0;
  int h = 0;
  int c = 4;
  std::vector<std::uint8_t> p;
  std::uint8_t* at(int x, int y) { return &p[(static_cast<std::size_t>(y) * w + x) * c]; }
  const std::uint8_t* at(int x, int y) const { return &p[(static_cast<std::size_t>(y) * w + x) * c]; }
};

inline Pixels blank(int w, int h, int c) {
  Pixels px;
  px.w = w;
  px.h = h;
  px.c = c;
  px.p.assign(static_cast<std::size_t>(w) * h * c, 0);
  return px;
}

// Deterministic pseudo-random numbers (xorshift).
struct Rng {
  std::uint32_t s = 2463534242u;
  std::uint32_t next() {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    return s;
  }
};

// Photo-like RGB: smooth gradients, soft blobs, fine texture and a few hard
// edges. Deterministic.
inline Pixels photo(int w, int h) {
  Pixels px = blank(w, h, 3);
  Rng rng;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const double u = static_cast<double>(x) / w;
      const double v = static_cast<double>(y) / h;
      double r = 90 + 120 * u + 30 * std::sin(v * 9.0 + u * 3.0);
      double g = 70 + 100 * v + 40 * std::sin(u * 13.0) * std::cos(v * 7.0);
      double b = 150 - 80 * u * v + 35 * std::cos((u + v) * 11.0);
      const double dx = u - 0.62, dy = v - 0.4;
      const double blob = std::exp(-(dx * dx + dy * dy) * 40.0);
      r += 90 * blob;
      g += 40 * blob;
      b -= 60 * blob;
      if (((x / std::max(1, w / 9)) + (y / std::max(1, h / 7))) % 5 == 0 && u > 0.15 && u < 0.35) {
        r *= 0.6;
        g *= 0.6;
        b *= 0.6;
      }
      const double t = (static_cast<int>(rng.next() % 17) - 8) * 0.9;  // grain
      std::uint8_t* p = px.at(x, y);
      p[0] = static_cast<std::uint8_t>(std::clamp(r + t, 0.0, 255.0));
      p[1] = static_cast<std::uint8_t>(std::clamp(g + t, 0.0, 255.0));
      p[2] = static_cast<std::uint8_t>(std::clamp(b + t, 0.0, 255.0));
    }
  }
  return px;
}

// Screenshot-like RGB: flat panels, thin rules, "text" made of small glyph
// blocks, a coloured toolbar.
inline Pixels screenshot(int w, int h) {
  Pixels px = blank(w, h, 3);
  Rng rng;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      std::uint8_t* p = px.at(x, y);
      std::uint8_t r = 250, g = 250, b = 250;
      if (y < h / 16) {
        r = 35; g = 40; b = 48;  // title bar
      } else if (x < w / 6) {
        r = 242; g = 243; b = 245;  // sidebar
      }
      if (y % 120 == 0 || x == w / 6) r = g = b = 220;  // rules
      p[0] = r;
      p[1] = g;
      p[2] = b;
    }
  }
  // Text lines: glyph-sized dark blocks with gaps.
  for (int line = 0; line < h / 24; ++line) {
    const int y0 = h / 16 + 12 + line * 24;
    if (y0 + 12 >= h) break;
    int x = w / 6 + 20 + static_cast<int>(rng.next() % 30);
    const int end = w - 40 - static_cast<int>(rng.next() % (w / 3 + 1));
    while (x < end) {
      const int gw = 5 + static_cast<int>(rng.next() % 4);
      const bool space = rng.next() % 6 == 0;
      for (int yy = 0; yy < 11 && !space; ++yy) {
        for (int xx = 0; xx < gw; ++xx) {
          if ((rng.next() & 3) == 0) continue;  // glyph holes
          std::uint8_t* p = px.at(std::min(x + xx, w - 1), y0 + yy);
          const bool link = line % 7 == 3;
          p[0] = link ? 30 : 40;
          p[1] = link ? 90 : 42;
          p[2] = link ? 200 : 46;
        }
      }
      x += gw + 2;
    }
  }
  return px;
}

// ---- encoders (used to make inputs) ----------------------------------------

struct JpegOptions {
  int quality = 90;
  int orientation = 0;  // 0: no EXIF; 1..8: an APP1 Exif segment with that tag
  bool progressive = false;
  bool cmyk = false;           // input is CMYK (c == 4)
  bool adobe_inverted = true;  // CMYK: write the Adobe marker (values are inverted)
  bool grayscale = false;      // input is gray (c == 1)
  std::vector<std::uint8_t> icc{};  // APP2 ICC_PROFILE (split into parts above 65519 bytes)
};

// The EXIF APP1 payload (after the marker and length): "Exif\0\0" + a
// big-endian TIFF header + IFD0 with only the orientation tag.
inline Bytes exif_app1(int orientation, bool little_endian = false) {
  Bytes b = {'E', 'x', 'i', 'f', 0, 0};
  auto u16 = [&](unsigned v) {
    if (little_endian) {
      b.push_back(static_cast<std::uint8_t>(v & 0xFF));
      b.push_back(static_cast<std::uint8_t>(v >> 8));
    } else {
      b.push_back(static_cast<std::uint8_t>(v >> 8));
      b.push_back(static_cast<std::uint8_t>(v & 0xFF));
    }
  };
  auto u32 = [&](std::uint32_t v) {
    if (little_endian) {
      u16(v & 0xFFFF);
      u16(v >> 16);
    } else {
      u16(v >> 16);
      u16(v & 0xFFFF);
    }
  };
  b.push_back(little_endian ? 'I' : 'M');
  b.push_back(little_endian ? 'I' : 'M');
  u16(42);
  u32(8);           // IFD0 offset
  u16(2);           // entries
  u16(0x010F);      // Make (ASCII, 4 bytes inline) - a tag before the one we want
  u16(2);
  u32(4);
  b.insert(b.end(), {'n', 'i', 'c', 0});
  u16(0x0112);      // Orientation
  u16(3);           // SHORT
  u32(1);
  u16(static_cast<unsigned>(orientation));
  u16(0);
  u32(0);           // next IFD
  return b;
}

struct JpegErr {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
};
inline void jpeg_err_exit(j_common_ptr c) { std::longjmp(reinterpret_cast<JpegErr*>(c->err)->jump, 1); }

inline Bytes encode_jpeg(const Pixels& px, const JpegOptions& o = {}) {
  jpeg_compress_struct cinfo{};
  JpegErr err{};
  unsigned char* out = nullptr;
  unsigned long size = 0;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = jpeg_err_exit;
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&cinfo);
    std::free(out);
    return {};
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, &out, &size);
  cinfo.image_width = static_cast<JDIMENSION>(px.w);
  cinfo.image_height = static_cast<JDIMENSION>(px.h);
  cinfo.input_components = px.c;
  cinfo.in_color_space = o.cmyk ? JCS_CMYK : (px.c == 1 ? JCS_GRAYSCALE : (px.c == 4 ? JCS_EXT_RGBX : JCS_RGB));
  jpeg_set_defaults(&cinfo);
  if (o.cmyk) {
    jpeg_set_colorspace(&cinfo, o.adobe_inverted ? JCS_YCCK : JCS_CMYK);
    cinfo.write_Adobe_marker = o.adobe_inverted ? TRUE : FALSE;
  }
  jpeg_set_quality(&cinfo, o.quality, TRUE);
  if (o.progressive) jpeg_simple_progression(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  if (o.orientation > 0) {
    const Bytes app1 = exif_app1(o.orientation);
    jpeg_write_marker(&cinfo, JPEG_APP0 + 1, app1.data(), static_cast<unsigned>(app1.size()));
  }
  if (!o.icc.empty()) jpeg_write_icc_profile(&cinfo, o.icc.data(), static_cast<unsigned>(o.icc.size()));
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(px.at(0, static_cast<int>(cinfo.next_scanline)));
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  Bytes b(out, out + size);
  std::free(out);
  return b;
}

struct PngOptions {
  int color_type = 2;  // SPNG_COLOR_TYPE_*
  int bit_depth = 8;
  bool interlace = false;
  std::vector<std::uint8_t> palette;  // RGB triples for color type 3
  std::vector<std::uint8_t> trns;     // alpha per palette entry
  int orientation = 0;                // eXIf chunk
  std::vector<std::uint8_t> icc{};    // iCCP chunk
  bool srgb = false;                  // sRGB chunk
  double gamma = 0;                   // gAMA chunk (encoding exponent) when > 0
  std::vector<double> chrm{};         // cHRM chunk: wx wy rx ry gx gy bx by
};

// `raw` is the image data in PNG's own layout for the colour type and depth
// (16-bit samples big-endian), rows packed.
inline Bytes encode_png_raw(int w, int h, const std::vector<std::uint8_t>& raw, const PngOptions& o) {
  spng_ctx* ctx = spng_ctx_new(SPNG_CTX_ENCODER);
  spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
  spng_ihdr ihdr{};
  ihdr.width = static_cast<std::uint32_t>(w);
  ihdr.height = static_cast<std::uint32_t>(h);
  ihdr.bit_depth = static_cast<std::uint8_t>(o.bit_depth);
  ihdr.color_type = static_cast<std::uint8_t>(o.color_type);
  ihdr.interlace_method = o.interlace ? 1 : 0;
  spng_set_ihdr(ctx, &ihdr);
  if (o.color_type == SPNG_COLOR_TYPE_INDEXED) {
    spng_plte plte{};
    plte.n_entries = static_cast<std::uint32_t>(o.palette.size() / 3);
    for (std::uint32_t i = 0; i < plte.n_entries; ++i) {
      plte.entries[i].red = o.palette[i * 3];
      plte.entries[i].green = o.palette[i * 3 + 1];
      plte.entries[i].blue = o.palette[i * 3 + 2];
    }
    spng_set_plte(ctx, &plte);
    if (!o.trns.empty()) {
      spng_trns trns{};
      trns.n_type3_entries = static_cast<std::uint32_t>(o.trns.size());
      for (std::size_t i = 0; i < o.trns.size(); ++i) trns.type3_alpha[i] = o.trns[i];
      spng_set_trns(ctx, &trns);
    }
  }
  spng_iccp iccp{};
  if (!o.icc.empty()) {
    std::strcpy(iccp.profile_name, "test");
    iccp.profile_len = o.icc.size();
    iccp.profile = reinterpret_cast<char*>(const_cast<std::uint8_t*>(o.icc.data()));
    spng_set_iccp(ctx, &iccp);
  }
  if (o.srgb) spng_set_srgb(ctx, 0);
  if (o.gamma > 0) spng_set_gama(ctx, o.gamma);
  if (o.chrm.size() == 8) {
    spng_chrm c{o.chrm[0], o.chrm[1], o.chrm[2], o.chrm[3], o.chrm[4], o.chrm[5], o.chrm[6], o.chrm[7]};
    spng_set_chrm(ctx, &c);
  }
  Bytes exif;
  if (o.orientation > 0) {
    exif = exif_app1(o.orientation, true);
    spng_exif e{};
    e.length = exif.size() - 6;  // the chunk holds the TIFF data only
    e.data = reinterpret_cast<char*>(exif.data() + 6);
    spng_set_exif(ctx, &e);
  }
  const int rc = spng_encode_image(ctx, raw.data(), raw.size(), SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
  Bytes b;
  if (rc == 0) {
    std::size_t len = 0;
    int err = 0;
    void* buf = spng_get_png_buffer(ctx, &len, &err);
    if (buf) {
      b.assign(static_cast<std::uint8_t*>(buf), static_cast<std::uint8_t*>(buf) + len);
      std::free(buf);
    }
  }
  spng_ctx_free(ctx);
  return b;
}

// 8-bit RGB (c=3), RGBA (c=4), gray (c=1) or gray+alpha (c=2).
inline Bytes encode_png(const Pixels& px, PngOptions o = {}) {
  static constexpr int kType[5] = {0, SPNG_COLOR_TYPE_GRAYSCALE, SPNG_COLOR_TYPE_GRAYSCALE_ALPHA,
                                   SPNG_COLOR_TYPE_TRUECOLOR, SPNG_COLOR_TYPE_TRUECOLOR_ALPHA};
  o.color_type = kType[px.c];
  o.bit_depth = 8;
  return encode_png_raw(px.w, px.h, px.p, o);
}

// 16-bit RGB(A) from 8-bit values: v in the high byte, noise in the low byte.
inline Bytes encode_png16(const Pixels& px) {
  std::vector<std::uint8_t> raw;
  raw.reserve(px.p.size() * 2);
  for (std::uint8_t v : px.p) {
    // SPNG_FMT_PNG takes 16-bit samples in host byte order.
    const auto sample = static_cast<std::uint16_t>((v << 8) | (v ^ 0x5A));
    std::uint8_t two[2];
    std::memcpy(two, &sample, 2);
    raw.push_back(two[0]);
    raw.push_back(two[1]);
  }
  PngOptions o;
  o.color_type = px.c == 4 ? SPNG_COLOR_TYPE_TRUECOLOR_ALPHA : SPNG_COLOR_TYPE_TRUECOLOR;
  o.bit_depth = 16;
  return encode_png_raw(px.w, px.h, raw, o);
}

inline Bytes encode_webp_rgba(const Pixels& px, bool lossless = false) {
  std::uint8_t* out = nullptr;
  std::size_t size = 0;
  if (px.c == 4) {
    size = lossless ? WebPEncodeLosslessRGBA(px.p.data(), px.w, px.h, px.w * 4, &out)
                    : WebPEncodeRGBA(px.p.data(), px.w, px.h, px.w * 4, 92, &out);
  } else {
    size = lossless ? WebPEncodeLosslessRGB(px.p.data(), px.w, px.h, px.w * 3, &out)
                    : WebPEncodeRGB(px.p.data(), px.w, px.h, px.w * 3, 92, &out);
  }
  Bytes b(out, out + size);
  WebPFree(out);
  return b;
}

// Puts an ICCP chunk into a WebP (the container becomes VP8X).
inline Bytes webp_with_icc(const Bytes& webp, const Bytes& icc) {
  WebPMux* mux = WebPMuxNew();
  const WebPData image{webp.data(), webp.size()};
  const WebPData profile{icc.data(), icc.size()};
  WebPData out;
  WebPDataInit(&out);
  Bytes b;
  if (WebPMuxSetImage(mux, &image, 1) == WEBP_MUX_OK && WebPMuxSetChunk(mux, "ICCP", &profile, 1) == WEBP_MUX_OK &&
      WebPMuxAssemble(mux, &out) == WEBP_MUX_OK) {
    b.assign(out.bytes, out.bytes + out.size);
  }
  WebPDataClear(&out);
  WebPMuxDelete(mux);
  return b;
}

// How an AVIF states its colours: an ICC profile, or nclx code points.
struct AvifColour {
  Bytes icc;
  int primaries = 1;  // BT.709
  int transfer = 13;  // sRGB
};

// irot_angle: anti-clockwise quarter turns (-1: no irot box); imir_mode: 0 =
// top-bottom, 1 = left-right (-1: no imir box).
inline Bytes encode_avif_rgb(const Pixels& px, int quantizer = 10, int irot_angle = -1, int imir_mode = -1,
                             const AvifColour& colour = {}) {
  avifImage* img = avifImageCreate(static_cast<std::uint32_t>(px.w), static_cast<std::uint32_t>(px.h), 8,
                                   AVIF_PIXEL_FORMAT_YUV444);
  img->colorPrimaries = static_cast<avifColorPrimaries>(colour.primaries);
  img->transferCharacteristics = static_cast<avifTransferCharacteristics>(colour.transfer);
  if (!colour.icc.empty()) avifImageSetProfileICC(img, colour.icc.data(), colour.icc.size());
  if (irot_angle >= 0) {
    img->transformFlags |= AVIF_TRANSFORM_IROT;
    img->irot.angle = static_cast<std::uint8_t>(irot_angle);
  }
  if (imir_mode >= 0) {
    img->transformFlags |= AVIF_TRANSFORM_IMIR;
    img->imir.mode = static_cast<std::uint8_t>(imir_mode);
  }
  avifRGBImage rgb;
  avifRGBImageSetDefaults(&rgb, img);
  rgb.format = px.c == 4 ? AVIF_RGB_FORMAT_RGBA : AVIF_RGB_FORMAT_RGB;
  rgb.depth = 8;
  rgb.pixels = const_cast<std::uint8_t*>(px.p.data());
  rgb.rowBytes = static_cast<std::uint32_t>(px.w * px.c);
  Bytes b;
  if (avifImageRGBToYUV(img, &rgb) == AVIF_RESULT_OK) {
    avifEncoder* enc = avifEncoderCreate();
    enc->speed = 10;
    enc->minQuantizer = enc->maxQuantizer = quantizer;
    enc->minQuantizerAlpha = enc->maxQuantizerAlpha = 0;
    avifRWData out = AVIF_DATA_EMPTY;
    if (avifEncoderWrite(enc, img, &out) == AVIF_RESULT_OK) b.assign(out.data, out.data + out.size);
    avifRWDataFree(&out);
    avifEncoderDestroy(enc);
  }
  avifImageDestroy(img);
  return b;
}

// An animated WebP: `frames` frames of w x h, frame f a flat colour from `rgb`.
inline Bytes encode_animated_webp(int w, int h, const std::vector<std::array<std::uint8_t, 3>>& rgb) {
  WebPAnimEncoderOptions opts;
  WebPAnimEncoderOptionsInit(&opts);
  WebPAnimEncoder* enc = WebPAnimEncoderNew(w, h, &opts);
  WebPConfig config;
  WebPConfigInit(&config);
  config.quality = 90;
  int timestamp = 0;
  for (const auto& c : rgb) {
    WebPPicture pic;
    WebPPictureInit(&pic);
    pic.width = w;
    pic.height = h;
    pic.use_argb = 1;
    WebPPictureAlloc(&pic);
    for (int i = 0; i < w * h; ++i) {
      pic.argb[i] = 0xFF000000u | (static_cast<std::uint32_t>(c[0]) << 16) | (static_cast<std::uint32_t>(c[1]) << 8) | c[2];
    }
    WebPAnimEncoderAdd(enc, &pic, timestamp, &config);
    WebPPictureFree(&pic);
    timestamp += 100;
  }
  WebPAnimEncoderAdd(enc, nullptr, timestamp, nullptr);
  WebPData data;
  WebPDataInit(&data);
  WebPAnimEncoderAssemble(enc, &data);
  Bytes b(data.bytes, data.bytes + data.size);
  WebPDataClear(&data);
  WebPAnimEncoderDelete(enc);
  return b;
}

// A GIF with `frames` frames of w x h; frame f is filled with palette colour
// f+1 (or, with `pattern`, diagonal stripes of colours 1..3), except a
// transparent (index 0) band of the left quarter when `transparent`.
inline Bytes encode_gif(int w, int h, int frames, bool transparent,
                        const std::vector<GifColorType>& colours, bool pattern = false) {
  struct Writer {
    Bytes out;
  } writer;
  auto write = [](GifFileType* g, const GifByteType* data, int n) -> int {
    auto* wr = static_cast<Writer*>(g->UserData);
    wr->out.insert(wr->out.end(), data, data + n);
    return n;
  };
  int err = 0;
  GifFileType* gif = EGifOpen(&writer, write, &err);
  if (!gif) return {};
  ColorMapObject* map = GifMakeMapObject(8, nullptr);
  for (int i = 0; i < 8; ++i) {
    map->Colors[i] = i < static_cast<int>(colours.size()) ? colours[static_cast<std::size_t>(i)]
                                                           : GifColorType{0, 0, 0};
  }
  EGifSetGifVersion(gif, true);
  EGifPutScreenDesc(gif, w, h, 8, 0, map);
  if (frames > 1) {
    // NETSCAPE2.0 looping extension.
    const GifByteType app[] = {'N', 'E', 'T', 'S', 'C', 'A', 'P', 'E', '2', '.', '0'};
    const GifByteType loop[] = {1, 0, 0};
    EGifPutExtensionLeader(gif, APPLICATION_EXT_FUNC_CODE);
    EGifPutExtensionBlock(gif, sizeof app, app);
    EGifPutExtensionBlock(gif, sizeof loop, loop);
    EGifPutExtensionTrailer(gif);
  }
  std::vector<GifPixelType> line(static_cast<std::size_t>(w));
  for (int f = 0; f < frames; ++f) {
    GraphicsControlBlock gcb{};
    gcb.DisposalMode = DISPOSE_BACKGROUND;
    gcb.DelayTime = 10;
    gcb.TransparentColor = transparent ? 0 : NO_TRANSPARENT_COLOR;
    GifByteType ext[4];
    const std::size_t len = EGifGCBToExtension(&gcb, ext);
    EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, static_cast<int>(len), ext);
    EGifPutImageDesc(gif, 0, 0, w, h, false, nullptr);
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        line[static_cast<std::size_t>(x)] =
            static_cast<GifPixelType>((transparent && x < w / 4) ? 0
                                      : pattern                   ? ((x / 3 + y / 2 + f) % 3) + 1
                                                                  : (f % 7) + 1);
      }
      EGifPutLine(gif, line.data(), w);
    }
  }
  GifFreeMapObject(map);
  EGifCloseFile(gif, &err);
  return writer.out;
}

// ---- colour profiles (made with Little CMS, as ICC bytes) --------------------

inline Bytes save_profile(cmsHPROFILE p) {
  Bytes b;
  cmsUInt32Number size = 0;
  if (p != nullptr && cmsSaveProfileToMem(p, nullptr, &size) && size > 0) {
    b.resize(size);
    if (!cmsSaveProfileToMem(p, b.data(), &size)) b.clear();
  }
  if (p != nullptr) cmsCloseProfile(p);
  return b;
}

// An RGB matrix-shaper profile: white and primaries as xy, one curve for all.
// `padding` adds a private tag of that many bytes (a profile that needs
// several JPEG APP2 parts).
inline cmsHPROFILE rgb_profile(const double (&xy)[8], cmsToneCurve* curve, std::size_t padding = 0) {
  const cmsCIExyY white{xy[0], xy[1], 1.0};
  const cmsCIExyYTRIPLE primaries{{xy[2], xy[3], 1.0}, {xy[4], xy[5], 1.0}, {xy[6], xy[7], 1.0}};
  cmsToneCurve* curves[3] = {curve, curve, curve};
  cmsHPROFILE p = cmsCreateRGBProfile(&white, &primaries, curves);
  if (padding > 0) {
    // A long characterisation-target text ('targ'): a profile of any size.
    cmsMLU* text = cmsMLUalloc(nullptr, 1);
    const std::string filler(padding, 'x');
    cmsMLUsetASCII(text, "en", "US", filler.c_str());
    cmsWriteTag(p, cmsSigCharTargetTag, text);
    cmsMLUfree(text);
  }
  cmsFreeToneCurve(curve);
  return p;
}

inline cmsToneCurve* srgb_tone_curve() {
  const cmsFloat64Number params[5] = {2.4, 1.0 / 1.055, 0.055 / 1.055, 1.0 / 12.92, 0.04045};
  return cmsBuildParametricToneCurve(nullptr, 4, params);
}

// Display P3: DCI-P3 primaries, D65, the sRGB curve (what iPhones tag).
inline Bytes display_p3_icc(std::size_t padding = 0) {
  static constexpr double kXy[8] = {0.3127, 0.3290, 0.680, 0.320, 0.265, 0.690, 0.150, 0.060};
  return save_profile(rgb_profile(kXy, srgb_tone_curve(), padding));
}

// Adobe RGB (1998): its primaries, D65, gamma 563/256.
inline Bytes adobe_rgb_icc() {
  static constexpr double kXy[8] = {0.3127, 0.3290, 0.640, 0.330, 0.210, 0.710, 0.150, 0.060};
  return save_profile(rgb_profile(kXy, cmsBuildGamma(nullptr, 563.0 / 256.0)));
}

inline Bytes srgb_icc() { return save_profile(cmsCreate_sRGBProfile()); }

// A grey profile with a plain gamma curve (1.0 = linear light).
inline Bytes gray_icc(double gamma) {
  const cmsCIExyY d65{0.3127, 0.3290, 1.0};
  cmsToneCurve* curve = cmsBuildGamma(nullptr, gamma);
  cmsHPROFILE p = cmsCreateGrayProfile(&d65, curve);
  cmsFreeToneCurve(curve);
  return save_profile(p);
}

// A CMYK output profile (CMYK -> Lab table only) whose inks are NOT the naive
// 255 - x: colours come out warmer and darker than the usual formula, so a
// result can tell the two apart.
inline Bytes cmyk_icc() {
  cmsHPROFILE srgb = cmsCreate_sRGBProfile();
  cmsHPROFILE lab = cmsCreateLab4Profile(nullptr);
  cmsHTRANSFORM to_lab = cmsCreateTransform(srgb, TYPE_RGB_DBL, lab, TYPE_Lab_DBL, INTENT_RELATIVE_COLORIMETRIC, 0);
  cmsHPROFILE p = cmsCreateProfilePlaceholder(nullptr);
  cmsSetProfileVersion(p, 4.3);
  cmsSetDeviceClass(p, cmsSigOutputClass);
  cmsSetColorSpace(p, cmsSigCmykData);
  cmsSetPCS(p, cmsSigLabData);
  cmsPipeline* lut = cmsPipelineAlloc(nullptr, 4, 3);
  cmsStage* clut = cmsStageAllocCLut16bit(nullptr, 9, 4, 3, nullptr);
  auto sampler = [](const cmsUInt16Number in[], cmsUInt16Number out[], void* cargo) -> cmsInt32Number {
    double rgb[3];
    const double k = 1.0 - in[3] / 65535.0;
    for (int i = 0; i < 3; ++i) rgb[i] = std::pow((1.0 - in[i] / 65535.0) * k, 1.4);
    rgb[0] = std::min(1.0, rgb[0] * 1.05);
    rgb[2] *= 0.85;
    cmsCIELab l;
    cmsDoTransform(static_cast<cmsHTRANSFORM>(cargo), rgb, &l, 1);
    cmsFloat2LabEncoded(out, &l);
    return TRUE;
  };
  cmsStageSampleCLut16bit(clut, sampler, to_lab, 0);
  // lutAToBType wants A curves, CLUT, B curves: identity curves around it.
  cmsPipelineInsertStage(lut, cmsAT_END, cmsStageAllocToneCurves(nullptr, 4, nullptr));
  cmsPipelineInsertStage(lut, cmsAT_END, clut);
  cmsPipelineInsertStage(lut, cmsAT_END, cmsStageAllocToneCurves(nullptr, 3, nullptr));
  cmsWriteTag(p, cmsSigAToB0Tag, lut);
  cmsWriteTag(p, cmsSigMediaWhitePointTag, cmsD50_XYZ());
  cmsPipelineFree(lut);
  cmsDeleteTransform(to_lab);
  cmsCloseProfile(lab);
  cmsCloseProfile(srgb);
  return save_profile(p);
}

// Little CMS's own conversion of 4-byte pixels to sRGB (RGBA out, alpha
// copied), the reference the engine is held to. `in_format` is a TYPE_*.
inline Pixels lcms_to_srgb(const Pixels& src, const Bytes& icc, cmsUInt32Number in_format) {
  cmsHPROFILE in = cmsOpenProfileFromMem(icc.data(), static_cast<cmsUInt32Number>(icc.size()));
  cmsHPROFILE out = cmsCreate_sRGBProfile();
  const cmsUInt32Number intent =
      cmsIsIntentSupported(in, INTENT_PERCEPTUAL, LCMS_USED_AS_INPUT) ? INTENT_PERCEPTUAL : INTENT_RELATIVE_COLORIMETRIC;
  cmsHTRANSFORM t = cmsCreateTransform(in, in_format, out, TYPE_RGBA_8, intent, 0);
  Pixels dst = blank(src.w, src.h, 4);
  for (std::size_t i = 0; i < dst.p.size(); i += 4) dst.p[i + 3] = src.c == 4 ? src.p[i + 3] : 255;
  cmsDoTransform(t, src.p.data(), dst.p.data(), static_cast<cmsUInt32Number>(src.w * src.h));
  cmsDeleteTransform(t);
  cmsCloseProfile(in);
  cmsCloseProfile(out);
  return dst;
}

// ---- decoders (to check outputs) -------------------------------------------

// Decodes JPEG, PNG, WebP or AVIF to RGBA (c = 4). Empty on failure.
inline Pixels decode(const Bytes& b) {
  Pixels px;
  if (b.size() > 3 && b[0] == 0xFF && b[1] == 0xD8) {
    jpeg_decompress_struct cinfo{};
    JpegErr err{};
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = jpeg_err_exit;
    if (setjmp(err.jump)) {
      jpeg_destroy_decompress(&cinfo);
      return {};
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, b.data(), static_cast<unsigned long>(b.size()));
    jpeg_read_header(&cinfo, TRUE);
    cinfo.out_color_space = JCS_EXT_RGBA;
    jpeg_start_decompress(&cinfo);
    px = blank(static_cast<int>(cinfo.output_width), static_cast<int>(cinfo.output_height), 4);
    while (cinfo.output_scanline < cinfo.output_height) {
      JSAMPROW row = px.at(0, static_cast<int>(cinfo.output_scanline));
      jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return px;
  }
  if (b.size() > 8 && b[0] == 0x89 && b[1] == 'P') {
    spng_ctx* ctx = spng_ctx_new(0);
    spng_set_png_buffer(ctx, b.data(), b.size());
    spng_ihdr ihdr{};
    std::size_t len = 0;
    if (spng_get_ihdr(ctx, &ihdr) == 0 && spng_decoded_image_size(ctx, SPNG_FMT_RGBA8, &len) == 0) {
      px = blank(static_cast<int>(ihdr.width), static_cast<int>(ihdr.height), 4);
      if (spng_decode_image(ctx, px.p.data(), len, SPNG_FMT_RGBA8, SPNG_DECODE_TRNS) != 0) px = {};
    }
    spng_ctx_free(ctx);
    return px;
  }
  if (b.size() > 12 && std::memcmp(b.data(), "RIFF", 4) == 0) {
    int w = 0, h = 0;
    std::uint8_t* out = WebPDecodeRGBA(b.data(), b.size(), &w, &h);
    if (out) {
      px = blank(w, h, 4);
      std::memcpy(px.p.data(), out, px.p.size());
      WebPFree(out);
    }
    return px;
  }
  if (b.size() > 12 && std::memcmp(b.data() + 4, "ftyp", 4) == 0) {
    avifDecoder* dec = avifDecoderCreate();
    avifImage* img = avifImageCreateEmpty();
    if (avifDecoderReadMemory(dec, img, b.data(), b.size()) == AVIF_RESULT_OK) {
      px = blank(static_cast<int>(img->width), static_cast<int>(img->height), 4);
      avifRGBImage rgb;
      avifRGBImageSetDefaults(&rgb, img);
      rgb.format = AVIF_RGB_FORMAT_RGBA;
      rgb.depth = 8;
      rgb.pixels = px.p.data();
      rgb.rowBytes = static_cast<std::uint32_t>(px.w * 4);
      if (avifImageYUVToRGB(img, &rgb) != AVIF_RESULT_OK) px = {};
    }
    avifImageDestroy(img);
    avifDecoderDestroy(dec);
    return px;
  }
  return px;
}

// Does the container carry EXIF (or XMP) metadata?
inline bool has_metadata(const Bytes& b) {
  const std::string s(b.begin(), b.end());
  return s.find("Exif") != std::string::npos || s.find("eXIf") != std::string::npos ||
         s.find("EXIF") != std::string::npos || s.find("<x:xmpmeta") != std::string::npos;
}

// ---- measures --------------------------------------------------------------

// Area-average (box) downscale of RGB(A) channels of `src` region to w x h,
// in premultiplied alpha. Returns c = 4.
inline Pixels area_resize(const Pixels& src, double x0, double y0, double cw, double ch, int w, int h) {
  Pixels out = blank(w, h, 4);
  const double sx = cw / w;
  const double sy = ch / h;
  for (int oy = 0; oy < h; ++oy) {
    const double fy0 = y0 + oy * sy, fy1 = fy0 + sy;
    for (int ox = 0; ox < w; ++ox) {
      const double fx0 = x0 + ox * sx, fx1 = fx0 + sx;
      double acc[4] = {0, 0, 0, 0};
      double area = 0;
      for (int y = static_cast<int>(fy0); y < static_cast<int>(std::ceil(fy1)) && y < src.h; ++y) {
        const double wy = std::min(fy1, y + 1.0) - std::max(fy0, static_cast<double>(y));
        for (int x = static_cast<int>(fx0); x < static_cast<int>(std::ceil(fx1)) && x < src.w; ++x) {
          const double wx = std::min(fx1, x + 1.0) - std::max(fx0, static_cast<double>(x));
          const double wgt = wx * wy;
          const std::uint8_t* p = src.at(x, y);
          const double a = (src.c == 4 ? p[3] : (src.c == 2 ? p[1] : 255)) / 255.0;
          const int nc = src.c >= 3 ? 3 : 1;
          for (int c = 0; c < 3; ++c) acc[c] += wgt * a * p[nc == 3 ? c : 0];
          acc[3] += wgt * a;
          area += wgt;
        }
      }
      std::uint8_t* q = out.at(ox, oy);
      const double alpha = acc[3] / area;
      for (int c = 0; c < 3; ++c) {
        const double v = alpha > 0 ? acc[c] / area / alpha : 0.0;
        q[c] = static_cast<std::uint8_t>(std::min(255.0, std::max(0.0, v) + 0.5));
      }
      q[3] = static_cast<std::uint8_t>(std::min(255.0, alpha * 255.0 + 0.5));
    }
  }
  return out;
}

// PSNR over the premultiplied RGB of two RGBA images of the same size: what
// is seen, so the colour of nearly clear pixels weighs as little as it shows.
// For opaque images this is plain RGB PSNR.
inline double psnr(const Pixels& a, const Pixels& b) {
  if (a.w != b.w || a.h != b.h || a.c != 4 || b.c != 4) return 0;
  double se = 0;
  std::size_t n = 0;
  for (int y = 0; y < a.h; ++y) {
    for (int x = 0; x < a.w; ++x) {
      const std::uint8_t* p = a.at(x, y);
      const std::uint8_t* q = b.at(x, y);
      for (int c = 0; c < 3; ++c) {
        const double d = p[c] * (p[3] / 255.0) - q[c] * (q[3] / 255.0);
        se += d * d;
      }
      n += 3;
    }
  }
  if (n == 0) return 0;
  if (se == 0) return 99;
  return 10 * std::log10(255.0 * 255.0 / (se / static_cast<double>(n)));
}

// Reference resampler: separable Lanczos3 in doubles on premultiplied RGBA
// (src has c = 4), taps outside the image dropped and the rest renormalised.
inline double lanczos3(double x) {
  if (x == 0) return 1;
  if (std::abs(x) >= 3) return 0;
  const double pi = 3.14159265358979323846;
  return 3 * std::sin(pi * x) * std::sin(pi * x / 3) / (pi * pi * x * x);
}

inline Pixels lanczos_reference(const Pixels& src, double x0, double y0, double cw, double ch, int w, int h) {
  auto weights = [](int in, double off, double len, int out, int i, int& lo) {
    const double s = len / out, f = std::max(1.0, s), centre = off + (i + 0.5) * s - 0.5;
    lo = std::max(0, static_cast<int>(std::ceil(centre - 3 * f)));
    const int hi = std::min(in - 1, static_cast<int>(std::floor(centre + 3 * f)));
    std::vector<double> wt;
    double sum = 0;
    for (int j = lo; j <= hi; ++j) {
      wt.push_back(lanczos3((j - centre) / f));
      sum += wt.back();
    }
    for (double& v : wt) v /= sum;
    return wt;
  };
  std::vector<double> tmp(static_cast<std::size_t>(w) * src.h * 4);
  for (int y = 0; y < src.h; ++y) {
    for (int i = 0; i < w; ++i) {
      int lo = 0;
      const auto wt = weights(src.w, x0, cw, w, i, lo);
      for (std::size_t k = 0; k < wt.size(); ++k) {
        const std::uint8_t* p = src.at(lo + static_cast<int>(k), y);
        const double a = p[3] / 255.0;
        for (int c = 0; c < 3; ++c) tmp[(static_cast<std::size_t>(y) * w + i) * 4 + c] += wt[k] * p[c] * a;
        tmp[(static_cast<std::size_t>(y) * w + i) * 4 + 3] += wt[k] * p[3];
      }
    }
  }
  Pixels out = fixture::blank(w, h, 4);
  for (int j = 0; j < h; ++j) {
    int lo = 0;
    const auto wt = weights(src.h, y0, ch, h, j, lo);
    for (int i = 0; i < w; ++i) {
      double acc[4] = {0, 0, 0, 0};
      for (std::size_t k = 0; k < wt.size(); ++k) {
        for (int c = 0; c < 4; ++c) acc[c] += wt[k] * tmp[(static_cast<std::size_t>(lo + static_cast<int>(k)) * w + i) * 4 + c];
      }
      const double a = std::clamp(acc[3], 0.0, 255.0);
      std::uint8_t* q = out.at(i, j);
      for (int c = 0; c < 3; ++c) {
        const double v = a > 0 ? acc[c] / (a / 255.0) : 0;
        q[c] = static_cast<std::uint8_t>(std::min(255.0, std::max(0.0, v) + 0.5));
      }
      q[3] = static_cast<std::uint8_t>(std::min(255.0, a + 0.5));
    }
  }
  return out;
}

// Converts any channel count to RGBA.
inline Pixels to_rgba(const Pixels& src) {
  if (src.c == 4) return src;
  Pixels out = blank(src.w, src.h, 4);
  for (int y = 0; y < src.h; ++y) {
    for (int x = 0; x < src.w; ++x) {
      const std::uint8_t* p = src.at(x, y);
      std::uint8_t* q = out.at(x, y);
      if (src.c >= 3) {
        q[0] = p[0];
        q[1] = p[1];
        q[2] = p[2];
      } else {
        q[0] = q[1] = q[2] = p[0];
      }
      q[3] = src.c == 2 ? p[1] : 255;
    }
  }
  return out;
}

// An RGBA fixture as the engine's Image (alpha when any pixel is not opaque).
inline nic::detail::Image to_image(const Pixels& rgba) {
  nic::detail::Image img;
  img.width = rgba.w;
  img.height = rgba.h;
  img.pixels = rgba.p;
  img.alpha = false;
  for (std::size_t i = 3; i < img.pixels.size(); i += 4) img.alpha = img.alpha || img.pixels[i] != 255;
  return img;
}

}  // namespace fixture
