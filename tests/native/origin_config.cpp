// nic-origin settings: defaults, parsing, validation naming the variable, masking.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "config.h"

using nic::origin::Config;
using nic::origin::load_config;

namespace {

nic::origin::EnvGetter env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    const auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

TEST_CASE("origin config: defaults are the contract's", "[origin][config]") {
  auto c = load_config(env_of({}));
  REQUIRE(c.ok());
  CHECK(c->port == 3002);
  CHECK(c->host == "0.0.0.0");
  CHECK(c->cache_dir == "./cache");
  CHECK(c->max_image_size_bytes == 26214400);
  CHECK(c->upstream_timeout_ms == 15000);
  CHECK(c->cache_ttl_seconds == 86400);
  CHECK(c->notion_api_base == "https://api.notion.com");
  CHECK(c->notion_version == "2022-06-28");
  CHECK(c->memory_cache_bytes == 268435456);
  CHECK(c->max_input_pixels == 50000000);
  CHECK(c->follower_timeout_ms == 20000);
  CHECK(c->source_ttl_seconds == 3600);
  CHECK(c->avif_speed == 5);
  CHECK(c->notion_rps == 3.0);
  CHECK(c->coalescing);
  CHECK(c->core.allowed_widths.front() == 32);
  CHECK(c->core.allowed_widths.back() == 3840);
  CHECK(c->core.quality_steps == std::vector<int>{60, 75, 85, 95});
  CHECK_FALSE(c->allowed_domains.empty());
}

TEST_CASE("origin config: values are read", "[origin][config]") {
  auto c = load_config(env_of({{"PORT", "8080"},
                               {"ALLOWED_WIDTHS", "640, 320"},
                               {"NOTION_TOKENS", "ws_one=tok1, 0123456789abcdef0123456789ABCDEF=tok2"},
                               {"NOTION_TOKEN", "fallback"},
                               {"NOTION_API_BASE", "http://127.0.0.1:9000/"},
                               {"API_KEYS", "a, b,,c"},
                               {"NIC_COALESCING", "off"},
                               {"NOTION_RPS", "2.5"},
                               {"AVIF_SPEED", "8"},
                               {"TRANSFORM_NICE", "0"},
                               {"ALLOWED_DOMAINS", "http://127.0.0.1:9002"}}));
  REQUIRE(c.ok());
  CHECK(c->port == 8080);
  CHECK(c->core.allowed_widths == std::vector<int>{320, 640});
  CHECK(nic::origin::notion_token_for(*c, "ws_one") == "tok1");
  CHECK(nic::origin::notion_token_for(*c, "0123456789abcdef0123456789abcdef") == "tok2");
  CHECK(nic::origin::notion_token_for(*c, "other") == "fallback");
  CHECK(c->notion_api_base == "http://127.0.0.1:9000");
  CHECK(c->api_keys == std::vector<std::string>{"a", "b", "c"});
  CHECK_FALSE(c->coalescing);
  CHECK(c->notion_rps == 2.5);
  CHECK(c->avif_speed == 8);
  CHECK(c->transform_nice == 0);
  REQUIRE(c->allowed_domains.size() == 1);
  CHECK(c->allowed_domains[0].port == 9002);
}

TEST_CASE("origin config: a bad setting names its variable", "[origin][config]") {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"PORT", "70000"},          {"PORT", "12ab"},
      {"LOG_LEVEL", "chatty"},    {"STORAGE_BACKEND", "ftp"},
      {"ALLOWED_DOMAINS", "http://"}, {"MAX_IMAGE_SIZE_BYTES", "0"},
      {"UPSTREAM_TIMEOUT_MS", "-5"}, {"ALLOWED_WIDTHS", "0,100"},
      {"QUALITY_STEPS", "101"},   {"NOTION_TOKENS", "justatoken"},
      {"NOTION_API_BASE", "notaurl"}, {"NOTION_RPS", "0"},
      {"WORKER_THREADS", "0"},    {"NIC_COALESCING", "sometimes"},
      {"FOLLOWER_TIMEOUT_MS", "x"}, {"TRANSFORM_QUEUE", "-1"},
      {"AVIF_SPEED", "11"},       {"TRANSFORM_NICE", "20"},
      {"REDIS_URL", "http://127.0.0.1:6379"},
      {"REDIS_URL", "redis://127.0.0.1:99999"}, {"REDIS_URL", "redis://127.0.0.1:6379/x"},
  };
  for (const auto& [name, value] : bad) {
    INFO(name << "=" << value);
    auto c = load_config(env_of({{name, value}}));
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().message.find(name) != std::string::npos);
  }
}

TEST_CASE("origin config: s3/r2 settings are required and named", "[origin][config][s3]") {
  const std::map<std::string, std::string> full{{"STORAGE_BACKEND", "s3"},
                                                {"S3_BUCKET", "nic-images"},
                                                {"S3_REGION", "eu-west-1"},
                                                {"S3_ENDPOINT", "https://s3.example.test/"},
                                                {"S3_ACCESS_KEY", "AKIDEXAMPLE"},
                                                {"S3_SECRET_KEY", "wJalrXUtnFEMI"}};
  auto ok = load_config(env_of(full));
  REQUIRE(ok.ok());
  CHECK(ok->storage_backend == "s3");
  CHECK(ok->s3_endpoint == "https://s3.example.test");  // trailing slash dropped
  const std::string text = nic::origin::describe_config(*ok);
  CHECK(text.find("AKIDEXAMPLE") == std::string::npos);
  CHECK(text.find("wJalrXUtnFEMI") == std::string::npos);
  CHECK(text.find("S3_BUCKET=nic-images") != std::string::npos);

  for (const char* name : {"S3_BUCKET", "S3_REGION", "S3_ACCESS_KEY", "S3_SECRET_KEY"}) {
    auto vars = full;
    vars.erase(name);
    auto c = load_config(env_of(vars));
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().message.rfind(name, 0) == 0);
  }
  // AWS S3 without an endpoint: the region's.
  auto vars = full;
  vars.erase("S3_ENDPOINT");
  auto aws = load_config(env_of(vars));
  REQUIRE(aws.ok());
  CHECK(aws->s3_endpoint == "https://s3.eu-west-1.amazonaws.com");
  // R2: endpoint required, region "auto" by default.
  vars["STORAGE_BACKEND"] = "r2";
  vars.erase("S3_REGION");
  auto r2 = load_config(env_of(vars));
  REQUIRE_FALSE(r2.ok());
  CHECK(r2.error().message.rfind("S3_ENDPOINT", 0) == 0);
  vars["S3_ENDPOINT"] = "https://acct.r2.cloudflarestorage.com";
  r2 = load_config(env_of(vars));
  REQUIRE(r2.ok());
  CHECK(r2->s3_region == "auto");
  // Bad values.
  const std::vector<std::pair<std::string, std::string>> bad_values{
      {"S3_BUCKET", "Bad_Bucket"}, {"S3_ENDPOINT", "ftp://x"}, {"S3_ENDPOINT", "https://host/bucket"},
      {"S3_REGION", "us east"}};
  for (const auto& [name, value] : bad_values) {
    auto bad = full;
    bad[name] = value;
    auto c = load_config(env_of(bad));
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().message.rfind(name, 0) == 0);
  }
  auto plain = full;
  plain["S3_ENDPOINT"] = "http://s3.example.test";
  CHECK_FALSE(load_config(env_of(plain)).ok());  // plain http only for loopback
  plain["S3_ENDPOINT"] = "http://127.0.0.1:9000";
  CHECK(load_config(env_of(plain)).ok());
}

TEST_CASE("origin config: secrets are masked", "[origin][config]") {
  auto c = load_config(env_of({{"HMAC_SECRET", "hunter2"},
                               {"API_KEYS", "key-one"},
                               {"NOTION_TOKEN", "secret_xyz"},
                               {"S3_SECRET_KEY", "s3s3"},
                               {"NOTION_TOKENS", "ws=secret_abc"}}));
  REQUIRE(c.ok());
  const std::string text = nic::origin::describe_config(*c);
  for (const char* secret : {"hunter2", "key-one", "secret_xyz", "s3s3", "secret_abc"}) {
    CHECK(text.find(secret) == std::string::npos);
  }
  CHECK(text.find("HMAC_SECRET=***") != std::string::npos);
  CHECK(text.find("NOTION_TOKENS=ws=***") != std::string::npos);
}

TEST_CASE("origin config: hardening settings (connections, edge secret, miss limit, disk cap)",
          "[origin][config]") {
  auto d = load_config(env_of({}));
  REQUIRE(d.ok());
  CHECK(d->max_connections == 4096);
  CHECK_FALSE(d->max_connections_explicit);
  CHECK(d->edge_secret.empty());
  CHECK(d->rate_limit_image_miss == 600);
  CHECK(d->cache_max_bytes == 10737418240ULL);  // a default disk cap: 10 GiB

  auto c = load_config(env_of({{"MAX_CONNECTIONS", "64"},
                               {"EDGE_SECRET", " 0123456789abcdef0123 "},
                               {"RATE_LIMIT_IMAGE_MISS", "0"},
                               {"CACHE_MAX_BYTES", "0"}}));
  REQUIRE(c.ok());
  CHECK(c->max_connections == 64);
  CHECK(c->max_connections_explicit);
  CHECK(c->edge_secret == "0123456789abcdef0123");
  CHECK(c->rate_limit_image_miss == 0);
  CHECK(c->cache_max_bytes == 0);  // 0 still switches the cap off
  const std::string text = nic::origin::describe_config(*c);
  CHECK(text.find("0123456789abcdef0123") == std::string::npos);
  CHECK(text.find("EDGE_SECRET=***") != std::string::npos);
  CHECK(text.find("MAX_CONNECTIONS=64\n") != std::string::npos);
  CHECK(text.find("RATE_LIMIT_IMAGE_MISS=0\n") != std::string::npos);

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"MAX_CONNECTIONS", "0"}, {"MAX_CONNECTIONS", "many"}, {"EDGE_SECRET", "short"},
      {"RATE_LIMIT_IMAGE_MISS", "-1"}};
  for (const auto& [name, value] : bad) {
    INFO(name << "=" << value);
    auto e = load_config(env_of({{name, value}}));
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().message.rfind(name, 0) == 0);
  }
}
