// WebP through libwebp (still images; the first frame of an animation via
// libwebpdemux). Encodes lossy, method 4, alpha kept.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include <webp/decode.h>
#include <webp/demux.h>
#include <webp/encode.h>

#include "image.h"

namespace nic::detail {
namespace {

struct DemuxDeleter {
  void operator()(WebPDemuxer* d) const { WebPDemuxDelete(d); }
};
using DemuxPtr = std::unique_ptr<WebPDemuxer, DemuxDeleter>;

struct AnimDecoderDeleter {
  void operator()(WebPAnimDecoder* d) const { WebPAnimDecoderDelete(d); }
};
using AnimDecoderPtr = std::unique_ptr<WebPAnimDecoder, AnimDecoderDeleter>;

struct PictureDeleter {
  void operator()(WebPPicture* p) const {
    WebPPictureFree(p);
    delete p;
  }
};
using PicturePtr = std::unique_ptr<WebPPicture, PictureDeleter>;

struct WriterDeleter {
  void operator()(WebPMemoryWriter* w) const {
    WebPMemoryWriterClear(w);
    delete w;
  }
};
using WriterPtr = std::unique_ptr<WebPMemoryWriter, WriterDeleter>;

WebPData as_webp_data(Bytes data) { return WebPData{data.data(), data.size()}; }

// EXIF orientation and the ICC profile (ICCP chunk) of the container.
void read_metadata(Bytes data, Header& h) {
  const WebPData wd = as_webp_data(data);
  DemuxPtr demux(WebPDemux(&wd));
  if (!demux) return;
  WebPChunkIterator it;
  if (WebPDemuxGetChunk(demux.get(), "EXIF", 1, &it)) {
    h.orientation = exif_orientation(Bytes(it.chunk.bytes, it.chunk.size));
    WebPDemuxReleaseChunkIterator(&it);
  }
  if ((WebPDemuxGetI(demux.get(), WEBP_FF_FORMAT_FLAGS) & ICCP_FLAG) != 0 &&
      WebPDemuxGetChunk(demux.get(), "ICCP", 1, &it)) {
    if (it.chunk.size <= kMaxIccBytes) {
      h.colour.kind = ColourTag::Kind::Icc;
      h.colour.icc.assign(it.chunk.bytes, it.chunk.bytes + it.chunk.size);
    }
    WebPDemuxReleaseChunkIterator(&it);
  }
}

}  // namespace

Result<Header> probe_webp(Bytes data) {
  WebPBitstreamFeatures f;
  const VP8StatusCode rc = WebPGetFeatures(data.data(), data.size(), &f);
  if (rc != VP8_STATUS_OK) return corrupt("WebP: unreadable header");
  Header h;
  h.format = ImageFormat::Webp;
  h.width = f.width;
  h.height = f.height;
  h.alpha = f.has_alpha != 0;
  h.animated = f.has_animation != 0;
  read_metadata(data, h);
  return h;
}

Status decode_webp(Bytes data, const DecodeHints& hints, RowSink& sink) {
  WebPBitstreamFeatures f;
  if (WebPGetFeatures(data.data(), data.size(), &f) != VP8_STATUS_OK) {
    return corrupt("WebP: unreadable header");
  }
  const auto bytes = rgba_bytes(static_cast<std::uint64_t>(f.width), static_cast<std::uint64_t>(f.height));
  if (!bytes) return make_error(ErrorCode::TooManyPixels, "WebP dimensions out of range");
  const std::size_t stride = static_cast<std::size_t>(f.width) * 4;

  if (f.has_animation) {
    // The first frame, composed onto the canvas.
    const WebPData wd = as_webp_data(data);
    WebPAnimDecoderOptions opts;
    if (!WebPAnimDecoderOptionsInit(&opts)) return make_error(ErrorCode::Internal, "WebP: version mismatch");
    opts.color_mode = MODE_RGBA;
    opts.use_threads = 0;
    AnimDecoderPtr dec(WebPAnimDecoderNew(&wd, &opts));
    if (!dec) return corrupt("WebP: unreadable animation");
    WebPAnimInfo info;
    if (!WebPAnimDecoderGetInfo(dec.get(), &info)) return corrupt("WebP: unreadable animation");
    if (static_cast<int>(info.canvas_width) != f.width || static_cast<int>(info.canvas_height) != f.height) {
      return corrupt("WebP: inconsistent canvas size");
    }
    std::uint8_t* frame = nullptr;
    int timestamp = 0;
    if (!WebPAnimDecoderGetNext(dec.get(), &frame, &timestamp) || frame == nullptr) {
      return corrupt("WebP: unreadable first frame");
    }
    if (auto s = sink.begin(f.width, f.height, true); !s) return s;
    for (int y = 0; y < f.height; ++y) {
      if (!sink.row(frame + stride * static_cast<std::size_t>(y))) break;
    }
    return Ok{};
  }

  // Scaled on load like a JPEG's DCT scaling (same sizes, rounded up):
  // libwebp's rescaler averages areas while it decodes, so a 4096x4096
  // source going to 800 wide is never held at full size.
  const int scale = hints.scale_num < 1 || hints.scale_num > 8 ? 8 : hints.scale_num;
  const int w = static_cast<int>((static_cast<std::int64_t>(f.width) * scale + 7) / 8);
  const int h = static_cast<int>((static_cast<std::int64_t>(f.height) * scale + 7) / 8);
  const std::size_t out_stride = static_cast<std::size_t>(w) * 4;
  std::vector<std::uint8_t> pixels(out_stride * static_cast<std::size_t>(h));
  WebPDecoderConfig config;
  if (!WebPInitDecoderConfig(&config)) return make_error(ErrorCode::Internal, "WebP: version mismatch");
  config.options.use_threads = 0;
  if (scale != 8) {
    config.options.use_scaling = 1;
    config.options.scaled_width = w;
    config.options.scaled_height = h;
  }
  config.output.colorspace = MODE_RGBA;
  config.output.is_external_memory = 1;
  config.output.u.RGBA.rgba = pixels.data();
  config.output.u.RGBA.stride = static_cast<int>(out_stride);
  config.output.u.RGBA.size = pixels.size();
  const VP8StatusCode rc = WebPDecode(data.data(), data.size(), &config);
  WebPFreeDecBuffer(&config.output);  // external memory: frees nothing of ours
  if (rc != VP8_STATUS_OK) return corrupt("WebP: unreadable image data");
  if (auto s = sink.begin(w, h, f.has_alpha != 0); !s) return s;
  for (int y = 0; y < h; ++y) {
    if (!sink.row(pixels.data() + out_stride * static_cast<std::size_t>(y))) break;
  }
  return Ok{};
}

// Settings measured against Sharp 0.33.5 (libwebp 1.3, effort 4, its
// defaults) on bench/transform's photo and screenshot at q80, 800 wide:
// - photos: spatial noise shaping off (it moves bits by a perceptual model,
//   which costs PSNR at equal bytes) and a softer deblocking filter
//   (filter_sharpness 2): 5354 B / 43.17 dB -> 5338 B / 43.50 dB (Sharp
//   5386 B / 43.49 dB), same time.
// - flat content: SNS 45 instead of 50 and the quality 0.2 lower, which moves
//   the image across one quantizer step: 104012 B / 34.56 dB -> 103246 B /
//   34.50 dB (Sharp 103982 B / 34.47 dB).
// Both margins are small and were fitted on these two images.
Result<std::vector<std::uint8_t>> encode_webp(const Image& image, int quality, bool flat) {
  WebPConfig config;
  if (!WebPConfigInit(&config)) return make_error(ErrorCode::Internal, "WebP: version mismatch");
  config.quality = static_cast<float>(quality);
  if (flat) {
    config.sns_strength = 45;
    config.quality = std::max(0.0f, config.quality - 0.2f);
  } else {
    config.sns_strength = 0;
    config.filter_sharpness = 2;
  }
  config.method = 4;
  config.alpha_quality = 100;
  config.thread_level = 0;
  if (!WebPValidateConfig(&config)) return make_error(ErrorCode::Internal, "WebP: bad configuration");

  PicturePtr pic(new WebPPicture());  // zeroed: WebPPictureFree is safe on it
  if (!WebPPictureInit(pic.get())) return make_error(ErrorCode::Internal, "WebP: version mismatch");
  pic->width = image.width;
  pic->height = image.height;
  pic->use_argb = 0;  // import straight to YUV(A) for the lossy encoder
  const int stride = image.width * 4;
  const int imported = image.alpha ? WebPPictureImportRGBA(pic.get(), image.pixels.data(), stride)
                                   : WebPPictureImportRGBX(pic.get(), image.pixels.data(), stride);
  if (!imported) return make_error(ErrorCode::Internal, "WebP: out of memory");

  WriterPtr writer(new WebPMemoryWriter());
  WebPMemoryWriterInit(writer.get());
  pic->writer = WebPMemoryWrite;
  pic->custom_ptr = writer.get();
  if (!WebPEncode(&config, pic.get())) {
    return make_error(ErrorCode::Internal,
                      "WebP encoder failed (error " + std::to_string(pic->error_code) + ")");
  }
  return std::vector<std::uint8_t>(writer->mem, writer->mem + writer->size);
}

}  // namespace nic::detail
