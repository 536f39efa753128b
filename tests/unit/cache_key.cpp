#include <catch2/catch.hpp>

#include "nic/cache_key.h"
#include "nic/route.h"
#include "nic/signature.h"

namespace {

nic::Result<nic::ImageRequest> prepare(std::string_view target, std::string_view accept = "",
                                       std::string_view secret = "") {
  auto r = nic::route("GET", target);
  if (!r) return r.take_error();
  return nic::prepare_image_request(r->image, r->path, r->query, accept, nic::CoreSettings{}, secret);
}

}  // namespace

TEST_CASE("canonical cache keys", "[cache_key]") {
  const std::string base = "/img/01234567-89ab-cdef-0123-456789abcdef/ABCDEF0123456789ABCDEF0123456789/My%20Photo.png";
  SECTION("sorted, normalised, negotiated") {
    auto r = prepare(base + "?w=801&q=80&fit=cover&utm=1&h=600", "image/avif,image/webp");
    REQUIRE(r.ok());
    CHECK(r->key ==
          "v1/0123456789abcdef0123456789abcdef/abcdef0123456789abcdef0123456789/My%20Photo.png?"
          "fit=cover&fmt=auto-avif&h=621&q=85&w=828");
    CHECK(r->key_hash == nic::cache_key_hash(r->key));
    CHECK(r->key_hash.size() == 64);
    CHECK(r->vary_accept);
  }
  SECTION("anti cache-busting: equivalent requests share a key") {
    const auto a = prepare(base + "?w=790", "image/webp");
    const auto b = prepare(base + "?w=800&fit=inside&x=1", "image/webp;q=0.9, */*");
    const auto c = prepare(base + "?dpr=2&w=400", "image/webp");
    REQUIRE((a.ok() && b.ok() && c.ok()));
    CHECK(a->key == b->key);
    CHECK(a->key == c->key);
  }
  SECTION("explicit format: no Vary, Accept ignored") {
    auto r = prepare(base + "?fmt=jpg", "image/avif");
    REQUIRE(r.ok());
    CHECK(r->key == "v1/0123456789abcdef0123456789abcdef/abcdef0123456789abcdef0123456789/My%20Photo.png?fmt=jpeg");
    CHECK_FALSE(r->vary_accept);
  }
  SECTION("source key and group: by the id alone, whatever the workspace") {
    CHECK(nic::source_group("abc") == "v1/*/abc/");
    CHECK(nic::source_key("abc") == "v1/*/abc/source");
    const struct {
      const char* key;
      const char* group;
    } rows[] = {
        {"v1/ws1/abc/photo.png?fmt=png&w=320", "v1/*/abc/"},
        {"v1/ws2/abc/other.png?fmt=original", "v1/*/abc/"},
        {"v1/*/abc/source", "v1/*/abc/"},
        {"v1/*/abc/", "v1/*/abc/"},
        {"v1/ws1/abc/", "v1/*/abc/"},
        {"v1/ws1/abd/x?fmt=png", "v1/*/abd/"},
        {"v1/ws1", ""},
        {"v1/ws1/", ""},
        {"v1/ws1/abc", ""},
        {"v1//abc/x", ""},
        {"v1/ws1//x", ""},
        {"v2/ws1/abc/x", ""},
        {"", ""},
    };
    for (const auto& row : rows) {
      INFO(row.key);
      CHECK(nic::source_group_of(row.key) == row.group);
    }
  }
}

TEST_CASE("signatures are required when a secret is set", "[cache_key][signature]") {
  const std::string path = "/img/ws/0123456789abcdef0123456789abcdef/a.png";
  auto unsigned_req = prepare(path + "?w=800", "", "s3cret");
  REQUIRE_FALSE(unsigned_req.ok());
  CHECK(unsigned_req.error().code == nic::ErrorCode::InvalidSignature);
  const std::string sig = nic::compute_signature("s3cret", path, "w=800");
  CHECK(prepare(path + "?w=800&sig=" + sig, "", "s3cret").ok());
  CHECK(prepare(path + "?sig=" + sig + "&w=800", "", "s3cret").ok());  // order does not matter
  CHECK_FALSE(prepare(path + "?w=640&sig=" + sig, "", "s3cret").ok());
  CHECK_FALSE(prepare(path + "?w=800&sig=" + sig, "", "other").ok());
  // A bad parameter is reported before the signature is checked.
  auto bad = prepare(path + "?w=0&sig=" + sig, "", "s3cret");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == nic::ErrorCode::InvalidParam);
}
