#include "server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <pthread.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "log.h"
#include "nic/error.h"
#include "nic/sha256.h"
#include "request_id.h"
#include "secret_compare.h"

namespace nic::origin {
namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// One event loop per I/O thread (nginx's worker model): a connection lives on
// the loop that accepted it for its whole life, so its handlers need no
// strand and never wait for another thread. The concrete executor type
// spares the type-erased any_io_executor on every operation.
using Loop = net::io_context;
using Executor = Loop::executor_type;
using Socket = net::basic_stream_socket<tcp, Executor>;
using Stream = beast::basic_stream<tcp, Executor>;

constexpr std::uint32_t kHeaderLimit = 32 * 1024;  // the target may be 8 KiB (then URL_TOO_LONG)
constexpr std::uint64_t kBodyLimit = 64 * 1024;    // no endpoint takes a body
constexpr auto kReadTimeout = std::chrono::seconds(30);
constexpr auto kWriteTimeout = std::chrono::seconds(60);
// Accept errors that mean "out of a resource" (EMFILE, ENFILE, ENOBUFS, ENOMEM)
// would repeat at once: wait before the next accept, doubling up to the cap.
constexpr auto kAcceptBackoffFirst = std::chrono::milliseconds(10);
constexpr auto kAcceptBackoffMax = std::chrono::milliseconds(1000);
// File descriptors kept for everything but client connections (upstream and
// store connections, files, the event loop).
constexpr int kReservedFds = 256;
// After the drain deadline: how long the 503s to unanswered requests may take to go out.
constexpr auto kAbortGrace = std::chrono::milliseconds(1000);

class Session;

struct ServerState {
  std::atomic<int> active{0};  // requests handed to the pipeline, not yet written
  std::atomic<bool> draining{false};
  std::atomic<int> connections{0};  // open sessions
  int max_connections = 1;
  std::string edge_secret;
  // Set once by the listener before the first accept: resume accepting.
  std::function<void()> connection_closed;

  // Every open session, to close idle ones when draining and to answer the
  // unanswered ones with 503 at the deadline.
  std::mutex mu;
  std::uint64_t next_id = 0;
  std::unordered_map<std::uint64_t, std::weak_ptr<Session>> sessions;

  template <class F>
  void for_each_session(F f) {
    std::vector<std::shared_ptr<Session>> live;
    {
      std::lock_guard lock(mu);
      live.reserve(sessions.size());
      for (auto& [id, weak] : sessions) {
        if (auto s = weak.lock()) live.push_back(std::move(s));
      }
    }
    for (auto& s : live) f(s);
  }
};

// An error the server answers itself (before or outside the pipeline).
Response server_error(const Error& err, const std::string& request_id) {
  Response r;
  r.status = http_status(err.code);
  r.headers = {{"Content-Type", "application/json"}, {"Cache-Control", "no-store"}, {"X-Request-Id", request_id}};
  if (err.code == ErrorCode::Overloaded) r.headers.emplace_back("Retry-After", "1");
  const std::string body = error_json(err, request_id);
  r.body = std::make_shared<const Bytes>(body.begin(), body.end());
  return r;
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Socket&& socket, Origin& origin, ServerState& state)
      : stream_(std::move(socket)), origin_(origin), state_(state) {
    state_.connections.fetch_add(1);
  }

  ~Session() {
    {
      std::lock_guard lock(state_.mu);
      state_.sessions.erase(id_);
    }
    state_.connections.fetch_sub(1);
    if (!state_.draining.load() && state_.connection_closed) state_.connection_closed();
  }

  void run() {
    {
      std::lock_guard lock(state_.mu);
      id_ = ++state_.next_id;
      state_.sessions.emplace(id_, weak_from_this());
    }
    // Start on the connection's loop.
    net::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::do_read, shared_from_this()));
  }

  // Draining: a connection waiting for its next request is closed now.
  void close_if_idle() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if (self->reading_ && self->buffer_.size() == 0) {
        beast::error_code ec;
        self->stream_.socket().cancel(ec);
      }
    });
  }

  // The drain deadline passed: a request the pipeline has not answered yet
  // gets 503 OVERLOADED now (its late reply is dropped).
  void abort_pending() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if (!self->awaiting_reply_) return;
      self->awaiting_reply_ = false;
      self->keep_alive_ = false;
      self->send(server_error(make_error(ErrorCode::Overloaded, "the server is shutting down; retry"),
                              self->request_id_));
    });
  }

 private:
  void do_read() {
    if (state_.draining.load() && buffer_.size() == 0) {
      do_close();
      return;
    }
    parser_.emplace();  // a fresh parser (and limits) per message
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(kBodyLimit);
    stream_.expires_after(kReadTimeout);
    reading_ = true;
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    reading_ = false;
    if (ec == http::error::end_of_stream || ec == net::error::operation_aborted || ec == beast::error::timeout ||
        ec == net::error::connection_reset || ec == net::error::eof) {
      do_close();
      return;
    }
    if (ec) {
      // Malformed or oversized request: answer once, then close.
      Error err = make_error(ErrorCode::InvalidPath, "malformed HTTP request: " + ec.message());
      if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
        // The parser consumes the request line once it is complete: without
        // one, the line alone was over the limit (a URL too long), else the fields were.
        err = parser_->get().target().empty()
                  ? make_error(ErrorCode::UrlTooLong, "request line longer than " +
                                                          std::to_string(kHeaderLimit) + " bytes")
                  : make_error(ErrorCode::HeadersTooLarge, "request header fields larger than " +
                                                               std::to_string(kHeaderLimit) + " bytes");
      } else if (ec == http::error::body_limit) {
        err = make_error(ErrorCode::InvalidParam, "request body larger than " + std::to_string(kBodyLimit) +
                                                      " bytes (no endpoint takes a body)");
      }
      keep_alive_ = false;
      version_ = 11;
      state_.active.fetch_add(1);
      send(server_error(err, new_request_id()));
      return;
    }
    const auto& req = parser_->get();
    keep_alive_ = req.keep_alive() && !state_.draining.load();
    version_ = req.version();
    Request request;
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    auto field = [&req](http::field f) {
      const auto it = req.find(f);
      return it == req.end() ? std::string() : std::string(it->value());
    };
    request.accept = field(http::field::accept);
    request.if_none_match = field(http::field::if_none_match);
    request.authorization = field(http::field::authorization);
    request.origin = field(http::field::origin);
    if (const auto it = req.find("X-API-Key"); it != req.end()) request.api_key = std::string(it->value());
    // Every request has an id from here on (the front's when well-formed), so
    // that an answer given by the server itself (the 503 at the drain
    // deadline) carries the same id as the pipeline's would.
    if (const auto it = req.find("X-Request-Id"); it != req.end() && usable_request_id(it->value())) {
      request.request_id = std::string(it->value());
    } else {
      request.request_id = new_request_id();
    }
    request.client_ip = client_address(req);
    request_id_ = request.request_id;
    awaiting_reply_ = true;
    const std::uint64_t seq = ++seq_;
    state_.active.fetch_add(1);
    origin_.handle(std::move(request), [self = shared_from_this(), seq](Response response) {
      // Back onto this connection's loop (at once when already on it: a memory hit).
      net::dispatch(self->stream_.get_executor(), [self, seq, response = std::move(response)]() mutable {
        if (!self->awaiting_reply_ || seq != self->seq_) return;  // answered already (shutdown)
        self->awaiting_reply_ = false;
        self->send(std::move(response));
      });
    });
    // Not answered at once (a miss, a follower of a herd): what was parsed has
    // been copied out, so the parser's fields and an empty read buffer are
    // freed while the connection waits (~1 KB each of thousands of waiters).
    // The next read makes them anew.
    if (awaiting_reply_) release_read_state();
  }

  void release_read_state() {
    parser_.reset();
    if (buffer_.size() == 0) buffer_.shrink_to_fit();
  }

  // Who the client is, for rate limits: the edge's X-Client-IP when the
  // request also carries EDGE_SECRET (compared in constant time), else the
  // TCP peer. A forged X-Client-IP without the secret is ignored.
  std::string client_address(const http::request<http::string_body>& req) {
    if (!state_.edge_secret.empty()) {
      const auto secret = req.find("X-Edge-Secret");
      const auto forwarded = req.find("X-Client-IP");
      if (secret != req.end() && forwarded != req.end() &&
          constant_time_string_equal(secret->value(), state_.edge_secret)) {
        beast::error_code ec;
        const auto address = net::ip::make_address(std::string(forwarded->value()), ec);
        if (!ec) return address.to_string();
      }
    }
    return client_ip();
  }

  void send(Response r) {
    // Draining, or at the connection cap: close after this answer, so a
    // waiting client gets the slot.
    if (state_.draining.load() || state_.connections.load() >= state_.max_connections) keep_alive_ = false;
    // The head is serialised into one buffer here and sent with the shared
    // body in a single gather write: cheaper than a field-by-field serializer
    // on the hot path (cache hits), and the body is never copied. The buffer
    // is this thread's: most answers go out whole at once (below), so a
    // connection keeps no head of its own between requests.
    thread_local std::string head;
    const std::uint64_t length = r.body ? r.body->size() : 0;
    head.clear();
    head += version_ == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    head += std::to_string(r.status);
    head += ' ';
    head += http::obsolete_reason(static_cast<http::status>(r.status));
    head += "\r\nServer: nic-origin/" NIC_VERSION "\r\n";
    for (const auto& [name, value] : r.headers) {
      head += name;
      head += ": ";
      head += value;
      head += "\r\n";
    }
    head += r.preformatted;  // valid: r.keep holds its owner until r goes
    if (!r.no_body) {
      head += "Content-Length: ";
      head += std::to_string(length);
      head += "\r\n";
    }
    if (!keep_alive_) {
      head += "Connection: close\r\n";
    } else if (version_ == 10) {
      head += "Connection: keep-alive\r\n";
    }
    head += "\r\n";
    SharedBytes body = (r.head || r.no_body) ? nullptr : std::move(r.body);
    const std::size_t body_size = body ? body->size() : 0;
    // One non-blocking sendmsg now (the socket is in non-blocking mode): an
    // answer that fits the socket buffer, a hit's usually, needs no
    // asynchronous write, no timer and no trip through the event loop.
    beast::error_code ec;
    const std::size_t sent = stream_.socket().write_some(
        std::array<net::const_buffer, 2>{net::buffer(head),
                                         body ? net::buffer(body->data(), body_size) : net::const_buffer()},
        ec);
    if (ec && ec != net::error::would_block && ec != net::error::try_again) {
      on_write(ec, 0);
      return;
    }
    if (!ec && sent == head.size() + body_size) {
      on_write(ec, sent);
      return;
    }
    // The rest waits for the socket: keep what is left of the head, and the body.
    const std::size_t head_sent = std::min(sent, head.size());
    head_.assign(head, head_sent);
    body_ = std::move(body);
    const std::size_t body_sent = sent - head_sent;
    std::array<net::const_buffer, 2> rest{
        net::buffer(head_), body_ ? net::buffer(body_->data() + body_sent, body_size - body_sent) : net::const_buffer()};
    stream_.expires_after(kWriteTimeout);
    net::async_write(stream_, rest, beast::bind_front_handler(&Session::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    body_.reset();
    if (!head_.empty()) std::string().swap(head_);
    state_.active.fetch_sub(1);
    if (ec || !keep_alive_) {
      do_close();
      return;
    }
    do_read();
  }

  // The peer's address, asked once per connection: getpeername is a system
  // call, and a costly one under a sandboxing kernel such as gVisor.
  const std::string& client_ip() {
    if (!client_ip_known_) {
      client_ip_known_ = true;
      beast::error_code ec;
      const auto ep = stream_.socket().remote_endpoint(ec);
      if (!ec) client_ip_ = ep.address().to_string();
    }
    return client_ip_;
  }

  void do_close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string head_;  // what an unfinished write still has to send of the head
  SharedBytes body_;  // kept alive until the write completes
  Origin& origin_;
  ServerState& state_;
  bool keep_alive_ = true;
  unsigned version_ = 11;
  bool client_ip_known_ = false;
  std::string client_ip_;
  std::uint64_t id_ = 0;
  bool reading_ = false;         // waiting for a request
  bool awaiting_reply_ = false;  // a request is with the pipeline
  std::uint64_t seq_ = 0;        // requests read on this connection
  std::string request_id_;
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  // Accepts on loops[0] and deals the connections round robin over all loops.
  Listener(std::vector<Executor> loops, Origin& origin, ServerState& state)
      : loops_(std::move(loops)), acceptor_(loops_.front()), backoff_timer_(loops_.front()), origin_(origin),
        state_(state) {}

  Status open(const tcp::endpoint& endpoint) {
    beast::error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return make_error(ErrorCode::Internal, "cannot listen on " + endpoint.address().to_string() + ":" +
                                                       std::to_string(endpoint.port()) + ": " + ec.message());
    return Ok{};
  }

  std::uint16_t port() const {
    beast::error_code ec;
    return acceptor_.local_endpoint(ec).port();
  }

  void run() {
    std::weak_ptr<Listener> weak = shared_from_this();
    state_.connection_closed = [weak] {
      if (auto self = weak.lock()) net::post(self->acceptor_.get_executor(), [self] { self->maybe_resume(); });
    };
    do_accept();
  }

  void stop() {
    net::post(acceptor_.get_executor(), [self = shared_from_this()] {
      beast::error_code ec;
      self->acceptor_.close(ec);
      self->backoff_timer_.cancel();
    });
  }

 private:
  void do_accept() {
    accepting_ = true;
    const Executor& loop = loops_[next_loop_++ % loops_.size()];
    acceptor_.async_accept(loop, beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
  }

  void on_accept(beast::error_code ec, Socket socket) {
    accepting_ = false;
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      backoff_ = std::chrono::milliseconds(0);
      beast::error_code opt_ec;
      socket.set_option(tcp::no_delay(true), opt_ec);
      socket.non_blocking(true, opt_ec);  // Session::send writes at once without ever blocking
      std::make_shared<Session>(std::move(socket), origin_, state_)->run();
      maybe_resume();
      return;
    }
    if (ec == net::error::connection_aborted) {  // that client gave up: nothing to wait for
      maybe_resume();
      return;
    }
    // Out of descriptors or memory: accepting again at once would fail again
    // (a busy loop). Wait, doubling, until an accept succeeds.
    backoff_ = std::min<std::chrono::milliseconds>(
        kAcceptBackoffMax, backoff_.count() == 0 ? kAcceptBackoffFirst : backoff_ * 2);
    log(LogLevel::Warn, "accept failed: " + ec.message() + "; next attempt in " + std::to_string(backoff_.count()) +
                            " ms (" + std::to_string(state_.connections.load()) + " connections open)");
    backing_off_ = true;
    backoff_timer_.expires_after(backoff_);
    backoff_timer_.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
      self->backing_off_ = false;
      if (wait_ec || !self->acceptor_.is_open()) return;
      self->maybe_resume();
    });
  }

  // On the acceptor's loop: accept again unless an accept is pending, a
  // back-off runs, or MAX_CONNECTIONS are open (then the next closing
  // connection calls this again; new clients wait in the listen backlog).
  void maybe_resume() {
    if (accepting_ || backing_off_ || !acceptor_.is_open()) return;
    const int open = state_.connections.load();
    if (open >= state_.max_connections) {
      if (!paused_) log(LogLevel::Debug, "connection cap: " + std::to_string(open) + " open, accepting paused");
      paused_ = true;
      return;
    }
    if (paused_) log(LogLevel::Debug, "connection cap: " + std::to_string(open) + " open, accepting again");
    paused_ = false;
    do_accept();
  }

  std::vector<Executor> loops_;
  std::size_t next_loop_ = 0;
  net::basic_socket_acceptor<tcp, Executor> acceptor_;
  net::basic_waitable_timer<std::chrono::steady_clock, net::wait_traits<std::chrono::steady_clock>, Executor>
      backoff_timer_;
  Origin& origin_;
  ServerState& state_;
  bool accepting_ = false;
  bool backing_off_ = false;
  bool paused_ = false;
  std::chrono::milliseconds backoff_{0};
};

// MAX_CONNECTIONS needs as many descriptors plus a reserve: raise the soft
// RLIMIT_NOFILE towards the hard one. A default cap that still does not fit
// is lowered; an explicit one is kept with a warning (accept then backs off
// on EMFILE).
int effective_connection_cap(const Config& config) {
  int cap = config.max_connections;
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return cap;
  const rlim_t wanted = static_cast<rlim_t>(cap) + kReservedFds;
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < wanted) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max == RLIM_INFINITY ? wanted : std::min(wanted, lim.rlim_max);
    if (raised.rlim_cur > lim.rlim_cur && ::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < wanted) {
    const int fit = std::max(16, static_cast<int>(lim.rlim_cur) - kReservedFds);
    if (config.max_connections_explicit) {
      log(LogLevel::Warn, "MAX_CONNECTIONS=" + std::to_string(cap) + " but only " + std::to_string(lim.rlim_cur) +
                              " file descriptors are allowed (ulimit -n): accepts will back off when they run out");
    } else {
      cap = std::min(cap, fit);
      log(LogLevel::Warn, "connection cap lowered to " + std::to_string(cap) + " to fit the file descriptor limit " +
                              std::to_string(lim.rlim_cur) + " (raise ulimit -n or set MAX_CONNECTIONS)");
    }
  }
  return cap;
}

}  // namespace

int run_server(Origin& origin, const Config& config) {
  const int threads = std::max(1, config.worker_threads);
  // Sessions (destroyed with the loops' pending handlers) use the state: it goes last.
  ServerState state;
  // One loop per thread, each run by exactly one thread (concurrency hint 1).
  std::vector<std::unique_ptr<Loop>> loops;
  std::vector<Executor> executors;
  for (int i = 0; i < threads; ++i) {
    loops.push_back(std::make_unique<Loop>(1));
    executors.push_back(loops.back()->get_executor());
  }
  // A loop without connections must keep running until the drain stops it.
  std::vector<net::executor_work_guard<Executor>> keep_running;
  for (const auto& ex : executors) keep_running.push_back(net::make_work_guard(ex));
  Loop& ioc = *loops.front();  // the acceptor, signals and the drain
  const auto stop_all = [&loops] {
    for (auto& loop : loops) loop->stop();
  };
  state.max_connections = effective_connection_cap(config);
  state.edge_secret = config.edge_secret;
  beast::error_code ec;
  const auto address = net::ip::make_address(config.host, ec);
  if (ec) {
    log(LogLevel::Error, "HOST: not an IP address: " + config.host);
    return 2;
  }
  auto listener = std::make_shared<Listener>(executors, origin, state);
  if (auto s = listener->open(tcp::endpoint(address, config.port)); !s) {
    log(LogLevel::Error, s.error().message);
    return 1;
  }
  listener->run();
  // The actual port (PORT=0 picks a free one): tests read this line.
  std::printf("nic-origin listening on %s:%u\n", config.host.c_str(), static_cast<unsigned>(listener->port()));
  std::fflush(stdout);

  net::signal_set signals(ioc, SIGINT, SIGTERM);
  net::steady_timer drain_timer(ioc);
  std::chrono::steady_clock::time_point deadline;
  bool aborted = false;
  // Drain: requests in flight may finish until SHUTDOWN_TIMEOUT_MS; then every
  // request still unanswered (queued or running in the pools) gets 503
  // OVERLOADED + Retry-After, and the loop stops once those are written (or
  // after a short grace). Work still queued in the pools is then dropped.
  std::function<void()> poll_drain = [&] {
    const auto now = std::chrono::steady_clock::now();
    if (state.active.load() == 0 || (aborted && now >= deadline + kAbortGrace)) {
      stop_all();
      return;
    }
    if (!aborted && now >= deadline) {
      aborted = true;
      // The 503s are posted first (each holds its session), then the queued
      // jobs are dropped at once, so none of them starts after its request
      // got its answer.
      const int unanswered = state.active.load();
      state.for_each_session([](const std::shared_ptr<Session>& s) { s->abort_pending(); });
      const std::size_t dropped = origin.discard_queued();
      const std::size_t abandoned = origin.abandon_flights();
      log(LogLevel::Warn, "shutdown deadline passed with " + std::to_string(unanswered) +
                              " requests unanswered: answering them 503 (" + std::to_string(dropped) +
                              " queued jobs dropped, " + std::to_string(abandoned) + " waiters released)");
    }
    drain_timer.expires_after(std::chrono::milliseconds(20));
    drain_timer.async_wait([&](beast::error_code) { poll_drain(); });
  };
  signals.async_wait([&](beast::error_code sig_ec, int signo) {
    if (sig_ec) return;
    log(LogLevel::Info, "signal " + std::to_string(signo) + ": draining");
    state.draining.store(true);
    listener->stop();
    state.for_each_session([](const std::shared_ptr<Session>& s) { s->close_if_idle(); });
    deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(config.shutdown_timeout_ms);
    poll_drain();
  });

  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(threads - 1));
  // Loop 0 (with the acceptor) runs on the main thread, which keeps the
  // process's name; the others are named "nic-io-N" for top, perf and /proc.
  for (int i = 1; i < threads; ++i) {
    pool.emplace_back([loop = loops[static_cast<std::size_t>(i)].get(), i] {
      pthread_setname_np(pthread_self(), ("nic-io-" + std::to_string(i)).c_str());
      loop->run();
    });
  }
  ioc.run();
  for (auto& t : pool) t.join();
  // Past the deadline, what was queued since is dropped too; jobs still
  // running finish (their replies land in the stopped loops).
  if (aborted) origin.discard_queued();
  origin.stop();
  // Nothing that holds a session (a flight's waiter) may outlive `state` and
  // `ioc`: after a graceful drain there is none; after an abort, flights whose
  // jobs were dropped are failed here (their answers went out already).
  origin.abandon_flights();
  log(LogLevel::Info, "stopped");
  return 0;
}

}  // namespace nic::origin
