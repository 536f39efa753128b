#include <catch2/catch.hpp>

#include "nic/allowed_hosts.h"
#include "nic/url.h"

TEST_CASE("parse_url", "[url]") {
  auto u = nic::parse_url("HTTPS://Example.COM:8443/a/b?x=1#frag");
  REQUIRE(u.ok());
  CHECK(u->scheme == "https");
  CHECK(u->host == "example.com");
  CHECK(u->port == 8443);
  CHECK(u->path == "/a/b");
  CHECK(u->query == "x=1");
  CHECK(nic::parse_url("http://[::1]:9000")->host == "::1");
  CHECK(nic::parse_url("http://h")->path == "/");
  for (const char* bad : {"ftp://h/", "//h/", "http://user@h/", "http://h:0/", "http://h:99999/", "http:///x",
                          "http://h/a b", "http://[::1/", "http://h\x01/"}) {
    CAPTURE(bad);
    CHECK_FALSE(nic::parse_url(bad).ok());
  }
}

TEST_CASE("private addresses", "[url]") {
  for (const char* ip : {"127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
                         "0.0.0.0", "100.64.0.1", "224.0.0.1", "::1", "::", "fe80::1", "fd00:ec2::254",
                         "::ffff:127.0.0.1", "::ffff:7f00:1", "64:ff9b::a00:1"}) {
    CAPTURE(ip);
    CHECK(nic::is_private_address(ip));
  }
  for (const char* ip : {"8.8.8.8", "172.32.0.1", "52.218.1.1", "2600:1f14::1", "example.com"}) {
    CAPTURE(ip);
    CHECK_FALSE(nic::is_private_address(ip));
  }
}

TEST_CASE("ALLOWED_DOMAINS", "[url]") {
  auto allowed = nic::parse_allowed_hosts("prod-files-secure.s3.us-west-2.amazonaws.com, http://127.0.0.1:9002,.example.org");
  REQUIRE(allowed.ok());
  auto check = [&](const char* url) {
    auto u = nic::parse_url(url);
    REQUIRE(u.ok());
    auto st = nic::check_allowed(*u, *allowed);
    return st.ok() ? std::string("ok") : std::string(nic::to_string(st.error().code));
  };
  CHECK(check("https://prod-files-secure.s3.us-west-2.amazonaws.com/a") == "ok");
  CHECK(check("http://prod-files-secure.s3.us-west-2.amazonaws.com/a") == "HTTPS_REQUIRED");
  CHECK(check("https://prod-files-secure.s3.us-west-2.amazonaws.com:444/a") == "DOMAIN_NOT_ALLOWED");
  CHECK(check("http://127.0.0.1:9002/x") == "ok");
  CHECK(check("http://127.0.0.1:9003/x") == "DOMAIN_NOT_ALLOWED");
  CHECK(check("https://127.0.0.1:9002/x") == "DOMAIN_NOT_ALLOWED");
  CHECK(check("https://cdn.example.org/x") == "ok");
  CHECK(check("https://example.org/x") == "DOMAIN_NOT_ALLOWED");
  CHECK(check("https://evil.com/x") == "DOMAIN_NOT_ALLOWED");
  CHECK(nic::allowed_literally(*nic::parse_url("http://127.0.0.1:9002/x"), *allowed));
  CHECK_FALSE(nic::allowed_literally(*nic::parse_url("https://cdn.example.org/x"), *allowed));
  CHECK_FALSE(nic::parse_allowed_hosts("").ok());
  CHECK_FALSE(nic::parse_allowed_hosts("http://h:1/path").ok());
  CHECK(nic::default_allowed_hosts().size() == 4);
}
