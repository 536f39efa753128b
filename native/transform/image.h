// Internal to the transform engine: the pixel buffer, the row-by-row decoder
// interface and the per-format codec entry points.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "colour.h"
#include "nic/error.h"
#include "nic/format.h"

namespace nic::detail {

// 4 bytes per pixel, always: RGBA when `alpha`, RGBX (X ignored) otherwise.
// Four lanes keep every pixel loop SIMD-friendly and libjpeg-turbo, libwebp
// and libavif read and write RGBX/RGBA directly.
struct Image {
  int width = 0;
  int height = 0;
  bool alpha = false;
  std::vector<std::uint8_t> pixels;  // width * height * 4, rows packed

  std::uint8_t* row(int y) { return pixels.data() + static_cast<std::size_t>(y) * width * 4; }
  const std::uint8_t* row(int y) const {
    return pixels.data() + static_cast<std::size_t>(y) * width * 4;
  }
};

// width * height * 4 bytes, or nullopt when it does not fit in size_t (or is
// absurd): checked before any pixel buffer is allocated.
std::optional<std::size_t> rgba_bytes(std::uint64_t width, std::uint64_t height);

// Allocates an Image, refusing sizes that overflow (INTERNAL never happens for
// sizes that passed the pixel limit).
Result<Image> make_image(int width, int height, bool alpha);

// What a header says, in stored (not yet oriented) orientation.
struct Header {
  ImageFormat format{};
  int width = 0;
  int height = 0;
  int orientation = 1;  // EXIF 1..8 (AVIF irot/imir mapped onto the same)
  bool alpha = false;   // may have non-opaque pixels
  bool animated = false;
  bool gray = false;    // the pixels are grey (a grey JPEG, PNG or AVIF 4:0:0)
  ColourTag colour;     // what the file says its colours are (CMYK JPEGs: converted by the decoder)
};

// Receives decoded rows top to bottom (stored orientation), 4 bytes a pixel.
class RowSink {
 public:
  virtual ~RowSink() = default;
  // Called once before the first row with the size of the rows that follow,
  // which may be smaller than the header's when the decoder scaled on load.
  virtual Status begin(int width, int height, bool alpha) = 0;
  // Returns false when no further rows are needed (the decoder may stop).
  virtual bool row(const std::uint8_t* rgba) = 0;
};

// Decoding hints: a JPEG may decode at scale_num/8 (libjpeg-turbo DCT scaling).
struct DecodeHints {
  int scale_num = 8;  // 1..8, of 8 (JPEG: DCT scaling; WebP: libwebp's rescaler)
};

using Bytes = std::span<const std::uint8_t>;

Result<Header> probe_jpeg(Bytes data);
Status decode_jpeg(Bytes data, const DecodeHints& hints, RowSink& sink);
Result<Header> probe_png(Bytes data);
Status decode_png(Bytes data, RowSink& sink);
Result<Header> probe_webp(Bytes data);
Status decode_webp(Bytes data, const DecodeHints& hints, RowSink& sink);  // scale_num as for JPEG (stills)
Result<Header> probe_avif(Bytes data);
Status decode_avif(Bytes data, RowSink& sink);
Result<Header> probe_gif(Bytes data);
Status decode_gif(Bytes data, RowSink& sink);  // the first frame

// Screen-like content (UI, text, diagrams: large runs of identical pixels)
// compresses differently from photos; encoders pick settings by it.
bool looks_flat(const Image& image);

// Every pixel has R == G == B (such images are written as grey where the
// format has it: PNG, JPEG).
bool is_grey(const Image& image);

// Encoders take a finished image (alpha not premultiplied).
Result<std::vector<std::uint8_t>> encode_jpeg(const Image& image, int quality, bool flat);
Result<std::vector<std::uint8_t>> encode_png(const Image& image, bool flat);
Result<std::vector<std::uint8_t>> encode_webp(const Image& image, int quality, bool flat);
struct AvifOptions {
  int speed = 5;    // aom cpu-used (AVIF_SPEED)
  int threads = 1;  // encoder threads
};
Result<std::vector<std::uint8_t>> encode_avif(const Image& image, int quality, const AvifOptions& options);

// EXIF orientation (1..8) from a TIFF-structured EXIF block (optionally
// preceded by "Exif\0\0"); 1 when absent or unreadable.
int exif_orientation(Bytes exif);

// The stored pixel that displayed pixel (x, y) comes from, for EXIF
// orientation 1..8 of a stored_w x stored_h image.
struct StoredPoint {
  int x = 0;
  int y = 0;
};
StoredPoint stored_position(int orientation, int stored_w, int stored_h, int x, int y);

// Applies EXIF orientation 1..8 to the image (returns it oriented for display).
Image apply_orientation(Image image, int orientation);

inline Error corrupt(std::string message) {
  return make_error(ErrorCode::CorruptImage, std::move(message));
}

}  // namespace nic::detail
