#include "notion_client.h"

#include <boost/json.hpp>

#include <chrono>
#include <ctime>
#include <thread>

#include "coalescer.h"
#include "http_fetch.h"

namespace nic::origin {
namespace json = boost::json;

namespace {

std::string dashed_uuid(std::string_view hex) {
  if (hex.size() != 32) return std::string(hex);
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) out += '-';
    out += hex[i];
  }
  return out;
}

const json::value* field(const json::value& v, std::string_view name) {
  const json::object* o = v.if_object();
  if (o == nullptr) return nullptr;
  return o->if_contains(name);
}

std::optional<std::string> string_field(const json::value& v, std::string_view name) {
  const json::value* f = field(v, name);
  if (f == nullptr || !f->is_string()) return std::nullopt;
  return std::string(f->get_string());
}

void sleep_until_ms(std::int64_t when) {
  const std::int64_t now = steady_ms();
  if (when > now) std::this_thread::sleep_for(std::chrono::milliseconds(when - now));
}

}  // namespace

std::optional<std::int64_t> parse_iso8601(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM)
  auto digits = [&s](std::size_t pos, std::size_t n) -> std::optional<int> {
    if (pos + n > s.size()) return std::nullopt;
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return std::nullopt;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' ||
      s[16] != ':') {
    return std::nullopt;
  }
  const auto y = digits(0, 4), mo = digits(5, 2), d = digits(8, 2), h = digits(11, 2), mi = digits(14, 2),
             se = digits(17, 2);
  if (!y || !mo || !d || !h || !mi || !se || *mo < 1 || *mo > 12 || *d < 1 || *d > 31 || *h > 23 ||
      *mi > 59 || *se > 60) {
    return std::nullopt;
  }
  std::size_t pos = 19;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
  }
  std::int64_t offset = 0;
  if (pos < s.size() && s[pos] == 'Z') {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    const auto oh = digits(pos + 1, 2), om = digits(pos + 4, 2);
    if (!oh || !om || pos + 3 >= s.size() || s[pos + 3] != ':') return std::nullopt;
    offset = (s[pos] == '+' ? 1 : -1) * (*oh * 3600 + *om * 60);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  std::tm tm{};
  tm.tm_year = *y - 1900;
  tm.tm_mon = *mo - 1;
  tm.tm_mday = *d;
  tm.tm_hour = *h;
  tm.tm_min = *mi;
  tm.tm_sec = *se;
  return static_cast<std::int64_t>(timegm(&tm)) - offset;
}

Result<BlockFile> parse_block_json(std::string_view text) {
  boost::system::error_code ec;
  const json::value doc = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) return make_error(ErrorCode::NotionApiError, "Notion answered with invalid JSON");
  const auto object = string_field(doc, "object");
  if (object != "block") return make_error(ErrorCode::NotionApiError, "Notion answered without a block object");
  const json::value* archived = field(doc, "archived");
  const json::value* in_trash = field(doc, "in_trash");
  const bool deleted = (archived && archived->is_bool() && archived->get_bool()) ||
                       (in_trash && in_trash->is_bool() && in_trash->get_bool());
  const auto type = string_field(doc, "type");
  if (type != "image") {
    return make_error(ErrorCode::ImageNotFound, "the Notion block is not an image (type " +
                                                    type.value_or("unknown") + ")");
  }
  const json::value* image = field(doc, "image");
  if (image == nullptr) return make_error(ErrorCode::NotionApiError, "image block without an image");
  const auto kind = string_field(*image, "type");
  BlockFile out;
  out.deleted = deleted;
  if (kind == "file") {
    const json::value* file = field(*image, "file");
    const auto url = file ? string_field(*file, "url") : std::nullopt;
    if (!url || url->empty()) return make_error(ErrorCode::NotionApiError, "image block without file.url");
    out.url = *url;
    if (const auto expiry = string_field(*file, "expiry_time")) out.expires_at = parse_iso8601(*expiry);
  } else if (kind == "external") {
    const json::value* ext = field(*image, "external");
    const auto url = ext ? string_field(*ext, "url") : std::nullopt;
    if (!url || url->empty()) return make_error(ErrorCode::NotionApiError, "image block without external.url");
    out.url = *url;
    out.external = true;
  } else {
    return make_error(ErrorCode::NotionApiError, "unknown image type '" + kind.value_or("") + "'");
  }
  return out;
}

void CallSpacer::prune(Key& k, std::int64_t now_ms) {
  while (!k.slots.empty() && k.slots.front() <= now_ms) k.slots.pop_front();
}

std::optional<std::int64_t> CallSpacer::reserve(const std::string& key, std::int64_t now_ms,
                                                std::int64_t latest_ms) {
  std::lock_guard lock(mu_);
  Key& k = keys_[key];
  prune(k, now_ms);
  const double slot = std::max(static_cast<double>(now_ms), k.next);
  if (slot > static_cast<double>(latest_ms)) return std::nullopt;
  const auto at = static_cast<std::int64_t>(slot);
  if (at > now_ms && static_cast<int>(k.slots.size()) >= max_waiting_) return std::nullopt;
  k.next = slot + interval_ms_;
  if (at > now_ms) k.slots.push_back(at);
  return at;
}

void CallSpacer::penalize(const std::string& key, std::int64_t until_ms) {
  std::lock_guard lock(mu_);
  Key& k = keys_[key];
  k.next = std::max(k.next, static_cast<double>(until_ms));
}

std::int64_t CallSpacer::wait_ms(const std::string& key, std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  const auto it = keys_.find(key);
  if (it == keys_.end()) return 0;
  return std::max<std::int64_t>(0, static_cast<std::int64_t>(it->second.next) - now_ms);
}

int CallSpacer::waiting(const std::string& key, std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  const auto it = keys_.find(key);
  if (it == keys_.end()) return 0;
  prune(it->second, now_ms);
  return static_cast<int>(it->second.slots.size());
}

Result<BlockFile> NotionClient::lookup_block(std::string_view workspace, std::string_view block_id,
                                             const CallOptions& call) {
  const std::string token = notion_token_for(config_, workspace);
  if (token.empty()) {
    return make_error(ErrorCode::NotionApiError,
                      "no Notion token for workspace " + std::string(workspace) +
                          " (set NOTION_TOKEN or NOTION_TOKENS)");
  }
  const std::string url = config_.notion_api_base + "/v1/blocks/" + dashed_uuid(block_id);
  TransferOptions options;
  options.headers = {"Authorization: Bearer " + token, "Notion-Version: " + config_.notion_version,
                     "Accept: application/json"};
  options.max_bytes = 1 << 20;
  int server_errors = 0;
  for (int attempt = 0;; ++attempt) {
    const std::int64_t now = steady_ms();
    // Leave the call itself some time: a slot at the very deadline is no use.
    std::optional<std::int64_t> slot;
    bool fleet_refused = false;
    if (fleet_) {
      // The fleet's slot; NOTION_QUEUE bounds the wait as the local queue would.
      const double interval = 1000.0 / config_.notion_rps;
      const auto most = std::min<std::int64_t>(call.deadline_ms - 100 - now,
                                               static_cast<std::int64_t>(interval * config_.notion_queue));
      if (auto f = fleet_->notion_slot(token, interval, most); f) {
        if (*f) slot = now + (*f)->wait_ms;
        fleet_refused = !*f;
      }
    }
    if (!slot && !fleet_refused) slot = spacer_.reserve(token, now, call.deadline_ms - 100);
    if (!slot) {
      metrics_.notion_call("refused");
      const std::int64_t wait = spacer_.wait_ms(token, now);
      return make_error(ErrorCode::Overloaded, "the Notion API queue for this token is " + std::to_string(wait) +
                                                   " ms long; retry in " + std::to_string(wait / 1000 + 1) + " s");
    }
    sleep_until_ms(*slot);
    const std::int64_t left = call.deadline_ms - steady_ms();
    if (left <= 0) return make_error(ErrorCode::UpstreamTimeout, "no time left for the Notion API call");
    options.timeout_ms = std::min(config_.upstream_timeout_ms, left);
    auto r = http_get(url, options);
    if (!r) {
      metrics_.notion_call(r.error().code == ErrorCode::UpstreamTimeout ? "timeout" : "error");
      if (r.error().code == ErrorCode::UpstreamTimeout) return r.take_error();
      return make_error(ErrorCode::NotionApiError, "Notion API unreachable: " + r.error().message);
    }
    metrics_.notion_call(std::to_string(r->status));
    switch (r->status) {
      case 200:
        return parse_block_json(r->body_text());
      case 400:
      case 403:
      case 404:
        return make_error(ErrorCode::ImageNotFound,
                          "Notion block " + std::string(block_id) + " was not found or is not shared");
      case 401:
        return make_error(ErrorCode::NotionApiError, "Notion refused the token (401)");
      case 429: {
        if (attempt >= kMax429Retries) {
          return make_error(ErrorCode::NotionApiError, "Notion API still rate limited after retries");
        }
        std::int64_t wait_ms = 1000;
        if (!r->retry_after.empty()) {
          char* end = nullptr;
          const double secs = std::strtod(r->retry_after.c_str(), &end);
          if (end != r->retry_after.c_str() && secs >= 0) wait_ms = static_cast<std::int64_t>(secs * 1000);
        }
        wait_ms = std::min(wait_ms, kMaxRetryAfterMs);
        spacer_.penalize(token, steady_ms() + wait_ms);
        if (fleet_) fleet_->notion_penalize(token, wait_ms);
        continue;  // the next reserve() fails fast if the wait passes the deadline
      }
      default:
        if (r->status >= 500 && call.retry_server_error && server_errors++ < 1 &&
            steady_ms() + 200 < call.deadline_ms) {
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
          continue;
        }
        return make_error(ErrorCode::NotionApiError,
                          "Notion API answered " + std::to_string(r->status));
    }
  }
}

}  // namespace nic::origin
