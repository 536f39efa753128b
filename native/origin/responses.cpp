#include "responses.h"

#include <algorithm>

#include "nic/cache_policy.h"

namespace nic::origin {

SharedBytes bytes_of(std::string_view text) { return std::make_shared<const Bytes>(text.begin(), text.end()); }

ImageEntry entry_of(const StoredImage& image, std::string_view cache_control) {
  ImageEntry e;
  e.content_type = image.content_type;
  e.etag = image.etag;
  e.cache_control = cache_control;
  e.cache_key = image.key;
  e.original_size = image.original_size;
  e.optimized_size = image.bytes ? image.bytes->size() : 0;
  return e;
}

void seal(StoredImage& image, std::string_view cache_control) {
  std::string& b = image.header_block;
  b.clear();
  for (const auto& [name, value] : entry_headers(entry_of(image, cache_control))) {
    b += name;
    b += ": ";
    b += value;
    b += "\r\n";
  }
}

Response image_response(const Request& request, const ImageRequest& ireq, const SharedImage& image,
                        const Delivery& delivery, std::string_view cache_control) {
  Response r;
  const bool not_modified = !request.if_none_match.empty() && if_none_match(request.if_none_match, image->etag);
  if (!not_modified && !image->header_block.empty() && image->key == ireq.key) {
    // A 200 from a stored entry: its fixed headers were rendered when it was stored.
    r.headers = delivery_headers(delivery);
    r.preformatted = image->header_block;
    r.keep = image;
    r.body = image->bytes;
    return r;
  }
  auto decided = nic::image_response(entry_of(*image, cache_control), delivery, request.if_none_match);
  r.status = decided.status;
  r.headers = std::move(decided.headers);
  if (decided.body) {
    r.body = image->bytes;
  } else {
    r.no_body = true;
  }
  return r;
}

Response error_response(const Error& error, std::string_view request_id, std::int64_t retry_after_s) {
  Response r;
  r.status = http_status(error.code);
  r.headers = {{"Content-Type", "application/json"}, {"Cache-Control", std::string(kErrorCacheControl)}};
  if (error.code == ErrorCode::Overloaded || error.code == ErrorCode::RateLimited) {
    r.headers.emplace_back("Retry-After", std::to_string(std::max<std::int64_t>(1, retry_after_s)));
  }
  r.body = bytes_of(error_json(error, request_id));
  return r;
}

Response json_response(int status, std::string body) {
  Response r;
  r.status = status;
  r.headers = {{"Content-Type", "application/json"}, {"Cache-Control", "no-store"}};
  r.body = bytes_of(body);
  return r;
}

void finalize(Response& response, std::string_view request_id, const CorsDecision& cors) {
  response.headers.emplace_back("X-Request-Id", std::string(request_id));
  apply_cors(response.headers, cors);
}

}  // namespace nic::origin
