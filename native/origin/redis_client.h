// A small synchronous Redis client for the fleet (REDIS_URL), on hiredis 0.14
// from Debian (libhiredis-dev): RESP parsing and the socket are hiredis's; this
// file adds what the origin needs around it:
//   - every command bounded in time (connect and read/write timeouts);
//   - a small pool of connections (a command holds one; a slow Redis never
//     makes callers queue behind each other's timeouts);
//   - a breaker: after a failure, commands fail at once for `backoff_ms`
//     instead of each waiting for a timeout (Redis down costs microseconds);
//   - a subscriber: one connection in SUBSCRIBE on one channel, its own thread,
//     reconnecting after errors, handing each message to a callback.
// Callers run on worker threads (the blocking is fine there), never on the
// I/O threads. Why hiredis rather than a RESP client of our own over Asio: the
// origin's leader work already runs on blocking worker threads (fetch pool),
// so a synchronous client fits, and hiredis is the reference parser, packaged
// by Debian; 0.14 has no Asio adapter, which this design does not need.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nic/error.h"

struct redisContext;

namespace nic::origin {

struct RedisSettings {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;  // AUTH when not empty
  int db = 0;            // SELECT when not 0
  std::int64_t connect_timeout_ms = 200;
  std::int64_t command_timeout_ms = 200;
  std::int64_t backoff_ms = 1000;  // after a failure, fail fast this long
  std::size_t max_connections = 8;
};

// redis://[[user]:password@]host[:port][/db]
Result<RedisSettings> parse_redis_url(const std::string& url);

// One reply, flattened: integers, (bulk) strings, nil, arrays of those.
struct RedisReply {
  enum class Type { Nil, Integer, String, Status, Array };
  Type type = Type::Nil;
  std::int64_t integer = 0;
  std::string text;  // String and Status
  std::vector<RedisReply> elements;
  bool is_nil() const { return type == Type::Nil; }
};

struct RedisStats {
  std::uint64_t commands = 0;
  std::uint64_t failures = 0;       // timeouts, refused connections, protocol errors
  std::uint64_t fast_failures = 0;  // refused at once by the breaker
  std::uint64_t connects = 0;
};

class RedisClient {
 public:
  explicit RedisClient(RedisSettings settings);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // A command; an error reply from Redis ("-ERR ...") is an error too.
  Result<RedisReply> command(const std::vector<std::string>& args);
  // Redis answered the last command (and the breaker is closed).
  bool available() const;
  RedisStats stats() const;
  const RedisSettings& settings() const { return settings_; }

 private:
  struct Conn;
  std::unique_ptr<Conn> acquire();
  void release(std::unique_ptr<Conn> conn);
  void failed();

  RedisSettings settings_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Conn>> idle_;
  std::size_t open_ = 0;
  std::chrono::steady_clock::time_point down_until_{};
  RedisStats stats_;
};

// SUBSCRIBE on one channel in a thread of its own; `on_message(payload)` runs
// on that thread. Reconnects (after backoff_ms) whenever the connection fails;
// messages published while it is disconnected are lost (callers bound their
// waits). `subscribed()` says whether it is listening right now. `on_lost`
// (optional, same thread) runs when a live subscription drops, so that
// waiters need not sit out their whole bound for a message that cannot come.
class RedisSubscriber {
 public:
  RedisSubscriber(RedisSettings settings, std::string channel, std::function<void(const std::string&)> on_message,
                  std::function<void()> on_lost = nullptr);
  ~RedisSubscriber();
  RedisSubscriber(const RedisSubscriber&) = delete;
  RedisSubscriber& operator=(const RedisSubscriber&) = delete;
  bool subscribed() const { return subscribed_.load(); }
  // Waits until subscribed (tests), at most `timeout`.
  bool wait_subscribed(std::chrono::milliseconds timeout);

 private:
  void loop();
  RedisSettings settings_;
  std::string channel_;
  std::function<void(const std::string&)> on_message_;
  std::function<void()> on_lost_;
  std::atomic<bool> subscribed_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  int fd_ = -1;  // the live connection's socket, shut down to stop the blocking read
  std::thread thread_;
};

}  // namespace nic::origin
