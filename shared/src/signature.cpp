#include "nic/signature.h"

#include <algorithm>
#include <vector>

#include "nic/percent.h"
#include "nic/sha256.h"

namespace nic {

std::string signing_payload(std::string_view path, std::string_view query) {
  std::vector<RawParam> params;
  for (const auto& p : split_query(query)) {
    if (p.name != "sig") params.push_back(p);
  }
  std::sort(params.begin(), params.end(), [](const RawParam& a, const RawParam& b) {
    return a.name != b.name ? a.name < b.name : a.value < b.value;
  });
  std::string out(path);
  out += '?';
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (i > 0) out += '&';
    out += params[i].name;
    out += '=';
    out += params[i].value;
  }
  return out;
}

std::string compute_signature(std::string_view secret, std::string_view path, std::string_view query) {
  return base64url_encode(hmac_sha256(secret, signing_payload(path, query)));
}

Status verify_signature(std::string_view secret, std::string_view path, std::string_view query) {
  std::string_view given;
  int count = 0;
  for (const auto& p : split_query(query)) {
    if (p.name == "sig") {
      given = p.value;
      ++count;
    }
  }
  if (count == 0 || given.empty()) return make_error(ErrorCode::InvalidSignature, "missing sig parameter");
  if (count > 1) return make_error(ErrorCode::InvalidSignature, "sig given more than once");
  const auto decoded = base64url_decode(given);
  const Digest expected = hmac_sha256(secret, signing_payload(path, query));
  if (!decoded || !constant_time_equal(*decoded, expected)) {
    return make_error(ErrorCode::InvalidSignature, "signature does not match");
  }
  return Ok{};
}

std::string sign_url(std::string_view secret, std::string_view path, std::string_view query) {
  std::string out(path);
  std::string rest;
  for (const auto& p : split_query(query)) {
    if (p.name == "sig") continue;
    if (!rest.empty()) rest += '&';
    rest += p.name;
    rest += '=';
    rest += p.value;
  }
  out += '?';
  out += rest;
  if (!rest.empty()) out += '&';
  out += "sig=";
  out += compute_signature(secret, path, rest);
  return out;
}

}  // namespace nic
