// Upstream fetches: each URL parsed once by libcurl (the parts the checks read
// are the handle the transfer uses), the private-address forms refused, and
// download() against a real HTTP server on 127.0.0.1 (one thread, canned
// answers) to show that what was checked is what was fetched.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <vector>

#include "http_fetch.h"
#include "nic/allowed_hosts.h"

using nic::origin::UpstreamUrl;

namespace {

// Answers each request with the canned reply for its path (404 otherwise)
// and records the request lines it saw.
class CannedServer {
 public:
  explicit CannedServer(std::map<std::string, std::string> replies) : replies_(std::move(replies)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    REQUIRE(::listen(fd_, 8) == 0);
    thread_ = std::thread([this] { serve(); });
  }
  ~CannedServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  int port() const { return port_; }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void serve() {
    while (!stop_) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[2048];
      while (req.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<std::size_t>(n));
      }
      const std::string line = req.substr(0, req.find("\r\n"));
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(line);
      }
      const auto sp1 = line.find(' ');
      const std::string path = line.substr(sp1 + 1, line.find(' ', sp1 + 1) - sp1 - 1);
      const auto it = replies_.find(path);
      const std::string reply =
          it != replies_.end() ? it->second : "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      (void)!::write(c, reply.data(), reply.size());
      ::close(c);
    }
  }
  std::map<std::string, std::string> replies_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> requests_;
};

std::string ok_body(const std::string& body) {
  return "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

std::string redirect_to(const std::string& location) {
  return "HTTP/1.1 302 Found\r\nLocation: " + location + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
}

std::vector<nic::AllowedHost> allow(const std::string& text) {
  auto a = nic::parse_allowed_hosts(text);
  REQUIRE(a.ok());
  return *a;
}

}  // namespace

TEST_CASE("upstream URLs are parsed by libcurl, once", "[origin][fetch]") {
  struct Case {
    const char* url;
    const char* host;
    int port;
    const char* path;
  };
  const Case cases[] = {
      {"HTTPS://Prod-Files-Secure.S3.us-west-2.amazonaws.com/a/b.png?X=1#f", "prod-files-secure.s3.us-west-2.amazonaws.com",
       443, "/a/b.png"},
      {"http://127.0.0.1:9002/x", "127.0.0.1", 9002, "/x"},
      // curl reads these numeric forms as 127.0.0.1: the checks see that too.
      {"http://0x7f.1/", "127.0.0.1", 80, "/"},
      {"http://2130706433/", "127.0.0.1", 80, "/"},
      {"http://0177.0.0.1/", "127.0.0.1", 80, "/"},
      {"http://127.1/", "127.0.0.1", 80, "/"},
      {"http://[::FFFF:127.0.0.1]:8080/p", "::ffff:127.0.0.1", 8080, "/p"},
      // Where another parser would read these differently, the check now
      // reads them as the transfer does.
      {"http:///x", "x", 80, "/"},
      {"http://ex%61mple.com/", "example.com", 80, "/"},
      {"http://ex%2Eample.com/", "ex.ample.com", 80, "/"},
      {"http://[2002:7f00:1::1]/", "2002:7f00:1::1", 80, "/"},
      {"http://h/a/../b", "h", 80, "/b"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.url);
    auto u = UpstreamUrl::parse(c.url, nic::ErrorCode::UpstreamError);
    REQUIRE(u.ok());
    CHECK(u->parts().host == c.host);
    CHECK(u->parts().port == c.port);
    CHECK(u->parts().path == c.path);
  }
  for (const char* bad : {"ftp://h/", "file:///etc/passwd", "//h/", "http://user@h/", "http://u:p@h/",
                          "http://[fe80::1%25eth0]/", "http://h/a b", "http://h\x01/", "http://h:99999/",
                          "gopher://h/", "http://exa%2fmple.com/", "http://a%00b/", "http://exa\xc3\xa9.com/"}) {
    CAPTURE(bad);
    auto u = UpstreamUrl::parse(bad, nic::ErrorCode::UpstreamError);
    CHECK_FALSE(u.ok());
    if (!u.ok()) CHECK(u.error().code == nic::ErrorCode::UpstreamError);
  }
}

TEST_CASE("redirect targets are resolved by libcurl against the current URL", "[origin][fetch]") {
  auto base = UpstreamUrl::parse("http://127.0.0.1:9002/ws/file/a.png?sig=1", nic::ErrorCode::UpstreamError);
  REQUIRE(base.ok());
  auto rel = base->follow("b.png", nic::ErrorCode::UpstreamError);
  REQUIRE(rel.ok());
  CHECK(rel->parts().host == "127.0.0.1");
  CHECK(rel->parts().path == "/ws/file/b.png");
  auto abs_path = base->follow("/other?x=2", nic::ErrorCode::UpstreamError);
  REQUIRE(abs_path.ok());
  CHECK(abs_path->parts().path == "/other");
  CHECK(abs_path->parts().query == "x=2");
  auto scheme_rel = base->follow("//Evil.Example.com/x", nic::ErrorCode::UpstreamError);
  REQUIRE(scheme_rel.ok());
  CHECK(scheme_rel->parts().scheme == "http");
  CHECK(scheme_rel->parts().host == "evil.example.com");
  CHECK(scheme_rel->parts().port == 80);
  auto v6 = base->follow("http://[::ffff:a9fe:a9fe]/latest", nic::ErrorCode::UpstreamError);
  REQUIRE(v6.ok());
  CHECK(v6->parts().host == "::ffff:a9fe:a9fe");
  CHECK_FALSE(base->follow("http://u@h/", nic::ErrorCode::UpstreamError).ok());
  CHECK_FALSE(base->follow("/a b", nic::ErrorCode::UpstreamError).ok());
}

TEST_CASE("every private address form is refused unless named literally", "[origin][fetch]") {
  for (const char* ip : {"127.0.0.1", "169.254.169.254", "::1", "::ffff:127.0.0.1", "::ffff:0:127.0.0.1",
                         "::127.0.0.1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::1", "2002:7f00:1::1",
                         "2001:0:4136:e378:8000:63bf:3fff:fdd2", "fec0::1", "fe80::1", "fd00:ec2::254",
                         "100::1"}) {
    CAPTURE(ip);
    auto r = nic::origin::resolve_checked(ip, 80, false);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == nic::ErrorCode::PrivateHost);
    CHECK(nic::origin::resolve_checked(ip, 80, true).ok());  // an entry naming it literally
  }
  // A name is checked by what it resolves to.
  auto local = nic::origin::resolve_checked("localhost", 80, false);
  REQUIRE_FALSE(local.ok());
  CHECK(local.error().code == nic::ErrorCode::PrivateHost);
}

TEST_CASE("download fetches exactly the URL that was checked", "[origin][fetch]") {
  CannedServer server({{"/img.png", ok_body("PNGDATA")}, {"/to-relative", redirect_to("img.png")}});
  const std::string port = std::to_string(server.port());
  const auto allowed = allow("http://127.0.0.1:" + port + ",http://localhost:" + port);
  const nic::origin::DownloadOptions options{1 << 20, 10000, 5, {}};

  SECTION("a numeric form of the allowed address is the allowed address") {
    auto r = nic::origin::download("http://0x7f.0.0.1:" + port + "/img.png", allowed, options);
    REQUIRE(r.ok());
    CHECK(r->status == 200);
    CHECK(r->body_text() == "PNGDATA");
    CHECK(server.requests() == std::vector<std::string>{"GET /img.png HTTP/1.1"});
  }
  SECTION("a relative redirect is resolved once and followed") {
    auto r = nic::origin::download("http://127.0.0.1:" + port + "/to-relative", allowed, options);
    REQUIRE(r.ok());
    CHECK(r->body_text() == "PNGDATA");
    CHECK(server.requests().size() == 2);
  }
  SECTION("the IPv4-mapped form of the allowed address is another host: refused before connecting") {
    auto r = nic::origin::download("http://[::ffff:127.0.0.1]:" + port + "/img.png", allowed, options);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == nic::ErrorCode::DomainNotAllowed);
    CHECK(server.requests().empty());
  }
  SECTION("a name allowed by name that resolves to loopback is refused before connecting") {
    auto r = nic::origin::download("http://LocalHost:" + port + "/img.png", allowed, options);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == nic::ErrorCode::PrivateHost);
    CHECK(server.requests().empty());
  }
  SECTION("the body is charged before it is read: its Content-Length, once per hop") {
    std::vector<std::uint64_t> charges;
    auto charged = options;
    charged.reserve = [&charges](std::uint64_t bytes) {
      charges.push_back(bytes);
      return true;
    };
    auto r = nic::origin::download("http://127.0.0.1:" + port + "/img.png", allowed, charged);
    REQUIRE(r.ok());
    CHECK(charges == std::vector<std::uint64_t>{7});
    charges.clear();
    r = nic::origin::download("http://127.0.0.1:" + port + "/to-relative", allowed, charged);
    REQUIRE(r.ok());
    CHECK(charges == std::vector<std::uint64_t>{0, 7});  // the redirect's empty body, then the image's
  }
  SECTION("a refused charge aborts the transfer: OVERLOADED, no body") {
    auto refused = options;
    refused.reserve = [](std::uint64_t) { return false; };
    auto r = nic::origin::download("http://127.0.0.1:" + port + "/img.png", allowed, refused);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == nic::ErrorCode::Overloaded);
  }
  SECTION("credentials in the URL are refused before connecting") {
    auto r = nic::origin::download("http://127.0.0.1:" + port + "@127.0.0.1:" + port + "/img.png", allowed, options);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == nic::ErrorCode::UpstreamError);
    CHECK(server.requests().empty());
  }
}
