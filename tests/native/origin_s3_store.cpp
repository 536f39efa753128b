// The S3 store: object naming, the SigV4 wiring (a request captured on
// 127.0.0.1 and its signature recomputed here from the AWS algorithm), and an
// unreachable store (start degraded, misses, failed writes).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <thread>

#include "nic/cache_key.h"
#include "nic/sha256.h"
#include "s3_store.h"

using namespace nic::origin;

namespace {

// Accepts one connection, keeps the request head, answers `reply`.
struct OneShotServer {
  int fd = -1;
  std::uint16_t port = 0;
  std::string request;
  std::thread thread;

  explicit OneShotServer(std::string reply) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd, 1) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
    thread = std::thread([this, reply = std::move(reply)] {
      const int c = ::accept(fd, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        request.append(buf, static_cast<std::size_t>(n));
      }
      (void)!::write(c, reply.data(), reply.size());
      ::close(c);
    });
  }
  ~OneShotServer() {
    if (thread.joinable()) thread.join();
    ::close(fd);
  }
};

std::map<std::string, std::string> header_map(const std::string& head) {
  std::map<std::string, std::string> out;
  std::size_t pos = head.find("\r\n") + 2;
  while (pos < head.size()) {
    const auto end = head.find("\r\n", pos);
    if (end == pos || end == std::string::npos) break;
    const std::string line = head.substr(pos, end - pos);
    const auto colon = line.find(':');
    std::string name = line.substr(0, colon);
    for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    out[name] = value;
    pos = end + 2;
  }
  return out;
}

std::string as_string(const nic::Digest& d) { return {reinterpret_cast<const char*>(d.data()), d.size()}; }

std::uint16_t closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);  // nothing listens there now
  return ntohs(a.sin_port);
}

}  // namespace

TEST_CASE("s3 store: object names and purge groups", "[origin][s3]") {
  // The groups themselves: nic::source_group_of (tests/unit/cache_key.cpp).
  const std::string variant = "v1/ws1/abc/photo.png?fmt=png&w=320";
  const std::string h = nic::cache_key_hash(variant);
  CHECK(s3_object_name(h) == h.substr(0, 2) + "/" + h.substr(2, 2) + "/" + h);
  CHECK(s3_index_name("v1/*/abc/", h) == "index/" + nic::sha256_hex("v1/*/abc/") + "/" + h);
  CHECK(s3_uri_encode("index/a b") == "index%2Fa%20b");
}

TEST_CASE("s3 store: requests carry a valid SigV4 signature for the region and keys", "[origin][s3]") {
  const std::string body = "<ListBucketResult></ListBucketResult>";
  OneShotServer server("HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  const std::string secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  auto store = S3Store::open(S3Settings{"http://127.0.0.1:" + std::to_string(server.port), "nic-bucket",
                                        "eu-west-1", "AKIDEXAMPLE", secret, 5000, 60000});
  REQUIRE(store.ok());
  server.thread.join();
  CHECK((*store)->writable());

  const std::string& req = server.request;
  const std::string line = req.substr(0, req.find("\r\n"));
  CHECK(line == "GET /nic-bucket?list-type=2&max-keys=1&prefix=nic-probe%2F HTTP/1.1");
  auto headers = header_map(req);
  const std::string auth = headers["authorization"];
  const std::string amz_date = headers["x-amz-date"];
  REQUIRE(amz_date.size() == 16);  // 20240101T000000Z
  const std::string date = amz_date.substr(0, 8);
  const std::string scope = date + "/eu-west-1/s3/aws4_request";
  const std::string prefix = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/" + scope + ", SignedHeaders=";
  REQUIRE(auth.rfind(prefix, 0) == 0);
  const auto sig_at = auth.find(", Signature=");
  REQUIRE(sig_at != std::string::npos);
  const std::string signed_headers = auth.substr(prefix.size(), sig_at - prefix.size());
  const std::string signature = auth.substr(sig_at + 12);
  CHECK(signed_headers == "host;x-amz-content-sha256;x-amz-date");
  CHECK(headers["x-amz-content-sha256"] == nic::sha256_hex(""));

  // The AWS algorithm, step by step.
  std::string canonical_headers;
  std::size_t from = 0;
  while (from <= signed_headers.size()) {
    const auto semi = signed_headers.find(';', from);
    const std::string name = signed_headers.substr(from, semi - from);
    canonical_headers += name + ":" + headers[name] + "\n";
    if (semi == std::string::npos) break;
    from = semi + 1;
  }
  const std::string canonical_request = "GET\n/nic-bucket\nlist-type=2&max-keys=1&prefix=nic-probe%2F\n" +
                                        canonical_headers + "\n" + signed_headers + "\n" + nic::sha256_hex("");
  const std::string to_sign =
      "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope + "\n" + nic::sha256_hex(canonical_request);
  std::string key = as_string(nic::hmac_sha256("AWS4" + secret, date));
  key = as_string(nic::hmac_sha256(key, "eu-west-1"));
  key = as_string(nic::hmac_sha256(key, "s3"));
  key = as_string(nic::hmac_sha256(key, "aws4_request"));
  const nic::Digest expected = nic::hmac_sha256(key, to_sign);
  CHECK(signature == nic::to_hex(expected));
}

TEST_CASE("s3 store: a refused signature is a start-up error naming the keys", "[origin][s3]") {
  const std::string body =
      "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>no</Message></Error>";
  OneShotServer server("HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  auto store = S3Store::open(S3Settings{"http://127.0.0.1:" + std::to_string(server.port), "nic-bucket",
                                        "us-east-1", "AKID", "bad", 5000, 60000});
  REQUIRE_FALSE(store.ok());
  CHECK(store.error().message.find("S3_ACCESS_KEY/S3_SECRET_KEY") == 0);
  CHECK(store.error().message.find("403 SignatureDoesNotMatch") != std::string::npos);
}

TEST_CASE("s3 store: an unreachable store starts degraded, reads miss, writes fail", "[origin][s3]") {
  auto store = S3Store::open(S3Settings{"http://127.0.0.1:" + std::to_string(closed_port()), "nic-bucket",
                                        "us-east-1", "AKID", "secret", 2000, 60000});
  REQUIRE(store.ok());
  Store& s = **store;
  CHECK_FALSE(s.writable());
  const std::string key = "v1/ws/id/a.png?w=32";
  const std::string hash = nic::cache_key_hash(key);
  CHECK_FALSE(s.read(hash).has_value());
  EntryMeta meta;
  meta.key = key;
  meta.etag = "\"x\"";
  const std::uint8_t bytes[] = {1, 2, 3};
  const auto w = s.write(hash, meta, bytes);
  REQUIRE_FALSE(w.ok());
  CHECK(w.error().message.find("S3 PUT") != std::string::npos);
  CHECK(s.stats().write_errors == 1);
  CHECK_FALSE(s.meta(hash).has_value());
  CHECK(s.erase_group("v1/*/id/") == 0);
}
