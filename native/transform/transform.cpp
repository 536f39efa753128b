// The pipeline: sniff -> probe (limits) -> geometry -> decode (scaled on
// load) straight into the resampler -> orient -> canvas -> encode.
//
// Orientation is applied AFTER resizing: the crop is mapped back into the
// stored image and the resampler works on stored rows as the decoder streams
// them, so only the small result is rotated. Flips and quarter turns commute
// with a separable symmetric filter, so the pixels are the same.
//
// Default qualities (when the request has no q), Sharp's defaults, which the
// older service used: JPEG 80, WebP 80, AVIF 50. PNG is lossless (q ignored).
#include "transform.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <cstring>
#include <string>

#include "image.h"
#include "nic/geometry.h"
#include "resize.h"

namespace nic {
namespace {

using detail::Bytes;
using detail::Header;
using detail::Image;
using detail::StoredPoint;

constexpr int kDefaultJpegQuality = 80;
constexpr int kDefaultWebpQuality = 80;
constexpr int kDefaultAvifQuality = 50;

Result<Header> probe_header(ImageFormat format, Bytes data) {
  switch (format) {
    case ImageFormat::Jpeg: return detail::probe_jpeg(data);
    case ImageFormat::Png: return detail::probe_png(data);
    case ImageFormat::Webp: return detail::probe_webp(data);
    case ImageFormat::Avif: return detail::probe_avif(data);
    case ImageFormat::Gif: return detail::probe_gif(data);
    case ImageFormat::Svg: break;
  }
  return make_error(ErrorCode::UnsupportedFormat, "SVG is never rasterised");
}

// Sniff + header + pixel limit; nothing pixel-sized is allocated before this.
Result<Header> read_header(Bytes data, const TransformLimits& limits) {
  const auto format = sniff_format(data);
  if (!format) {
    return make_error(ErrorCode::UnsupportedFormat,
                      "not an image format we read (JPEG, PNG, WebP, AVIF, GIF, SVG)");
  }
  if (*format == ImageFormat::Svg) {
    Header h;
    h.format = ImageFormat::Svg;
    return h;
  }
  auto header = probe_header(*format, data);
  if (!header) return header;
  if (header->width < 1 || header->height < 1) return detail::corrupt("image has no pixels");
  const std::uint64_t pixels =
      static_cast<std::uint64_t>(header->width) * static_cast<std::uint64_t>(header->height);
  if (pixels > limits.max_input_pixels) {
    return make_error(ErrorCode::TooManyPixels,
                      "image has " + std::to_string(header->width) + "x" + std::to_string(header->height) +
                          " pixels, more than the limit of " + std::to_string(limits.max_input_pixels));
  }
  return header;
}

bool transposed(int orientation) { return orientation >= 5 && orientation <= 8; }

// A rectangle of the displayed (oriented) image as a rectangle of the stored one.
Rect to_stored(const Rect& r, int orientation, int stored_w, int stored_h) {
  const StoredPoint a = detail::stored_position(orientation, stored_w, stored_h, r.x, r.y);
  const StoredPoint b = detail::stored_position(orientation, stored_w, stored_h, r.x + r.w - 1, r.y + r.h - 1);
  const int ax = a.x, ay = a.y, bx = b.x, by = b.y;
  Rect s;
  s.x = std::min(ax, bx);
  s.y = std::min(ay, by);
  s.w = std::max(ax, bx) - s.x + 1;
  s.h = std::max(ay, by) - s.y + 1;
  return s;
}

// The scale (of 8) for decoding JPEG and WebP stills: libjpeg's scaled IDCT is a cheap but
// soft-edged, aliasing downscale, so it only takes a share of the reduction
// that leaves the Lanczos pass at least its own; a reduction under 3x is all
// Lanczos (Sharp's shrink-on-load rule: 1/2 from 3x, 1/4 from 5x, 1/8 from 9x).
int jpeg_scale(const Rect& crop, int out_w, int out_h) {
  const double shrink = std::min(static_cast<double>(crop.w) / std::max(out_w, 1),
                                 static_cast<double>(crop.h) / std::max(out_h, 1));
  for (int d : {8, 4, 2}) {
    if (shrink >= d && static_cast<int>(shrink) != d) return 8 / d;
  }
  return 8;
}

Status decode_into(const Header& h, Bytes data, const detail::DecodeHints& hints, detail::RowSink& sink) {
  switch (h.format) {
    case ImageFormat::Jpeg: return detail::decode_jpeg(data, hints, sink);
    case ImageFormat::Png: return detail::decode_png(data, sink);
    case ImageFormat::Webp: return detail::decode_webp(data, hints, sink);
    case ImageFormat::Avif: return detail::decode_avif(data, sink);
    case ImageFormat::Gif: return detail::decode_gif(data, sink);
    case ImageFormat::Svg: break;
  }
  return make_error(ErrorCode::UnsupportedFormat, "SVG is never rasterised");
}

// Converts the resized image to sRGB when the source says it is something
// else. Done after resizing: the output has a fraction of the source's
// pixels, and for the smooth conversions between RGB spaces the order makes a
// difference of about a level at hard edges only (see bench/README.md).
void to_srgb(const Header& h, Image& img) {
  const auto conversion =
      detail::conversion_to_srgb(h.colour, h.gray ? detail::PixelLayout::GrayX : detail::PixelLayout::Rgbx);
  if (!conversion) return;
  const std::size_t n = static_cast<std::size_t>(img.width) * img.height;
  detail::convert_to_srgb(*conversion, img.pixels.data(), img.pixels.data(), n);
  if (h.gray) {
    // A grey profile maps grey to neutral sRGB; rounding may leave the
    // channels a level apart, which would cost the grey output formats.
    for (std::size_t i = 0; i < n; ++i) {
      std::uint8_t* p = &img.pixels[i * 4];
      p[0] = p[2] = p[1];
    }
  }
}

bool has_transparency(const Image& img) {
  if (!img.alpha) return false;
  const std::size_t n = static_cast<std::size_t>(img.width) * img.height;
  for (std::size_t i = 0; i < n; ++i) {
    if (img.pixels[i * 4 + 3] != 255) return true;
  }
  return false;
}

// Composites onto white (for JPEG).
void flatten_on_white(Image& img) {
  const std::size_t n = static_cast<std::size_t>(img.width) * img.height;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint8_t* p = &img.pixels[i * 4];
    const unsigned a = p[3];
    for (int c = 0; c < 3; ++c) {
      p[c] = static_cast<std::uint8_t>((p[c] * a + 255 * (255 - a) + 127) / 255);
    }
    p[3] = 255;
  }
  img.alpha = false;
}

// Transforms running in this process right now. An encoder that can use
// threads (AVIF) takes the cores the others leave idle, so a lone cold
// request finishes sooner and a full pool is not oversubscribed.
std::atomic<int> g_running{0};

struct RunningTransform {
  RunningTransform() { g_running.fetch_add(1, std::memory_order_relaxed); }
  ~RunningTransform() { g_running.fetch_sub(1, std::memory_order_relaxed); }
  RunningTransform(const RunningTransform&) = delete;
  RunningTransform& operator=(const RunningTransform&) = delete;
};

int idle_threads() {
  static const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const int others = g_running.load(std::memory_order_relaxed) - 1;
  return std::clamp(cores - others, 1, cores);
}

bool supports_alpha(ImageFormat f) { return f == ImageFormat::Png || f == ImageFormat::Webp || f == ImageFormat::Avif; }

TransformOutput passthrough(Bytes source, ImageFormat format, int width, int height) {
  TransformOutput out;
  out.bytes.assign(source.begin(), source.end());
  out.format = format;
  out.width = width;
  out.height = height;
  out.passthrough = true;
  return out;
}

}  // namespace

Result<SourceInfo> probe_image(std::span<const std::uint8_t> source, const TransformLimits& limits) {
  auto header = read_header(source, limits);
  if (!header) return header.take_error();
  SourceInfo info;
  info.format = header->format;
  info.width = transposed(header->orientation) ? header->height : header->width;
  info.height = transposed(header->orientation) ? header->width : header->height;
  info.animated = header->animated;
  return info;
}

Result<TransformOutput> transform_image(std::span<const std::uint8_t> source,
                                        const NormalizedParams& params, FormatChoice choice,
                                        const TransformLimits& limits) {
  const RunningTransform running;
  auto read = read_header(source, limits);
  if (!read) return read.take_error();
  const Header& h = *read;
  ImageFormat out_format = output_format(choice, h.format, h.animated);
  if (h.format == ImageFormat::Svg || out_format == ImageFormat::Svg) {
    return passthrough(source, ImageFormat::Svg, 0, 0);
  }

  // Displayed size, and the requested box capped to the output limit.
  const bool swap = transposed(h.orientation);
  const int disp_w = swap ? h.height : h.width;
  const int disp_h = swap ? h.width : h.height;
  const int cap = std::max(1, limits.max_output_dimension);
  std::optional<int> want_w = params.w;
  std::optional<int> want_h = params.h;
  Fit fit = params.fit;
  if (!want_w && !want_h && (disp_w > cap || disp_h > cap)) {
    want_w = cap;
    want_h = cap;
    fit = Fit::Inside;
  }
  const int biggest = std::max(want_w.value_or(0), want_h.value_or(0));
  if (biggest > cap) {  // shrink the box, keeping its aspect
    if (want_w) want_w = std::max(1, static_cast<int>(static_cast<std::int64_t>(*want_w) * cap / biggest));
    if (want_h) want_h = std::max(1, static_cast<int>(static_cast<std::int64_t>(*want_h) * cap / biggest));
  }
  auto geo = compute_geometry(disp_w, disp_h, want_w, want_h, fit);
  if (!geo) return geo.take_error();
  if (geo->canvas_w > cap || geo->canvas_h > cap) {
    // Only inside/outside can get here (their output is the source scaled,
    // and a box bounding one side leaves the other free): a very long source
    // would exceed the cap (and WebP's 16383). Fit it into cap x cap instead.
    geo = compute_geometry(disp_w, disp_h, cap, cap, Fit::Inside);
    if (!geo) return geo.take_error();
  }
  const Geometry& g = *geo;

  // Any other animated source (WebP, AVIF sequence) that stays in its own
  // format under auto/original is passed through too: re-encoding its first
  // frame would silently drop the animation. Other targets get the first frame.
  if (h.animated && out_format == h.format && out_format != ImageFormat::Gif &&
      (choice.negotiated || choice.target == TargetFormat::Original)) {
    return passthrough(source, h.format, disp_w, disp_h);
  }
  if (out_format == ImageFormat::Gif) {
    // An animated GIF under auto/original is passed through unchanged. A
    // still GIF stays as it is when nothing changes; resized, it becomes a
    // PNG (lossless, alpha kept; re-quantising to 256 colours would not be).
    const bool unchanged = g.canvas_w == disp_w && g.canvas_h == disp_h && g.resize_w == disp_w &&
                           g.resize_h == disp_h;
    if (h.animated || unchanged) return passthrough(source, ImageFormat::Gif, h.width, h.height);
    out_format = ImageFormat::Png;
  }

  // Resize in stored orientation.
  const Rect crop = to_stored(g.crop, h.orientation, h.width, h.height);
  detail::ResizePlan plan;
  plan.source_w = h.width;
  plan.source_h = h.height;
  plan.crop_x = crop.x;
  plan.crop_y = crop.y;
  plan.crop_w = crop.w;
  plan.crop_h = crop.h;
  plan.out_w = swap ? g.resize_h : g.resize_w;
  plan.out_h = swap ? g.resize_w : g.resize_h;
  detail::DecodeHints hints;
  if (h.format == ImageFormat::Jpeg || (h.format == ImageFormat::Webp && !h.animated)) {
    hints.scale_num = jpeg_scale(crop, plan.out_w, plan.out_h);
  }

  detail::Resampler resampler(plan);
  if (auto s = decode_into(h, source, hints, resampler); !s) return s.take_error();
  auto resized = resampler.finish();
  if (!resized) return resized.take_error();
  to_srgb(h, *resized);
  Image img = detail::apply_orientation(std::move(*resized), h.orientation);
  img.alpha = has_transparency(img);

  if (g.canvas_w != img.width || g.canvas_h != img.height) {
    // contain: letterbox, transparent where the format has alpha, else white.
    const bool clear = supports_alpha(out_format);
    auto made = detail::make_image(g.canvas_w, g.canvas_h, clear || img.alpha);
    if (!made) return made.take_error();
    Image canvas = std::move(*made);
    if (clear) {
      std::fill(canvas.pixels.begin(), canvas.pixels.end(), std::uint8_t{0});
    } else {
      std::fill(canvas.pixels.begin(), canvas.pixels.end(), std::uint8_t{255});
    }
    for (int y = 0; y < img.height; ++y) {
      std::memcpy(canvas.row(g.offset_y + y) + static_cast<std::size_t>(g.offset_x) * 4, img.row(y),
                  static_cast<std::size_t>(img.width) * 4);
    }
    img = std::move(canvas);
  }
  if (img.alpha && !supports_alpha(out_format)) flatten_on_white(img);

  Result<std::vector<std::uint8_t>> encoded = std::vector<std::uint8_t>{};
  switch (out_format) {
    case ImageFormat::Jpeg:
      encoded = detail::encode_jpeg(img, params.q.value_or(kDefaultJpegQuality), detail::looks_flat(img));
      break;
    case ImageFormat::Png: encoded = detail::encode_png(img, detail::looks_flat(img)); break;
    case ImageFormat::Webp:
      encoded = detail::encode_webp(img, params.q.value_or(kDefaultWebpQuality), detail::looks_flat(img));
      break;
    case ImageFormat::Avif: {
      detail::AvifOptions options;
      options.speed = limits.avif_speed;
      options.threads = limits.max_threads > 0 ? std::min(limits.max_threads, idle_threads()) : idle_threads();
      encoded = detail::encode_avif(img, params.q.value_or(kDefaultAvifQuality), options);
      break;
    }
    case ImageFormat::Gif:
    case ImageFormat::Svg: return make_error(ErrorCode::Internal, "no encoder for this format");
  }
  if (!encoded) return encoded.take_error();
  TransformOutput out;
  out.bytes = std::move(*encoded);
  out.format = out_format;
  out.width = img.width;
  out.height = img.height;
  return out;
}

}  // namespace nic
