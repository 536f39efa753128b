// MAX_VARIANTS_PER_SOURCE (variant_cap.h): distinct variants per source group.
#include <catch2/catch.hpp>

#include "nic/cache_key.h"
#include "variant_cap.h"

using nic::origin::VariantCap;

TEST_CASE("variant cap: distinct keys per source, the same key always again", "[origin][variants]") {
  VariantCap cap(3);
  const std::string a = nic::source_key("a"), b = nic::source_key("b");
  CHECK(cap.admit(a, "k1"));
  CHECK(cap.admit(a, "k2"));
  CHECK(cap.admit(a, "k3"));
  CHECK_FALSE(cap.admit(a, "k4"));
  CHECK(cap.admit(a, "k1"));  // counted already: never refused
  CHECK(cap.admit(b, "k4"));  // another source has its own count
  CHECK(cap.count(a) == 3);
  CHECK(cap.refused() == 1);
  cap.note(a, "k5");  // a stored variant over the cap: served, not counted
  CHECK(cap.count(a) == 3);
  cap.forget(a);  // purged
  CHECK(cap.count(a) == 0);
  CHECK(cap.admit(a, "k4"));
}

TEST_CASE("variant cap: 0 is off; sources tracked are bounded (least recently used go)", "[origin][variants]") {
  VariantCap off(0);
  for (int i = 0; i < 100; ++i) CHECK(off.admit("s", "k" + std::to_string(i)));
  CHECK(off.count("s") == 0);

  VariantCap small(1, 2);
  CHECK(small.admit("s1", "k"));
  CHECK(small.admit("s2", "k"));
  CHECK_FALSE(small.admit("s1", "other"));  // s1 is now the most recent
  CHECK(small.admit("s3", "k"));            // s2 goes
  CHECK(small.count("s2") == 0);
  CHECK(small.count("s1") == 1);
}
