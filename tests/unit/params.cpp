#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "nic/params.h"

namespace {

nic::Result<nic::TransformParams> parse(std::string_view query) {
  return nic::parse_params(nic::split_query(query));
}

nic::NormalizedParams norm(std::string_view query, const nic::CoreSettings& s = {}) {
  auto p = parse(query);
  REQUIRE(p.ok());
  return nic::normalize(*p, s);
}

}  // namespace

TEST_CASE("parse_params accepts valid values", "[params]") {
  auto p = parse("w=800&h=600&fit=cover&fmt=jpg&q=80&dpr=1.5&utm_source=x");
  REQUIRE(p.ok());
  CHECK(p->w == 800);
  CHECK(p->h == 600);
  CHECK(p->fit == nic::Fit::Cover);
  CHECK(p->fmt == nic::RequestedFormat::Jpeg);
  CHECK(p->q == 80);
  CHECK(p->dpr_tenths == 15);
  CHECK(parse("w=0800")->w == 800);
  CHECK(parse("dpr=4")->dpr_tenths == 40);
  CHECK(parse("dpr=2.0")->dpr_tenths == 20);
  CHECK(parse("w%3D1=5")->w == std::nullopt);  // the name "w=1" is not w
}

TEST_CASE("parse_params rejects bad values naming the parameter", "[params]") {
  struct Case {
    const char* query;
    const char* mentions;
  };
  const Case cases[] = {
      {"w=0", "w"},        {"w=8193", "8192"},  {"w=1e3", "w"},       {"w=+800", "w"},
      {"w=-1", "w"},       {"w=800.0", "w"},    {"w=", "w"},          {"w=%zz", "w"},
      {"w=8%2000", "w"},   {"w=99999999999999999999", "w"},           {"h=abc", "h"},
      {"q=0", "1..100"},   {"q=101", "q"},      {"q=100.5", "q"},     {"dpr=0.5", "dpr"},
      {"dpr=4.1", "dpr"},  {"dpr=1.25", "dpr"}, {"dpr=.5", "dpr"},    {"dpr=2.", "dpr"},
      {"fmt=BMP", "auto|webp|avif|jpeg|jpg|png|original"},             {"fmt=JPEG", "fmt"},
      {"fit=crop", "cover|contain|fill|inside|outside"},               {"w=800&w=400", "more than once"},
      {"sig=", "sig"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.query);
    auto p = parse(c.query);
    REQUIRE_FALSE(p.ok());
    CHECK(p.error().code == nic::ErrorCode::InvalidParam);
    CHECK(p.error().message.find(c.mentions) != std::string::npos);
  }
}

TEST_CASE("normalize snaps widths up and the aspect ratio to a fixed ladder", "[params]") {
  SECTION("width snapped up to ALLOWED_WIDTHS") {
    CHECK(norm("w=800").w == 800);
    CHECK(norm("w=801").w == 828);
    CHECK(norm("w=1").w == 32);
    CHECK(norm("w=5000").w == 3840);  // capped at the largest
  }
  SECTION("dpr multiplies before snapping and then disappears") {
    CHECK(norm("w=400&dpr=2").w == 800);
    CHECK(norm("w=401&dpr=1.5").w == 640);  // 601.5 -> 602 -> 640
  }
  SECTION("with w, h is the snapped width times the nearest ladder ratio") {
    const auto n = norm("w=801&h=600");
    CHECK(n.w == 828);
    CHECK(n.h == 621);  // 600/801 snaps to 4:3; 828 * 3/4 = 621
    CHECK(norm("w=640&h=360").h == 360);   // 16:9 exactly
    CHECK(norm("w=640&h=1").h == 160);     // beyond 4:1 stays 4:1
    CHECK(norm("w=1&h=8192").h == 128);    // beyond 1:4 stays 1:4 (w=32)
    CHECK(norm("w=1000&h=894").h == 819);  // just below the 5:4 / 1:1 midpoint (log scale)
    CHECK(norm("w=1000&h=895").h == 1024); // just above it
  }
  SECTION("h with w opens at most one key per ladder ratio") {
    std::set<int> heights;
    for (int h = 1; h <= nic::kMaxDimension; ++h) {
      heights.insert(*norm("w=640&h=" + std::to_string(h)).h);
    }
    CHECK(heights.size() == nic::kAspectRatios.size());
    std::set<int> low;
    for (int h = 1; h <= 200; ++h) low.insert(*norm("w=640&h=" + std::to_string(h)).h);
    CHECK(low == std::set<int>{160, 213});  // the amplification case: 200 values, 2 keys
  }
  SECTION("h alone is snapped like a width") {
    CHECK(norm("h=700").h == 750);
    CHECK_FALSE(norm("h=700").w);
  }
  SECTION("quality snaps to the nearest step, ties up") {
    CHECK(norm("q=1").q == 60);
    CHECK(norm("q=67").q == 60);
    CHECK(norm("q=68").q == 75);   // tie between 60 and 75 at 67.5 is impossible; 68 is nearer 75
    CHECK(norm("q=80").q == 85);   // 80 is 5 from 75 and 85: tie goes up
    CHECK(norm("q=100").q == 95);
  }
  SECTION("fit is only in the key when it matters") {
    CHECK_FALSE(norm("fit=inside&w=100").fit_in_key);
    CHECK(norm("fit=cover&w=100").fit_in_key);
    CHECK_FALSE(norm("fit=cover").fit_in_key);
  }
  SECTION("custom settings") {
    nic::CoreSettings s;
    s.allowed_widths = {100, 200};
    s.quality_steps = {50};
    const auto n = norm("w=150&q=99", s);
    CHECK(n.w == 200);
    CHECK(n.q == 50);
  }
}

TEST_CASE("settings lists parse strictly", "[settings]") {
  auto l = nic::parse_int_list(" 64, 32,64 ,128", 1, 8192, "ALLOWED_WIDTHS");
  REQUIRE(l.ok());
  CHECK(*l == std::vector<int>{32, 64, 128});
  for (const char* bad : {"", "32,,64", "0", "9000", "a", "32;64", "-5"}) {
    CAPTURE(bad);
    auto r = nic::parse_int_list(bad, 1, 8192, "ALLOWED_WIDTHS");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("ALLOWED_WIDTHS") != std::string::npos);
  }
  CHECK(*nic::parse_int_setting("3002", 1, 65535, "PORT") == 3002);
  CHECK_FALSE(nic::parse_int_setting("70000", 1, 65535, "PORT").ok());
}
