#include "nic/format.h"

#include <array>
#include <cstring>

namespace nic {
namespace {

struct RequestedName {
  std::string_view name;
  RequestedFormat format;
};
constexpr std::array<RequestedName, 7> kRequested{{
    {"auto", RequestedFormat::Auto},
    {"webp", RequestedFormat::Webp},
    {"avif", RequestedFormat::Avif},
    {"jpeg", RequestedFormat::Jpeg},
    {"jpg", RequestedFormat::Jpeg},
    {"png", RequestedFormat::Png},
    {"original", RequestedFormat::Original},
}};

struct FormatInfo {
  ImageFormat format;
  std::string_view name;
  std::string_view mime;
};
constexpr std::array<FormatInfo, 6> kFormats{{
    {ImageFormat::Jpeg, "jpeg", "image/jpeg"},
    {ImageFormat::Png, "png", "image/png"},
    {ImageFormat::Webp, "webp", "image/webp"},
    {ImageFormat::Avif, "avif", "image/avif"},
    {ImageFormat::Gif, "gif", "image/gif"},
    {ImageFormat::Svg, "svg", "image/svg+xml"},
}};

bool starts_with(std::span<const std::uint8_t> b, std::size_t at, std::string_view magic) {
  return b.size() >= at + magic.size() && std::memcmp(b.data() + at, magic.data(), magic.size()) == 0;
}

}  // namespace

std::optional<RequestedFormat> parse_requested_format(std::string_view text) {
  for (const auto& r : kRequested) {
    if (r.name == text) return r.format;
  }
  return std::nullopt;
}

std::string_view to_string(RequestedFormat f) {
  for (const auto& r : kRequested) {
    if (r.format == f) return r.name;
  }
  return "auto";
}

std::string_view to_string(ImageFormat f) {
  for (const auto& i : kFormats) {
    if (i.format == f) return i.name;
  }
  return "jpeg";
}

std::string_view content_type(ImageFormat f) {
  for (const auto& i : kFormats) {
    if (i.format == f) return i.mime;
  }
  return "application/octet-stream";
}

std::optional<ImageFormat> format_from_content_type(std::string_view mime) {
  for (const auto& i : kFormats) {
    if (i.mime == mime) return i.format;
  }
  return std::nullopt;
}

std::optional<ImageFormat> sniff_format(std::span<const std::uint8_t> b) {
  if (starts_with(b, 0, "\xFF\xD8\xFF")) return ImageFormat::Jpeg;
  if (starts_with(b, 0, "\x89PNG\r\n\x1A\n")) return ImageFormat::Png;
  if (starts_with(b, 0, "GIF87a") || starts_with(b, 0, "GIF89a")) return ImageFormat::Gif;
  if (starts_with(b, 0, "RIFF") && starts_with(b, 8, "WEBP")) return ImageFormat::Webp;
  if (starts_with(b, 4, "ftyp") &&
      (starts_with(b, 8, "avif") || starts_with(b, 8, "avis") || starts_with(b, 8, "mif1"))) {
    return ImageFormat::Avif;
  }
  // SVG: optional BOM/whitespace, then "<svg" or "<?xml" followed by an <svg element early on.
  std::size_t i = 0;
  if (starts_with(b, 0, "\xEF\xBB\xBF")) i = 3;
  while (i < b.size() && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n')) ++i;
  if (starts_with(b, i, "<svg")) return ImageFormat::Svg;
  if (starts_with(b, i, "<?xml") || starts_with(b, i, "<!DOCTYPE svg")) {
    const std::size_t window = b.size() < 4096 ? b.size() : 4096;
    const std::string_view head(reinterpret_cast<const char*>(b.data()), window);
    if (head.find("<svg") != std::string_view::npos) return ImageFormat::Svg;
  }
  return std::nullopt;
}

}  // namespace nic
