#include "colour.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>

#include <lcms2.h>

#include "nic/sha256.h"

namespace nic::detail {

class ColourConversion {
 public:
  ColourConversion(cmsHTRANSFORM transform, PixelLayout layout) : transform_(transform), layout_(layout) {}
  ~ColourConversion() { cmsDeleteTransform(transform_); }
  ColourConversion(const ColourConversion&) = delete;
  ColourConversion& operator=(const ColourConversion&) = delete;

  void run(const std::uint8_t* in, std::uint8_t* out, std::size_t pixels) const {
    // Little CMS reads a pixel before it writes it and both formats are 4
    // bytes a pixel, so in == out is safe. Chunks keep the count in range.
    constexpr std::size_t kChunk = 1u << 20;
    for (std::size_t done = 0; done < pixels; done += kChunk) {
      const std::size_t n = pixels - done < kChunk ? pixels - done : kChunk;
      cmsDoTransform(transform_, in + done * 4, out + done * 4, static_cast<cmsUInt32Number>(n));
    }
  }
  PixelLayout layout() const { return layout_; }

 private:
  cmsHTRANSFORM transform_;
  PixelLayout layout_;
};

namespace {

std::atomic<std::uint64_t> g_built{0};
std::atomic<std::uint64_t> g_ignored{0};

void quiet(cmsContext, cmsUInt32Number, const char*) {}

// One context for the process: Little CMS's own messages go nowhere (a broken
// profile is ignored, not reported).
cmsContext context() {
  static const cmsContext ctx = [] {
    cmsContext c = cmsCreateContext(nullptr, nullptr);
    cmsSetLogErrorHandlerTHR(c, quiet);
    return c;
  }();
  return ctx;
}

struct ProfileDeleter {
  void operator()(void* p) const {
    if (p != nullptr) cmsCloseProfile(p);
  }
};
using ProfilePtr = std::unique_ptr<void, ProfileDeleter>;

struct ToneCurveDeleter {
  void operator()(cmsToneCurve* c) const {
    if (c != nullptr) cmsFreeToneCurve(c);
  }
};
using ToneCurvePtr = std::unique_ptr<cmsToneCurve, ToneCurveDeleter>;

// IEC 61966-2-1 as Little CMS's parametric type 4.
ToneCurvePtr srgb_curve() {
  const cmsFloat64Number params[5] = {2.4, 1.0 / 1.055, 0.055 / 1.055, 1.0 / 12.92, 0.04045};
  return ToneCurvePtr(cmsBuildParametricToneCurve(context(), 4, params));
}

ToneCurvePtr gamma_curve(double gamma) { return ToneCurvePtr(cmsBuildGamma(context(), gamma)); }

struct Chromaticities {
  double wx, wy, rx, ry, gx, gy, bx, by;
};
constexpr Chromaticities kSrgb = {0.3127, 0.3290, 0.640, 0.330, 0.300, 0.600, 0.150, 0.060};

// An RGB (or, for grey pixels, grey) matrix-shaper profile.
ProfilePtr make_profile(const Chromaticities& c, const ToneCurvePtr& curve, PixelLayout layout) {
  if (!curve) return nullptr;
  const cmsCIExyY white = {c.wx, c.wy, 1.0};
  if (layout == PixelLayout::GrayX) return ProfilePtr(cmsCreateGrayProfileTHR(context(), &white, curve.get()));
  const cmsCIExyYTRIPLE primaries = {{c.rx, c.ry, 1.0}, {c.gx, c.gy, 1.0}, {c.bx, c.by, 1.0}};
  cmsToneCurve* curves[3] = {curve.get(), curve.get(), curve.get()};
  return ProfilePtr(cmsCreateRGBProfileTHR(context(), &white, &primaries, curves));
}

// ITU-T H.273 colour primaries we convert from (others are ignored).
bool cicp_chromaticities(int primaries, Chromaticities& out) {
  switch (primaries) {
    case 1:  // BT.709 = sRGB
    case 2:  // unspecified: sRGB
      out = kSrgb;
      return true;
    case 5: out = {0.3127, 0.3290, 0.640, 0.330, 0.290, 0.600, 0.150, 0.060}; return true;  // BT.601 625
    case 6:                                                                                  // BT.601 525
    case 7: out = {0.3127, 0.3290, 0.630, 0.340, 0.310, 0.595, 0.155, 0.070}; return true;  // SMPTE 240
    case 9: out = {0.3127, 0.3290, 0.708, 0.292, 0.170, 0.797, 0.131, 0.046}; return true;  // BT.2020
    case 11: out = {0.314, 0.351, 0.680, 0.320, 0.265, 0.690, 0.150, 0.060}; return true;   // DCI-P3
    case 12: out = {0.3127, 0.3290, 0.680, 0.320, 0.265, 0.690, 0.150, 0.060}; return true;  // Display P3
    default: return false;
  }
}

// The decoding curve for an H.273 transfer: the SDR video curves (BT.709,
// BT.601, BT.2020) are taken as sRGB, as browsers show still images; PQ and
// HLG (HDR) would need tone mapping and are not converted.
enum class Transfer { Srgb, Gamma, Unsupported };
Transfer cicp_transfer(int transfer, double& gamma) {
  switch (transfer) {
    case 1: case 2: case 6: case 13: case 14: case 15: return Transfer::Srgb;
    case 4: gamma = 2.2; return Transfer::Gamma;
    case 5: gamma = 2.8; return Transfer::Gamma;
    case 8: gamma = 1.0; return Transfer::Gamma;
    default: return Transfer::Unsupported;
  }
}

bool near(double a, double b, double tolerance) { return std::fabs(a - b) <= tolerance; }

bool is_srgb_chromaticities(const Chromaticities& c) {
  return near(c.wx, kSrgb.wx, 0.01) && near(c.wy, kSrgb.wy, 0.01) && near(c.rx, kSrgb.rx, 0.01) &&
         near(c.ry, kSrgb.ry, 0.01) && near(c.gx, kSrgb.gx, 0.01) && near(c.gy, kSrgb.gy, 0.01) &&
         near(c.bx, kSrgb.bx, 0.01) && near(c.by, kSrgb.by, 0.01);
}

cmsColorSpaceSignature expected_space(PixelLayout layout) {
  switch (layout) {
    case PixelLayout::Rgbx: return cmsSigRgbData;
    case PixelLayout::GrayX: return cmsSigGrayData;
    case PixelLayout::Cmyk:
    case PixelLayout::CmykInverted: return cmsSigCmykData;
  }
  return cmsSigRgbData;
}

cmsUInt32Number input_format(PixelLayout layout) {
  switch (layout) {
    case PixelLayout::Rgbx: return TYPE_RGBA_8;
    case PixelLayout::GrayX: return COLORSPACE_SH(PT_GRAY) | EXTRA_SH(3) | CHANNELS_SH(1) | BYTES_SH(1);
    case PixelLayout::Cmyk: return TYPE_CMYK_8;
    case PixelLayout::CmykInverted: return TYPE_CMYK_8_REV;
  }
  return TYPE_RGBA_8;
}

// The source profile the tag describes, or nullptr (ignored). `srgb` is set
// when the tag says sRGB without needing a profile.
ProfilePtr source_profile(const ColourTag& tag, PixelLayout layout, bool& srgb) {
  srgb = false;
  switch (tag.kind) {
    case ColourTag::Kind::Unspecified: srgb = true; return nullptr;
    case ColourTag::Kind::Icc: {
      if (tag.icc.size() < 128 || tag.icc.size() > kMaxIccBytes) return nullptr;
      ProfilePtr p(cmsOpenProfileFromMemTHR(context(), tag.icc.data(), static_cast<cmsUInt32Number>(tag.icc.size())));
      if (!p) return nullptr;
      if (cmsGetColorSpace(p.get()) != expected_space(layout)) return nullptr;
      switch (cmsGetDeviceClass(p.get())) {
        case cmsSigInputClass:
        case cmsSigDisplayClass:
        case cmsSigOutputClass:
        case cmsSigColorSpaceClass: break;
        default: return nullptr;  // device links, abstract and named-colour profiles
      }
      return p;
    }
    case ColourTag::Kind::Cicp: {
      if (layout != PixelLayout::Rgbx && layout != PixelLayout::GrayX) return nullptr;
      Chromaticities c{};
      double gamma = 0;
      if (!cicp_chromaticities(tag.cicp_primaries, c)) return nullptr;
      const Transfer t = cicp_transfer(tag.cicp_transfer, gamma);
      if (t == Transfer::Unsupported) return nullptr;
      const bool srgb_primaries = is_srgb_chromaticities(c) || layout == PixelLayout::GrayX;
      if (t == Transfer::Srgb && srgb_primaries) {
        srgb = true;
        return nullptr;
      }
      return make_profile(c, t == Transfer::Srgb ? srgb_curve() : gamma_curve(gamma), layout);
    }
    case ColourTag::Kind::PngGamma: {
      if (layout != PixelLayout::Rgbx && layout != PixelLayout::GrayX) return nullptr;
      // gAMA holds the encoding exponent; outside [0.1, 10] it is nonsense.
      if (!(tag.png_gamma >= 0.1 && tag.png_gamma <= 10.0)) return nullptr;
      const double decode = 1.0 / tag.png_gamma;
      Chromaticities c = kSrgb;
      if (tag.png_has_chrm && layout == PixelLayout::Rgbx) {
        const auto& v = tag.png_chrm;
        c = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
        for (double x : v) {
          if (!(x > 0.0 && x < 1.0)) return nullptr;
        }
      }
      // gAMA 1/2.2 with sRGB's primaries (what most encoders write for
      // sRGB content) is shown as sRGB, as browsers do.
      if (near(decode, 2.2, 0.05) && is_srgb_chromaticities(c)) {
        srgb = true;
        return nullptr;
      }
      return make_profile(c, gamma_curve(decode), layout);
    }
  }
  return nullptr;
}

// True when the conversion moves no sample of a grid by more than one level:
// the profile is sRGB in all but name (many cameras' and editors' copies).
bool is_identity(cmsHTRANSFORM t, PixelLayout layout) {
  if (layout == PixelLayout::Cmyk || layout == PixelLayout::CmykInverted) return false;
  std::vector<std::uint8_t> in;
  if (layout == PixelLayout::GrayX) {
    for (int v = 0; v < 256; ++v) in.insert(in.end(), {std::uint8_t(v), std::uint8_t(v), std::uint8_t(v), 255});
  } else {
    static constexpr std::uint8_t kLevels[] = {0, 8, 24, 48, 80, 112, 144, 176, 208, 232, 248, 255};
    for (std::uint8_t r : kLevels) {
      for (std::uint8_t g : kLevels) {
        for (std::uint8_t b : kLevels) in.insert(in.end(), {r, g, b, 255});
      }
    }
  }
  std::vector<std::uint8_t> out(in.size());
  cmsDoTransform(t, in.data(), out.data(), static_cast<cmsUInt32Number>(in.size() / 4));
  for (std::size_t i = 0; i < in.size(); i += 4) {
    for (std::size_t c = 0; c < 3; ++c) {
      if (std::abs(int(in[i + c]) - int(out[i + c])) > 1) return false;
    }
  }
  return true;
}

std::shared_ptr<const ColourConversion> build(const ColourTag& tag, PixelLayout layout) {
  bool srgb = false;
  ProfilePtr source = source_profile(tag, layout, srgb);
  if (!source) {
    if (!srgb) g_ignored.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  ProfilePtr target(cmsCreate_sRGBProfileTHR(context()));
  if (!target) return nullptr;
  // Perceptual where the profile has it (CMYK and other table profiles),
  // else relative colorimetric (matrix-shaper profiles: the same thing).
  const cmsUInt32Number intent = cmsIsIntentSupported(source.get(), INTENT_PERCEPTUAL, LCMS_USED_AS_INPUT)
                                     ? INTENT_PERCEPTUAL
                                     : INTENT_RELATIVE_COLORIMETRIC;
  // NOCACHE: no one-pixel cache inside the transform, so threads share it.
  cmsHTRANSFORM t = cmsCreateTransformTHR(context(), source.get(), input_format(layout), target.get(),
                                          TYPE_RGBA_8, intent, cmsFLAGS_NOCACHE);
  if (t == nullptr) {
    g_ignored.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  if (is_identity(t, layout)) {
    cmsDeleteTransform(t);
    return nullptr;
  }
  g_built.fetch_add(1, std::memory_order_relaxed);
  return std::make_shared<const ColourConversion>(t, layout);
}

// What defines a conversion, hashed (SHA-256: a stranger's profile must not
// be able to collide with a common one and poison its cache entry).
std::string cache_key(const ColourTag& tag, PixelLayout layout) {
  Sha256 h;
  std::string head = std::to_string(static_cast<int>(tag.kind)) + "/" + std::to_string(static_cast<int>(layout));
  switch (tag.kind) {
    case ColourTag::Kind::Unspecified: break;
    case ColourTag::Kind::Icc: break;
    case ColourTag::Kind::Cicp:
      head += "/" + std::to_string(tag.cicp_primaries) + "/" + std::to_string(tag.cicp_transfer);
      break;
    case ColourTag::Kind::PngGamma: {
      char buf[256];
      std::snprintf(buf, sizeof buf, "/%.6f/%d/%.6f/%.6f/%.6f/%.6f/%.6f/%.6f/%.6f/%.6f", tag.png_gamma,
                    tag.png_has_chrm ? 1 : 0, tag.png_chrm[0], tag.png_chrm[1], tag.png_chrm[2], tag.png_chrm[3],
                    tag.png_chrm[4], tag.png_chrm[5], tag.png_chrm[6], tag.png_chrm[7]);
      head += buf;
      break;
    }
  }
  h.update(head);
  if (tag.kind == ColourTag::Kind::Icc) h.update(std::span<const std::uint8_t>(tag.icc));
  const Digest d = h.finish();
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

// Bounded: at most kMaxEntries conversions (~100-300 KB each) are kept; when
// it is full it starts over (a burst of distinct profiles is rare and
// rebuilding costs a few milliseconds).
class ConversionCache {
 public:
  std::shared_ptr<const ColourConversion> get(const ColourTag& tag, PixelLayout layout) {
    const std::string key = cache_key(tag, layout);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (const auto it = map_.find(key); it != map_.end()) return it->second;
    }
    auto built = build(tag, layout);  // outside the lock: two threads may both build, one wins
    std::lock_guard<std::mutex> lock(mutex_);
    if (map_.size() >= kMaxEntries) map_.clear();
    return map_.emplace(key, std::move(built)).first->second;
  }

 private:
  static constexpr std::size_t kMaxEntries = 32;
  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<const ColourConversion>> map_;
};

ConversionCache& cache() {
  static ConversionCache c;
  return c;
}

}  // namespace

std::shared_ptr<const ColourConversion> conversion_to_srgb(const ColourTag& tag, PixelLayout layout) {
  const bool cmyk = layout == PixelLayout::Cmyk || layout == PixelLayout::CmykInverted;
  // The common case costs nothing: no tag, no lock, no hash.
  if (tag.kind == ColourTag::Kind::Unspecified) return nullptr;
  if (!cmyk && tag.kind == ColourTag::Kind::Cicp) {
    Chromaticities c{};
    double gamma = 0;
    if (cicp_chromaticities(tag.cicp_primaries, c) && is_srgb_chromaticities(c) &&
        cicp_transfer(tag.cicp_transfer, gamma) == Transfer::Srgb) {
      return nullptr;
    }
  }
  return cache().get(tag, layout);
}

void convert_to_srgb(const ColourConversion& conversion, const std::uint8_t* in, std::uint8_t* out,
                     std::size_t pixels) {
  conversion.run(in, out, pixels);
  if (conversion.layout() == PixelLayout::Cmyk || conversion.layout() == PixelLayout::CmykInverted) {
    for (std::size_t i = 0; i < pixels; ++i) out[i * 4 + 3] = 255;  // K was there
  }
}

ColourStats colour_stats() {
  return ColourStats{g_built.load(std::memory_order_relaxed), g_ignored.load(std::memory_order_relaxed)};
}

}  // namespace nic::detail
