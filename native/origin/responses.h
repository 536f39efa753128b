// The origin's answers, no HTTP library in sight: the Request the server
// hands in, the Response it sends back, and how images, JSON and errors are
// turned into Responses by the shared response policy (nic/response_policy.h,
// the edge's too). A leaf: the routes, the pipeline and the API all use it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "image.h"
#include "nic/cache_key.h"
#include "nic/error.h"
#include "nic/response_policy.h"

namespace nic::origin {

struct Request {
  std::string method;
  std::string target;
  std::string accept;
  std::string if_none_match;
  std::string authorization;
  std::string api_key;     // X-API-Key
  std::string origin;      // Origin (CORS)
  std::string request_id;  // X-Request-Id from the front (the edge), used when well-formed
  std::string client_ip;
};

struct Response {
  int status = 200;
  Headers headers;
  SharedBytes body;  // null = empty
  // Header lines already in wire form ("Name: value\r\n"...), sent after
  // `headers` and valid while `keep` lives (an image's precomputed block).
  std::string_view preformatted;
  std::shared_ptr<const void> keep;
  bool head = false;     // headers only; Content-Length still tells the body's size
  bool no_body = false;  // 304/204: no Content-Length either
};

using Reply = std::function<void(Response)>;

SharedBytes bytes_of(std::string_view text);

// The entry's facts for the shared policy.
ImageEntry entry_of(const StoredImage& image, std::string_view cache_control);
// Renders the entry's fixed headers (the policy's entry_headers) into
// image.header_block, once, when it is stored: a hit only copies them.
void seal(StoredImage& image, std::string_view cache_control);

// 200 (with the entry's headers) or 304, by If-None-Match.
Response image_response(const Request& request, const ImageRequest& image_request, const SharedImage& image,
                        const Delivery& delivery, std::string_view cache_control);
// The contract's JSON error; Retry-After on 429 and 503.
Response error_response(const Error& error, std::string_view request_id, std::int64_t retry_after_s = 1);
Response json_response(int status, std::string body);

// What every answer gets last: X-Request-Id and the CORS headers.
void finalize(Response& response, std::string_view request_id, const CorsDecision& cors);

}  // namespace nic::origin
