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

// The source group of an id: its stored original and every variant made from
// it, under any workspace. Notion ids (block and file UUIDs) are global, so a
// source is keyed by the id alone: N workspace strings for one id cost one
// Notion call and one download, and a purge reaches all of them.
//   source_group("abc")    == "v1/*/abc/"   ('*' is never a workspace)
//   source_key("abc")      == "v1/*/abc/source"
//   source_group_of(k)     == the group of a variant key "v1/{ws}/{id}/..."
//                             or of a source key; "" for anything else.
std::string source_group(std::string_view id);
std::string source_key(std::string_view id);
std::string source_group_of(std::string_view key);

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
