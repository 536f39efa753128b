// Errors as values: the contract's error codes, their HTTP statuses and the
// JSON body. The core never throws; wasm32-wasi has no exceptions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace nic {

enum class ErrorCode : std::uint8_t {
  InvalidPath,
  InvalidParam,
  MissingUrl,
  UrlTooLong,
  InvalidSignature,
  DomainNotAllowed,
  PrivateHost,
  HttpsRequired,
  ImageNotFound,
  ImageTooLarge,
  UnsupportedFormat,
  TooManyPixels,
  CorruptImage,
  RateLimited,
  UpstreamError,
  NotionApiError,
  Overloaded,
  UpstreamTimeout,
  MissingApiKey,
  InvalidApiKey,
  NotFound,          // no such route
  MethodNotAllowed,  // route exists, method does not
  HeadersTooLarge,   // request header section over the server's limit (431)
  Internal,
};

// "IMAGE_NOT_FOUND" etc.
std::string_view to_string(ErrorCode code);
std::optional<ErrorCode> parse_error_code(std::string_view text);
// The one mapping from error codes to HTTP statuses.
int http_status(ErrorCode code);

struct Error {
  ErrorCode code;
  std::string message;
};

// The contract's body:
// {"error":{"status":404,"code":"IMAGE_NOT_FOUND","message":"...","requestId":"..."}}
std::string error_json(const Error& error, std::string_view request_id);

// JSON string escaping (quotes not included).
std::string json_escape(std::string_view text);

// A value or an Error, like std::expected.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}           // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}       // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(v_); }
  Error&& take_error() { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>.
struct Ok {};
using Status = Result<Ok>;

inline Error make_error(ErrorCode code, std::string message) {
  return Error{code, std::move(message)};
}

}  // namespace nic
