#include "s3_store.h"

#include <curl/curl.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>

#include "http_fetch.h"
#include "curl_handles.h"
#include "log.h"
#include "nic/cache_key.h"
#include "nic/percent.h"
#include "nic/sha256.h"

namespace nic::origin {
namespace {

constexpr std::string_view kMetaPrefix = "x-amz-meta-nic-";
constexpr std::string_view kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
// A signed listing that names no object (prefix nothing uses): proves the
// endpoint, bucket and credentials without depending on what is stored.
const std::string kProbeQuery = "list-type=2&max-keys=1&prefix=nic-probe%2F";
// Objects larger than this are not an image this origin wrote.
constexpr std::uint64_t kMaxObjectBytes = 1ULL << 30;

struct Transfer {
  S3Reply* reply;
  std::span<const std::uint8_t> upload;
  std::size_t sent = 0;
  bool too_large = false;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {
    t->reply->headers.clear();  // a new response (e.g. after 100 Continue)
    return size * n;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string name(line.substr(0, colon));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view v = line.substr(colon + 1);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
  t->reply->headers.emplace_back(std::move(name), std::string(v));
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t len = size * n;
  Bytes& body = *t->reply->body;
  if (body.size() + len > kMaxObjectBytes) {
    t->too_large = true;
    return 0;
  }
  body.insert(body.end(), reinterpret_cast<std::uint8_t*>(data), reinterpret_cast<std::uint8_t*>(data) + len);
  return len;
}

size_t on_read(char* buffer, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t len = std::min(size * n, t->upload.size() - t->sent);
  std::memcpy(buffer, t->upload.data() + t->sent, len);
  t->sent += len;
  return len;
}

// One easy handle per thread, reset between requests: keeps the connection
// and DNS caches (keep-alive to the store) without sharing handles.
CURL* thread_handle() {
  thread_local CurlEasy handle(curl_easy_init());
  if (handle) curl_easy_reset(handle.get());
  return handle.get();
}

template <class T>
bool parse_num(std::string_view s, T& out) {
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// The text between <tag> and </tag>, from `from`; npos when absent.
std::string_view xml_value(std::string_view xml, std::string_view tag, std::size_t& from) {
  const std::string open = "<" + std::string(tag) + ">";
  const std::string close = "</" + std::string(tag) + ">";
  const auto a = xml.find(open, from);
  if (a == std::string_view::npos) {
    from = std::string_view::npos;
    return {};
  }
  const auto b = xml.find(close, a + open.size());
  if (b == std::string_view::npos) {
    from = std::string_view::npos;
    return {};
  }
  from = b + close.size();
  return xml.substr(a + open.size(), b - a - open.size());
}

std::string xml_unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    static constexpr std::pair<std::string_view, char> kEntities[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    bool done = false;
    for (const auto& [entity, c] : kEntities) {
      if (s.substr(i).starts_with(entity)) {
        out += c;
        i += entity.size() - 1;
        done = true;
        break;
      }
    }
    if (!done) out += '&';
  }
  return out;
}

std::string decoded(const std::string& text) {
  auto r = percent_decode(text, ErrorCode::Internal);
  return r ? std::move(*r) : std::string();
}

bool valid_hash(std::string_view h) {
  if (h.size() != 64) return false;
  for (char c : h) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::vector<std::string> meta_headers(const EntryMeta& m, const std::string& sha256) {
  const std::string p(kMetaPrefix);
  std::vector<std::string> out{
      "Content-Type: " + (m.content_type.empty() ? std::string("application/octet-stream") : m.content_type),
      p + "key: " + percent_encode(m.key),
      p + "etag: " + percent_encode(m.etag),
      p + "size: " + std::to_string(m.size),
      p + "original-size: " + std::to_string(m.original_size),
      p + "created: " + std::to_string(m.created),
      p + "sha256: " + sha256,
  };
  // Only non-empty values: curl does not send "Name: " lines yet would sign them.
  if (!m.resolved_by.empty()) out.push_back(p + "resolved-by: " + percent_encode(m.resolved_by));
  if (!m.upstream.empty()) out.push_back(p + "upstream: " + percent_encode(m.upstream));
  return out;
}

struct StoredMeta {
  EntryMeta meta;
  std::string sha256;
};

std::optional<StoredMeta> meta_from(const S3Reply& r) {
  StoredMeta s;
  const std::string p(kMetaPrefix);
  s.meta.key = decoded(r.header(p + "key"));
  s.meta.content_type = r.header("content-type");
  s.meta.etag = decoded(r.header(p + "etag"));
  s.meta.resolved_by = decoded(r.header(p + "resolved-by"));
  s.meta.upstream = decoded(r.header(p + "upstream"));
  s.sha256 = r.header(p + "sha256");
  if (s.meta.key.empty() || s.meta.etag.empty() || s.sha256.size() != 64 ||
      !parse_num(r.header(p + "size"), s.meta.size) ||
      !parse_num(r.header(p + "original-size"), s.meta.original_size) ||
      !parse_num(r.header(p + "created"), s.meta.created)) {
    return std::nullopt;
  }
  return s;
}

std::string sha256_of(std::span<const std::uint8_t> bytes) {
  Sha256 h;
  h.update(bytes);
  const Digest d = h.finish();
  return to_hex(d);
}

}  // namespace

std::string S3Reply::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return {};
}

std::string S3Reply::error_code() const {
  const std::string_view xml(reinterpret_cast<const char*>(body->data()), body->size());
  std::size_t from = 0;
  return xml_unescape(xml_value(xml, "Code", from));
}

std::string S3Reply::describe() const {
  if (status == 0) return transport_error.empty() ? std::string("no answer") : transport_error;
  std::string out = std::to_string(status);
  const std::string_view xml(reinterpret_cast<const char*>(body->data()), body->size());
  std::size_t from = 0;
  const std::string code = xml_unescape(xml_value(xml, "Code", from));
  from = 0;
  const std::string message = xml_unescape(xml_value(xml, "Message", from));
  if (!code.empty()) out += " " + code;
  if (!message.empty()) out += ": " + message;
  return out;
}

std::string s3_uri_encode(std::string_view text) { return percent_encode(text); }

std::string s3_object_name(const std::string& hash) {
  return hash.substr(0, 2) + "/" + hash.substr(2, 2) + "/" + hash;
}

std::string s3_index_name(const std::string& group, const std::string& hash) {
  return "index/" + sha256_hex(group) + "/" + hash;
}

S3Store::S3Store(S3Settings settings) : settings_(std::move(settings)) {
  base_ = settings_.endpoint + "/" + settings_.bucket;
}

S3Store::~S3Store() {
  {
    std::lock_guard lock(probe_mu_);
    stopping_ = true;
  }
  probe_cv_.notify_all();
  if (prober_.joinable()) prober_.join();
}

std::string S3Store::describe() const { return "s3 " + base_ + " (region " + settings_.region + ")"; }

Result<std::unique_ptr<S3Store>> S3Store::open(S3Settings settings) {
  global_http_init();
  std::unique_ptr<S3Store> store(new S3Store(std::move(settings)));
  if (auto s = store->check_bucket(); !s) return s.take_error();
  store->prober_ = std::thread([s = store.get()] { s->probe_loop(); });
  return store;
}

S3Reply S3Store::call(const std::string& method, const std::string& object, const std::string& query,
                      const std::vector<std::string>& headers, std::span<const std::uint8_t> body) const {
  S3Reply reply;
  CURL* h = thread_handle();
  if (h == nullptr) {
    reply.transport_error = "curl_easy_init failed";
    return reply;
  }
  std::string url = base_;
  if (!object.empty()) url += "/" + object;
  if (!query.empty()) url += "?" + query;
  // The payload's hash is part of the signature: the store refuses a body
  // that does not match it.
  std::vector<std::string> all = headers;
  all.push_back("x-amz-content-sha256: " + (body.empty() ? std::string(kEmptySha256) : sha256_of(body)));
  // No "Expect:" line to suppress 100-continue: curl 7.88 would sign an
  // "expect" header it then does not send. Large PUTs use 100-continue.
  CurlSlist list;
  for (const auto& line : all) {
    curl_slist* next = curl_slist_append(list.get(), line.c_str());
    if (next == nullptr) {
      reply.transport_error = "curl_slist_append failed";
      return reply;
    }
    (void)list.release();
    list.reset(next);
  }
  Transfer t{&reply, body};
  const std::string sigv4 = "aws:amz:" + settings_.region + ":s3";
  const long timeout = static_cast<long>(std::max<std::int64_t>(1, settings_.timeout_ms));
  bool ok = curl_easy_setopt(h, CURLOPT_URL, url.c_str()) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_PROXY, "") == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_USERAGENT, "nic-origin/" NIC_VERSION) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4.c_str()) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_USERNAME, settings_.access_key.c_str()) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_PASSWORD, settings_.secret_key.c_str()) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_HTTPHEADER, list.get()) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_HEADERDATA, &t) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_WRITEDATA, &t) == CURLE_OK;
  if (ok && method == "PUT") {
    ok = curl_easy_setopt(h, CURLOPT_UPLOAD, 1L) == CURLE_OK &&
         curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read) == CURLE_OK &&
         curl_easy_setopt(h, CURLOPT_READDATA, &t) == CURLE_OK &&
         curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body.size())) == CURLE_OK;
  } else if (ok && method == "HEAD") {
    ok = curl_easy_setopt(h, CURLOPT_NOBODY, 1L) == CURLE_OK;
  } else if (ok && method != "GET") {
    ok = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str()) == CURLE_OK;
  }
  if (!ok) {
    reply.transport_error = "curl_easy_setopt failed";
    return reply;
  }
  const CURLcode rc = curl_easy_perform(h);
  if (t.too_large) {
    reply.transport_error = "object larger than " + std::to_string(kMaxObjectBytes) + " bytes";
    return reply;
  }
  if (rc != CURLE_OK) {
    // Includes a body shorter than its Content-Length (CURLE_PARTIAL_FILE).
    reply.transport_error = std::string("S3 ") + method + " failed: " + curl_easy_strerror(rc);
    reply.body->clear();
    return reply;
  }
  if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply.status) != CURLE_OK) {
    reply.status = 0;
    reply.transport_error = "no HTTP status from the store";
  }
  return reply;
}

void S3Store::note(const S3Reply& r) const {
  const bool good = r.status != 0 && r.status < 500 && r.status != 401 && r.status != 403;
  const bool was = healthy_.exchange(good);
  if (was && !good) log(LogLevel::Warn, "storage " + describe() + " unhealthy: " + r.describe());
  if (!was && good) log(LogLevel::Info, "storage " + describe() + " answers again");
}

Status S3Store::check_bucket() const {
  const S3Reply r = call("GET", "", kProbeQuery, {}, {});
  note(r);
  if (r.status == 200) return Ok{};
  const std::string what = "storage " + describe() + ": ";
  if (r.status == 0 || r.status >= 500) {
    // Unreachable: start anyway (degraded); images are served from upstream.
    log(LogLevel::Warn, what + "not usable at start-up (" + r.describe() + "); serving without it until it answers");
    return Ok{};
  }
  if (r.status == 401 || r.status == 403) {
    return make_error(ErrorCode::InvalidParam,
                      "S3_ACCESS_KEY/S3_SECRET_KEY: the store refused these credentials for bucket '" +
                          settings_.bucket + "' (" + r.describe() + ")");
  }
  if (r.status == 404) {
    return make_error(ErrorCode::InvalidParam, "S3_BUCKET: no bucket '" + settings_.bucket + "' at " +
                                                   settings_.endpoint + " (" + r.describe() + ")");
  }
  return make_error(ErrorCode::InvalidParam, what + "unexpected answer to a bucket listing: " + r.describe());
}

void S3Store::probe_loop() {
  std::unique_lock lock(probe_mu_);
  while (!stopping_) {
    probe_cv_.wait_for(lock, std::chrono::milliseconds(settings_.probe_interval_ms));
    if (stopping_) break;
    if (healthy_.load()) continue;
    lock.unlock();
    note(call("GET", "", kProbeQuery, {}, {}));
    lock.lock();
  }
}

void S3Store::remember(const std::string& hash, const EntryMeta& meta) {
  std::lock_guard lock(mu_);
  if (known_.size() >= 65536 && !known_.count(hash)) known_.clear();  // bounded; only a look-aside
  known_[hash] = meta;
}

void S3Store::forget(const std::string& hash) {
  std::lock_guard lock(mu_);
  known_.erase(hash);
}

std::optional<Store::Hit> S3Store::read(const std::string& hash) {
  if (!valid_hash(hash)) return std::nullopt;
  const S3Reply r = call("GET", s3_object_name(hash), "", {}, {});
  note(r);
  if (r.status == 404) {
    forget(hash);
    return std::nullopt;
  }
  auto fail = [&](const std::string& why) -> std::optional<Hit> {
    {
      std::lock_guard lock(mu_);
      ++stats_.read_errors;
    }
    log(LogLevel::Warn, "storage read " + hash + " treated as a miss: " + why);
    return std::nullopt;
  };
  if (r.status != 200) return fail(r.describe());
  auto stored = meta_from(r);
  if (!stored) return fail("missing or bad x-amz-meta-nic-* metadata");
  if (stored->meta.size != r.body->size()) {
    return fail("size " + std::to_string(r.body->size()) + " != stored size " + std::to_string(stored->meta.size));
  }
  if (sha256_of(*r.body) != stored->sha256) return fail("checksum mismatch");
  if (cache_key_hash(stored->meta.key) != hash) return fail("stored key does not hash to the object's name");
  remember(hash, stored->meta);
  return Hit{std::move(stored->meta), r.body};
}

std::optional<EntryMeta> S3Store::meta(const std::string& hash) {
  std::lock_guard lock(mu_);
  const auto it = known_.find(hash);
  if (it == known_.end()) return std::nullopt;
  return it->second;
}

Status S3Store::write(const std::string& hash, EntryMeta meta, std::span<const std::uint8_t> bytes) {
  if (!valid_hash(hash)) return make_error(ErrorCode::Internal, "bad storage hash");
  const std::string group = source_group_of(meta.key);
  if (group.empty()) return make_error(ErrorCode::Internal, "storage key without a group: " + meta.key);
  meta.size = bytes.size();
  auto failed = [&](const std::string& what, const S3Reply& r) -> Status {
    {
      std::lock_guard lock(mu_);
      ++stats_.write_errors;
    }
    std::string hint;
    if (r.status == 401 || r.status == 403) hint = " (check S3_ACCESS_KEY/S3_SECRET_KEY and their write permission)";
    return make_error(ErrorCode::Internal, "S3 PUT " + what + " failed: " + r.describe() + hint);
  };
  // The marker first: an object that exists is always reachable by a purge.
  const S3Reply marker = call("PUT", s3_index_name(group, hash), "", {}, {});
  note(marker);
  if (marker.status != 200) return failed(s3_index_name(group, hash), marker);
  const std::string sha = sha256_of(bytes);
  // Conditional: only if no object has the name yet, so that two instances
  // that fetched the same source (or made the same variant) never both write
  // it; the store decides atomically and answers 412 to the second.
  auto headers = meta_headers(meta, sha);
  headers.emplace_back("If-None-Match: *");
  S3Reply r = call("PUT", s3_object_name(hash), "", headers, bytes);
  note(r);
  if (r.status == 412) {
    // Someone else wrote it first. The same bytes: nothing to do. Other bytes
    // (a changed upstream file, another engine version, or a damaged object
    // that reads refused): replace it, as an unconditional write would.
    const S3Reply head = call("HEAD", s3_object_name(hash), "", {}, {});
    note(head);
    const auto stored = head.status == 200 ? meta_from(head) : std::nullopt;
    if (stored && stored->sha256 == sha && stored->meta.size == bytes.size()) {
      log(LogLevel::Debug, "storage write " + s3_object_name(hash) + ": already stored by another writer");
      remember(hash, stored->meta);
      return Ok{};
    }
    headers.pop_back();
    r = call("PUT", s3_object_name(hash), "", headers, bytes);
    note(r);
  }
  if (r.status != 200) return failed(s3_object_name(hash), r);
  {
    std::lock_guard lock(mu_);
    ++stats_.writes;
    stats_.bytes += bytes.size();
  }
  remember(hash, meta);
  return Ok{};
}

Status S3Store::update_meta(const std::string& hash, const EntryMeta& meta) {
  // Copy the object onto itself with new metadata; the bytes (and so their
  // checksum) are unchanged, so the stored checksum is read first.
  const S3Reply head = call("HEAD", s3_object_name(hash), "", {}, {});
  note(head);
  auto stored = head.status == 200 ? meta_from(head) : std::nullopt;
  if (!stored || stored->meta.size != meta.size) {
    return make_error(ErrorCode::Internal, "no such entry in the store (" + head.describe() + ")");
  }
  auto headers = meta_headers(meta, stored->sha256);
  headers.push_back("x-amz-copy-source: /" + settings_.bucket + "/" + s3_object_name(hash));
  headers.emplace_back("x-amz-metadata-directive: REPLACE");
  const S3Reply r = call("PUT", s3_object_name(hash), "", headers, {});
  note(r);
  if (r.status != 200) return make_error(ErrorCode::Internal, "S3 metadata update failed: " + r.describe());
  remember(hash, meta);
  return Ok{};
}

bool S3Store::erase(const std::string& hash) {
  if (!valid_hash(hash)) return false;
  std::optional<EntryMeta> m = meta(hash);
  if (!m) {
    const S3Reply head = call("HEAD", s3_object_name(hash), "", {}, {});
    note(head);
    if (head.status != 200) return false;
    if (auto stored = meta_from(head)) m = stored->meta;
  }
  const S3Reply r = call("DELETE", s3_object_name(hash), "", {}, {});
  note(r);
  if (m) {
    const std::string group = source_group_of(m->key);
    if (!group.empty()) note(call("DELETE", s3_index_name(group, hash), "", {}, {}));
  }
  forget(hash);
  return r.status >= 200 && r.status < 300;
}

Result<std::vector<std::string>> S3Store::list(const std::string& prefix) const {
  std::vector<std::string> names;
  std::string token;
  for (int page = 0; page < 10000; ++page) {
    // Canonical query: names sorted, values URI-encoded.
    std::string query;
    if (!token.empty()) query += "continuation-token=" + s3_uri_encode(token) + "&";
    query += "list-type=2&prefix=" + s3_uri_encode(prefix);
    const S3Reply r = call("GET", "", query, {}, {});
    note(r);
    if (r.status != 200) return make_error(ErrorCode::Internal, "S3 list " + prefix + " failed: " + r.describe());
    const std::string_view xml(reinterpret_cast<const char*>(r.body->data()), r.body->size());
    for (std::size_t from = 0;;) {
      const std::string_view key = xml_value(xml, "Key", from);
      if (from == std::string_view::npos) break;
      names.push_back(xml_unescape(key));
    }
    std::size_t from = 0;
    const bool truncated = xml_value(xml, "IsTruncated", from) == "true";
    from = 0;
    token = xml_unescape(xml_value(xml, "NextContinuationToken", from));
    if (!truncated || token.empty()) break;
  }
  return names;
}

std::size_t S3Store::erase_group(std::string_view group_name) {
  const std::string group(group_name);
  if (source_group_of(group) != group) {
    log(LogLevel::Warn, "storage purge of '" + group + "' ignored: only source groups v1/*/{id}/");
    return 0;
  }
  const std::string index_prefix = "index/" + sha256_hex(group) + "/";
  auto names = list(index_prefix);
  if (!names) {
    log(LogLevel::Error, "storage purge of " + group + ": " + names.error().message);
    return 0;
  }
  std::size_t removed = 0;
  for (const auto& name : *names) {
    const std::string hash = name.substr(name.rfind('/') + 1);
    if (!valid_hash(hash)) continue;
    const S3Reply r = call("DELETE", s3_object_name(hash), "", {}, {});
    note(r);
    if (r.status < 200 || r.status >= 300) {
      log(LogLevel::Error, "storage purge: DELETE " + s3_object_name(hash) + " failed: " + r.describe());
      continue;  // keep the marker so a later purge retries
    }
    note(call("DELETE", name, "", {}, {}));
    forget(hash);
    ++removed;
  }
  return removed;
}

StoreStats S3Store::stats() const {
  std::lock_guard lock(mu_);
  StoreStats s = stats_;
  s.entries = known_.size();
  return s;
}

}  // namespace nic::origin
