#include "nic/error.h"

#include <array>

namespace nic {
namespace {

struct ErrorInfo {
  ErrorCode code;
  std::string_view name;
  int status;
};

constexpr std::array<ErrorInfo, 24> kErrors{{
    {ErrorCode::InvalidPath, "INVALID_PATH", 400},
    {ErrorCode::InvalidParam, "INVALID_PARAM", 400},
    {ErrorCode::MissingUrl, "MISSING_URL", 400},
    {ErrorCode::UrlTooLong, "URL_TOO_LONG", 414},
    {ErrorCode::InvalidSignature, "INVALID_SIGNATURE", 403},
    {ErrorCode::DomainNotAllowed, "DOMAIN_NOT_ALLOWED", 403},
    {ErrorCode::PrivateHost, "PRIVATE_HOST", 403},
    {ErrorCode::HttpsRequired, "HTTPS_REQUIRED", 403},
    {ErrorCode::ImageNotFound, "IMAGE_NOT_FOUND", 404},
    {ErrorCode::ImageTooLarge, "IMAGE_TOO_LARGE", 413},
    {ErrorCode::UnsupportedFormat, "UNSUPPORTED_FORMAT", 415},
    {ErrorCode::TooManyPixels, "TOO_MANY_PIXELS", 422},
    {ErrorCode::CorruptImage, "CORRUPT_IMAGE", 422},
    {ErrorCode::RateLimited, "RATE_LIMITED", 429},
    {ErrorCode::UpstreamError, "UPSTREAM_ERROR", 502},
    {ErrorCode::NotionApiError, "NOTION_API_ERROR", 502},
    {ErrorCode::Overloaded, "OVERLOADED", 503},
    {ErrorCode::UpstreamTimeout, "UPSTREAM_TIMEOUT", 504},
    {ErrorCode::MissingApiKey, "MISSING_API_KEY", 401},
    {ErrorCode::InvalidApiKey, "INVALID_API_KEY", 401},
    {ErrorCode::NotFound, "NOT_FOUND", 404},
    {ErrorCode::MethodNotAllowed, "METHOD_NOT_ALLOWED", 405},
    {ErrorCode::HeadersTooLarge, "HEADERS_TOO_LARGE", 431},
    {ErrorCode::Internal, "INTERNAL", 500},
}};

const ErrorInfo& info(ErrorCode code) {
  for (const auto& e : kErrors) {
    if (e.code == code) return e;
  }
  return kErrors.back();
}

}  // namespace

std::string_view to_string(ErrorCode code) { return info(code).name; }

std::optional<ErrorCode> parse_error_code(std::string_view text) {
  for (const auto& e : kErrors) {
    if (e.name == text) return e.code;
  }
  return std::nullopt;
}

int http_status(ErrorCode code) { return info(code).status; }

std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          // No printf: it would pull WASI imports into the edge module.
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += ch;
        }
    }
  }
  return out;
}

std::string error_json(const Error& error, std::string_view request_id) {
  std::string out = "{\"error\":{\"status\":";
  out += std::to_string(http_status(error.code));
  out += ",\"code\":\"";
  out += to_string(error.code);
  out += "\",\"message\":\"";
  out += json_escape(error.message);
  out += "\",\"requestId\":\"";
  out += json_escape(request_id);
  out += "\"}}";
  return out;
}

}  // namespace nic
