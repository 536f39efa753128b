// Image formats: what a request asks for and what bytes actually are.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace nic {

// The `fmt` parameter.
enum class RequestedFormat : std::uint8_t { Auto, Webp, Avif, Jpeg, Png, Original };

// A concrete encoding.
enum class ImageFormat : std::uint8_t { Jpeg, Png, Webp, Avif, Gif, Svg };

// "auto|webp|avif|jpeg|jpg|png|original"; jpg parses as Jpeg.
std::optional<RequestedFormat> parse_requested_format(std::string_view text);
std::string_view to_string(RequestedFormat f);

std::string_view to_string(ImageFormat f);        // "jpeg", "png", ...
std::string_view content_type(ImageFormat f);     // "image/jpeg", ...
std::optional<ImageFormat> format_from_content_type(std::string_view mime);

// Sniffs magic bytes (never the name or the upstream Content-Type).
std::optional<ImageFormat> sniff_format(std::span<const std::uint8_t> bytes);

}  // namespace nic
