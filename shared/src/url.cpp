#include "nic/url.h"

#include <array>
#include "nic/text.h"

namespace nic {
namespace {

// Strict dotted quad, decimal, no leading zeros beyond "0".
std::optional<std::array<std::uint8_t, 4>> parse_ipv4(std::string_view s) {
  std::array<std::uint8_t, 4> out{};
  for (int i = 0; i < 4; ++i) {
    const auto dot = s.find('.');
    const std::string_view part = i < 3 ? s.substr(0, dot) : s;
    if (i < 3 && dot == std::string_view::npos) return std::nullopt;
    if (part.empty() || part.size() > 3 || (part.size() > 1 && part[0] == '0')) return std::nullopt;
    int v = 0;
    for (char c : part) {
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + (c - '0');
    }
    if (v > 255) return std::nullopt;
    out[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v);
    if (i < 3) s = s.substr(dot + 1);
  }
  return out;
}

std::optional<std::array<std::uint16_t, 8>> parse_ipv6(std::string_view s) {
  std::array<std::uint16_t, 8> out{};
  std::array<std::uint16_t, 8> head{};
  std::array<std::uint16_t, 8> tail{};
  int nh = 0;
  int nt = 0;
  bool compressed = false;
  if (s.empty()) return std::nullopt;
  const auto dc = s.find("::");
  std::string_view left = s;
  std::string_view right;
  if (dc != std::string_view::npos) {
    compressed = true;
    left = s.substr(0, dc);
    right = s.substr(dc + 2);
    if (right.find("::") != std::string_view::npos) return std::nullopt;
  }
  auto parse_groups = [](std::string_view part, std::array<std::uint16_t, 8>& dst, int& n, bool allow_v4) {
    if (part.empty()) return true;
    while (true) {
      const auto colon = part.find(':');
      const std::string_view g = part.substr(0, colon);
      if (colon == std::string_view::npos && allow_v4 && g.find('.') != std::string_view::npos) {
        auto v4 = parse_ipv4(g);
        if (!v4 || n > 6) return false;
        dst[static_cast<std::size_t>(n++)] = static_cast<std::uint16_t>(((*v4)[0] << 8) | (*v4)[1]);
        dst[static_cast<std::size_t>(n++)] = static_cast<std::uint16_t>(((*v4)[2] << 8) | (*v4)[3]);
        return true;
      }
      if (g.empty() || g.size() > 4 || n >= 8) return false;
      unsigned v = 0;
      for (char c : g) {
        int d = -1;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        if (d < 0) return false;
        v = v * 16 + static_cast<unsigned>(d);
      }
      dst[static_cast<std::size_t>(n++)] = static_cast<std::uint16_t>(v);
      if (colon == std::string_view::npos) return true;
      part = part.substr(colon + 1);
    }
  };
  if (!parse_groups(left, head, nh, !compressed)) return std::nullopt;
  if (compressed && !parse_groups(right, tail, nt, true)) return std::nullopt;
  if (!compressed && nh != 8) return std::nullopt;
  if (compressed && nh + nt > 7) return std::nullopt;
  for (int i = 0; i < nh; ++i) out[static_cast<std::size_t>(i)] = head[static_cast<std::size_t>(i)];
  for (int i = 0; i < nt; ++i) out[static_cast<std::size_t>(8 - nt + i)] = tail[static_cast<std::size_t>(i)];
  return out;
}

// Not a public unicast address: "this network", RFC 1918, loopback, CGNAT,
// link-local (169.254.169.254 cloud metadata), IETF protocol assignments,
// the documentation nets, the 6to4 relay anycast, benchmarking, multicast,
// reserved and broadcast.
bool private_v4(const std::array<std::uint8_t, 4>& a) {
  return a[0] == 0 || a[0] == 10 || a[0] == 127 || (a[0] == 100 && (a[1] & 0xC0) == 64) ||
         (a[0] == 169 && a[1] == 254) || (a[0] == 172 && (a[1] & 0xF0) == 16) ||
         (a[0] == 192 && a[1] == 168) || (a[0] == 192 && a[1] == 0 && (a[2] == 0 || a[2] == 2)) ||
         (a[0] == 192 && a[1] == 88 && a[2] == 99) || (a[0] == 198 && (a[1] & 0xFE) == 18) ||
         (a[0] == 198 && a[1] == 51 && a[2] == 100) || (a[0] == 203 && a[1] == 0 && a[2] == 113) ||
         a[0] >= 224;
}

std::array<std::uint8_t, 4> low_v4(const std::array<std::uint16_t, 8>& g) {
  return {static_cast<std::uint8_t>(g[6] >> 8), static_cast<std::uint8_t>(g[6]), static_cast<std::uint8_t>(g[7] >> 8),
          static_cast<std::uint8_t>(g[7])};
}

}  // namespace

bool is_ip_literal(std::string_view host) { return parse_ipv4(host) || parse_ipv6(host); }

bool is_private_address(std::string_view ip) {
  if (auto v4 = parse_ipv4(ip)) return private_v4(*v4);
  auto v6 = parse_ipv6(ip);
  if (!v6) return false;
  const auto& g = *v6;
  const auto zero = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      if (g[static_cast<std::size_t>(i)] != 0) return false;
    }
    return true;
  };
  // ::/96: ::, ::1 and the deprecated IPv4-compatible ::a.b.c.d, never a file host.
  if (zero(0, 6)) return true;
  // Forms that reach the IPv4 address in their low 32 bits: IPv4-mapped
  // ::ffff:a.b.c.d, IPv4-translated ::ffff:0:a.b.c.d, NAT64 64:ff9b::/96.
  if (zero(0, 5) && g[5] == 0xFFFF) return private_v4(low_v4(g));
  if (zero(0, 4) && g[4] == 0xFFFF && g[5] == 0) return private_v4(low_v4(g));
  if (g[0] == 0x64 && g[1] == 0xff9b && zero(2, 6)) return private_v4(low_v4(g));
  // Whole prefixes that are never a file host, or that tunnel to an IPv4
  // address this check cannot see the far side of.
  if (g[0] == 0x64 && g[1] == 0xff9b && g[2] == 1) return true;  // local-use NAT64 64:ff9b:1::/48
  if (g[0] == 0x0100 && zero(1, 4)) return true;                 // discard-only 100::/64
  if (g[0] == 0x2001 && g[1] < 0x0200) return true;  // IETF protocol assignments 2001::/23 (Teredo 2001::/32)
  if (g[0] == 0x2001 && g[1] == 0x0db8) return true;  // documentation 2001:db8::/32
  if (g[0] == 0x2002) return true;                    // 6to4 2002::/16
  if ((g[0] & 0xFE00) == 0xFC00) return true;         // unique local fc00::/7
  if ((g[0] & 0xFFC0) == 0xFE80) return true;         // link-local fe80::/10
  if ((g[0] & 0xFFC0) == 0xFEC0) return true;         // site-local fec0::/10 (deprecated, still routed by some)
  if ((g[0] & 0xFF00) == 0xFF00) return true;         // multicast ff00::/8
  return false;
}

Result<Url> parse_url(std::string_view text, ErrorCode code) {
  auto bad = [&](std::string_view why) {
    std::string message = "invalid URL: ";
    message += why;
    return make_error(code, std::move(message));
  };
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return bad("contains a space or control character");
  }
  const auto sep = text.find("://");
  if (sep == std::string_view::npos) return bad("missing scheme");
  Url url;
  url.scheme = ascii_lower(text.substr(0, sep));
  if (url.scheme != "http" && url.scheme != "https") return bad("only http and https are supported");
  std::string_view rest = text.substr(sep + 3);
  const auto end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, end);
  rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
  if (authority.find('@') != std::string_view::npos) return bad("credentials are not allowed");
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority[0] == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 literal");
    host = authority.substr(1, close - 1);
    if (!parse_ipv6(host)) return bad("bad IPv6 literal");
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("bad authority");
      port = after.substr(1);
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return bad("missing host");
  for (char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '.' || c == ':' || c == '_';
    if (!ok) return bad("bad character in host");
  }
  url.host = ascii_lower(host);
  if (!port.empty()) {
    if (port.size() > 5) return bad("bad port");
    unsigned v = 0;
    for (char c : port) {
      if (c < '0' || c > '9') return bad("bad port");
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v == 0 || v > 65535) return bad("bad port");
    url.port = static_cast<std::uint16_t>(v);
  } else {
    url.port = url.scheme == "https" ? 443 : 80;
  }
  if (const auto hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  const auto q = rest.find('?');
  const std::string_view path = rest.substr(0, q);
  url.path = path.empty() ? std::string(1, '/') : std::string(path);
  if (q != std::string_view::npos) url.query = std::string(rest.substr(q + 1));
  return url;
}

}  // namespace nic
