#include <catch2/catch.hpp>

#include "nic/cache_policy.h"

TEST_CASE("image Cache-Control follows CACHE_TTL_SECONDS", "[cache_policy]") {
  CHECK(nic::image_cache_control(86400) == "public, max-age=3600, s-maxage=86400, stale-while-revalidate=3600");
  CHECK(nic::image_cache_control(60) == "public, max-age=3600, s-maxage=60, stale-while-revalidate=3600");
  CHECK(nic::kErrorCacheControl == "no-store");
}

TEST_CASE("strong ETags and If-None-Match", "[cache_policy]") {
  const auto etag = nic::etag_for("hello");
  CHECK(etag == "\"2cf24dba5fb0a30e26e83b2ac5b9e29e\"");
  CHECK(nic::if_none_match(etag, etag));
  CHECK(nic::if_none_match("\"x\", " + etag, etag));
  CHECK(nic::if_none_match("W/" + etag, etag));  // weak comparison for If-None-Match
  CHECK(nic::if_none_match("*", etag));
  CHECK_FALSE(nic::if_none_match("\"x\"", etag));
  CHECK_FALSE(nic::if_none_match("", etag));
}
