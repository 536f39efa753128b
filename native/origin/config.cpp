#include "config.h"

#include <cstdlib>
#include <thread>

#include "nic/route.h"
#include "redis_client.h"
#include "nic/url.h"

namespace nic::origin {
namespace {

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const auto comma = text.find(',');
    std::string item = trim(text.substr(0, comma));
    if (!item.empty()) out.push_back(std::move(item));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

Error bad(std::string_view variable, std::string_view why) {
  return make_error(ErrorCode::InvalidParam, std::string(variable) + ": " + std::string(why));
}

std::string mask(std::string_view secret) {
  if (secret.empty()) return "";
  return "***(" + std::to_string(secret.size()) + " chars)";
}

// Reads an integer setting when present.
struct Reader {
  const EnvGetter& env;
  std::optional<Error> error;

  std::optional<std::string> get(std::string_view name) {
    auto v = env(name);
    if (v && v->empty()) return std::nullopt;  // VAR= counts as unset
    return v;
  }

  template <class T>
  void integer(std::string_view name, T& out, long long lo, long long hi) {
    if (error) return;
    const auto v = get(name);
    if (!v) return;
    auto r = parse_int_setting(trim(*v), lo, hi, name);
    if (!r) {
      error = r.take_error();
      return;
    }
    out = static_cast<T>(*r);
  }

  void string(std::string_view name, std::string& out) {
    if (const auto v = get(name)) out = *v;
  }
};

// STORAGE_BACKEND=s3|r2: every S3_* setting present and well-formed.
Status check_s3_settings(Config& c) {
  for (auto* s : {&c.s3_bucket, &c.s3_region, &c.s3_endpoint, &c.s3_access_key, &c.s3_secret_key}) *s = trim(*s);
  const bool r2 = c.storage_backend == "r2";
  if (c.s3_bucket.empty()) return bad("S3_BUCKET", "required with STORAGE_BACKEND=" + c.storage_backend);
  if (c.s3_bucket.size() < 3 || c.s3_bucket.size() > 63 ||
      c.s3_bucket.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") != std::string::npos) {
    return bad("S3_BUCKET", "expected 3 to 63 characters of a-z 0-9 . -, got '" + c.s3_bucket + "'");
  }
  if (c.s3_region.empty()) {
    if (!r2) return bad("S3_REGION", "required with STORAGE_BACKEND=s3 (e.g. us-east-1)");
    c.s3_region = "auto";  // R2's only region
  }
  if (c.s3_region.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos) {
    return bad("S3_REGION", "expected a region name such as us-east-1 or auto, got '" + c.s3_region + "'");
  }
  if (c.s3_endpoint.empty()) {
    if (r2) return bad("S3_ENDPOINT", "required with STORAGE_BACKEND=r2: https://<account>.r2.cloudflarestorage.com");
    c.s3_endpoint = "https://s3." + c.s3_region + ".amazonaws.com";
  }
  while (!c.s3_endpoint.empty() && c.s3_endpoint.back() == '/') c.s3_endpoint.pop_back();
  auto u = parse_url(c.s3_endpoint);
  if (!u) return bad("S3_ENDPOINT", "not an http(s) URL: " + u.error().message);
  if (!u->query.empty() || (!u->path.empty() && u->path != "/")) {
    return bad("S3_ENDPOINT", "expected scheme://host[:port] only (the bucket is S3_BUCKET), got '" + c.s3_endpoint + "'");
  }
  if (u->scheme != "https" && u->host != "127.0.0.1" && u->host != "localhost" && u->host != "::1") {
    return bad("S3_ENDPOINT", "https is required (plain http only for a loopback address), got '" + c.s3_endpoint + "'");
  }
  if (c.s3_access_key.empty()) return bad("S3_ACCESS_KEY", "required with STORAGE_BACKEND=" + c.storage_backend);
  if (c.s3_secret_key.empty()) return bad("S3_SECRET_KEY", "required with STORAGE_BACKEND=" + c.storage_backend);
  if (c.s3_access_key.find(':') != std::string::npos) return bad("S3_ACCESS_KEY", "must not contain ':'");
  return Ok{};
}

// ---- hardening (issues 8 and 9): kept apart to ease merging with other settings.
Status load_hardening_settings(Config& c, Reader& r) {
  if (r.get("MAX_CONNECTIONS")) c.max_connections_explicit = true;
  r.integer("MAX_CONNECTIONS", c.max_connections, 1, 1000000);
  r.string("EDGE_SECRET", c.edge_secret);
  c.edge_secret = trim(c.edge_secret);
  if (!c.edge_secret.empty() && c.edge_secret.size() < 16) {
    return bad("EDGE_SECRET", "too short to be a secret: use at least 16 characters (e.g. openssl rand -hex 32)");
  }
  r.integer("RATE_LIMIT_IMAGE_MISS", c.rate_limit_image_miss, 0, 1LL << 40);
  r.integer("MAX_VARIANTS_PER_SOURCE", c.max_variants_per_source, 0, 100000);
  if (r.error) return *r.error;
  return Ok{};
}

}  // namespace

EnvGetter process_env() {
  return [](std::string_view name) -> std::optional<std::string> {
    const std::string n(name);
    const char* v = std::getenv(n.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

std::string_view to_string(LogLevel level) {
  switch (level) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warn: return "warn";
    case LogLevel::Error: return "error";
  }
  return "info";
}

Result<Config> load_config(const EnvGetter& env) {
  Config c;
  const unsigned hw = std::max(1U, std::thread::hardware_concurrency());
  c.worker_threads = static_cast<int>(hw);
  c.transform_concurrency = static_cast<int>(hw);
  Reader r{env, std::nullopt};

  r.integer("PORT", c.port, 0, 65535);
  r.string("HOST", c.host);
  if (const auto v = r.get("LOG_LEVEL")) {
    const std::string l = trim(*v);
    if (l == "debug" || l == "trace") c.log_level = LogLevel::Debug;
    else if (l == "info") c.log_level = LogLevel::Info;
    else if (l == "warn" || l == "warning") c.log_level = LogLevel::Warn;
    else if (l == "error" || l == "fatal") c.log_level = LogLevel::Error;
    else return bad("LOG_LEVEL", "expected debug|info|warn|error, got '" + l + "'");
  }
  if (const auto v = r.get("STORAGE_BACKEND")) {
    const std::string b = trim(*v);
    if (b != "fs" && b != "s3" && b != "r2") return bad("STORAGE_BACKEND", "expected fs|s3|r2, got '" + b + "'");
    c.storage_backend = b;
  }
  r.string("CACHE_DIR", c.cache_dir);
  r.string("S3_BUCKET", c.s3_bucket);
  r.string("S3_REGION", c.s3_region);
  r.string("S3_ENDPOINT", c.s3_endpoint);
  r.string("S3_ACCESS_KEY", c.s3_access_key);
  r.string("S3_SECRET_KEY", c.s3_secret_key);
  r.string("REDIS_URL", c.redis_url);
  if (c.storage_backend != "fs") {
    if (auto s = check_s3_settings(c); !s) return s.take_error();
  }

  c.allowed_domains_text = std::string(default_allowed_domains());
  r.string("ALLOWED_DOMAINS", c.allowed_domains_text);
  {
    auto hosts = parse_allowed_hosts(c.allowed_domains_text);
    if (!hosts) return bad("ALLOWED_DOMAINS", hosts.error().message);
    c.allowed_domains = std::move(*hosts);
  }
  r.integer("MAX_IMAGE_SIZE_BYTES", c.max_image_size_bytes, 1, 1LL << 40);
  r.integer("UPSTREAM_TIMEOUT_MS", c.upstream_timeout_ms, 1, 3600000);
  r.integer("RATE_LIMIT_PER_MINUTE", c.rate_limit_per_minute, 0, 1LL << 40);
  r.integer("RATE_LIMIT_PROXY", c.rate_limit_proxy, 0, 1LL << 40);
  r.integer("RATE_LIMIT_IMAGE", c.rate_limit_image, 0, 1LL << 40);
  r.integer("RATE_LIMIT_CACHE_PURGE", c.rate_limit_cache_purge, 0, 1LL << 40);
  r.integer("DAILY_PROXY_QUOTA", c.daily_proxy_quota, 0, 1LL << 40);
  r.integer("CACHE_TTL_SECONDS", c.cache_ttl_seconds, 0, 31536000LL * 10);
  if (const auto v = r.get("API_KEYS")) c.api_keys = split_list(*v);
  r.string("HMAC_SECRET", c.hmac_secret);
  if (const auto v = r.get("CORS_ORIGINS")) c.cors_origins = split_list(*v);

  r.string("NOTION_TOKEN", c.notion_token);
  if (const auto v = r.get("NOTION_TOKENS")) {
    for (const auto& item : split_list(*v)) {
      const auto eq = item.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) {
        return bad("NOTION_TOKENS", "expected workspaceId=token,..., got an entry without '='");
      }
      const std::string ws = canonical_workspace(trim(std::string_view(item).substr(0, eq)));
      if (ws.empty()) return bad("NOTION_TOKENS", "invalid workspace id in an entry");
      c.notion_tokens[ws] = trim(std::string_view(item).substr(eq + 1));
    }
  }
  r.string("NOTION_API_BASE", c.notion_api_base);
  while (!c.notion_api_base.empty() && c.notion_api_base.back() == '/') c.notion_api_base.pop_back();
  if (auto u = parse_url(c.notion_api_base); !u) {
    return bad("NOTION_API_BASE", "not an http(s) URL: " + u.error().message);
  }
  r.string("NOTION_VERSION", c.notion_version);
  if (const auto v = r.get("NOTION_RPS")) {
    char* end = nullptr;
    const std::string s = trim(*v);
    const double rps = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size() || !(rps > 0.0) || rps > 10000.0) {
      return bad("NOTION_RPS", "expected a number of calls per second in (0, 10000], got '" + s + "'");
    }
    c.notion_rps = rps;
  }
  r.integer("MEMORY_CACHE_BYTES", c.memory_cache_bytes, 0, 1LL << 50);
  r.integer("CACHE_MAX_BYTES", c.cache_max_bytes, 0, 1LL << 60);
  r.integer("MAX_INPUT_PIXELS", c.max_input_pixels, 1, 1LL << 40);
  r.integer("FOLLOWER_TIMEOUT_MS", c.follower_timeout_ms, 1, 3600000);
  r.integer("WORKER_THREADS", c.worker_threads, 1, 256);
  r.integer("TRANSFORM_CONCURRENCY", c.transform_concurrency, 1, 256);
  r.integer("TRANSFORM_QUEUE", c.transform_queue, 0, 1000000);
  r.integer("FETCH_CONCURRENCY", c.fetch_concurrency, 1, 1024);
  r.integer("SHUTDOWN_TIMEOUT_MS", c.shutdown_timeout_ms, 0, 3600000);
  if (r.error) return *r.error;
  if (const auto v = r.get("ALLOWED_WIDTHS")) {
    auto l = parse_int_list(*v, 1, 8192, "ALLOWED_WIDTHS");
    if (!l) return l.take_error();
    if (l->empty()) return bad("ALLOWED_WIDTHS", "needs at least one width");
    c.core.allowed_widths = std::move(*l);
  }
  if (const auto v = r.get("QUALITY_STEPS")) {
    auto l = parse_int_list(*v, 1, 100, "QUALITY_STEPS");
    if (!l) return l.take_error();
    if (l->empty()) return bad("QUALITY_STEPS", "needs at least one quality");
    c.core.quality_steps = std::move(*l);
  }
  r.integer("SOURCE_TTL_SECONDS", c.source_ttl_seconds, 0, 31536000LL * 10);
  if (const auto v = r.get("NIC_COALESCING")) {
    const std::string s = trim(*v);
    if (s == "on" || s == "1" || s == "true") c.coalescing = true;
    else if (s == "off" || s == "0" || s == "false") c.coalescing = false;
    else return bad("NIC_COALESCING", "expected on|off, got '" + s + "'");
  }
  r.integer("NOTION_QUEUE", c.notion_queue, 0, 100000);
  r.integer("REVALIDATE_BACKOFF_MS", c.revalidate_backoff_ms, 1, 86400000);
  r.integer("REVALIDATE_BACKOFF_MAX_MS", c.revalidate_backoff_max_ms, 1, 86400000LL * 7);
  if (const auto v = r.get("NOTION_DELETED_BLOCKS")) {
    const std::string s = trim(*v);
    if (s == "keep") c.keep_deleted_blocks = true;
    else if (s == "drop") c.keep_deleted_blocks = false;
    else return bad("NOTION_DELETED_BLOCKS", "expected keep|drop, got '" + s + "'");
  }
  r.integer("TRANSFORM_MEMORY_BYTES", c.transform_memory_bytes, 1 << 20, 1LL << 50);
  if (r.get("TRANSFORM_MEMORY_BYTES")) c.transform_alone_bytes = c.transform_memory_bytes;
  r.integer("WRITE_BEHIND_BYTES", c.write_behind_bytes, 0, 1LL << 50);
  r.integer("STORAGE_CONCURRENCY", c.storage_concurrency, 1, 256);
  r.integer("AVIF_SPEED", c.avif_speed, 0, 10);
  r.integer("TRANSFORM_NICE", c.transform_nice, 0, 19);
  if (r.error) return *r.error;
  if (auto s = load_hardening_settings(c, r); !s) return s.take_error();
  if (!c.redis_url.empty()) {
    if (auto redis = parse_redis_url(c.redis_url); !redis) return redis.take_error();  // names REDIS_URL
  }
  if (c.revalidate_backoff_max_ms < c.revalidate_backoff_ms) {
    return bad("REVALIDATE_BACKOFF_MAX_MS", "must be at least REVALIDATE_BACKOFF_MS (" +
                                                std::to_string(c.revalidate_backoff_ms) + ")");
  }
  // One flight has one deadline, FOLLOWER_TIMEOUT_MS after its leader started
  // (less a small margin); a single upstream call that may outlast it would
  // leave followers giving up before their leader.
  if (c.coalescing && c.upstream_timeout_ms + kFlightMarginMs >= c.follower_timeout_ms) {
    return bad("FOLLOWER_TIMEOUT_MS", "must be more than UPSTREAM_TIMEOUT_MS + " + std::to_string(kFlightMarginMs) +
                                          " ms (" + std::to_string(c.upstream_timeout_ms) + " + " +
                                          std::to_string(kFlightMarginMs) + "), or followers give up before their leader");
  }
  return c;
}


std::string notion_token_for(const Config& config, std::string_view workspace) {
  const auto it = config.notion_tokens.find(std::string(workspace));
  if (it != config.notion_tokens.end()) return it->second;
  return config.notion_token;
}

bool workspace_served(const Config& config, std::string_view workspace) {
  if (config.notion_tokens.empty() || !config.notion_token.empty()) return true;
  return config.notion_tokens.contains(std::string(workspace));
}

std::string describe_config(const Config& c) {
  std::string out;
  auto line = [&out](std::string_view name, const std::string& value) {
    out += name;
    out += '=';
    out += value;
    out += '\n';
  };
  auto join = [](const auto& list, auto fmt) {
    std::string s;
    for (const auto& x : list) {
      if (!s.empty()) s += ',';
      s += fmt(x);
    }
    return s;
  };
  auto num = [](auto v) { return std::to_string(v); };
  line("PORT", num(c.port));
  line("HOST", c.host);
  line("LOG_LEVEL", std::string(to_string(c.log_level)));
  line("STORAGE_BACKEND", c.storage_backend);
  line("CACHE_DIR", c.cache_dir);
  line("S3_BUCKET", c.s3_bucket);
  line("S3_REGION", c.s3_region);
  line("S3_ENDPOINT", c.s3_endpoint);
  line("S3_ACCESS_KEY", mask(c.s3_access_key));
  line("S3_SECRET_KEY", mask(c.s3_secret_key));
  line("REDIS_URL", mask(c.redis_url));
  line("ALLOWED_DOMAINS", c.allowed_domains_text);
  line("MAX_IMAGE_SIZE_BYTES", num(c.max_image_size_bytes));
  line("UPSTREAM_TIMEOUT_MS", num(c.upstream_timeout_ms));
  line("RATE_LIMIT_PER_MINUTE", num(c.rate_limit_per_minute));
  line("RATE_LIMIT_PROXY", num(c.rate_limit_proxy));
  line("RATE_LIMIT_IMAGE", num(c.rate_limit_image));
  line("RATE_LIMIT_CACHE_PURGE", num(c.rate_limit_cache_purge));
  line("DAILY_PROXY_QUOTA", num(c.daily_proxy_quota));
  line("CACHE_TTL_SECONDS", num(c.cache_ttl_seconds));
  line("API_KEYS", join(c.api_keys, [](const std::string& k) { return mask(k); }));
  line("HMAC_SECRET", mask(c.hmac_secret));
  line("CORS_ORIGINS", join(c.cors_origins, [](const std::string& s) { return s; }));
  line("NOTION_TOKEN", mask(c.notion_token));
  line("NOTION_TOKENS", join(c.notion_tokens, [](const auto& kv) { return kv.first + "=" + mask(kv.second); }));
  line("NOTION_API_BASE", c.notion_api_base);
  line("NOTION_VERSION", c.notion_version);
  line("NOTION_RPS", num(c.notion_rps));
  line("MEMORY_CACHE_BYTES", num(c.memory_cache_bytes));
  line("CACHE_MAX_BYTES", num(c.cache_max_bytes));
  line("MAX_INPUT_PIXELS", num(c.max_input_pixels));
  line("FOLLOWER_TIMEOUT_MS", num(c.follower_timeout_ms));
  line("WORKER_THREADS", num(c.worker_threads));
  line("TRANSFORM_CONCURRENCY", num(c.transform_concurrency));
  line("TRANSFORM_QUEUE", num(c.transform_queue));
  line("FETCH_CONCURRENCY", num(c.fetch_concurrency));
  line("SHUTDOWN_TIMEOUT_MS", num(c.shutdown_timeout_ms));
  line("ALLOWED_WIDTHS", join(c.core.allowed_widths, num));
  line("QUALITY_STEPS", join(c.core.quality_steps, num));
  line("SOURCE_TTL_SECONDS", num(c.source_ttl_seconds));
  line("NIC_COALESCING", c.coalescing ? "on" : "off");
  // hardening
  line("MAX_CONNECTIONS", num(c.max_connections));
  line("EDGE_SECRET", mask(c.edge_secret));
  line("RATE_LIMIT_IMAGE_MISS", num(c.rate_limit_image_miss));
  line("MAX_VARIANTS_PER_SOURCE", num(c.max_variants_per_source));
  line("NOTION_QUEUE", num(c.notion_queue));
  line("REVALIDATE_BACKOFF_MS", num(c.revalidate_backoff_ms));
  line("REVALIDATE_BACKOFF_MAX_MS", num(c.revalidate_backoff_max_ms));
  line("NOTION_DELETED_BLOCKS", c.keep_deleted_blocks ? "keep" : "drop");
  line("TRANSFORM_MEMORY_BYTES", num(c.transform_memory_bytes));
  line("WRITE_BEHIND_BYTES", num(c.write_behind_bytes));
  line("STORAGE_CONCURRENCY", num(c.storage_concurrency));
  line("AVIF_SPEED", num(c.avif_speed));
  line("TRANSFORM_NICE", num(c.transform_nice));
  return out;
}

}  // namespace nic::origin
