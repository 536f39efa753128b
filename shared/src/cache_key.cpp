#include "nic/cache_key.h"

#include "nic/percent.h"
#include "nic/sha256.h"
#include "nic/signature.h"

namespace nic {

std::string cache_key(const ImagePath& image, const NormalizedParams& params, FormatChoice choice) {
  std::string key = "v1/";
  key += image.workspace;
  key += '/';
  key += image.id;
  key += '/';
  key += percent_encode(image.filename);
  key += '?';
  // Sorted by name: fit, fmt, h, q, w.
  if (params.fit_in_key) {
    key += "fit=";
    key += to_string(params.fit);
    key += '&';
  }
  key += "fmt=";
  key += key_token(choice);
  if (params.h) key += "&h=" + std::to_string(*params.h);
  if (params.q) key += "&q=" + std::to_string(*params.q);
  if (params.w) key += "&w=" + std::to_string(*params.w);
  return key;
}

std::string cache_key_hash(std::string_view key) { return sha256_hex(key); }

std::string source_group(std::string_view id) {
  std::string group = "v1/*/";
  group += id;
  group += '/';
  return group;
}

std::string source_key(std::string_view id) { return source_group(id) + "source"; }

std::string source_group_of(std::string_view key) {
  // v1/{workspace or *}/{id}/...
  if (!key.starts_with("v1/")) return {};
  const std::size_t ws_end = key.find('/', 3);
  if (ws_end == std::string_view::npos || ws_end == 3) return {};
  const std::size_t id_end = key.find('/', ws_end + 1);
  if (id_end == std::string_view::npos || id_end == ws_end + 1) return {};
  return source_group(key.substr(ws_end + 1, id_end - ws_end - 1));
}

Result<ImageRequest> prepare_image_request(const ImagePath& image, std::string_view path,
                                           std::string_view query, std::string_view accept,
                                           const CoreSettings& settings,
                                           std::string_view hmac_secret) {
  auto params = parse_params(split_query(query));
  if (!params) return params.take_error();
  if (!hmac_secret.empty()) {
    if (auto st = verify_signature(hmac_secret, path, query); !st) return st.take_error();
  }
  ImageRequest req;
  req.image = image;
  req.requested = *params;
  req.requested.sig.reset();  // points into the caller's query; not needed past here
  req.params = normalize(*params, settings);
  req.choice = negotiate(req.params.fmt, accept);
  req.vary_accept = varies_on_accept(req.params.fmt);
  req.key = cache_key(image, req.params, req.choice);
  req.key_hash = cache_key_hash(req.key);
  return req;
}

}  // namespace nic
