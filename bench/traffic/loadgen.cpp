// loadgen: the HTTP/1.1 load generator of the traffic benchmark. One thread,
// epoll, keep-alive connections to 127.0.0.1; no library beyond libc.
//
//   loadgen open --port P --seconds S [--header 'Name: value']...
//                --stream NAME:RATE:URLFILE:MAXCONNS [--stream ...]
//     Open loop: request k of a stream is due at start + k / RATE whatever
//     happened to the requests before it (a closed-loop client such as wrk
//     waits for an answer before it asks again, so a slow server slows its
//     own load down and hides its stalls). A request goes out on an idle
//     connection of its stream, else on a new one (up to MAXCONNS), else it
//     waits in the stream's queue. Its latency runs from the time it was due
//     to its last byte, so any wait for a connection counts ("coordinated
//     omission" avoided). Request k asks for line k mod n of URLFILE.
//   loadgen herd --port P --n N (--target T | --urls FILE) [--header 'Name: value']...
//     N connections opened first, then one request on each in one sweep
//     (connection i asks for line i mod n of FILE); each latency runs from
//     that request's send to its last byte, "seconds" from the first send to
//     the last answer.
//
// Prints one JSON object per stream (herd: one) on stdout, latencies in
// microseconds, plus the generator's own CPU time.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Nanos = std::int64_t;

Nanos now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<Nanos>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "loadgen: %s\n", what.c_str());
  std::exit(2);
}

void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

bool iequals_prefix(std::string_view line, std::string_view name) {
  if (line.size() < name.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
  }
  return true;
}

struct Stream;

struct Conn {
  int fd = -1;
  Stream* stream = nullptr;
  bool connected = false;
  bool busy = false;
  std::string out;
  std::size_t out_off = 0;
  std::string head;  // response head bytes collected so far
  bool have_head = false;
  std::uint64_t body_left = 0;
  int status = 0;
  bool close_after = false;
  Nanos due = 0;
  Nanos sent = 0;
};

struct Stream {
  std::string name;
  double rate = 0;
  std::vector<std::string> urls;
  std::size_t max_conns = 1;
  std::size_t total = 0;    // requests to issue
  std::size_t issued = 0;   // made due so far
  std::size_t finished = 0; // answered or failed
  std::deque<std::pair<Nanos, std::size_t>> waiting;  // (due, request index)
  std::vector<Conn*> idle;
  std::size_t open = 0;
  std::size_t opened_total = 0;
  std::vector<Nanos> latency;  // due -> last byte, successful answers
  std::vector<Nanos> service;  // send -> last byte
  std::vector<Nanos> queued;   // due -> send
  std::map<int, std::size_t> statuses;
  std::size_t errors = 0;
  Nanos start = 0;
};

struct Options {
  std::uint16_t port = 0;
  std::string host = "127.0.0.1";
  std::vector<std::string> headers;
};

class Loop {
 public:
  explicit Loop(const Options& opt) : opt_(opt) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) die("epoll_create1");
    addr_.sin_family = AF_INET;
    addr_.sin_port = htons(opt.port);
    if (inet_pton(AF_INET, opt.host.c_str(), &addr_.sin_addr) != 1) die("bad host");
  }

  Conn* connect_new(Stream* s) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return nullptr;
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_);
    if (rc != 0 && errno != EINPROGRESS) {
      ::close(fd);
      return nullptr;
    }
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    c->stream = s;
    c->connected = rc == 0;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
    ev.data.ptr = c.get();
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl add");
    Conn* raw = c.get();
    conns_.push_back(std::move(c));
    ++s->open;
    ++s->opened_total;
    return raw;
  }

  std::string request_text(const std::string& target) const {
    std::string r = "GET " + target + " HTTP/1.1\r\nHost: " + opt_.host + "\r\n";
    for (const auto& h : opt_.headers) r += h + "\r\n";
    r += "\r\n";
    return r;
  }

  // Starts request `index` of the stream on connection c (connected or not).
  void start(Conn* c, Nanos due, const std::string& target) {
    c->busy = true;
    c->out = request_text(target);
    c->out_off = 0;
    c->head.clear();
    c->have_head = false;
    c->body_left = 0;
    c->status = 0;
    c->close_after = false;
    c->due = due;
    c->sent = now_ns();
    if (c->connected) flush(c);
  }

  void flush(Conn* c) {
    while (c->out_off < c->out.size()) {
      const ssize_t n = ::send(c->fd, c->out.data() + c->out_off, c->out.size() - c->out_off, MSG_NOSIGNAL);
      if (n > 0) {
        c->out_off += static_cast<std::size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        want(c, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
        return;
      } else {
        fail(c);
        return;
      }
    }
    want(c, EPOLLIN | EPOLLRDHUP);
  }

  void want(Conn* c, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = c;
    epoll_ctl(ep_, EPOLL_CTL_MOD, c->fd, &ev);
  }

  // The request on c failed (connect, reset, malformed answer): count it, drop c.
  void fail(Conn* c) {
    Stream* s = c->stream;
    if (c->busy) {
      ++s->errors;
      ++s->finished;
    }
    drop(c);
  }

  void drop(Conn* c) {
    Stream* s = c->stream;
    epoll_ctl(ep_, EPOLL_CTL_DEL, c->fd, nullptr);
    ::close(c->fd);
    c->fd = -1;
    --s->open;
    s->idle.erase(std::remove(s->idle.begin(), s->idle.end(), c), s->idle.end());
    dead_.push_back(c);
  }

  void on_event(Conn* c, std::uint32_t events) {
    if (c->fd < 0) return;
    if (!c->connected) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        fail(c);
        return;
      }
      if (events & (EPOLLOUT | EPOLLIN)) {
        c->connected = true;
        if (c->busy) {
          flush(c);
        } else {
          want(c, EPOLLIN | EPOLLRDHUP);
          on_idle(c);
        }
        if (c->fd < 0) return;
      }
    }
    if ((events & EPOLLOUT) && c->busy && c->out_off < c->out.size()) flush(c);
    if (c->fd >= 0 && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) read_some(c);
  }

  void read_some(Conn* c) {
    char buf[65536];
    for (;;) {
      const ssize_t n = ::recv(c->fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      if (n <= 0) {  // closed or reset
        if (c->busy) {
          fail(c);
        } else {
          drop(c);
        }
        return;
      }
      if (!c->busy) {  // bytes nobody asked for
        fail(c);
        return;
      }
      std::size_t used = 0;
      const auto size = static_cast<std::size_t>(n);
      if (!c->have_head) {
        const std::size_t before = c->head.size();
        c->head.append(buf, size);
        const auto end = c->head.find("\r\n\r\n");
        if (end == std::string::npos) {
          if (c->head.size() > 65536) {
            fail(c);
            return;
          }
          continue;
        }
        used = end + 4 - before;
        if (!parse_head(c, std::string_view(c->head).substr(0, end + 2))) {
          fail(c);
          return;
        }
        c->have_head = true;
      }
      const std::uint64_t body = size - used;
      if (body > c->body_left) {  // more than the answer: no pipelining here
        fail(c);
        return;
      }
      c->body_left -= body;
      if (c->body_left == 0) {
        complete(c);
        if (c->fd < 0) return;
      }
    }
  }

  bool parse_head(Conn* c, std::string_view head) {
    if (head.size() < 12 || head.substr(0, 5) != "HTTP/") return false;
    c->status = std::atoi(std::string(head.substr(9, 3)).c_str());
    bool has_length = false;
    std::size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos && pos + 2 < head.size()) {
      const std::size_t next = head.find("\r\n", pos + 2);
      const std::string_view line = head.substr(pos + 2, next - pos - 2);
      if (iequals_prefix(line, "content-length:")) {
        c->body_left = std::strtoull(std::string(line.substr(15)).c_str(), nullptr, 10);
        has_length = true;
      } else if (iequals_prefix(line, "connection:") && line.find("close") != std::string_view::npos) {
        c->close_after = true;
      }
      pos = next;
    }
    if (c->status == 304 || c->status == 204) c->body_left = 0;
    return has_length || c->status == 304 || c->status == 204;
  }

  void complete(Conn* c) {
    Stream* s = c->stream;
    const Nanos t = now_ns();
    ++s->statuses[c->status];
    ++s->finished;
    if (c->status < 400) {
      s->latency.push_back(t - c->due);
      s->service.push_back(t - c->sent);
      s->queued.push_back(c->sent - c->due);
    }
    c->busy = false;
    if (c->close_after) {
      drop(c);
      dispatch(s);
      return;
    }
    on_idle(c);
  }

  void on_idle(Conn* c) {
    Stream* s = c->stream;
    if (!s->waiting.empty()) {
      const auto [due, index] = s->waiting.front();
      s->waiting.pop_front();
      start(c, due, s->urls[index % s->urls.size()]);
    } else {
      s->idle.push_back(c);
    }
  }

  // Gives waiting requests a connection: an idle one, else a new one.
  void dispatch(Stream* s) {
    while (!s->waiting.empty()) {
      Conn* c = nullptr;
      if (!s->idle.empty()) {
        c = s->idle.back();
        s->idle.pop_back();
      } else if (s->open < s->max_conns) {
        c = connect_new(s);
        if (!c) {
          ++s->errors;
          ++s->finished;
          s->waiting.pop_front();
          continue;
        }
      } else {
        return;
      }
      const auto [due, index] = s->waiting.front();
      s->waiting.pop_front();
      start(c, due, s->urls[index % s->urls.size()]);
    }
  }

  void reap() {
    if (dead_.empty()) return;
    for (Conn* d : dead_) {
      conns_.erase(std::remove_if(conns_.begin(), conns_.end(), [d](const auto& p) { return p.get() == d; }),
                   conns_.end());
    }
    dead_.clear();
  }

  int ep() const { return ep_; }
  std::vector<std::unique_ptr<Conn>>& conns() { return conns_; }

 private:
  const Options& opt_;
  int ep_ = -1;
  sockaddr_in addr_{};
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<Conn*> dead_;
};

double pct(std::vector<Nanos>& v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const auto k = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return static_cast<double>(v[std::min(v.size() - 1, k == 0 ? 0 : k - 1)]) / 1000.0;
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

void print(Stream& s, double seconds) {
  std::string st;
  for (const auto& [code, n] : s.statuses) {
    if (!st.empty()) st += ',';
    st += "\"" + std::to_string(code) + "\":" + std::to_string(n);
  }
  std::printf(
      "{\"stream\":\"%s\",\"rate\":%.3f,\"issued\":%zu,\"finished\":%zu,\"errors\":%zu,\"statuses\":{%s},"
      "\"connections\":%zu,\"seconds\":%.3f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
      "\"max_us\":%.1f,\"service_p50_us\":%.1f,\"service_p99_us\":%.1f,\"queued_p99_us\":%.1f,\"queued_max_us\":%.1f,"
      "\"client_cpu_s\":%.3f}\n",
      s.name.c_str(), s.rate, s.issued, s.finished, s.errors, st.c_str(), s.opened_total, seconds,
      pct(s.latency, 50), pct(s.latency, 90), pct(s.latency, 99), pct(s.latency, 99.9), pct(s.latency, 100),
      pct(s.service, 50), pct(s.service, 99), pct(s.queued, 99), pct(s.queued, 100), cpu_seconds());
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) die("cannot read " + path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  if (out.empty()) die(path + ": no URLs");
  return out;
}

int run_open(const Options& opt, double seconds, std::vector<Stream>& streams) {
  Loop loop(opt);
  const int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (tfd < 0) die("timerfd_create");
  epoll_event tev{};
  tev.events = EPOLLIN;
  tev.data.ptr = nullptr;
  epoll_ctl(loop.ep(), EPOLL_CTL_ADD, tfd, &tev);

  // Connections opened up front (a quarter of each stream's cap) so the first
  // second does not measure connection set-up.
  for (auto& s : streams) {
    for (std::size_t i = 0; i < std::max<std::size_t>(1, s.max_conns / 4); ++i) {
      if (Conn* c = loop.connect_new(&s)) (void)c;
    }
  }
  {
    const Nanos until = now_ns() + 2'000'000'000;
    std::vector<epoll_event> events(1024);
    bool pending = true;
    while (pending && now_ns() < until) {
      const int n = epoll_wait(loop.ep(), events.data(), static_cast<int>(events.size()), 50);
      for (int i = 0; i < n; ++i) {
        if (auto* c = static_cast<Conn*>(events[static_cast<std::size_t>(i)].data.ptr)) {
          loop.on_event(c, events[static_cast<std::size_t>(i)].events);
        }
      }
      loop.reap();
      pending = false;
      for (auto& c : loop.conns()) pending = pending || !c->connected;
    }
  }

  const Nanos t0 = now_ns();
  for (auto& s : streams) {
    s.start = t0;
    s.total = static_cast<std::size_t>(std::floor(s.rate * seconds));
  }
  const Nanos deadline = t0 + static_cast<Nanos>((seconds + 60.0) * 1e9);  // answers may trail the schedule
  std::vector<epoll_event> events(1024);
  for (;;) {
    const Nanos now = now_ns();
    Nanos next = INT64_MAX;
    bool all_done = true;
    for (auto& s : streams) {
      while (s.issued < s.total) {
        const Nanos due = s.start + static_cast<Nanos>(static_cast<double>(s.issued) * 1e9 / s.rate);
        if (due > now) {
          next = std::min(next, due);
          break;
        }
        s.waiting.emplace_back(due, s.issued);
        ++s.issued;
      }
      loop.dispatch(&s);
      all_done = all_done && s.issued == s.total && s.finished == s.total;
    }
    loop.reap();
    if (all_done || now > deadline) break;
    if (next != INT64_MAX) {
      itimerspec its{};
      its.it_value.tv_sec = next / 1'000'000'000;
      its.it_value.tv_nsec = next % 1'000'000'000;
      timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, nullptr);
    }
    const int n = epoll_wait(loop.ep(), events.data(), static_cast<int>(events.size()), 100);
    for (int i = 0; i < n; ++i) {
      const auto& ev = events[static_cast<std::size_t>(i)];
      if (ev.data.ptr == nullptr) {
        std::uint64_t ticks = 0;
        if (::read(tfd, &ticks, sizeof ticks) < 0) { /* spurious: fine */ }
        continue;
      }
      loop.on_event(static_cast<Conn*>(ev.data.ptr), ev.events);
    }
    loop.reap();
  }
  const double elapsed = static_cast<double>(now_ns() - t0) / 1e9;
  for (auto& s : streams) print(s, elapsed);
  return 0;
}

int run_herd(const Options& opt, std::size_t n, std::vector<std::string> urls) {
  Loop loop(opt);
  Stream s;
  s.name = "herd";
  s.urls = std::move(urls);
  s.max_conns = n;
  s.total = n;
  for (std::size_t i = 0; i < n; ++i) {
    if (!loop.connect_new(&s)) die("socket/connect failed after " + std::to_string(i) + " connections");
  }
  std::vector<epoll_event> events(4096);
  const Nanos until = now_ns() + 60'000'000'000;
  for (;;) {
    std::size_t connected = 0;
    for (auto& c : loop.conns()) connected += c->connected ? 1 : 0;
    if (connected == loop.conns().size() || now_ns() > until) break;
    const int k = epoll_wait(loop.ep(), events.data(), static_cast<int>(events.size()), 100);
    for (int i = 0; i < k; ++i) {
      const auto& ev = events[static_cast<std::size_t>(i)];
      auto* c = static_cast<Conn*>(ev.data.ptr);
      if (!c->connected) loop.on_event(c, ev.events & ~static_cast<std::uint32_t>(EPOLLIN));
    }
    loop.reap();
  }
  s.idle.clear();  // every connection gets exactly one request below
  const Nanos t0 = now_ns();
  for (auto& c : loop.conns()) {
    if (c->fd >= 0 && c->connected) loop.start(c.get(), now_ns(), s.urls[s.issued % s.urls.size()]);
    ++s.issued;
  }
  s.errors += n - loop.conns().size();
  s.finished += n - loop.conns().size();
  while (s.finished < n && now_ns() < t0 + 300'000'000'000) {
    const int k = epoll_wait(loop.ep(), events.data(), static_cast<int>(events.size()), 100);
    for (int i = 0; i < k; ++i) {
      const auto& ev = events[static_cast<std::size_t>(i)];
      loop.on_event(static_cast<Conn*>(ev.data.ptr), ev.events);
    }
    s.idle.clear();
    loop.reap();
  }
  const double elapsed = static_cast<double>(now_ns() - t0) / 1e9;
  s.rate = static_cast<double>(n);
  print(s, elapsed);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) die("usage: loadgen open|herd ...");
  raise_fd_limit();
  const std::string mode = argv[1];
  Options opt;
  double seconds = 10;
  std::size_t n = 0;
  std::vector<std::string> targets;
  std::vector<Stream> streams;
  streams.reserve(16);
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--port") {
      opt.port = static_cast<std::uint16_t>(std::atoi(value().c_str()));
    } else if (a == "--seconds") {
      seconds = std::atof(value().c_str());
    } else if (a == "--header") {
      opt.headers.push_back(value());
    } else if (a == "--n") {
      n = static_cast<std::size_t>(std::atol(value().c_str()));
    } else if (a == "--target") {
      targets = {value()};
    } else if (a == "--urls") {
      targets = read_lines(value());
    } else if (a == "--stream") {
      // NAME:RATE:URLFILE:MAXCONNS
      const std::string spec = value();
      std::vector<std::string> parts;
      std::size_t p = 0;
      for (std::size_t q; (q = spec.find(':', p)) != std::string::npos; p = q + 1) parts.push_back(spec.substr(p, q - p));
      parts.push_back(spec.substr(p));
      if (parts.size() != 4) die("--stream NAME:RATE:URLFILE:MAXCONNS");
      Stream s;
      s.name = parts[0];
      s.rate = std::atof(parts[1].c_str());
      s.urls = read_lines(parts[2]);
      s.max_conns = static_cast<std::size_t>(std::atol(parts[3].c_str()));
      if (s.rate <= 0 || s.max_conns == 0) die("--stream: rate and connections must be positive");
      streams.push_back(std::move(s));
    } else {
      die("unknown argument " + a);
    }
  }
  if (opt.port == 0) die("--port is required");
  if (mode == "open") {
    if (streams.empty()) die("open: at least one --stream");
    return run_open(opt, seconds, streams);
  }
  if (mode == "herd") {
    if (n == 0 || targets.empty()) die("herd: --n and --target or --urls");
    return run_herd(opt, n, std::move(targets));
  }
  die("unknown mode " + mode);
}
