#include "server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "log.h"
#include "nic/error.h"

namespace nic::origin {
namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

constexpr std::uint32_t kHeaderLimit = 32 * 1024;  // the target may be 8 KiB (then URL_TOO_LONG)
constexpr std::uint64_t kBodyLimit = 64 * 1024;    // no endpoint takes a body
constexpr auto kReadTimeout = std::chrono::seconds(30);
constexpr auto kWriteTimeout = std::chrono::seconds(60);

struct ServerState {
  std::atomic<int> active{0};  // requests handed to the pipeline, not yet written
  std::atomic<bool> draining{false};
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, Origin& origin, ServerState& state)
      : stream_(std::move(socket)), origin_(origin), state_(state) {}

  void run() {
    // Start on the connection's strand.
    net::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::do_read, shared_from_this()));
  }

 private:
  void do_read() {
    parser_.emplace();  // a fresh parser (and limits) per message
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(kBodyLimit);
    stream_.expires_after(kReadTimeout);
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream || ec == net::error::operation_aborted || ec == beast::error::timeout ||
        ec == net::error::connection_reset || ec == net::error::eof) {
      do_close();
      return;
    }
    if (ec) {
      // Malformed or oversized request: answer once, then close.
      const bool too_long = ec == http::error::header_limit || ec == http::error::buffer_overflow;
      const Error err = too_long ? make_error(ErrorCode::UrlTooLong, "request header too large")
                                 : make_error(ErrorCode::InvalidPath, "malformed HTTP request: " + ec.message());
      Response r;
      r.status = http_status(err.code);
      r.headers = {{"Content-Type", "application/json"}, {"Cache-Control", "no-store"}, {"X-Request-Id", "-"}};
      const std::string body = error_json(err, "-");
      r.body = std::make_shared<const Bytes>(body.begin(), body.end());
      keep_alive_ = false;
      version_ = 11;
      state_.active.fetch_add(1);
      send(std::move(r));
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
    if (const auto it = req.find("X-Request-Id"); it != req.end()) request.request_id = std::string(it->value());
    request.client_ip = client_ip();
    state_.active.fetch_add(1);
    origin_.handle(std::move(request), [self = shared_from_this()](Response response) {
      // Back onto this connection's strand (at once when already on it).
      net::dispatch(self->stream_.get_executor(),
                [self, response = std::move(response)]() mutable { self->send(std::move(response)); });
    });
  }

  void send(Response r) {
    if (state_.draining.load()) keep_alive_ = false;
    // The head is serialised into one buffer here and sent with the shared
    // body in a single gather write: cheaper than a field-by-field serializer
    // on the hot path (cache hits), and the body is never copied.
    const std::uint64_t length = r.body ? r.body->size() : 0;
    head_.clear();
    head_ += version_ == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    head_ += std::to_string(r.status);
    head_ += ' ';
    head_ += http::obsolete_reason(static_cast<http::status>(r.status));
    head_ += "\r\nServer: nic-origin/" NIC_VERSION "\r\n";
    for (const auto& [name, value] : r.headers) {
      head_ += name;
      head_ += ": ";
      head_ += value;
      head_ += "\r\n";
    }
    head_ += r.preformatted;  // valid: r.keep holds its owner until r goes
    if (!r.no_body) {
      head_ += "Content-Length: ";
      head_ += std::to_string(length);
      head_ += "\r\n";
    }
    if (!keep_alive_) {
      head_ += "Connection: close\r\n";
    } else if (version_ == 10) {
      head_ += "Connection: keep-alive\r\n";
    }
    head_ += "\r\n";
    body_ = (r.head || r.no_body) ? nullptr : std::move(r.body);
    std::array<net::const_buffer, 2> buffers{net::buffer(head_),
                                             body_ ? net::buffer(body_->data(), body_->size()) : net::const_buffer()};
    stream_.expires_after(kWriteTimeout);
    net::async_write(stream_, buffers, beast::bind_front_handler(&Session::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    body_.reset();
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

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string head_;
  SharedBytes body_;  // kept alive until the write completes
  Origin& origin_;
  ServerState& state_;
  bool keep_alive_ = true;
  unsigned version_ = 11;
  bool client_ip_known_ = false;
  std::string client_ip_;
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, Origin& origin, ServerState& state)
      : ioc_(ioc), acceptor_(net::make_strand(ioc)), origin_(origin), state_(state) {}

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

  void run() { do_accept(); }

  void stop() {
    net::post(acceptor_.get_executor(), [self = shared_from_this()] {
      beast::error_code ec;
      self->acceptor_.close(ec);
    });
  }

 private:
  void do_accept() {
    acceptor_.async_accept(net::make_strand(ioc_), beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
  }

  void on_accept(beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      beast::error_code opt_ec;
      socket.set_option(tcp::no_delay(true), opt_ec);
      std::make_shared<Session>(std::move(socket), origin_, state_)->run();
    } else {
      log(LogLevel::Warn, "accept failed: " + ec.message());
    }
    do_accept();
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  Origin& origin_;
  ServerState& state_;
};

}  // namespace

int run_server(Origin& origin, const Config& config) {
  const int threads = std::max(1, config.worker_threads);
  net::io_context ioc{threads};
  ServerState state;
  beast::error_code ec;
  const auto address = net::ip::make_address(config.host, ec);
  if (ec) {
    log(LogLevel::Error, "HOST: not an IP address: " + config.host);
    return 2;
  }
  auto listener = std::make_shared<Listener>(ioc, origin, state);
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
  std::function<void()> poll_drain = [&] {
    if (state.active.load() == 0 || std::chrono::steady_clock::now() >= deadline) {
      if (state.active.load() != 0) {
        log(LogLevel::Warn, "shutdown deadline passed with " + std::to_string(state.active.load()) +
                                " requests still in flight");
      }
      ioc.stop();
      return;
    }
    drain_timer.expires_after(std::chrono::milliseconds(20));
    drain_timer.async_wait([&](beast::error_code) { poll_drain(); });
  };
  signals.async_wait([&](beast::error_code sig_ec, int signo) {
    if (sig_ec) return;
    log(LogLevel::Info, "signal " + std::to_string(signo) + ": draining");
    state.draining.store(true);
    listener->stop();
    deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(config.shutdown_timeout_ms);
    poll_drain();
  });

  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(threads - 1));
  for (int i = 1; i < threads; ++i) pool.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
  // Work still queued finishes (its replies land in the stopped io_context).
  origin.stop();
  log(LogLevel::Info, "stopped");
  return 0;
}

}  // namespace nic::origin
