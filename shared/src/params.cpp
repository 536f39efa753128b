#include "nic/params.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace nic {
namespace {

struct FitName {
  std::string_view name;
  Fit fit;
};
constexpr std::array<FitName, 5> kFits{{
    {"cover", Fit::Cover},
    {"contain", Fit::Contain},
    {"fill", Fit::Fill},
    {"inside", Fit::Inside},
    {"outside", Fit::Outside},
}};

// User input echoed in a message: short, printable ASCII only.
std::string quoted(std::string_view value) {
  std::string out = "'";
  for (std::size_t i = 0; i < value.size() && i < 32; ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  if (value.size() > 32) out += "...";
  out += "'";
  return out;
}

Error bad_param(std::string_view name, std::string_view allowed, std::string_view value) {
  return make_error(ErrorCode::InvalidParam,
                    "invalid parameter " + std::string(name) + ": expected " +
                        std::string(allowed) + ", got " + quoted(value));
}

// Digits only; std::nullopt when not a plain decimal or above `max`.
std::optional<int> parse_bounded_digits(std::string_view text, int max) {
  if (text.empty()) return std::nullopt;
  std::int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
    if (v > max) return std::nullopt;
  }
  return static_cast<int>(v);
}

// "2", "1.5", "2.0" -> tenths; at most one decimal digit.
std::optional<int> parse_tenths(std::string_view text, int max_tenths) {
  const auto dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  auto w = parse_bounded_digits(whole, max_tenths / 10 + 1);
  if (!w) return std::nullopt;
  int tenths = *w * 10;
  if (dot != std::string_view::npos) {
    const std::string_view frac = text.substr(dot + 1);
    if (frac.size() != 1 || frac[0] < '0' || frac[0] > '9') return std::nullopt;
    tenths += frac[0] - '0';
  }
  return tenths;
}

int snap_up(const std::vector<int>& steps, std::int64_t value) {
  for (int s : steps) {
    if (s >= value) return s;
  }
  return steps.empty() ? static_cast<int>(std::min<std::int64_t>(value, kMaxDimension)) : steps.back();
}

// The requested aspect ratio hp/wp snapped to the nearest of kAspectRatios on
// a log scale, exactly: between neighbours a < b, hp/wp goes to b when
// (hp/wp)^2 >= a*b (a tie goes to the taller). Beyond the ends: the end.
AspectRatio snap_aspect(std::int64_t hp, std::int64_t wp) {
  // kAspectRatios is ordered by h/w ascending.
  const auto& r = kAspectRatios;
  const auto at_most = [&](const AspectRatio& a) { return hp * a.w <= a.h * wp; };   // hp/wp <= a
  const auto at_least = [&](const AspectRatio& a) { return hp * a.w >= a.h * wp; };  // hp/wp >= a
  if (at_most(r.front())) return r.front();
  if (at_least(r.back())) return r.back();
  for (std::size_t i = 0; i + 1 < r.size(); ++i) {
    const AspectRatio& a = r[i];
    const AspectRatio& b = r[i + 1];
    if (!at_least(a) || !at_most(b)) continue;
    return hp * hp * a.w * b.w >= a.h * b.h * wp * wp ? b : a;
  }
  return r.back();  // not reached: the ladder covers every ratio in between
}

int nearest(const std::vector<int>& steps, int value) {
  if (steps.empty()) return value;
  int best = steps.front();
  for (int s : steps) {
    const int d = std::abs(s - value);
    const int bd = std::abs(best - value);
    if (d < bd || (d == bd && s > best)) best = s;
  }
  return best;
}

}  // namespace

std::optional<Fit> parse_fit(std::string_view text) {
  for (const auto& f : kFits) {
    if (f.name == text) return f.fit;
  }
  return std::nullopt;
}

std::string_view to_string(Fit f) {
  for (const auto& n : kFits) {
    if (n.fit == f) return n.name;
  }
  return "inside";
}

Result<TransformParams> parse_params(const std::vector<RawParam>& query) {
  TransformParams p;
  std::array<bool, 7> seen{};
  static constexpr std::array<std::string_view, 7> kKnown{"w", "h", "fit", "fmt", "q", "dpr", "sig"};

  for (const auto& raw : query) {
    auto name = percent_decode(raw.name, ErrorCode::InvalidParam, true);
    if (!name) continue;  // an undecodable name is not one of ours
    const auto it = std::find(kKnown.begin(), kKnown.end(), std::string_view(*name));
    if (it == kKnown.end()) continue;  // unknown parameters are ignored
    const auto index = static_cast<std::size_t>(it - kKnown.begin());
    const std::string_view key = kKnown[index];
    if (seen[index]) {
      return make_error(ErrorCode::InvalidParam,
                        "invalid parameter " + std::string(key) + ": given more than once");
    }
    seen[index] = true;

    auto decoded = percent_decode(raw.value, ErrorCode::InvalidParam, true);
    if (!decoded) {
      return make_error(ErrorCode::InvalidParam,
                        "invalid parameter " + std::string(key) + ": " + decoded.error().message);
    }
    const std::string& v = *decoded;

    if (key == "w" || key == "h") {
      auto n = parse_bounded_digits(v, kMaxDimension);
      if (!n || *n < 1) return bad_param(key, "an integer 1..8192", v);
      (key == "w" ? p.w : p.h) = *n;
    } else if (key == "q") {
      auto n = parse_bounded_digits(v, 100);
      if (!n || *n < 1) return bad_param(key, "an integer 1..100", v);
      p.q = *n;
    } else if (key == "dpr") {
      auto t = parse_tenths(v, 40);
      if (!t || *t < 10 || *t > 40) return bad_param(key, "a number 1..4 with at most one decimal", v);
      p.dpr_tenths = *t;
    } else if (key == "fit") {
      auto f = parse_fit(v);
      if (!f) return bad_param(key, "one of cover|contain|fill|inside|outside", v);
      p.fit = *f;
    } else if (key == "fmt") {
      auto f = parse_requested_format(v);
      if (!f) return bad_param(key, "one of auto|webp|avif|jpeg|jpg|png|original", v);
      p.fmt = *f;
    } else {  // sig: checked against the secret later; here only present and non-empty.
      if (v.empty()) return bad_param(key, "a base64url signature", v);
      p.sig = raw.value;
    }
  }
  return p;
}

NormalizedParams normalize(const TransformParams& params, const CoreSettings& settings) {
  NormalizedParams n;
  const std::int64_t dpr = params.dpr_tenths.value_or(10);
  std::int64_t wp = 0;
  if (params.w) {
    wp = (*params.w * dpr + 9) / 10;
    n.w = snap_up(settings.allowed_widths, wp);
  }
  if (params.h) {
    const std::int64_t hp = (*params.h * dpr + 9) / 10;
    if (n.w) {
      // The requested aspect ratio, snapped to a fixed ladder, at the snapped
      // width (round half up): a few keys per width, not one per h.
      const AspectRatio ratio = snap_aspect(hp, wp);
      const std::int64_t h = (2 * *n.w * ratio.h + ratio.w) / (2 * ratio.w);
      n.h = static_cast<int>(std::clamp<std::int64_t>(h, 1, kMaxDimension));
    } else {
      n.h = snap_up(settings.allowed_widths, hp);
    }
  }
  n.fit = params.fit.value_or(Fit::Inside);
  n.fit_in_key = (n.w || n.h) && n.fit != Fit::Inside;
  n.fmt = params.fmt.value_or(RequestedFormat::Auto);
  if (params.q) n.q = nearest(settings.quality_steps, *params.q);
  return n;
}

}  // namespace nic
