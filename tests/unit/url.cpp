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
  struct Case {
    const char* ip;
    const char* why;
  };
  const Case refused[] = {
      {"127.0.0.1", "loopback"},
      {"10.1.2.3", "RFC 1918"},
      {"172.16.0.1", "RFC 1918"},
      {"172.31.255.255", "RFC 1918"},
      {"192.168.1.1", "RFC 1918"},
      {"169.254.169.254", "link-local, cloud metadata"},
      {"0.0.0.0", "this network"},
      {"100.64.0.1", "CGNAT"},
      {"192.0.0.8", "IETF protocol assignments"},
      {"192.0.2.1", "TEST-NET-1"},
      {"198.51.100.7", "TEST-NET-2"},
      {"203.0.113.9", "TEST-NET-3"},
      {"192.88.99.1", "6to4 relay anycast"},
      {"198.18.0.1", "benchmarking"},
      {"224.0.0.1", "multicast"},
      {"255.255.255.255", "broadcast"},
      {"::1", "loopback"},
      {"::", "unspecified"},
      {"::8.8.8.8", "IPv4-compatible (deprecated), even of a public address"},
      {"::7f00:1", "IPv4-compatible of loopback"},
      {"fe80::1", "link-local"},
      {"fd00:ec2::254", "unique local (AWS metadata over IPv6)"},
      {"fc00::1", "unique local"},
      {"fec0::1", "site-local"},
      {"feff:ffff::1", "site-local, top of fec0::/10"},
      {"ff02::1", "multicast"},
      {"::ffff:127.0.0.1", "IPv4-mapped loopback"},
      {"::ffff:7f00:1", "IPv4-mapped loopback, hex"},
      {"::ffff:169.254.169.254", "IPv4-mapped metadata"},
      {"::ffff:a9fe:a9fe", "IPv4-mapped metadata, hex"},
      {"::ffff:10.0.0.1", "IPv4-mapped RFC 1918"},
      {"0:0:0:0:0:ffff:c0a8:0101", "IPv4-mapped, uncompressed"},
      {"::ffff:0:127.0.0.1", "IPv4-translated loopback"},
      {"::ffff:0:a9fe:a9fe", "IPv4-translated metadata"},
      {"64:ff9b::a00:1", "NAT64 of 10.0.0.1"},
      {"64:ff9b::127.0.0.1", "NAT64 of loopback"},
      {"64:ff9b:1::1", "local-use NAT64 64:ff9b:1::/48"},
      {"64:ff9b:1:ffff::8.8.8.8", "local-use NAT64, whatever it embeds"},
      {"2002:7f00:1::1", "6to4 of 127.0.0.1"},
      {"2002:a9fe:a9fe::", "6to4 of the metadata address"},
      {"2002:808:808::1", "6to4 of a public address: the relay is out of our sight"},
      {"2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"},
      {"2001::1", "Teredo"},
      {"2001:2::1", "benchmarking (2001::/23)"},
      {"2001:1ff::1", "top of 2001::/23"},
      {"2001:db8::1", "documentation"},
      {"100::1", "discard-only 100::/64"},
  };
  for (const auto& c : refused) {
    CAPTURE(c.ip, c.why);
    CHECK(nic::is_private_address(c.ip));
  }
  const Case allowed[] = {
      {"8.8.8.8", "public"},
      {"172.32.0.1", "just above 172.16/12"},
      {"52.218.1.1", "S3"},
      {"192.0.3.1", "beside TEST-NET-1"},
      {"2600:1f14::1", "AWS IPv6"},
      {"::ffff:52.218.1.1", "IPv4-mapped public"},
      {"::ffff:0:52.218.1.1", "IPv4-translated public"},
      {"64:ff9b::52.218.1.1", "NAT64 of a public address"},
      {"2001:200::1", "just above 2001::/23"},
      {"2001:4860:4860::8888", "public"},
      {"2003::1", "just above 6to4"},
      {"fbff::1", "just below fc00::/7"},
      {"64:ff9b:2::1", "beside 64:ff9b:1::/48"},
      {"100:0:0:1::1", "beside 100::/64"},
      {"example.com", "not an address (names are checked after resolving)"},
  };
  for (const auto& c : allowed) {
    CAPTURE(c.ip, c.why);
    CHECK_FALSE(nic::is_private_address(c.ip));
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
