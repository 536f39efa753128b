#include <catch2/catch.hpp>

#include "nic/error.h"

TEST_CASE("every error code maps to its contract status and name", "[error]") {
  struct Case {
    nic::ErrorCode code;
    const char* name;
    int status;
  };
  const Case cases[] = {
      {nic::ErrorCode::InvalidPath, "INVALID_PATH", 400},       {nic::ErrorCode::InvalidParam, "INVALID_PARAM", 400},
      {nic::ErrorCode::MissingUrl, "MISSING_URL", 400},         {nic::ErrorCode::UrlTooLong, "URL_TOO_LONG", 414},
      {nic::ErrorCode::InvalidSignature, "INVALID_SIGNATURE", 403},
      {nic::ErrorCode::DomainNotAllowed, "DOMAIN_NOT_ALLOWED", 403},
      {nic::ErrorCode::PrivateHost, "PRIVATE_HOST", 403},       {nic::ErrorCode::HttpsRequired, "HTTPS_REQUIRED", 403},
      {nic::ErrorCode::ImageNotFound, "IMAGE_NOT_FOUND", 404},  {nic::ErrorCode::ImageTooLarge, "IMAGE_TOO_LARGE", 413},
      {nic::ErrorCode::UnsupportedFormat, "UNSUPPORTED_FORMAT", 415},
      {nic::ErrorCode::TooManyPixels, "TOO_MANY_PIXELS", 422},  {nic::ErrorCode::CorruptImage, "CORRUPT_IMAGE", 422},
      {nic::ErrorCode::RateLimited, "RATE_LIMITED", 429},       {nic::ErrorCode::UpstreamError, "UPSTREAM_ERROR", 502},
      {nic::ErrorCode::NotionApiError, "NOTION_API_ERROR", 502}, {nic::ErrorCode::Overloaded, "OVERLOADED", 503},
      {nic::ErrorCode::UpstreamTimeout, "UPSTREAM_TIMEOUT", 504},
      {nic::ErrorCode::MissingApiKey, "MISSING_API_KEY", 401},  {nic::ErrorCode::InvalidApiKey, "INVALID_API_KEY", 401},
      {nic::ErrorCode::NotFound, "NOT_FOUND", 404},             {nic::ErrorCode::MethodNotAllowed, "METHOD_NOT_ALLOWED", 405},
      {nic::ErrorCode::HeadersTooLarge, "HEADERS_TOO_LARGE", 431},
      {nic::ErrorCode::Internal, "INTERNAL", 500},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    CHECK(nic::to_string(c.code) == c.name);
    CHECK(nic::http_status(c.code) == c.status);
    CHECK(nic::parse_error_code(c.name) == c.code);
  }
  CHECK_FALSE(nic::parse_error_code("NOPE"));
}

TEST_CASE("error_json is the contract's body and escapes its strings", "[error]") {
  const nic::Error e{nic::ErrorCode::ImageNotFound, "no \"such\" image\n\x01"};
  CHECK(nic::error_json(e, "req-1") ==
        R"({"error":{"status":404,"code":"IMAGE_NOT_FOUND","message":"no \"such\" image\n\u0001","requestId":"req-1"}})");
}

TEST_CASE("Result holds a value or an error", "[error]") {
  nic::Result<int> ok = 5;
  REQUIRE(ok.ok());
  CHECK(*ok == 5);
  nic::Result<int> bad = nic::make_error(nic::ErrorCode::InvalidParam, "x");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == nic::ErrorCode::InvalidParam);
}
