// Outbound HTTP with libcurl, blocking (called on the fetch pool, never on an
// I/O thread). `download` is the guarded path for image files: only hosts in
// ALLOWED_DOMAINS, every redirect hop checked again, names resolved here and
// pinned (so curl cannot reach an address we did not check), private and
// metadata addresses refused unless the entry names them, a byte cap enforced
// while streaming and one deadline for the whole transfer. Each URL is parsed
// once, by libcurl (CURLU): the checks read the parts of the handle that the
// transfer is then given, so the check and the fetch cannot disagree.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "curl_handles.h"
#include "image.h"
#include "nic/allowed_hosts.h"
#include "nic/error.h"
#include "nic/url.h"

namespace nic::origin {

struct HttpResponse {
  long status = 0;
  std::string content_type;
  std::string retry_after;
  std::string location;
  std::shared_ptr<Bytes> body = std::make_shared<Bytes>();
  std::string body_text() const { return std::string(body->begin(), body->end()); }
};

// Charges the memory a response body will take before it is received: called
// once per response with its Content-Length, or with max_bytes at the first
// body byte when no length was given; false aborts the transfer (OVERLOADED).
// A later call (a redirect's next hop) replaces the earlier charge.
using ReserveBody = std::function<bool(std::uint64_t bytes)>;

struct TransferOptions {
  std::vector<std::string> headers;  // "Name: value"
  std::uint64_t max_bytes = 1 << 20;
  ReserveBody reserve;  // none: not charged
  std::int64_t timeout_ms = 15000;
  std::vector<std::string> resolve;  // CURLOPT_RESOLVE pins "host:port:addr"
};

// An upstream URL as libcurl parses it: the handle a transfer uses and the
// parts (scheme and host lower-case, IPv6 without brackets, the port filled
// in) that ALLOWED_DOMAINS and the address check judge. Refused: schemes
// other than http(s), credentials, IPv6 zone ids, spaces and control
// characters, host names with characters outside [a-z0-9._-].
class UpstreamUrl {
 public:
  static Result<UpstreamUrl> parse(std::string_view text, ErrorCode code);
  // A redirect's Location, resolved against this URL by libcurl.
  Result<UpstreamUrl> follow(std::string_view location, ErrorCode code) const;
  const Url& parts() const { return parts_; }
  CURLU* handle() const { return handle_.get(); }

 private:
  static Result<UpstreamUrl> from_handle(CurlUrl handle, ErrorCode code);
  CurlUrl handle_;
  Url parts_;
};

// One request, no redirects followed. Errors: UPSTREAM_TIMEOUT, IMAGE_TOO_LARGE
// (body over max_bytes), UPSTREAM_ERROR (connection, truncated body, ...).
Result<HttpResponse> http_get(const std::string& url, const TransferOptions& options);
Result<HttpResponse> http_get(const UpstreamUrl& url, const TransferOptions& options);

struct DownloadOptions {
  std::uint64_t max_bytes = 26214400;
  std::int64_t timeout_ms = 15000;
  int max_redirects = 5;
  ReserveBody reserve;  // none: not charged
};

// Follows redirects itself. A non-2xx final answer is returned as a response
// (the caller tells an expired S3 signature from a missing file); a 2xx body
// is complete and within max_bytes.
Result<HttpResponse> download(const std::string& url, const std::vector<AllowedHost>& allowed,
                              const DownloadOptions& options);

// Resolves `host` and refuses private/loopback/link-local/metadata addresses
// unless `literal_ok`; returns CURLOPT_RESOLVE entries pinning the checked addresses.
Result<std::vector<std::string>> resolve_checked(const std::string& host, std::uint16_t port,
                                                 bool literal_ok);

void global_http_init();
// Shutdown: every transfer running or started from now on ends at once
// (within libcurl's progress interval, about a second) with UPSTREAM_ERROR.
void abort_transfers();

}  // namespace nic::origin
