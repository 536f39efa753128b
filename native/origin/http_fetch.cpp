#include "http_fetch.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <sys/socket.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>

#include "curl_handles.h"
#include "nic/text.h"
#include "nic/url.h"

namespace nic::origin {
namespace {

struct AddrinfoDeleter {
  void operator()(addrinfo* a) const { freeaddrinfo(a); }
};
using Addrinfo = std::unique_ptr<addrinfo, AddrinfoDeleter>;

struct Sink {
  HttpResponse* response;
  std::uint64_t max_bytes;
  std::uint64_t announced = 0;  // Content-Length within the limit: the body's buffer is reserved once
  const ReserveBody* reserve = nullptr;
  bool too_large = false;
  bool reserved = false;  // this response's body is charged
  bool refused = false;   // the charge was refused: aborted
};

// False (abort) when the charge for `bytes` is refused.
bool charge(Sink& sink, std::uint64_t bytes) {
  if (sink.reserve == nullptr || !*sink.reserve || sink.reserved) return true;
  sink.reserved = true;
  if ((*sink.reserve)(bytes)) return true;
  sink.refused = true;
  return false;
}

bool iequals_prefix(std::string_view line, std::string_view name) {
  if (line.size() < name.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
  }
  return true;
}

std::string header_value(std::string_view line, std::size_t name_len) {
  std::string_view v = line.substr(name_len);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
  return std::string(v);
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {
    // A new response (e.g. after 100 Continue): forget earlier headers.
    sink->response->content_type.clear();
    sink->response->retry_after.clear();
    sink->response->location.clear();
    sink->announced = 0;
    sink->reserved = false;
  } else if (iequals_prefix(line, "content-type:")) {
    sink->response->content_type = header_value(line, 13);
  } else if (iequals_prefix(line, "retry-after:")) {
    sink->response->retry_after = header_value(line, 12);
  } else if (iequals_prefix(line, "location:")) {
    sink->response->location = header_value(line, 9);
  } else if (iequals_prefix(line, "content-length:")) {
    // Not trusted for safety (the body is counted), only to refuse early.
    const std::string v = header_value(line, 15);
    char* end = nullptr;
    const unsigned long long len = std::strtoull(v.c_str(), &end, 10);
    if (end != v.c_str() && len > sink->max_bytes) {
      sink->too_large = true;
      return 0;
    }
    if (end != v.c_str() && !charge(*sink, len)) return 0;
    // Reserved (address space, not touched) so a multi-MB body is not copied
    // at every doubling; a lying length only costs address space up to the limit.
    sink->announced = end != v.c_str() ? len : 0;
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const std::size_t len = size * n;
  Bytes& body = *sink->response->body;
  if (body.size() + len > sink->max_bytes) {
    sink->too_large = true;
    return 0;  // aborts the transfer
  }
  if (!charge(*sink, sink->max_bytes)) return 0;  // no Content-Length: the most it may take
  if (body.empty() && sink->announced > body.capacity()) body.reserve(sink->announced);
  body.insert(body.end(), reinterpret_cast<std::uint8_t*>(data),
              reinterpret_cast<std::uint8_t*>(data) + len);
  return len;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The scheme of an absolute URI reference (RFC 3986 3.1: ALPHA *( ALPHA /
// DIGIT / "+" / "-" / "." ) ":"), lower-case; empty for a relative reference.
std::string uri_scheme(std::string_view ref) {
  const auto colon = ref.find(':');
  if (colon == std::string_view::npos || colon == 0) return {};
  std::string scheme;
  for (std::size_t i = 0; i < colon; ++i) {
    const auto c = static_cast<unsigned char>(ref[i]);
    const bool ok = std::isalpha(c) || (i > 0 && (std::isdigit(c) || c == '+' || c == '-' || c == '.'));
    if (!ok) return {};
    scheme += static_cast<char>(std::tolower(c));
  }
  return scheme;
}

bool has_space_or_control(std::string_view text) {
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return true;
  }
  return false;
}

// A part of a CURLU handle, or nullopt when the URL has none.
std::optional<std::string> url_part(CURLU* handle, CURLUPart what, unsigned flags = 0) {
  char* value = nullptr;
  if (curl_url_get(handle, what, &value, flags) != CURLUE_OK || value == nullptr) return std::nullopt;
  std::string out(value);
  curl_free(value);
  return out;
}

}  // namespace

namespace {
std::atomic<bool> g_abort_transfers{false};

int on_progress(void*, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return g_abort_transfers.load(std::memory_order_relaxed) ? 1 : 0;
}
}  // namespace

void abort_transfers() { g_abort_transfers.store(true); }

void global_http_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

Result<UpstreamUrl> UpstreamUrl::parse(std::string_view text, ErrorCode code) {
  if (has_space_or_control(text)) return make_error(code, "invalid URL: contains a space or control character");
  CurlUrl handle(curl_url());
  if (!handle) return make_error(ErrorCode::Internal, "curl_url failed");
  const std::string copy(text);
  if (const CURLUcode rc = curl_url_set(handle.get(), CURLUPART_URL, copy.c_str(), 0); rc != CURLUE_OK) {
    return make_error(code, std::string("invalid URL: ") + curl_url_strerror(rc));
  }
  return from_handle(std::move(handle), code);
}

Result<UpstreamUrl> UpstreamUrl::follow(std::string_view location, ErrorCode code) const {
  if (has_space_or_control(location)) {
    return make_error(code, "invalid redirect: contains a space or control character");
  }
  CurlUrl next(curl_url_dup(handle_.get()));
  if (!next) return make_error(ErrorCode::Internal, "curl_url_dup failed");
  const std::string copy(location);
  // Relative references (path, "//host/...") are resolved against this URL.
  if (const CURLUcode rc = curl_url_set(next.get(), CURLUPART_URL, copy.c_str(), 0); rc != CURLUE_OK) {
    return make_error(code, std::string("invalid redirect: ") + curl_url_strerror(rc));
  }
  return from_handle(std::move(next), code);
}

Result<UpstreamUrl> UpstreamUrl::from_handle(CurlUrl handle, ErrorCode code) {
  auto bad = [&](std::string_view why) { return make_error(code, "invalid URL: " + std::string(why)); };
  CURLU* h = handle.get();
  Url url;
  url.scheme = ascii_lower(url_part(h, CURLUPART_SCHEME).value_or(""));
  if (url.scheme != "http" && url.scheme != "https") return bad("only http and https are supported");
  if (url_part(h, CURLUPART_USER) || url_part(h, CURLUPART_PASSWORD) || url_part(h, CURLUPART_OPTIONS)) {
    return bad("credentials are not allowed");
  }
  if (url_part(h, CURLUPART_ZONEID)) return bad("IPv6 zone ids are not allowed");
  std::string host = ascii_lower(url_part(h, CURLUPART_HOST).value_or(""));
  const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  const std::string_view bare = bracketed ? std::string_view(host).substr(1, host.size() - 2) : std::string_view(host);
  if (bare.empty()) return bad("missing host");
  if (bracketed && !is_ip_literal(bare)) return bad("bad IPv6 literal");
  for (char c : bare) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                    (bracketed && c == ':');
    if (!ok) return bad("bad character in host");
  }
  // The lower-case host goes back into the handle: the name curl connects
  // to is then byte for byte the one checked and pinned.
  if (curl_url_set(h, CURLUPART_HOST, host.c_str(), 0) != CURLUE_OK) return bad("bad host");
  url.host = std::string(bare);
  const std::string port = url_part(h, CURLUPART_PORT, CURLU_DEFAULT_PORT).value_or("");
  unsigned long port_value = 0;
  for (char c : port) {
    if (c < '0' || c > '9' || port_value > 65535) return bad("bad port");
    port_value = port_value * 10 + static_cast<unsigned long>(c - '0');
  }
  if (port_value == 0 || port_value > 65535) return bad("bad port");
  url.port = static_cast<std::uint16_t>(port_value);
  url.path = url_part(h, CURLUPART_PATH).value_or("/");
  if (url.path.empty()) url.path = "/";
  url.query = url_part(h, CURLUPART_QUERY).value_or("");
  UpstreamUrl out;
  out.handle_ = std::move(handle);
  out.parts_ = std::move(url);
  return out;
}

namespace {

// Sets up and runs one transfer on `h`, whose URL is already set.
Result<HttpResponse> perform(CURL* h, const TransferOptions& options) {
  HttpResponse response;
  Sink sink{&response, options.max_bytes, 0, &options.reserve};
  CurlSlist headers;
  for (const auto& hdr : options.headers) {
    curl_slist* next = curl_slist_append(headers.get(), hdr.c_str());
    if (next == nullptr) return make_error(ErrorCode::Internal, "curl_slist_append failed");
    (void)headers.release();
    headers.reset(next);
  }
  CurlSlist resolve;
  for (const auto& r : options.resolve) {
    curl_slist* next = curl_slist_append(resolve.get(), r.c_str());
    if (next == nullptr) return make_error(ErrorCode::Internal, "curl_slist_append failed");
    (void)resolve.release();
    resolve.reset(next);
  }
  bool ok = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_PROXY, "") == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<std::int64_t>(1, options.timeout_ms))) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::max<std::int64_t>(1, options.timeout_ms))) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_USERAGENT, "nic-origin/" NIC_VERSION) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_HEADERDATA, &sink) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, nullptr) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress) == CURLE_OK;
  if (ok && headers) ok = curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get()) == CURLE_OK;
  if (ok && resolve) ok = curl_easy_setopt(h, CURLOPT_RESOLVE, resolve.get()) == CURLE_OK;
  if (!ok) return make_error(ErrorCode::Internal, "curl_easy_setopt failed");

  const CURLcode rc = curl_easy_perform(h);
  if (sink.refused) {
    return make_error(ErrorCode::Overloaded,
                      "too many large images in flight for TRANSFORM_MEMORY_BYTES; retry shortly");
  }
  if (sink.too_large) {
    return make_error(ErrorCode::ImageTooLarge,
                      "upstream body exceeds MAX_IMAGE_SIZE_BYTES (" + std::to_string(options.max_bytes) + ")");
  }
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return make_error(ErrorCode::UpstreamTimeout,
                      "upstream did not answer within " + std::to_string(options.timeout_ms) + " ms");
  }
  if (rc != CURLE_OK) {
    return make_error(ErrorCode::UpstreamError, std::string("upstream transfer failed: ") + curl_easy_strerror(rc));
  }
  if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status) != CURLE_OK) {
    return make_error(ErrorCode::UpstreamError, "no HTTP status from upstream");
  }
  return response;
}

}  // namespace

Result<HttpResponse> http_get(const std::string& url, const TransferOptions& options) {
  global_http_init();
  CurlEasy easy(curl_easy_init());
  if (!easy) return make_error(ErrorCode::Internal, "curl_easy_init failed");
  if (curl_easy_setopt(easy.get(), CURLOPT_URL, url.c_str()) != CURLE_OK) {
    return make_error(ErrorCode::Internal, "curl_easy_setopt failed");
  }
  return perform(easy.get(), options);
}

Result<HttpResponse> http_get(const UpstreamUrl& url, const TransferOptions& options) {
  global_http_init();
  CurlEasy easy(curl_easy_init());
  if (!easy) return make_error(ErrorCode::Internal, "curl_easy_init failed");
  if (curl_easy_setopt(easy.get(), CURLOPT_CURLU, url.handle()) != CURLE_OK) {
    return make_error(ErrorCode::Internal, "curl_easy_setopt failed");
  }
  return perform(easy.get(), options);
}

Result<std::vector<std::string>> resolve_checked(const std::string& host, std::uint16_t port,
                                                 bool literal_ok) {
  if (is_ip_literal(host)) {
    if (!literal_ok && is_private_address(host)) {
      return make_error(ErrorCode::PrivateHost, "upstream address " + host + " is private");
    }
    return std::vector<std::string>{};
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* raw = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &raw);
  Addrinfo list(raw);
  if (rc != 0 || !list) {
    return make_error(ErrorCode::UpstreamError, "cannot resolve " + host + ": " + gai_strerror(rc));
  }
  std::vector<std::string> addresses;
  for (const addrinfo* a = list.get(); a != nullptr; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* src = nullptr;
    if (a->ai_family == AF_INET) {
      src = &reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr;
    } else if (a->ai_family == AF_INET6) {
      src = &reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr;
    } else {
      continue;
    }
    if (inet_ntop(a->ai_family, src, text, sizeof text) == nullptr) continue;
    const std::string addr(text);
    if (!literal_ok && is_private_address(addr)) {
      return make_error(ErrorCode::PrivateHost, host + " resolves to the private address " + addr);
    }
    bool seen = false;
    for (const auto& x : addresses) seen = seen || x == addr;
    if (!seen) addresses.push_back(addr);
  }
  if (addresses.empty()) return make_error(ErrorCode::UpstreamError, "no usable address for " + host);
  std::string pin = host + ":" + std::to_string(port) + ":";
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    if (i) pin += ',';
    pin += addresses[i].find(':') != std::string::npos ? "[" + addresses[i] + "]" : addresses[i];
  }
  return std::vector<std::string>{pin};
}

Result<HttpResponse> download(const std::string& start_url, const std::vector<AllowedHost>& allowed,
                              const DownloadOptions& options) {
  global_http_init();
  const std::int64_t deadline = now_ms() + options.timeout_ms;
  auto target = UpstreamUrl::parse(start_url, ErrorCode::UpstreamError);
  if (!target) return target.take_error();
  for (int hop = 0;; ++hop) {
    const Url& url = target->parts();
    if (auto s = check_allowed(url, allowed); !s) return s.take_error();
    auto pins = resolve_checked(url.host, url.port, allowed_literally(url, allowed));
    if (!pins) return pins.take_error();
    const std::int64_t left = deadline - now_ms();
    if (left <= 0) {
      return make_error(ErrorCode::UpstreamTimeout,
                        "upstream did not answer within " + std::to_string(options.timeout_ms) + " ms");
    }
    TransferOptions t;
    t.max_bytes = options.max_bytes;
    t.reserve = options.reserve;
    t.timeout_ms = left;
    t.resolve = std::move(*pins);
    auto r = http_get(*target, t);
    if (!r) return r;
    const long status = r->status;
    if (status == 301 || status == 302 || status == 303 || status == 307 || status == 308) {
      if (r->location.empty()) return make_error(ErrorCode::UpstreamError, "redirect without Location");
      if (hop >= options.max_redirects) return make_error(ErrorCode::UpstreamError, "too many redirects");
      // Only http(s) hops can be in ALLOWED_DOMAINS; anything else (ftp:,
      // file:, data:) is refused as a host not allowed, not as a bad upstream.
      if (const std::string scheme = uri_scheme(r->location);
          !scheme.empty() && scheme != "http" && scheme != "https") {
        return make_error(ErrorCode::DomainNotAllowed, "redirect to a non-http(s) URL refused: " + scheme + ":");
      }
      auto next = target->follow(r->location, ErrorCode::UpstreamError);
      if (!next) return next.take_error();
      target = std::move(next);
      continue;
    }
    return r;
  }
}

}  // namespace nic::origin
