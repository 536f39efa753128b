// The SDK's bindings: the core's Notion URL recognition, parameter
// validation and normalisation, cache key and signatures, for JavaScript
// (wasm/sdk/src/core.js) through Emscripten.
//
// ABI (one string in, one string out, like the edge's): the caller writes a
// UTF-8 input into the buffer nic_sdk_input(size) returns, fields separated by
// NUL (no URL, header or setting can contain one), and calls an entry point.
// It returns n >= 0: the answer is n bytes at nic_sdk_output(); or -n < 0:
// the call failed and the n bytes at nic_sdk_output() are "FIELD\0CODE\0message",
// FIELD naming what was wrong (a parameter name, "cdnBaseUrl", "widths", ...).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nic/allowed_hosts.h"
#include "nic/cache_key.h"
#include "nic/error.h"
#include "nic/notion_url.h"
#include "nic/params.h"
#include "nic/percent.h"
#include "nic/route.h"
#include "nic/settings.h"
#include "nic/signature.h"
#include "nic/url.h"

#define NIC_SDK_EXPORT extern "C" __attribute__((used, visibility("default")))

namespace {

std::string g_in;
std::string g_out;

std::vector<std::string_view> fields(std::int32_t len, std::size_t count) {
  std::string_view rest(g_in.data(), static_cast<std::size_t>(len < 0 ? 0 : len));
  std::vector<std::string_view> out;
  for (std::size_t i = 0; i < count; ++i) {
    const auto nul = rest.find('\0');
    out.push_back(rest.substr(0, nul));
    rest = nul == std::string_view::npos ? std::string_view{} : rest.substr(nul + 1);
  }
  return out;
}

std::int32_t answer(std::string text) {
  g_out = std::move(text);
  return static_cast<std::int32_t>(g_out.size());
}

std::int32_t fail(std::string_view field, const nic::Error& e) {
  g_out.assign(field);
  g_out += '\0';
  g_out += nic::to_string(e.code);
  g_out += '\0';
  g_out += e.message;
  return -static_cast<std::int32_t>(g_out.size());
}

std::int32_t fail(std::string_view field, std::string message) {
  return fail(field, nic::make_error(nic::ErrorCode::InvalidParam, std::move(message)));
}

// "widths \0 qualities" (each empty = the default) -> settings.
nic::Result<nic::CoreSettings> settings_from(std::string_view widths, std::string_view qualities,
                                             std::string& field) {
  nic::CoreSettings s;
  if (!widths.empty()) {
    auto w = nic::parse_int_list(widths, 1, nic::kMaxDimension, "allowedWidths");
    if (!w) return field = "allowedWidths", w.take_error();
    s.allowed_widths = std::move(*w);
  }
  if (!qualities.empty()) {
    auto q = nic::parse_int_list(qualities, 1, 100, "qualitySteps");
    if (!q) return field = "qualitySteps", q.take_error();
    s.quality_steps = std::move(*q);
  }
  return s;
}

// The CDN's base: empty (same origin), an absolute path, or an http(s) URL
// without query or fragment. Trailing slashes are the core's to drop.
bool usable_base(std::string_view base) {
  if (base.empty()) return true;
  if (base.find_first_of("?#\\ ") != std::string_view::npos) return false;
  if (base[0] == '/') return base.size() == 1 || base[1] != '/';
  auto url = nic::parse_url(base);
  return url.ok();
}

// The parameters the CDN URL carries: the normalised ones, so the URL is
// already what the edge and the origin would snap it to (one URL per variant).
nic::TransformParams canonical(const nic::NormalizedParams& n) {
  nic::TransformParams p;
  p.w = n.w;
  p.h = n.h;
  if (n.fit_in_key) p.fit = n.fit;
  if (n.fmt != nic::RequestedFormat::Auto) p.fmt = n.fmt;
  p.q = n.q;
  return p;
}

// "scheme://host/img/..." -> "/img/..."; a path stays as it is.
std::string_view target_of(std::string_view url, std::string_view& base) {
  const auto scheme = url.find("://");
  if (scheme == std::string_view::npos || url.substr(0, 1) == "/") {
    base = {};
    return url;
  }
  const auto slash = url.find('/', scheme + 3);
  base = url.substr(0, slash == std::string_view::npos ? url.size() : slash);
  return slash == std::string_view::npos ? std::string_view("/") : url.substr(slash);
}

}  // namespace

NIC_SDK_EXPORT char* nic_sdk_input(std::int32_t size) {
  g_in.resize(static_cast<std::size_t>(size < 0 ? 0 : size));
  return g_in.data();
}

NIC_SDK_EXPORT const char* nic_sdk_output() { return g_out.data(); }

// widths \0 qualities -> the effective lists, "32,48,...\0" "60,75,..."
NIC_SDK_EXPORT std::int32_t nic_sdk_settings(std::int32_t len) {
  const auto f = fields(len, 2);
  std::string field;
  auto s = settings_from(f[0], f[1], field);
  if (!s) return fail(field, s.error());
  std::string out;
  for (int w : s->allowed_widths) out += (out.empty() ? "" : ",") + std::to_string(w);
  out += '\0';
  bool first = true;
  for (int q : s->quality_steps) out += (first ? "" : ",") + std::to_string(q), first = false;
  return answer(std::move(out));
}

// Validates the options of a URL: each parameter alone, so the failure names it.
// query: "w=800&fmt=webp" as the JS wrapper built it from the options.
// Answer: the normalised query ("w=828&fmt=webp"), without '?'.
NIC_SDK_EXPORT std::int32_t nic_sdk_params(std::int32_t len) {
  const auto f = fields(len, 3);
  std::string field;
  auto s = settings_from(f[1], f[2], field);
  if (!s) return fail(field, s.error());
  const auto pairs = nic::split_query(f[0]);
  for (const auto& p : pairs) {
    auto one = nic::parse_params({p});
    if (!one) return fail(p.name, one.error());
  }
  auto params = nic::parse_params(pairs);
  if (!params) return fail("", params.error());
  // cdn_url_for over an empty base and file gives "/img///?query": keep the query.
  const std::string url = nic::cdn_url_for(nic::NotionFile{}, "", canonical(nic::normalize(*params, *s)));
  const auto q = url.find('?');
  return answer(q == std::string::npos ? std::string() : url.substr(q + 1));
}

// url \0 allowed domains (empty = Notion's) -> "workspace\0file id\0block id\0filename\0expires"
// or -1 when the URL is not a Notion file URL (or not on an allowed host).
NIC_SDK_EXPORT std::int32_t nic_sdk_parse(std::int32_t len) {
  const auto f = fields(len, 2);
  std::vector<nic::AllowedHost> hosts = nic::default_allowed_hosts();
  if (!f[1].empty()) {
    auto parsed = nic::parse_allowed_hosts(f[1]);
    if (!parsed) return fail("allowedDomains", parsed.error());
    auto extra = std::move(*parsed);
    hosts.insert(hosts.end(), extra.begin(), extra.end());
  }
  auto file = nic::parse_notion_url(f[0], hosts);
  if (!file) return fail("url", file.error());
  std::string out = file->workspace + '\0' + file->file_id + '\0' + file->block_id.value_or("") + '\0' +
                    file->filename + '\0' + (file->expires_at ? std::to_string(*file->expires_at) : "");
  return answer(std::move(out));
}

// url \0 cdn base \0 normalised query \0 block id (may be empty) \0 allowed domains
// -> the CDN URL. A URL that is not a Notion file URL: -n with FIELD "url".
NIC_SDK_EXPORT std::int32_t nic_sdk_url(std::int32_t len) {
  const auto f = fields(len, 5);
  if (!usable_base(f[1])) {
    return fail("cdnBaseUrl", "cdnBaseUrl must be an http(s) URL or an absolute path, got '" +
                                  std::string(f[1].substr(0, 64)) + "'");
  }
  std::vector<nic::AllowedHost> hosts = nic::default_allowed_hosts();
  if (!f[4].empty()) {
    auto parsed = nic::parse_allowed_hosts(f[4]);
    if (!parsed) return fail("allowedDomains", parsed.error());
    hosts.insert(hosts.end(), parsed->begin(), parsed->end());
  }
  auto file = nic::parse_notion_url(f[0], hosts);
  if (!file) return fail("url", file.error());
  if (!f[3].empty()) {
    auto block = nic::canonical_uuid(f[3]);
    if (block.empty()) return fail("block.id", "block.id must be a UUID, got '" + std::string(f[3].substr(0, 40)) + "'");
    file->block_id = std::move(block);
  }
  auto params = nic::parse_params(nic::split_query(f[2]));
  if (!params) return fail("", params.error());
  return answer(nic::cdn_url_for(*file, f[1], *params));
}

// target (path or URL) \0 accept \0 widths \0 qualities \0 secret -> "key\0sha256\0vary"
NIC_SDK_EXPORT std::int32_t nic_sdk_key(std::int32_t len) {
  const auto f = fields(len, 5);
  std::string field;
  auto s = settings_from(f[2], f[3], field);
  if (!s) return fail(field, s.error());
  std::string_view base;
  const auto target = target_of(f[0], base);
  auto routed = nic::route("GET", target);
  if (!routed) return fail("path", routed.error());
  if (routed->kind != nic::RouteKind::Image) {
    return fail("path", nic::make_error(nic::ErrorCode::InvalidPath, "expected /img/{workspaceId}/{id}/{filename}"));
  }
  auto req = nic::prepare_image_request(routed->image, routed->path, routed->query, f[1], *s, f[4]);
  if (!req) return fail("path", req.error());
  return answer(req->key + '\0' + req->key_hash + '\0' + (req->vary_accept ? "1" : "0"));
}

// url (path or URL) \0 secret -> the URL with its sig (as `nic sign` prints it).
NIC_SDK_EXPORT std::int32_t nic_sdk_sign(std::int32_t len) {
  const auto f = fields(len, 2);
  if (f[1].empty()) return fail("secret", "secret must be a non-empty string (HMAC_SECRET)");
  std::string_view base;
  const auto target = target_of(f[0], base);
  auto routed = nic::route("GET", target);
  if (!routed) return fail("url", routed.error());
  if (routed->kind != nic::RouteKind::Image) {
    return fail("url", nic::make_error(nic::ErrorCode::InvalidPath, "expected /img/{workspaceId}/{id}/{filename}"));
  }
  return answer(std::string(base) + nic::sign_url(f[1], routed->path, routed->query));
}
