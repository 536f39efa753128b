// The canonical cache key, shared byte for byte by the edge and the origin:
//   v1/{workspace}/{id}/{percent-encoded filename}?fit=..&fmt=..&h=..&q=..&w=..
// Parameters sorted by name; only those present after normalisation; fmt is
// always there (the negotiated token). Storage names it by its SHA-256 hex.
#pragma once

#include <string>
#include <string_view>

#include "nic/error.h"
#include "nic/negotiate.h"
#include "nic/params.h"
#include "nic/route.h"

namespace nic {

std::string cache_key(const ImagePath& image, const NormalizedParams& params, FormatChoice choice);
std::string cache_key_hash(std::string_view key);  // lower-case hex SHA-256

// The source (original bytes) of an image: v1/{workspace}/{id}/source.
std::string source_key(std::string_view workspace, std::string_view id);

// Everything a host needs to know about an /img request, computed once:
// parse -> verify signature -> normalise -> negotiate -> key.
struct ImageRequest {
  ImagePath image;
  TransformParams requested;
  NormalizedParams params;
  FormatChoice choice;
  bool vary_accept = false;
  std::string key;
  std::string key_hash;
};

// hmac_secret empty -> signatures not required.
Result<ImageRequest> prepare_image_request(const ImagePath& image, std::string_view path,
                                           std::string_view query, std::string_view accept,
                                           const CoreSettings& settings,
                                           std::string_view hmac_secret);

}  // namespace nic
