#include <catch2/catch.hpp>

#include <string>
#include <tuple>

#include "nic/byte_range.h"

using Kind = nic::RangeDecision::Kind;

TEST_CASE("one bytes= range against 1002 bytes", "[byte_range]") {
  // header, kind, first, last
  const std::tuple<std::string, Kind, std::int64_t, std::int64_t> cases[] = {
      {"bytes=0-99", Kind::Partial, 0, 99},
      {"bytes=900-", Kind::Partial, 900, 1001},
      {"bytes=-10", Kind::Partial, 992, 1001},
      {"bytes=1000-5000", Kind::Partial, 1000, 1001},  // the end is clamped
      {"bytes=-5000", Kind::Partial, 0, 1001},         // a suffix longer than the body: all of it
      {"Bytes=5-5", Kind::Partial, 5, 5},              // the unit is case-insensitive
      {"bytes = 5-5", Kind::Whole, 0, 0},              // no spaces around '=' (RFC 9110 §14.2)
      {"bytes=1001-1001", Kind::Partial, 1001, 1001},
      {"bytes=1002-", Kind::Unsatisfiable, 0, 0},
      {"bytes=5000-6000", Kind::Unsatisfiable, 0, 0},
      {"bytes=-0", Kind::Unsatisfiable, 0, 0},
      {"", Kind::Whole, 0, 0},
      {"bytes=0-1,5-6", Kind::Whole, 0, 0},  // several ranges: the whole body
      {"items=0-1", Kind::Whole, 0, 0},
      {"bytes=9-2", Kind::Whole, 0, 0},      // last before first: malformed
      {"bytes=a-2", Kind::Whole, 0, 0},
      {"bytes=+1-2", Kind::Whole, 0, 0},
      {"bytes=-", Kind::Whole, 0, 0},
      {"bytes=99999999999999999999-", Kind::Whole, 0, 0},  // overflow is malformed, not a crash
      {"bytes", Kind::Whole, 0, 0},
  };
  for (const auto& [header, kind, first, last] : cases) {
    CAPTURE(header);
    const auto d = nic::decide_range(header, "", "\"e\"", 1002);
    CHECK(d.kind == kind);
    if (kind == Kind::Partial) {
      CHECK(d.first == first);
      CHECK(d.last == last);
    }
  }
}

TEST_CASE("If-Range: only the current strong ETag keeps the range", "[byte_range]") {
  CHECK(nic::decide_range("bytes=0-1", "\"e\"", "\"e\"", 10).kind == Kind::Partial);
  CHECK(nic::decide_range("bytes=0-1", "\"old\"", "\"e\"", 10).kind == Kind::Whole);
  CHECK(nic::decide_range("bytes=0-1", "W/\"e\"", "W/\"e\"", 10).kind == Kind::Whole);
  CHECK(nic::decide_range("bytes=0-1", "Tue, 01 Dec 2026 10:00:00 GMT", "\"e\"", 10).kind == Kind::Whole);
  CHECK(nic::decide_range("bytes=0-1", "\"e\"", "", 10).kind == Kind::Whole);
}

TEST_CASE("an empty body cannot satisfy any range", "[byte_range]") {
  CHECK(nic::decide_range("bytes=0-", "", "", 0).kind == Kind::Unsatisfiable);
  CHECK(nic::decide_range("bytes=-1", "", "", 0).kind == Kind::Unsatisfiable);
}

TEST_CASE("Content-Range", "[byte_range]") {
  CHECK(nic::content_range({Kind::Partial, 0, 99}, 1002) == "bytes 0-99/1002");
  CHECK(nic::content_range({Kind::Unsatisfiable}, 1002) == "bytes */1002");
}
