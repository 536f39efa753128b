// Colour management: what a source says about its colours (an ICC profile, a
// PNG gAMA/cHRM pair, AVIF's CICP code points) turned into a conversion to
// sRGB with Little CMS 2, the library libvips (and so Sharp) uses.
//
// Outputs are untagged sRGB, and there is no setting to keep Display P3:
// every browser shows untagged sRGB the same way, a tag costs ~0.5 KB per
// JPEG/PNG/WebP response (a large share of a 800-wide thumbnail), and the
// colours P3 adds beyond sRGB are few in photographs and only seen on
// wide-gamut screens; keeping P3 would also mean one more variant per
// URL (the cache key) or guessing the screen from headers. Sharp, the
// Next.js optimizer and imgproxy's defaults convert to sRGB too.
//
// A source that already is sRGB (no tag, PNG's
// sRGB chunk, a profile whose conversion is the identity within one level)
// gets no conversion at all. A profile that is broken, hostile (oversized,
// wrong colour space for the pixels, a device link) or that Little CMS
// refuses is ignored: the pixels are taken as sRGB, never an error.
//
// Conversions are cached by a hash of what defines them (the profile bytes,
// the code points), so a profile is parsed and its transform built once per
// process; the cache is bounded and thread-safe, and a built conversion is
// used by any number of threads at once (no per-transform pixel cache).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace nic::detail {

// Profiles above this size are ignored (real ones are 0.5-60 KB; CMYK
// profiles with large tables reach ~2 MB).
inline constexpr std::size_t kMaxIccBytes = 4u << 20;

struct ColourTag {
  enum class Kind {
    Unspecified,  // no tag, or PNG's sRGB chunk: sRGB
    Icc,          // `icc` holds the profile
    Cicp,         // ITU-T H.273 colour primaries / transfer (AVIF nclx, AV1)
    PngGamma,     // PNG gAMA (and maybe cHRM) without iCCP or sRGB
  };
  Kind kind = Kind::Unspecified;
  std::vector<std::uint8_t> icc;
  int cicp_primaries = 2;   // 2 = unspecified
  int cicp_transfer = 2;
  double png_gamma = 0;     // the file's gAMA / 100000 (the encoding exponent, 1/2.2 for sRGB-ish)
  bool png_has_chrm = false;
  std::array<double, 8> png_chrm{};  // white x,y, red x,y, green x,y, blue x,y
};

// How the pixels handed to a conversion are laid out (4 bytes a pixel).
enum class PixelLayout {
  Rgbx,          // RGB + a fourth byte that is left alone (alpha)
  GrayX,         // grey in byte 0 (bytes 1, 2 equal to it), fourth byte left alone
  Cmyk,          // CMYK, 0 = no ink
  CmykInverted,  // CMYK as Adobe writes it in JPEG (255 = no ink)
};

class ColourConversion;

// The conversion of `tag` for pixels in `layout` to sRGB, or nullptr when
// there is nothing to do (already sRGB) or the tag is ignored (broken,
// unsupported, wrong colour space). Never fails otherwise.
std::shared_ptr<const ColourConversion> conversion_to_srgb(const ColourTag& tag, PixelLayout layout);

// Converts `pixels` 4-byte pixels from `in` into `out` as RGBX; the fourth
// byte of `out` is left alone (alpha), but for CMYK where it is set to 255.
// `in` and `out` may be the same buffer.
void convert_to_srgb(const ColourConversion& conversion, const std::uint8_t* in, std::uint8_t* out,
                     std::size_t pixels);

// Counters for tests: conversions built (cache misses that made a transform)
// and tags ignored since start.
struct ColourStats {
  std::uint64_t built = 0;
  std::uint64_t ignored = 0;
};
ColourStats colour_stats();

}  // namespace nic::detail
