// URL signatures: sig = base64url(HMAC-SHA256(secret, path + "?" + the other
// query parameters sorted by name as k=v joined by &)). Raw (still encoded)
// path and parameters are signed, so signer and verifier agree byte for byte.
#pragma once

#include <string>
#include <string_view>

#include "nic/error.h"

namespace nic {

std::string signing_payload(std::string_view path, std::string_view query);
std::string compute_signature(std::string_view secret, std::string_view path,
                              std::string_view query);
// Missing or wrong -> INVALID_SIGNATURE.
Status verify_signature(std::string_view secret, std::string_view path, std::string_view query);
// path?query&sig=... (any existing sig replaced).
std::string sign_url(std::string_view secret, std::string_view path, std::string_view query);

}  // namespace nic
