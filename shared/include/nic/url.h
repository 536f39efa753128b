// A small absolute-URL parser (http/https only) for upstream URLs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "nic/error.h"

namespace nic {

struct Url {
  std::string scheme;  // lower-case: "http" or "https"
  std::string host;    // lower-case; IPv6 without brackets
  std::uint16_t port = 0;  // explicit or the scheme's default
  std::string path;    // raw, starts with '/'
  std::string query;   // raw, without '?'
};

// Rejects userinfo, non-http(s) schemes, bad ports, control characters.
Result<Url> parse_url(std::string_view text, ErrorCode code = ErrorCode::InvalidParam);

// True for IP literals that must never be fetched unless an ALLOWED_DOMAINS
// entry names them: loopback, unspecified, private (RFC 1918, fc00::/7),
// link-local (incl. 169.254.169.254 cloud metadata), CGNAT, documentation,
// benchmarking, multicast, reserved; site-local fec0::/10, 6to4 2002::/16,
// Teredo and the rest of 2001::/23, 64:ff9b:1::/48, 100::/64, ::/96; and the
// IPv4-mapped/-translated/NAT64 forms of a private IPv4 address.
bool is_private_address(std::string_view ip_literal);
bool is_ip_literal(std::string_view host);

}  // namespace nic
