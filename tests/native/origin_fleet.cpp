// The fleet's Redis client and leases against a real redis-server (Debian's
// redis-server, started here on a free loopback port): one leader across
// "instances" (FleetLeases objects with their own connections and tokens),
// pub/sub wake-ups, takeover of an expired lease, a lease lost while working,
// compare-and-delete, and Redis down or frozen (SIGSTOP) -> fallbacks within a
// bounded wait. Skipped (with a warning) when redis-server is not installed.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "fleet_lease.h"
#include "fleet_limits.h"
#include "rate_limiter.h"
#include "redis_client.h"

using namespace nic::origin;
using namespace std::chrono_literals;

namespace {

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool have_redis_server() { return ::access("/usr/bin/redis-server", X_OK) == 0; }

// redis-server on 127.0.0.1:port, no persistence; stopped (SIGKILL) with the object.
struct RedisServer {
  int port = free_port();
  pid_t pid = -1;

  RedisServer() { start(); }
  ~RedisServer() { stop(); }

  void start() {
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      const int null = ::open("/dev/null", O_WRONLY);
      if (null >= 0) {
        ::dup2(null, 1);
        ::dup2(null, 2);
      }
      const std::string p = std::to_string(port);
      ::execl("/usr/bin/redis-server", "redis-server", "--port", p.c_str(), "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--loglevel", "warning", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    RedisSettings s = settings();
    for (int i = 0; i < 500; ++i) {
      RedisClient probe(s);
      if (auto r = probe.command({"PING"}); r && r->text == "PONG") return;
      std::this_thread::sleep_for(10ms);
    }
    FAIL("redis-server did not answer");
  }

  void stop() {
    if (pid > 0) {
      ::kill(pid, SIGCONT);
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      pid = -1;
    }
  }

  RedisSettings settings() const {
    RedisSettings s;
    s.port = port;
    s.command_timeout_ms = 1000;
    s.backoff_ms = 200;
    return s;
  }

  FleetSettings fleet(std::int64_t ttl_ms = 30000, std::int64_t max_wait_ms = 60000) const {
    FleetSettings f;
    f.redis = settings();
    f.lease_ttl_ms = ttl_ms;
    f.max_wait_ms = max_wait_ms;
    return f;
  }
};

}  // namespace

TEST_CASE("REDIS_URL parsing", "[origin][fleet]") {
  auto a = parse_redis_url("redis://127.0.0.1:6380");
  REQUIRE(a);
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 6380);
  CHECK(a->password.empty());
  auto b = parse_redis_url("redis://:s3cret@redis.internal/2");
  REQUIRE(b);
  CHECK(b->host == "redis.internal");
  CHECK(b->port == 6379);
  CHECK(b->password == "s3cret");
  CHECK(b->db == 2);
  auto c = parse_redis_url("redis://user:pw@h:1/");
  REQUIRE(c);
  CHECK((c->password == "pw" && c->host == "h" && c->port == 1 && c->db == 0));
  CHECK_FALSE(parse_redis_url("http://h:1"));
  CHECK_FALSE(parse_redis_url("redis://h:99999"));
  CHECK_FALSE(parse_redis_url("redis://h:x"));
  CHECK_FALSE(parse_redis_url("redis://"));
  CHECK_FALSE(parse_redis_url("redis://h/-1"));
}

TEST_CASE("Redis client: commands, error replies, refused connections", "[origin][fleet]") {
  if (!have_redis_server()) {
    WARN("redis-server is not installed (scripts/deps.sh installs it): skipped");
    return;
  }
  RedisServer server;
  RedisClient client(server.settings());
  auto set = client.command({"SET", "k", std::string("a\0b", 3), "NX", "PX", "60000"});
  REQUIRE(set);
  CHECK(set->text == "OK");
  auto again = client.command({"SET", "k", "other", "NX", "PX", "60000"});
  REQUIRE(again);
  CHECK(again->is_nil());
  auto get = client.command({"GET", "k"});
  REQUIRE(get);
  CHECK(get->text == std::string("a\0b", 3));
  auto ttl = client.command({"PTTL", "k"});
  REQUIRE(ttl);
  CHECK((ttl->integer > 0 && ttl->integer <= 60000));
  CHECK_FALSE(client.command({"NOSUCHCOMMAND"}));  // "-ERR unknown command": an error
  CHECK(client.available());                        // ... but Redis answered

  server.stop();
  auto down = client.command({"GET", "k"});
  CHECK_FALSE(down);
  CHECK_FALSE(client.available());
  CHECK_FALSE(client.command({"GET", "k"}));  // the breaker: refused without trying
  CHECK(client.stats().fast_failures >= 1);
}

TEST_CASE("Fleet leases: one leader across instances, followers woken by pub/sub", "[origin][fleet]") {
  if (!have_redis_server()) {
    WARN("redis-server is not installed: skipped");
    return;
  }
  RedisServer server;
  // Three "instances" (own connections, own tokens); a long TTL, so a follower
  // that was not woken by the message would wait 30 s and take over.
  FleetLeases a(server.fleet()), b(server.fleet()), c(server.fleet());
  REQUIRE(a.wait_subscribed(5s));
  REQUIRE(b.wait_subscribed(5s));
  REQUIRE(c.wait_subscribed(5s));
  std::atomic<int> works{0};
  std::atomic<bool> stored{false};
  auto check = [&] { return stored.load(); };
  auto work = [&] {
    ++works;
    std::this_thread::sleep_for(300ms);  // the download and transform
    stored = true;                       // the shared store has it
  };
  std::vector<FleetLeases::Outcome> outcomes(30);
  std::vector<std::thread> threads;
  FleetLeases* instances[] = {&a, &b, &c};
  for (int i = 0; i < 30; ++i) {
    threads.emplace_back([&, i] { outcomes[i] = instances[i % 3]->run("v1/ws/id/source", check, work); });
  }
  for (auto& t : threads) t.join();
  CHECK(works == 1);
  int led = 0, followed = 0;
  for (auto o : outcomes) {
    led += o == FleetLeases::Outcome::Led;
    followed += o == FleetLeases::Outcome::Followed;
  }
  CHECK(led == 1);
  CHECK(followed == 29);
  std::uint64_t wakeups = 0, takeovers = 0, fallbacks = 0;
  for (auto* f : instances) {
    wakeups += f->stats().wakeups;
    takeovers += f->stats().takeovers;
    fallbacks += f->stats().fallbacks;
  }
  CHECK(wakeups >= 2);  // at least the two instances that did not lead were woken by the message
  CHECK(takeovers == 0);
  CHECK(fallbacks == 0);
  // The lease is gone after the work (compare-and-delete by its holder).
  RedisClient probe(server.settings());
  auto left = probe.command({"EXISTS", a.lease_key("v1/ws/id/source")});
  REQUIRE(left);
  CHECK(left->integer == 0);
}

TEST_CASE("Fleet leases: an expired lease is taken over; a lost lease is noticed", "[origin][fleet]") {
  if (!have_redis_server()) {
    WARN("redis-server is not installed: skipped");
    return;
  }
  RedisServer server;
  RedisClient direct(server.settings());
  SECTION("a leader that died: its lease expires and a follower takes over") {
    FleetLeases f(server.fleet(30000));
    REQUIRE(f.wait_subscribed(5s));
    // Another instance took the lease and died (no renewal, no message).
    REQUIRE(direct.command({"SET", f.lease_key("k1"), "dead-instance:1", "NX", "PX", "400"}));
    int works = 0;
    const auto outcome = f.run("k1", [] { return false; }, [&] { ++works; });
    CHECK(outcome == FleetLeases::Outcome::Led);
    CHECK(works == 1);
    CHECK(f.stats().takeovers == 1);
    CHECK(f.stats().wakeups == 0);
  }
  SECTION("the lease expires under a working leader: renewal notices, release leaves the new holder's lease") {
    FleetLeases f(server.fleet(300));  // renewed every 100 ms
    REQUIRE(f.wait_subscribed(5s));
    const auto outcome = f.run("k2", [] { return false; }, [&] {
      // Someone else's lease replaces ours (as after an expiry and a takeover).
      REQUIRE(direct.command({"SET", f.lease_key("k2"), "other-instance:7", "PX", "60000"}));
      std::this_thread::sleep_for(400ms);
    });
    CHECK(outcome == FleetLeases::Outcome::Led);
    CHECK(f.stats().lease_lost == 1);
    auto holder = direct.command({"GET", f.lease_key("k2")});
    REQUIRE(holder);
    CHECK(holder->text == "other-instance:7");  // not deleted by the old leader's release
  }
  SECTION("a leader whose work leaves no result: a woken follower does it") {
    FleetLeases a(server.fleet()), b(server.fleet());
    REQUIRE(a.wait_subscribed(5s));
    REQUIRE(b.wait_subscribed(5s));
    std::atomic<int> works{0};
    std::atomic<bool> a_started{false};
    FleetLeases::Outcome oa{}, ob{};
    std::thread ta([&] {
      oa = a.run("k3", [] { return false; }, [&] {
        a_started = true;
        ++works;
        std::this_thread::sleep_for(300ms);  // fails: nothing stored
      });
    });
    while (!a_started) std::this_thread::sleep_for(5ms);
    std::atomic<bool> stored{false};
    ob = b.run("k3", [&] { return stored.load(); }, [&] {
      ++works;
      stored = true;
    });
    ta.join();
    CHECK(oa == FleetLeases::Outcome::Led);
    CHECK(ob == FleetLeases::Outcome::Led);
    CHECK(works == 2);
    // At least the leader's release wakes b; b's own release may land on its
    // subscriber before the stats are read, so the count is 1 or 2.
    CHECK(b.stats().wakeups >= 1);
    CHECK(b.stats().wakeups <= 2);
    CHECK(b.stats().takeovers == 0);
  }
}

TEST_CASE("Fleet leases: Redis down or frozen -> fallbacks, never a failure", "[origin][fleet]") {
  if (!have_redis_server()) {
    WARN("redis-server is not installed: skipped");
    return;
  }
  RedisServer server;
  SECTION("down") {
    FleetLeases f(server.fleet());
    REQUIRE(f.wait_subscribed(5s));
    server.stop();
    int works = 0;
    for (int i = 0; i < 5; ++i) CHECK(f.run("k", [] { return false; }, [&] { ++works; }) == FleetLeases::Outcome::Fallback);
    CHECK(works == 5);
    CHECK(f.stats().fallbacks == 5);
    CHECK(f.redis().stats().fast_failures >= 1);  // the breaker: not one timeout per call
  }
  SECTION("frozen (SIGSTOP): commands time out") {
    FleetLeases f(server.fleet());
    REQUIRE(f.wait_subscribed(5s));
    ::kill(server.pid, SIGSTOP);
    int works = 0;
    CHECK(f.run("k", [] { return false; }, [&] { ++works; }) == FleetLeases::Outcome::Fallback);
    CHECK(works == 1);
    CHECK(f.redis().stats().failures >= 1);
    ::kill(server.pid, SIGCONT);
  }
  SECTION("lost while followers wait: they fall back within the lease's time") {
    FleetLeases a(server.fleet(1000, 60000)), b(server.fleet(1000, 60000));
    REQUIRE(a.wait_subscribed(5s));
    REQUIRE(b.wait_subscribed(5s));
    std::atomic<bool> a_started{false};
    std::atomic<int> works{0};
    std::thread ta([&] {
      a.run("k4", [] { return false; }, [&] {
        a_started = true;
        ++works;
        std::this_thread::sleep_for(200ms);
      });
    });
    while (!a_started) std::this_thread::sleep_for(5ms);
    std::thread killer([&] {
      std::this_thread::sleep_for(50ms);
      server.stop();
    });
    const auto ob = b.run("k4", [] { return false; }, [&] { ++works; });
    killer.join();
    ta.join();
    CHECK(ob == FleetLeases::Outcome::Fallback);
    CHECK(works == 2);
    CHECK(b.stats().fallbacks == 1);
  }
}

// ---------------------------------------------------------------- fleet-wide limits

TEST_CASE("fleet limits: one Notion budget per token across instances", "[origin][fleet]") {
  if (!have_redis_server()) {
    WARN("redis-server not installed: skipped");
    return;
  }
  RedisServer server;
  FleetLimits a(server.settings()), b(server.settings()), c(server.settings());
  // One call a minute: every slot the fleet hands out is exactly one interval after the one before,
  // whichever instance asks; the token's own budget, another token's is separate.
  std::vector<std::int64_t> slots;
  FleetLimits* order[] = {&a, &b, &c, &a, &c, &b};
  for (FleetLimits* f : order) {
    auto s = f->notion_slot("secret_token_1", 60000.0, 3600000);
    REQUIRE(s);
    REQUIRE(*s);
    slots.push_back((*s)->at_ms);
  }
  for (std::size_t i = 1; i < slots.size(); ++i) CHECK(slots[i] - slots[i - 1] == 60000);
  auto other = b.notion_slot("secret_token_2", 60000.0, 0);
  REQUIRE(other);
  REQUIRE(*other);
  CHECK((*other)->wait_ms == 0);
  // A wait longer than the caller accepts is refused, and reserves nothing.
  auto refused = c.notion_slot("secret_token_1", 60000.0, 1000);
  REQUIRE(refused);
  CHECK_FALSE(*refused);
  auto next = a.notion_slot("secret_token_1", 60000.0, 3600000);
  REQUIRE((next && *next));
  CHECK((*next)->at_ms - slots.back() == 60000);
  // A 429's Retry-After moves the token's next slot for everyone.
  b.notion_penalize("secret_token_2", 3600000);
  auto late = c.notion_slot("secret_token_2", 1.0, 60000);
  REQUIRE(late);
  CHECK_FALSE(*late);
  // The token is not in Redis, only a hash of it.
  auto keys = a.redis().command({"KEYS", "*secret*"});
  REQUIRE(keys);
  CHECK(keys->elements.empty());
  // Redis down: an error, the caller spaces on its own.
  server.stop();
  CHECK_FALSE(a.notion_slot("secret_token_1", 1000.0, 1000));
  CHECK(a.errors() >= 1);
}

TEST_CASE("fleet limits: per-client counts are the fleet's", "[origin][fleet]") {
  if (!have_redis_server()) {
    WARN("redis-server not installed: skipped");
    return;
  }
  RedisServer server;
  RateLimiter la(10, 60), lb(10, 60);
  FleetLimits fa(server.settings()), fb(server.settings());
  fa.track(la, "t");
  fb.track(lb, "t");
  const std::int64_t now = 1700000000;  // a fixed window, the same for both
  // Before the first sync nobody knows Redis is there: each judges alone.
  CHECK_FALSE(la.fleet_up());
  int allowed = 0;
  for (int i = 0; i < 12; ++i) {
    // Alternate between the two "instances", each sending its hits before the next (what the
    // background thread does within milliseconds).
    RateLimiter& l = i % 2 ? lb : la;
    FleetLimits& f = i % 2 ? fb : fa;
    allowed += l.hit("203.0.113.7", now).allowed;
    // take_deltas works on the current window: use the limiter's own window of `now`.
    const auto d = l.take_deltas(now);
    std::vector<std::int64_t> totals;
    for (const auto& x : d) {
      auto r = f.redis().command({"INCRBY", "nic:rate:t:" + std::to_string(x.window) + ":" + x.client,
                                  std::to_string(x.count)});
      REQUIRE(r);
      totals.push_back(r->integer);
    }
    l.apply(d, totals);
    l.set_fleet_up(true);
  }
  // 10 a minute for the fleet, not 10 per instance (20). One more: an instance
  // judges a hit on the total it got back from its own last send, so it had
  // not seen the other's latest hit (at most one per other instance and sync).
  CHECK(allowed == 11);
  CHECK_FALSE(la.hit("203.0.113.7", now).allowed);
  CHECK_FALSE(lb.hit("203.0.113.7", now).allowed);
  CHECK(la.hit("203.0.113.8", now).allowed);  // another client has its own budget
  // Redis down: each instance judges on its own count again (and keeps the hits to send later).
  la.set_fleet_up(false);
  CHECK(la.hit("203.0.113.9", now).allowed);
}

TEST_CASE("fleet limits: the sync thread sends hits and notices Redis down", "[origin][fleet]") {
  if (!have_redis_server()) {
    WARN("redis-server not installed: skipped");
    return;
  }
  RedisServer server;
  RateLimiter l(1000, 60);  // before the FleetLimits: outlives its sync thread
  FleetLimits f(server.settings());
  f.track(l, "sync");
  f.start();
  for (int i = 0; i < 200 && !l.fleet_up(); ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(l.fleet_up());
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  for (int i = 0; i < 5; ++i) CHECK(l.hit("198.51.100.1", now).allowed);
  f.sync_now();
  auto keys = f.redis().command({"KEYS", "nic:rate:sync:*"});
  REQUIRE(keys);
  REQUIRE(keys->elements.size() == 1);
  auto v = f.redis().command({"GET", keys->elements[0].text});
  REQUIRE(v);
  CHECK(v->text == "5");
  auto ttl = f.redis().command({"PTTL", keys->elements[0].text});
  REQUIRE(ttl);
  CHECK(ttl->integer > 0);
  server.stop();
  CHECK(l.hit("198.51.100.1", now).allowed);
  f.sync_now();
  CHECK_FALSE(l.fleet_up());
  CHECK(f.errors() >= 1);
}
