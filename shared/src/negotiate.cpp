#include "nic/negotiate.h"

#include <algorithm>
#include <optional>
#include <string>
#include "nic/text.h"

namespace nic {
namespace {

// RFC 9110 qvalue: ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in thousandths.
std::optional<int> parse_qvalue(std::string_view v) {
  if (v.empty() || (v[0] != '0' && v[0] != '1')) return std::nullopt;
  int whole = v[0] - '0';
  if (v.size() == 1) return whole * 1000;
  if (v[1] != '.' || v.size() > 5) return std::nullopt;
  int frac = 0;
  int digits = 0;
  for (char c : v.substr(2)) {
    if (c < '0' || c > '9') return std::nullopt;
    frac = frac * 10 + (c - '0');
    ++digits;
  }
  for (; digits < 3; ++digits) frac *= 10;
  if (whole == 1 && frac != 0) return std::nullopt;
  return whole * 1000 + frac;
}

}  // namespace

AcceptQ accept_q(std::string_view accept) {
  AcceptQ q;
  std::string_view rest = accept;
  while (true) {
    const auto comma = rest.find(',');
    std::string_view entry = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);

    const auto semi = entry.find(';');
    const std::string type = ascii_lower(trim(entry.substr(0, semi)));
    std::optional<int> value = 1000;
    std::string_view params = semi == std::string_view::npos ? std::string_view{} : entry.substr(semi + 1);
    while (!params.empty()) {
      const auto next = params.find(';');
      const std::string_view param = params.substr(0, next);
      params = next == std::string_view::npos ? std::string_view{} : params.substr(next + 1);
      const auto eq = param.find('=');
      if (eq == std::string_view::npos) continue;
      if (ascii_lower(trim(param.substr(0, eq))) == "q") value = parse_qvalue(trim(param.substr(eq + 1)));
    }
    if (value) {  // an entry with a malformed q is skipped
      if (type == "image/avif") q.avif = std::max(q.avif, *value);
      if (type == "image/webp") q.webp = std::max(q.webp, *value);
    }
    if (comma == std::string_view::npos) break;
  }
  return q;
}

FormatChoice negotiate(RequestedFormat requested, std::string_view accept) {
  switch (requested) {
    case RequestedFormat::Avif: return {TargetFormat::Avif, false};
    case RequestedFormat::Webp: return {TargetFormat::Webp, false};
    case RequestedFormat::Jpeg: return {TargetFormat::Jpeg, false};
    case RequestedFormat::Png: return {TargetFormat::Png, false};
    case RequestedFormat::Original: return {TargetFormat::Original, false};
    case RequestedFormat::Auto: break;
  }
  const AcceptQ q = accept_q(accept);
  if (q.avif > 0 && q.avif >= q.webp) return {TargetFormat::Avif, true};
  if (q.webp > 0) return {TargetFormat::Webp, true};
  return {TargetFormat::Original, true};
}

std::string_view key_token(FormatChoice choice) {
  switch (choice.target) {
    case TargetFormat::Avif: return choice.negotiated ? "auto-avif" : "avif";
    case TargetFormat::Webp: return choice.negotiated ? "auto-webp" : "webp";
    case TargetFormat::Jpeg: return "jpeg";
    case TargetFormat::Png: return "png";
    case TargetFormat::Original: return "original";
  }
  return "original";
}

ImageFormat output_format(FormatChoice choice, ImageFormat source, bool animated) {
  if (source == ImageFormat::Svg) return ImageFormat::Svg;
  if (source == ImageFormat::Gif && animated &&
      (choice.negotiated || choice.target == TargetFormat::Original)) {
    return ImageFormat::Gif;
  }
  switch (choice.target) {
    case TargetFormat::Avif: return ImageFormat::Avif;
    case TargetFormat::Webp: return ImageFormat::Webp;
    case TargetFormat::Jpeg: return ImageFormat::Jpeg;
    case TargetFormat::Png: return ImageFormat::Png;
    case TargetFormat::Original: break;
  }
  return source;
}

}  // namespace nic
