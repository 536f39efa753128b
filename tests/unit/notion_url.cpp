#include <catch2/catch.hpp>

#include "nic/notion_url.h"

namespace {
const char* kWs = "3b2c1a9e-8f7d-4c6b-a5e4-d3c2b1a09f8e";
const char* kFile = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a";
const char* kWsHex = "3b2c1a9e8f7d4c6ba5e4d3c2b1a09f8e";
const char* kFileHex = "9f8e7d6c5b4a439281706f5e4d3c2b1a";
}  // namespace

TEST_CASE("the four Notion URL forms", "[notion_url]") {
  const auto allowed = nic::default_allowed_hosts();
  const std::string ws = kWs;
  const std::string file = kFile;
  struct Case {
    std::string url;
    std::optional<std::int64_t> expires;
    bool has_block;
  };
  const Case cases[] = {
      {"https://prod-files-secure.s3.us-west-2.amazonaws.com/" + ws + "/" + file +
           "/My%20Image.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20240102T030405Z&X-Amz-Expires=3600&X-Amz-Signature=ab",
       1704164645 + 3600, false},
      {"https://s3.us-west-2.amazonaws.com/prod-files-secure/" + ws + "/" + file +
           "/My%20Image.png?X-Amz-Date=20240102T030405Z&X-Amz-Expires=3600",
       1704164645 + 3600, false},
      {"https://file.notion.so/f/f/" + ws + "/" + file +
           "/My%20Image.png?table=block&id=11111111-2222-3333-4444-555555555555&spaceId=" + ws +
           "&expirationTimestamp=1704200000000&signature=xyz",
       1704200000, true},
      {"https://img.notionusercontent.com/s3/prod-files-secure%2F" + ws + "%2F" + file +
           "%2FMy%2520Image.png/size/w=2000?exp=1704200000&sig=abc&id=11111111-2222-3333-4444-555555555555&table=block",
       1704200000, true},
  };
  for (const auto& c : cases) {
    CAPTURE(c.url);
    auto f = nic::parse_notion_url(c.url, allowed);
    REQUIRE(f.ok());
    CHECK(f->workspace == kWsHex);
    CHECK(f->file_id == kFileHex);
    CHECK(f->filename == "My Image.png");
    CHECK(f->expires_at == c.expires);
    CHECK(f->block_id.has_value() == c.has_block);
    if (c.has_block) CHECK(*f->block_id == "11111111222233334444555555555555");
    CHECK(f->url == c.url);
  }
}

TEST_CASE("Notion URL errors", "[notion_url]") {
  auto allowed = nic::parse_allowed_hosts("prod-files-secure.s3.us-west-2.amazonaws.com,http://127.0.0.1:9002");
  REQUIRE(allowed.ok());
  const std::string ws = kWs;
  const std::string file = kFile;
  struct Case {
    std::string url;
    nic::ErrorCode code;
  };
  const Case cases[] = {
      {"", nic::ErrorCode::MissingUrl},
      {"https://prod-files-secure.s3.us-west-2.amazonaws.com/" + std::string(9000, 'a'), nic::ErrorCode::UrlTooLong},
      {"not a url", nic::ErrorCode::InvalidParam},
      {"https://evil.example/" + ws + "/" + file + "/a.png", nic::ErrorCode::DomainNotAllowed},
      {"http://prod-files-secure.s3.us-west-2.amazonaws.com/" + ws + "/" + file + "/a.png", nic::ErrorCode::HttpsRequired},
      {"https://prod-files-secure.s3.us-west-2.amazonaws.com/" + ws + "/a.png", nic::ErrorCode::InvalidParam},
      {"https://prod-files-secure.s3.us-west-2.amazonaws.com/" + ws + "/nope/a.png", nic::ErrorCode::InvalidParam},
      {"https://prod-files-secure.s3.us-west-2.amazonaws.com/" + ws + "/" + file + "/..", nic::ErrorCode::InvalidParam},
  };
  for (const auto& c : cases) {
    CAPTURE(c.url.substr(0, 100));
    auto f = nic::parse_notion_url(c.url, *allowed);
    REQUIRE_FALSE(f.ok());
    CHECK(f.error().code == c.code);
  }
  // A mirror host allowed by ALLOWED_DOMAINS reads like the first form.
  auto mirror = nic::parse_notion_url("http://127.0.0.1:9002/" + ws + "/" + file + "/a.png?X-Amz-Date=20240102T030405Z&X-Amz-Expires=60", *allowed);
  REQUIRE(mirror.ok());
  CHECK(mirror->expires_at == 1704164645 + 60);
}

TEST_CASE("X-Amz-Date parsing", "[notion_url]") {
  CHECK(nic::parse_amz_date("19700101T000000Z") == 0);
  CHECK(nic::parse_amz_date("20000229T235959Z") == 951868799);
  CHECK_FALSE(nic::parse_amz_date("20001329T000000Z"));
  CHECK_FALSE(nic::parse_amz_date("2000-01-01T00:00:00Z"));
}

TEST_CASE("Notion URL to CDN URL", "[notion_url]") {
  const auto allowed = nic::default_allowed_hosts();
  const std::string ws = kWs;
  const std::string file = kFile;
  nic::TransformParams p;
  p.w = 800;
  p.fmt = nic::RequestedFormat::Auto;
  auto s3 = nic::parse_notion_url("https://prod-files-secure.s3.us-west-2.amazonaws.com/" + ws + "/" + file + "/a%20b.png?X-Amz-Expires=1", allowed);
  REQUIRE(s3.ok());
  CHECK(nic::cdn_url_for(*s3, "https://cdn.example.com/", p) ==
        std::string("https://cdn.example.com/img/") + kWsHex + "/" + kFileHex + "/a%20b.png?w=800&fmt=auto");
  auto block = nic::parse_notion_url("https://file.notion.so/f/f/" + ws + "/" + file + "/a.png?id=11111111-2222-3333-4444-555555555555", allowed);
  REQUIRE(block.ok());
  p.dpr_tenths = 15;
  CHECK(nic::cdn_url_for(*block, "https://cdn.example.com", p) ==
        std::string("https://cdn.example.com/img/") + kWsHex + "/11111111222233334444555555555555/a.png?w=800&fmt=auto&dpr=1.5");
}
