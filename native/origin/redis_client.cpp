#include "redis_client.h"

#include <hiredis/hiredis.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <charconv>

#include "log.h"

namespace nic::origin {
namespace {

timeval to_timeval(std::int64_t ms) {
  if (ms < 1) ms = 1;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

Error redis_error(std::string message) { return make_error(ErrorCode::Internal, "redis: " + message); }

RedisReply flatten(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::Integer;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::String;
      out.text.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::Status;
      out.text.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::Array;
      for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(flatten(r->element[i]));
      break;
    default:
      out.type = RedisReply::Type::Nil;
  }
  return out;
}

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextFree>;

Result<ReplyPtr> run(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  ReplyPtr r(static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data())));
  if (!r) return redis_error(c->err ? std::string(c->errstr) : std::string("no reply"));
  return r;
}

// A connected, authenticated context with the command timeout set.
Result<ContextPtr> connect(const RedisSettings& s) {
  ContextPtr c(redisConnectWithTimeout(s.host.c_str(), s.port, to_timeval(s.connect_timeout_ms)));
  if (!c) return redis_error("out of memory");
  if (c->err) return redis_error("connect " + s.host + ":" + std::to_string(s.port) + ": " + c->errstr);
  if (redisSetTimeout(c.get(), to_timeval(s.command_timeout_ms)) != REDIS_OK) return redis_error("setting the timeout");
  if (!s.password.empty()) {
    auto r = run(c.get(), {"AUTH", s.password});
    if (!r) return r.take_error();
    if ((*r)->type == REDIS_REPLY_ERROR) return redis_error(std::string("AUTH: ") + (*r)->str);
  }
  if (s.db != 0) {
    auto r = run(c.get(), {"SELECT", std::to_string(s.db)});
    if (!r) return r.take_error();
    if ((*r)->type == REDIS_REPLY_ERROR) return redis_error(std::string("SELECT: ") + (*r)->str);
  }
  return c;
}

}  // namespace

Result<RedisSettings> parse_redis_url(const std::string& url) {
  RedisSettings s;
  std::string_view rest(url);
  if (!rest.starts_with("redis://")) {
    return make_error(ErrorCode::InvalidParam, "REDIS_URL: expected redis://[:password@]host[:port][/db], got '" +
                                                   url + "'");
  }
  rest.remove_prefix(8);
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view auth = rest.substr(0, at);
    const auto colon = auth.find(':');
    s.password = std::string(colon == std::string_view::npos ? auth : auth.substr(colon + 1));
    rest.remove_prefix(at + 1);
  }
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    const std::string_view db = rest.substr(slash + 1);
    if (!db.empty()) {
      const auto r = std::from_chars(db.data(), db.data() + db.size(), s.db);
      if (r.ec != std::errc() || r.ptr != db.data() + db.size() || s.db < 0) {
        return make_error(ErrorCode::InvalidParam, "REDIS_URL: bad database number in '" + url + "'");
      }
    }
    rest = rest.substr(0, slash);
  }
  if (const auto colon = rest.rfind(':'); colon != std::string_view::npos && rest.find(']') == std::string_view::npos) {
    const std::string_view port = rest.substr(colon + 1);
    const auto r = std::from_chars(port.data(), port.data() + port.size(), s.port);
    if (r.ec != std::errc() || r.ptr != port.data() + port.size() || s.port < 1 || s.port > 65535) {
      return make_error(ErrorCode::InvalidParam, "REDIS_URL: bad port in '" + url + "'");
    }
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return make_error(ErrorCode::InvalidParam, "REDIS_URL: no host in '" + url + "'");
  s.host = std::string(rest);
  return s;
}

// ---------------------------------------------------------------- client

struct RedisClient::Conn {
  ContextPtr ctx;
};

RedisClient::RedisClient(RedisSettings settings) : settings_(std::move(settings)) {}

RedisClient::~RedisClient() = default;

bool RedisClient::available() const {
  std::lock_guard lock(mu_);
  return std::chrono::steady_clock::now() >= down_until_;
}

RedisStats RedisClient::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

std::unique_ptr<RedisClient::Conn> RedisClient::acquire() {
  std::unique_lock lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(settings_.command_timeout_ms);
  for (;;) {
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
    if (open_ < settings_.max_connections) {
      ++open_;
      return std::make_unique<Conn>();  // connected by the caller, outside the lock
    }
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) return nullptr;
  }
}

void RedisClient::release(std::unique_ptr<Conn> conn) {
  {
    std::lock_guard lock(mu_);
    if (conn && conn->ctx) {
      idle_.push_back(std::move(conn));
    } else {
      --open_;
    }
  }
  cv_.notify_one();
}

void RedisClient::failed() {
  std::lock_guard lock(mu_);
  ++stats_.failures;
  down_until_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(settings_.backoff_ms);
}

Result<RedisReply> RedisClient::command(const std::vector<std::string>& args) {
  {
    std::lock_guard lock(mu_);
    if (std::chrono::steady_clock::now() < down_until_) {
      ++stats_.fast_failures;
      return redis_error("unavailable (backing off after a failure)");
    }
    ++stats_.commands;
  }
  auto conn = acquire();
  if (!conn) {
    failed();
    return redis_error("no free connection within the command timeout");
  }
  if (!conn->ctx) {
    auto c = connect(settings_);
    if (!c) {
      release(nullptr);
      failed();
      return c.take_error();
    }
    conn->ctx = std::move(*c);
    std::lock_guard lock(mu_);
    ++stats_.connects;
  }
  auto r = run(conn->ctx.get(), args);
  if (!r) {
    // The context is unusable after an I/O error or a timeout: drop it.
    release(nullptr);
    failed();
    return r.take_error();
  }
  release(std::move(conn));
  if ((*r)->type == REDIS_REPLY_ERROR) return redis_error(std::string((*r)->str, (*r)->len));
  return flatten(r->get());
}

// ---------------------------------------------------------------- subscriber

RedisSubscriber::RedisSubscriber(RedisSettings settings, std::string channel,
                                 std::function<void(const std::string&)> on_message, std::function<void()> on_lost)
    : settings_(std::move(settings)),
      channel_(std::move(channel)),
      on_message_(std::move(on_message)),
      on_lost_(std::move(on_lost)) {
  thread_ = std::thread([this] { loop(); });
}

RedisSubscriber::~RedisSubscriber() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);  // ends the blocking read
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool RedisSubscriber::wait_subscribed(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return subscribed_.load() || stopping_; }) && subscribed_.load();
}

void RedisSubscriber::loop() {
  bool warned = false;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    auto c = connect(settings_);
    if (c) {
      {
        std::lock_guard lock(mu_);
        if (stopping_) return;
        fd_ = (*c)->fd;  // from here on the destructor can end any blocking read
      }
      auto r = run(c->get(), {"SUBSCRIBE", channel_});
      // No read timeout once subscribed: the connection waits for messages as long as it lives.
      const timeval forever{0, 0};
      if (r && (*r)->type == REDIS_REPLY_ARRAY && redisSetTimeout(c->get(), forever) == REDIS_OK) {
        subscribed_.store(true);
        cv_.notify_all();
        if (warned) log(LogLevel::Info, "redis: subscribed to " + channel_ + " again");
        warned = false;
        for (;;) {
          void* raw = nullptr;
          if (redisGetReply(c->get(), &raw) != REDIS_OK) break;
          ReplyPtr m(static_cast<redisReply*>(raw));
          if (m && m->type == REDIS_REPLY_ARRAY && m->elements == 3 && m->element[0]->type == REDIS_REPLY_STRING &&
              std::string_view(m->element[0]->str, m->element[0]->len) == "message" &&
              m->element[2]->type == REDIS_REPLY_STRING) {
            on_message_(std::string(m->element[2]->str, m->element[2]->len));
          }
        }
        subscribed_.store(false);
        if (on_lost_) on_lost_();
      }
      std::lock_guard lock(mu_);
      fd_ = -1;  // before the context (and its socket) goes
      subscribed_.store(false);
    }
    std::unique_lock lock(mu_);
    if (stopping_) return;
    if (!warned) {
      log(LogLevel::Warn, "redis: subscription to " + channel_ + " lost; retrying every " +
                              std::to_string(settings_.backoff_ms) + " ms");
      warned = true;
    }
    cv_.wait_for(lock, std::chrono::milliseconds(settings_.backoff_ms), [this] { return stopping_; });
  }
}

}  // namespace nic::origin
