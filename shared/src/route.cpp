#include "nic/route.h"

#include <array>

#include "nic/percent.h"
#include "nic/text.h"

namespace nic {
namespace {

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

Error bad_path(std::string message) { return make_error(ErrorCode::InvalidPath, std::move(message)); }

struct Endpoint {
  std::string_view path;
  std::string_view method;
  RouteKind kind;
};
constexpr std::array<Endpoint, 5> kEndpoints{{
    {"/api/v1/proxy", "GET", RouteKind::Proxy},
    {"/api/v1/cache", "DELETE", RouteKind::CachePurge},
    {"/health", "GET", RouteKind::Health},
    {"/api/v1/stats", "GET", RouteKind::Stats},
    {"/metrics", "GET", RouteKind::Metrics},
}};

}  // namespace

std::string_view to_string(RouteKind kind) {
  switch (kind) {
    case RouteKind::Image: return "image";
    case RouteKind::Proxy: return "proxy";
    case RouteKind::CachePurge: return "cache_purge";
    case RouteKind::Health: return "health";
    case RouteKind::Stats: return "stats";
    case RouteKind::Metrics: return "metrics";
    case RouteKind::Page: return "page";
  }
  return "unknown";
}

std::string canonical_uuid(std::string_view text) {
  std::string out;
  if (text.size() == 32) {
    for (char c : text) {
      if (!is_hex(c)) return {};
      out += ascii_lower(c);
    }
    return out;
  }
  if (text.size() == 36) {
    for (std::size_t i = 0; i < text.size(); ++i) {
      const bool dash_pos = i == 8 || i == 13 || i == 18 || i == 23;
      if (dash_pos) {
        if (text[i] != '-') return {};
      } else {
        if (!is_hex(text[i])) return {};
        out += ascii_lower(text[i]);
      }
    }
    return out;
  }
  return {};
}

std::string canonical_workspace(std::string_view text) {
  if (auto uuid = canonical_uuid(text); !uuid.empty()) return uuid;
  if (text.empty() || text.size() > 64) return {};
  for (char c : text) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return {};
  }
  return std::string(text);
}

Result<ImagePath> parse_image_path(std::string_view path) {
  constexpr std::string_view kPrefix = "/img/";
  if (path.substr(0, kPrefix.size()) != kPrefix) return bad_path("expected /img/{workspaceId}/{id}/{filename}");
  std::string_view rest = path.substr(kPrefix.size());
  std::array<std::string_view, 3> seg{};
  for (std::size_t i = 0; i < 3; ++i) {
    const auto slash = rest.find('/');
    if (i < 2) {
      if (slash == std::string_view::npos) return bad_path("expected /img/{workspaceId}/{id}/{filename}");
      seg[i] = rest.substr(0, slash);
      rest = rest.substr(slash + 1);
    } else {
      if (slash != std::string_view::npos) return bad_path("too many path segments; expected /img/{workspaceId}/{id}/{filename}");
      seg[i] = rest;
    }
    if (seg[i].empty()) return bad_path("empty path segment; expected /img/{workspaceId}/{id}/{filename}");
  }

  auto decode = [](std::string_view segment, std::string_view what) -> Result<std::string> {
    auto d = percent_decode(segment, ErrorCode::InvalidPath);
    if (!d) return bad_path(std::string(what) + ": " + d.error().message);
    return d;
  };
  auto ws_raw = decode(seg[0], "workspaceId");
  if (!ws_raw) return ws_raw.take_error();
  auto id_raw = decode(seg[1], "id");
  if (!id_raw) return id_raw.take_error();
  auto name = decode(seg[2], "filename");
  if (!name) return name.take_error();

  ImagePath out;
  out.workspace = canonical_workspace(*ws_raw);
  if (out.workspace.empty()) return bad_path("workspaceId must be a UUID or [A-Za-z0-9_-]{1,64}");
  out.id = canonical_uuid(*id_raw);
  if (out.id.empty()) return bad_path("id must be a UUID (32 hex digits, dashes optional)");
  const std::string& f = *name;
  if (f.empty() || f.size() > kMaxFilenameBytes) return bad_path("filename must be 1 to 255 bytes");
  if (f.find_first_of(std::string_view("/\\\0", 3)) != std::string::npos || f.find("..") != std::string::npos) {
    return bad_path("filename must not contain '/', '\\', NUL or '..'");
  }
  out.filename = f;
  return out;
}

Result<Route> route(std::string_view method, std::string_view target) {
  if (target.size() > kMaxTargetLength) {
    return make_error(ErrorCode::UrlTooLong, "request target longer than " + std::to_string(kMaxTargetLength) + " bytes");
  }
  Route r;
  const auto qmark = target.find('?');
  r.path = target.substr(0, qmark);
  r.query = qmark == std::string_view::npos ? std::string_view{} : target.substr(qmark + 1);
  // Fragments never reach a server, but a client may send one.
  if (const auto hash = r.query.find('#'); hash != std::string_view::npos) r.query = r.query.substr(0, hash);

  if (r.path.substr(0, 5) == "/img/" || r.path == "/img") {
    if (method != "GET" && method != "HEAD") {
      return make_error(ErrorCode::MethodNotAllowed, "use GET or HEAD for /img");
    }
    r.kind = RouteKind::Image;
    r.head = method == "HEAD";
    auto image = parse_image_path(r.path);
    if (!image) return image.take_error();
    r.image = std::move(*image);
    return r;
  }
  if (r.path == "/" || r.path.substr(0, 6) == "/page/") {
    if (method != "GET" && method != "HEAD") {
      return make_error(ErrorCode::MethodNotAllowed, "use GET or HEAD for the page");
    }
    r.kind = RouteKind::Page;
    r.head = method == "HEAD";
    return r;
  }
  for (const auto& e : kEndpoints) {
    if (r.path != e.path) continue;
    const bool head_ok = e.method == "GET" && method == "HEAD";
    if (method != e.method && !head_ok) {
      return make_error(ErrorCode::MethodNotAllowed, "use " + std::string(e.method) + " for " + std::string(e.path));
    }
    r.kind = e.kind;
    r.head = method == "HEAD";
    return r;
  }
  return make_error(ErrorCode::NotFound, "no such route");
}

}  // namespace nic
