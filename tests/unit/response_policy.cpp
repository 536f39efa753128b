#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "nic/cache_policy.h"
#include "nic/response_policy.h"

using nic::Headers;
using nic::Tier;

namespace {

std::vector<std::string> names(const Headers& h) {
  std::vector<std::string> out;
  for (const auto& [n, v] : h) out.push_back(n);
  return out;
}

std::string value(const Headers& h, std::string_view name) {
  const std::string* v = nic::find_header(h, name);
  return v ? *v : std::string("<none>");
}

const std::string kCacheControl = nic::image_cache_control(86400);

nic::ImageEntry png_entry() {
  nic::ImageEntry e;
  e.content_type = "image/png";
  e.etag = "\"0123456789abcdef0123456789abcdef\"";
  e.cache_control = kCacheControl;
  e.cache_key = "v1/ws/id/a.png?fmt=original&w=256";
  e.original_size = 1000;
  e.optimized_size = 400;
  return e;
}

}  // namespace

TEST_CASE("tier names and X-Cache", "[response_policy]") {
  struct Row {
    Tier tier;
    const char* name;
    const char* x_cache;
  };
  const Row rows[] = {
      {Tier::Edge, "EDGE", "HIT"},       {Tier::Memory, "MEMORY", "HIT"},      {Tier::Storage, "STORAGE", "HIT"},
      {Tier::Origin, "ORIGIN", "MISS"}, {Tier::Coalesced, "COALESCED", "MISS"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.name);
    CHECK(nic::to_string(row.tier) == row.name);
    CHECK(nic::parse_tier(row.name) == row.tier);
    CHECK(nic::x_cache(row.tier) == row.x_cache);
  }
  CHECK_FALSE(nic::parse_tier("edge").has_value());
  CHECK_FALSE(nic::parse_tier("").has_value());

  SECTION("a follower says what its leader found") {
    const std::pair<Tier, const char*> leaders[] = {{Tier::Memory, "HIT"},   {Tier::Storage, "HIT"},
                                                    {Tier::Edge, "HIT"},     {Tier::Origin, "MISS"},
                                                    {Tier::Coalesced, "MISS"}};
    for (const auto& [leader, expected] : leaders) {
      CAPTURE(nic::to_string(leader));
      CHECK(nic::x_cache(Tier::Coalesced, leader) == expected);
    }
    // The leader only matters for followers.
    CHECK(nic::x_cache(Tier::Origin, Tier::Memory) == "MISS");
    CHECK(nic::x_cache(Tier::Memory, Tier::Origin) == "HIT");
  }
}

TEST_CASE("header list helpers", "[response_policy]") {
  Headers h{{"Content-Type", "image/png"}, {"vary", "Accept"}};
  CHECK(nic::header_name_equal("X-Cache-Tier", "x-cache-tier"));
  CHECK_FALSE(nic::header_name_equal("X-Cache", "X-Cache-Tier"));
  CHECK(value(h, "VARY") == "Accept");

  nic::add_vary(h, "Origin");
  CHECK(value(h, "Vary") == "Accept, Origin");
  nic::add_vary(h, "origin");  // once, whatever the case
  nic::add_vary(h, "Accept");
  CHECK(value(h, "Vary") == "Accept, Origin");
  CHECK(h.size() == 2);

  Headers none;
  nic::add_vary(none, "Origin");
  CHECK(none == Headers{{"Vary", "Origin"}});
  Headers star{{"Vary", "*"}};
  nic::add_vary(star, "Origin");
  CHECK(value(star, "Vary") == "*");

  Headers dup{{"A", "1"}, {"b", "2"}, {"a", "3"}};
  nic::set_header(dup, "a", "4");
  CHECK(dup == Headers{{"A", "4"}, {"b", "2"}});
  nic::set_header(dup, "C", "5");
  CHECK(dup.size() == 3);
  CHECK(value(dup, "c") == "5");
}

TEST_CASE("image entry headers", "[response_policy]") {
  SECTION("raster: the fixed set, in order, with nosniff") {
    const Headers h = nic::entry_headers(png_entry());
    CHECK(names(h) == std::vector<std::string>{"ETag", "Cache-Control", "Content-Type", "X-Cache-Key",
                                               "X-Original-Size", "X-Optimized-Size", "X-Content-Type-Options"});
    CHECK(value(h, "ETag") == "\"0123456789abcdef0123456789abcdef\"");
    CHECK(value(h, "Cache-Control") == "public, max-age=3600, s-maxage=86400, stale-while-revalidate=3600");
    CHECK(value(h, "X-Original-Size") == "1000");
    CHECK(value(h, "X-Optimized-Size") == "400");
    CHECK(value(h, "X-Content-Type-Options") == "nosniff");
    CHECK(nic::find_header(h, "Content-Security-Policy") == nullptr);
  }
  SECTION("SVG gets the sandboxing CSP") {
    auto e = png_entry();
    e.content_type = "image/svg+xml";
    const Headers h = nic::entry_headers(e);
    CHECK(value(h, "Content-Security-Policy") == "default-src 'none'; style-src 'unsafe-inline'; sandbox");
    CHECK(value(h, "X-Content-Type-Options") == "nosniff");
    CHECK(h.size() == 8);
  }
  SECTION("no key, no X-Cache-Key") {
    auto e = png_entry();
    e.cache_key = "";
    CHECK(nic::find_header(nic::entry_headers(e), "X-Cache-Key") == nullptr);
  }
}

TEST_CASE("delivery headers", "[response_policy]") {
  struct Row {
    nic::Delivery d;
    Headers expected;
  };
  const Row rows[] = {
      {{Tier::Memory, Tier::Origin, true}, {{"Vary", "Accept"}, {"X-Cache", "HIT"}, {"X-Cache-Tier", "MEMORY"}}},
      {{Tier::Origin, Tier::Origin, false}, {{"X-Cache", "MISS"}, {"X-Cache-Tier", "ORIGIN"}}},
      {{Tier::Coalesced, Tier::Storage, false}, {{"X-Cache", "HIT"}, {"X-Cache-Tier", "COALESCED"}}},
      {{Tier::Edge, Tier::Origin, true}, {{"Vary", "Accept"}, {"X-Cache", "HIT"}, {"X-Cache-Tier", "EDGE"}}},
  };
  for (const auto& row : rows) {
    CHECK(nic::delivery_headers(row.d) == row.expected);
  }
}

TEST_CASE("304: which headers are kept", "[response_policy]") {
  struct Row {
    const char* name;
    bool kept;
  };
  const Row rows[] = {
      {"ETag", true},           {"etag", true},           {"Cache-Control", true},     {"Vary", true},
      {"Expires", true},        {"Date", true},           {"Content-Location", true},  {"X-Cache", true},
      {"X-Cache-Tier", true},   {"X-Cache-Key", true},    {"X-Request-Id", true},      {"X-Content-Type-Options", true},
      {"Access-Control-Allow-Origin", true},              {"Content-Security-Policy", true},
      {"Content-Type", false},  {"Content-Length", false}, {"X-Original-Size", false}, {"X-Optimized-Size", false},
      {"Content-Encoding", false},
  };
  for (const auto& row : rows) {
    CAPTURE(row.name);
    CHECK(nic::kept_on_not_modified(row.name) == row.kept);
  }
}

TEST_CASE("image_response: 200 or 304", "[response_policy]") {
  const auto e = png_entry();
  const nic::Delivery d{Tier::Storage, Tier::Origin, true};
  SECTION("no If-None-Match: 200 with every header") {
    const auto r = nic::image_response(e, d, "");
    CHECK(r.status == 200);
    CHECK(r.body);
    CHECK(r.headers.size() == 10);
    CHECK(value(r.headers, "Content-Type") == "image/png");
    CHECK(value(r.headers, "X-Cache-Tier") == "STORAGE");
  }
  SECTION("a matching tag (weak comparison, in a list, or *): 304 with the kept headers") {
    for (const std::string& inm : {std::string(e.etag), "\"x\", " + std::string(e.etag), "W/" + std::string(e.etag),
                                  std::string("*")}) {
      CAPTURE(inm);
      const auto r = nic::image_response(e, d, inm);
      CHECK(r.status == 304);
      CHECK_FALSE(r.body);
      CHECK(names(r.headers) == std::vector<std::string>{"ETag", "Cache-Control", "X-Cache-Key",
                                                         "X-Content-Type-Options", "Vary", "X-Cache", "X-Cache-Tier"});
    }
  }
  SECTION("another tag: 200") {
    const auto r = nic::image_response(e, d, "\"other\"");
    CHECK(r.status == 200);
    CHECK(r.body);
  }
}

TEST_CASE("CORS decision", "[response_policy]") {
  const std::vector<std::string> star{"*"};
  const std::vector<std::string> listed{"https://app.example", "https://b.example"};
  const std::vector<std::string> off{};
  struct Row {
    const std::vector<std::string>* allowed;
    const char* origin;
    const char* allow;
    bool vary;
  };
  const Row rows[] = {
      {&star, "https://any.example", "*", false},
      {&star, "", "*", false},  // one cached copy serves every page
      {&listed, "https://app.example", "https://app.example", true},
      {&listed, "https://b.example", "https://b.example", true},
      {&listed, "https://evil.example", "", true},
      {&listed, "https://app.example.evil", "", true},
      {&listed, "", "", true},  // still varies: a cache must not reuse it for a listed origin
      {&listed, "null", "", true},
      {&off, "https://app.example", "", false},
  };
  for (const auto& row : rows) {
    CAPTURE(row.origin, row.allow);
    const auto d = nic::cors_decision(*row.allowed, row.origin);
    CHECK(d.allow_origin == row.allow);
    CHECK(d.vary_origin == row.vary);
  }
  const std::vector<std::string> mixed{"https://app.example", "*"};
  CHECK(nic::cors_decision(mixed, "https://x.example").allow_origin == "*");
}

TEST_CASE("CORS headers on a response and a preflight", "[response_policy]") {
  SECTION("listed origin on an image negotiated from Accept") {
    Headers h{{"Vary", "Accept"}};
    nic::apply_cors(h, {"https://app.example", true});
    CHECK(value(h, "Vary") == "Accept, Origin");
    CHECK(value(h, "Access-Control-Allow-Origin") == "https://app.example");
    CHECK(value(h, "Access-Control-Expose-Headers").find("X-Cache-Tier") != std::string::npos);
  }
  SECTION("refused origin: only Vary") {
    Headers h;
    nic::apply_cors(h, {"", true});
    CHECK(h == Headers{{"Vary", "Origin"}});
  }
  SECTION("star: no Vary") {
    Headers h;
    nic::apply_cors(h, {"*", false});
    CHECK(value(h, "Access-Control-Allow-Origin") == "*");
    CHECK(nic::find_header(h, "Vary") == nullptr);
    CHECK(h.size() == 2);
  }
  SECTION("preflight") {
    const Headers h = nic::preflight_headers({"https://app.example", true});
    CHECK(nic::kPreflightStatus == 204);
    CHECK(value(h, "Access-Control-Allow-Methods") == "GET, HEAD, DELETE, OPTIONS");
    CHECK(value(h, "Access-Control-Allow-Headers") == "Authorization, X-API-Key, If-None-Match");
    CHECK(value(h, "Access-Control-Max-Age") == "86400");
    CHECK(value(h, "Access-Control-Allow-Origin") == "https://app.example");
    CHECK(value(h, "Vary") == "Origin");
    CHECK(h.size() == 6);
  }
}
