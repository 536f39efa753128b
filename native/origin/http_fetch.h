// Outbound HTTP with libcurl, blocking (called on the fetch pool, never on an
// I/O thread). `download` is the guarded path for image files: only hosts in
// ALLOWED_DOMAINS, every redirect hop checked again, names resolved here and
// pinned (so curl cannot reach an address we did not check), private and
// metadata addresses refused unless the entry names them, a byte cap enforced
// while streaming and one deadline for the whole transfer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "image.h"
#include "nic/allowed_hosts.h"
#include "nic/error.h"

namespace nic::origin {

struct HttpResponse {
  long status = 0;
  std::string content_type;
  std::string retry_after;
  std::string location;
  std::shared_ptr<Bytes> body = std::make_shared<Bytes>();
  std::string body_text() const { return std::string(body->begin(), body->end()); }
};

struct TransferOptions {
  std::vector<std::string> headers;  // "Name: value"
  std::uint64_t max_bytes = 1 << 20;
  std::int64_t timeout_ms = 15000;
  std::vector<std::string> resolve;  // CURLOPT_RESOLVE pins "host:port:addr"
};

// One request, no redirects followed. Errors: UPSTREAM_TIMEOUT, IMAGE_TOO_LARGE
// (body over max_bytes), UPSTREAM_ERROR (connection, truncated body, ...).
Result<HttpResponse> http_get(const std::string& url, const TransferOptions& options);

struct DownloadOptions {
  std::uint64_t max_bytes = 26214400;
  std::int64_t timeout_ms = 15000;
  int max_redirects = 5;
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

}  // namespace nic::origin
