// ALLOWED_DOMAINS: which upstream file hosts may be fetched.
//   "prod-files-secure.s3.us-west-2.amazonaws.com" -> https only, any port 443
//   "http://127.0.0.1:9002" -> exactly that scheme, host and port
//   ".example.com" -> that domain's subdomains (https)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nic/error.h"
#include "nic/url.h"

namespace nic {

struct AllowedHost {
  std::string scheme;      // empty: https only
  std::string host;        // lower-case; leading '.' = suffix match
  std::uint16_t port = 0;  // 0: the scheme's default
};

std::vector<AllowedHost> default_allowed_hosts();
std::string_view default_allowed_domains();  // the default as a setting string
Result<std::vector<AllowedHost>> parse_allowed_hosts(std::string_view text);

// DOMAIN_NOT_ALLOWED, or HTTPS_REQUIRED for plain http to a host only allowed over https.
Status check_allowed(const Url& url, const std::vector<AllowedHost>& allowed);

// Whether the entry that allows `url` names its host literally (so a private
// or loopback address is permitted for it).
bool allowed_literally(const Url& url, const std::vector<AllowedHost>& allowed);

}  // namespace nic
