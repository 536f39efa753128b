#include "nic/allowed_hosts.h"
#include "nic/text.h"

namespace nic {
namespace {

constexpr std::string_view kDefault =
    "prod-files-secure.s3.us-west-2.amazonaws.com,s3.us-west-2.amazonaws.com,"
    "file.notion.so,img.notionusercontent.com";

std::uint16_t default_port(std::string_view scheme) { return scheme == "http" ? 80 : 443; }

bool host_matches(const AllowedHost& entry, std::string_view host) {
  if (!entry.host.empty() && entry.host[0] == '.') {
    return host.size() > entry.host.size() &&
           host.substr(host.size() - entry.host.size()) == entry.host;
  }
  return entry.host == host;
}

}  // namespace

std::string_view default_allowed_domains() { return kDefault; }

std::vector<AllowedHost> default_allowed_hosts() {
  auto parsed = parse_allowed_hosts(kDefault);
  return parsed ? *parsed : std::vector<AllowedHost>{};
}

Result<std::vector<AllowedHost>> parse_allowed_hosts(std::string_view text) {
  std::vector<AllowedHost> out;
  std::string_view rest = text;
  while (true) {
    const auto comma = rest.find(',');
    const std::string_view item = trim(rest.substr(0, comma));
    if (!item.empty()) {
      AllowedHost entry;
      if (item.find("://") != std::string_view::npos) {
        auto url = parse_url(item, ErrorCode::InvalidParam);
        if (!url) return make_error(ErrorCode::InvalidParam, "ALLOWED_DOMAINS: '" + std::string(item) + "': " + url.error().message);
        if (url->path != "/" || !url->query.empty()) {
          return make_error(ErrorCode::InvalidParam, "ALLOWED_DOMAINS: '" + std::string(item) + "' must not have a path");
        }
        entry.scheme = url->scheme;
        entry.host = url->host;
        entry.port = url->port;
      } else {
        auto url = parse_url("https://" + std::string(item), ErrorCode::InvalidParam);
        const bool suffix = item[0] == '.';
        if (suffix) url = parse_url("https://x" + std::string(item), ErrorCode::InvalidParam);
        if (!url || url->path != "/" || !url->query.empty()) {
          return make_error(ErrorCode::InvalidParam, "ALLOWED_DOMAINS: '" + std::string(item) + "' is not a host name");
        }
        entry.host = suffix ? url->host.substr(1) : url->host;
        entry.port = url->port;
      }
      out.push_back(std::move(entry));
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  if (out.empty()) return make_error(ErrorCode::InvalidParam, "ALLOWED_DOMAINS: empty list");
  return out;
}

Status check_allowed(const Url& url, const std::vector<AllowedHost>& allowed) {
  bool https_only_match = false;
  for (const auto& entry : allowed) {
    if (!host_matches(entry, url.host)) continue;
    if (entry.scheme.empty()) https_only_match = true;
    const std::string_view scheme = entry.scheme.empty() ? std::string_view("https") : entry.scheme;
    const std::uint16_t port = entry.port != 0 ? entry.port : default_port(scheme);
    if (url.scheme == scheme && url.port == port) return Ok{};
  }
  if (https_only_match && url.scheme == "http") {
    return make_error(ErrorCode::HttpsRequired, "upstream URL must use https: " + url.host);
  }
  return make_error(ErrorCode::DomainNotAllowed, "host not in ALLOWED_DOMAINS: " + url.host);
}

bool allowed_literally(const Url& url, const std::vector<AllowedHost>& allowed) {
  if (!is_ip_literal(url.host)) return false;
  for (const auto& entry : allowed) {
    if (entry.host == url.host) {
      const std::string_view scheme = entry.scheme.empty() ? std::string_view("https") : entry.scheme;
      const std::uint16_t port = entry.port != 0 ? entry.port : default_port(scheme);
      if (url.scheme == scheme && url.port == port) return true;
    }
  }
  return false;
}

}  // namespace nic
