#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "nic/format.h"
#include "nic/percent.h"

TEST_CASE("percent decoding is strict", "[percent]") {
  CHECK(*nic::percent_decode("a%20b%2Fc", nic::ErrorCode::InvalidPath) == "a b/c");
  CHECK(*nic::percent_decode("a+b", nic::ErrorCode::InvalidPath) == "a+b");
  CHECK(*nic::percent_decode("a+b", nic::ErrorCode::InvalidParam, true) == "a b");
  for (const char* bad : {"%", "%4", "%zz", "a%g0", "%%"}) {
    CAPTURE(bad);
    auto r = nic::percent_decode(bad, nic::ErrorCode::InvalidPath);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == nic::ErrorCode::InvalidPath);
  }
  CHECK(nic::percent_encode("a b/é~") == "a%20b%2F%C3%A9~");
}

TEST_CASE("split_query", "[percent]") {
  const auto q = nic::split_query("a=1&&b&c=x=y&");
  REQUIRE(q.size() == 3);
  CHECK(q[0].name == "a");
  CHECK(q[0].value == "1");
  CHECK(q[1].name == "b");
  CHECK(q[1].value.empty());
  CHECK(q[2].value == "x=y");
}

TEST_CASE("formats sniffed from magic bytes", "[format]") {
  auto sniff = [](std::string bytes) {
    return nic::sniff_format(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
  };
  CHECK(sniff("\xFF\xD8\xFF\xE0rest") == nic::ImageFormat::Jpeg);
  CHECK(sniff("\x89PNG\r\n\x1A\nrest") == nic::ImageFormat::Png);
  CHECK(sniff("GIF89a...") == nic::ImageFormat::Gif);
  CHECK(sniff(std::string("RIFF\0\0\0\0WEBPVP8 ", 16)) == nic::ImageFormat::Webp);
  CHECK(sniff(std::string("\0\0\0\x1C" "ftypavif", 12)) == nic::ImageFormat::Avif);
  CHECK(sniff("  <svg xmlns='http://www.w3.org/2000/svg'/>") == nic::ImageFormat::Svg);
  CHECK(sniff("<?xml version='1.0'?><svg/>") == nic::ImageFormat::Svg);
  CHECK_FALSE(sniff("<?xml version='1.0'?><html/>"));
  CHECK_FALSE(sniff("hello"));
  CHECK_FALSE(sniff(""));
  CHECK(nic::content_type(nic::ImageFormat::Avif) == "image/avif");
  CHECK(nic::parse_requested_format("jpg") == nic::RequestedFormat::Jpeg);
  CHECK_FALSE(nic::parse_requested_format("JPG"));
}
