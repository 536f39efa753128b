#include <catch2/catch.hpp>

#include <string>

#include "nic/route.h"

using nic::ErrorCode;
using nic::RouteKind;

TEST_CASE("routes of the contract", "[route]") {
  struct Case {
    const char* method;
    const char* target;
    RouteKind kind;
  };
  const Case cases[] = {
      {"GET", "/img/ws/0123456789abcdef0123456789abcdef/a.png?w=800", RouteKind::Image},
      {"HEAD", "/img/ws/0123456789abcdef0123456789abcdef/a.png", RouteKind::Image},
      {"GET", "/api/v1/proxy?url=x", RouteKind::Proxy},
      {"DELETE", "/api/v1/cache?url=x", RouteKind::CachePurge},
      {"GET", "/health", RouteKind::Health},
      {"GET", "/api/v1/stats", RouteKind::Stats},
      {"GET", "/metrics", RouteKind::Metrics},
      {"GET", "/", RouteKind::Page},
      {"HEAD", "/?from=readme", RouteKind::Page},
      {"GET", "/page/page.js", RouteKind::Page},
  };
  for (const auto& c : cases) {
    CAPTURE(c.method, c.target);
    auto r = nic::route(c.method, c.target);
    REQUIRE(r.ok());
    CHECK(r->kind == c.kind);
  }
  CHECK(nic::route("HEAD", "/img/ws/0123456789abcdef0123456789abcdef/a.png")->head);
}

TEST_CASE("route errors", "[route]") {
  struct Case {
    const char* method;
    std::string target;
    ErrorCode code;
  };
  const std::string id = "0123456789abcdef0123456789abcdef";
  const Case cases[] = {
      {"GET", "/nope", ErrorCode::NotFound},
      {"GET", "/page", ErrorCode::NotFound},
      {"POST", "/", ErrorCode::MethodNotAllowed},
      {"POST", "/img/ws/" + id + "/a.png", ErrorCode::MethodNotAllowed},
      {"GET", "/api/v1/cache", ErrorCode::MethodNotAllowed},
      {"GET", "/img/ws/" + id + "/" + std::string(8200, 'a'), ErrorCode::UrlTooLong},
      {"GET", "/img", ErrorCode::InvalidPath},
      {"GET", "/img/ws/" + id, ErrorCode::InvalidPath},
      {"GET", "/img/ws/" + id + "/", ErrorCode::InvalidPath},
      {"GET", "/img/ws/" + id + "/a/b.png", ErrorCode::InvalidPath},
      {"GET", "/img//" + id + "/a.png", ErrorCode::InvalidPath},
      {"GET", "/img/ws/not-a-uuid/a.png", ErrorCode::InvalidPath},
      {"GET", "/img/ws/" + id + "/a%zz.png", ErrorCode::InvalidPath},
      {"GET", "/img/ws/" + id + "/a%4", ErrorCode::InvalidPath},
      {"GET", "/img/ws/" + id + "/%", ErrorCode::InvalidPath},
      {"GET", "/img/ws/" + id + "/..", ErrorCode::InvalidPath},
      {"GET", "/img/ws/" + id + "/%2e%2e", ErrorCode::InvalidPath},
      {"GET", "/img/ws/" + id + "/a%2Fb.png", ErrorCode::InvalidPath},
      {"GET", "/img/ws/" + id + "/a%5Cb.png", ErrorCode::InvalidPath},
      {"GET", "/img/ws/" + id + "/a%00.png", ErrorCode::InvalidPath},
      {"GET", "/img/ws/" + id + "/" + std::string(256, 'a'), ErrorCode::InvalidPath},
      {"GET", "/img/w%20s/" + id + "/a.png", ErrorCode::InvalidPath},
      {"GET", "/img/" + std::string(65, 'w') + "/" + id + "/a.png", ErrorCode::InvalidPath},
  };
  for (const auto& c : cases) {
    CAPTURE(c.method, c.target.substr(0, 120));
    auto r = nic::route(c.method, c.target);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == c.code);
  }
}

TEST_CASE("image path canonicalisation", "[route]") {
  auto r = nic::parse_image_path("/img/01234567-89AB-CDEF-0123-456789ABCDEF/0123456789ABCDEF0123456789abcdef/caf%C3%A9+1.png");
  REQUIRE(r.ok());
  CHECK(r->workspace == "0123456789abcdef0123456789abcdef");
  CHECK(r->id == "0123456789abcdef0123456789abcdef");
  CHECK(r->filename == "caf\xC3\xA9+1.png");  // '+' is literal in a path
  auto slug = nic::parse_image_path("/img/My_Space-1/0123456789abcdef0123456789abcdef/" + std::string(255, 'a'));
  REQUIRE(slug.ok());
  CHECK(slug->workspace == "My_Space-1");
  CHECK(nic::canonical_uuid("0123456789abcdef-0123456789abcdef").empty());
  CHECK(nic::canonical_uuid("01234567-89ab-cdef-0123-456789abcdeg").empty());
}
