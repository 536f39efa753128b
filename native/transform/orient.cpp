// Orientation (EXIF 1..8) applied to a decoded image, and the image helpers.
#include <cstring>
#include <limits>

#include "image.h"

namespace nic::detail {

std::optional<std::size_t> rgba_bytes(std::uint64_t width, std::uint64_t height) {
  // Any single image above 2^31 pixels is refused long before this by the
  // pixel limit; the check keeps the multiplication honest regardless.
  constexpr std::uint64_t kMaxSide = 1u << 20;
  if (width == 0 || height == 0 || width > kMaxSide || height > kMaxSide) return std::nullopt;
  const std::uint64_t bytes = width * height * 4;  // < 2^42, no overflow
  if (bytes > std::numeric_limits<std::size_t>::max()) return std::nullopt;
  return static_cast<std::size_t>(bytes);
}

Result<Image> make_image(int width, int height, bool alpha) {
  const auto bytes = rgba_bytes(static_cast<std::uint64_t>(width < 0 ? 0 : width),
                                static_cast<std::uint64_t>(height < 0 ? 0 : height));
  if (!bytes) return make_error(ErrorCode::TooManyPixels, "image dimensions out of range");
  Image img;
  img.width = width;
  img.height = height;
  img.alpha = alpha;
  img.pixels.resize(*bytes);
  return img;
}

bool looks_flat(const Image& image) {
  // Share of pixels equal to their left neighbour, on every 4th row. Photos
  // (noise, gradients, even after JPEG smoothing) score under 0.1; UI
  // screenshots, even text-heavy ones, 0.4 and more.
  std::size_t same = 0;
  std::size_t total = 0;
  for (int y = 0; y < image.height; y += 4) {
    const std::uint8_t* row = image.row(y);
    for (int x = 1; x < image.width; ++x) {
      same += std::memcmp(row + x * 4, row + (x - 1) * 4, 4) == 0 ? 1 : 0;
    }
    total += static_cast<std::size_t>(image.width - 1);
  }
  return total > 0 && same * 4 > total;
}

StoredPoint stored_position(int orientation, int w, int h, int x, int y) {
  switch (orientation) {
    case 2: return {w - 1 - x, y};
    case 3: return {w - 1 - x, h - 1 - y};
    case 4: return {x, h - 1 - y};
    case 5: return {y, x};
    case 6: return {y, h - 1 - x};
    case 7: return {w - 1 - y, h - 1 - x};
    case 8: return {w - 1 - y, x};
    default: return {x, y};
  }
}

Image apply_orientation(Image src, int orientation) {
  if (orientation < 2 || orientation > 8) return src;
  const int w = src.width;
  const int h = src.height;
  const bool transpose = orientation >= 5;
  Image dst;
  dst.width = transpose ? h : w;
  dst.height = transpose ? w : h;
  dst.alpha = src.alpha;
  dst.pixels.resize(src.pixels.size());
  const std::uint8_t* in = src.pixels.data();
  std::uint8_t* out = dst.pixels.data();
  // For each displayed pixel (x, y), the stored pixel it comes from.
  for (int y = 0; y < dst.height; ++y) {
    for (int x = 0; x < dst.width; ++x) {
      const StoredPoint p = stored_position(orientation, w, h, x, y);
      std::memcpy(out + (static_cast<std::size_t>(y) * dst.width + x) * 4,
                  in + (static_cast<std::size_t>(p.y) * w + p.x) * 4, 4);
    }
  }
  return dst;
}

}  // namespace nic::detail
