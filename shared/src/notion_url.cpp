#include "nic/notion_url.h"

#include <array>

#include "nic/percent.h"
#include "nic/route.h"

namespace nic {
namespace {

Error not_notion(std::string why) {
  return make_error(ErrorCode::InvalidParam, "url is not a Notion file URL: " + std::move(why));
}

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  if (!path.empty() && path[0] == '/') path.remove_prefix(1);
  while (true) {
    const auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path = path.substr(slash + 1);
  }
  return out;
}

std::optional<std::int64_t> digits(std::string_view s) {
  if (s.empty() || s.size() > 15) return std::nullopt;
  std::int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::optional<std::string> query_value(std::string_view query, std::string_view name) {
  for (const auto& p : split_query(query)) {
    if (p.name == name) {
      auto v = percent_decode(p.value, ErrorCode::InvalidParam, true);
      if (v) return *v;
    }
  }
  return std::nullopt;
}

// Days from 1970-01-01 to y-m-d (proleptic Gregorian).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

Status set_parts(NotionFile& f, std::string_view ws, std::string_view file, std::string_view name) {
  auto ws_d = percent_decode(ws, ErrorCode::InvalidParam);
  auto file_d = percent_decode(file, ErrorCode::InvalidParam);
  auto name_d = percent_decode(name, ErrorCode::InvalidParam);
  if (!ws_d || !file_d || !name_d) return not_notion("bad percent-escape in the path");
  f.workspace = canonical_workspace(*ws_d);
  f.file_id = canonical_uuid(*file_d);
  if (f.workspace.empty()) return not_notion("bad workspace id");
  if (f.file_id.empty()) return not_notion("bad file id");
  const std::string& n = *name_d;
  if (n.empty() || n.size() > kMaxFilenameBytes || n.find_first_of(std::string_view("/\\\0", 3)) != std::string::npos ||
      n.find("..") != std::string::npos) {
    return not_notion("bad file name");
  }
  f.filename = n;
  return Ok{};
}

}  // namespace

std::optional<std::int64_t> parse_amz_date(std::string_view t) {
  // YYYYMMDDTHHMMSSZ
  if (t.size() != 16 || t[8] != 'T' || t[15] != 'Z') return std::nullopt;
  auto num = [&](std::size_t at, std::size_t n) { return digits(t.substr(at, n)); };
  const auto y = num(0, 4), mo = num(4, 2), d = num(6, 2), h = num(9, 2), mi = num(11, 2), s = num(13, 2);
  if (!y || !mo || !d || !h || !mi || !s) return std::nullopt;
  if (*mo < 1 || *mo > 12 || *d < 1 || *d > 31 || *h > 23 || *mi > 59 || *s > 60) return std::nullopt;
  return days_from_civil(*y, static_cast<unsigned>(*mo), static_cast<unsigned>(*d)) * 86400 + *h * 3600 +
         *mi * 60 + *s;
}

Result<NotionFile> parse_notion_url(std::string_view text, const std::vector<AllowedHost>& allowed) {
  if (text.empty()) return make_error(ErrorCode::MissingUrl, "the url parameter is required");
  if (text.size() > kMaxTargetLength) {
    return make_error(ErrorCode::UrlTooLong, "url longer than " + std::to_string(kMaxTargetLength) + " bytes");
  }
  auto url = parse_url(text, ErrorCode::InvalidParam);
  if (!url) return url.take_error();
  if (auto st = check_allowed(*url, allowed); !st) return st.take_error();

  NotionFile f;
  f.url = std::string(text);
  const auto parts = split_path(url->path);
  const std::string& host = url->host;

  if (host == "s3.us-west-2.amazonaws.com") {
    if (parts.size() != 4 || parts[0] != "prod-files-secure") return not_notion("expected /prod-files-secure/{workspace}/{file}/{name}");
    if (auto st = set_parts(f, parts[1], parts[2], parts[3]); !st) return st.take_error();
  } else if (host == "file.notion.so") {
    if (parts.size() != 5 || parts[0] != "f" || parts[1] != "f") return not_notion("expected /f/f/{workspace}/{file}/{name}");
    if (auto st = set_parts(f, parts[2], parts[3], parts[4]); !st) return st.take_error();
  } else if (host == "img.notionusercontent.com") {
    // /s3/prod-files-secure%2F{ws}%2F{file}%2F{name}/size/w=...
    if (parts.size() < 2 || parts[0] != "s3") return not_notion("expected /s3/prod-files-secure%2F...");
    auto inner = percent_decode(parts[1], ErrorCode::InvalidParam);
    if (!inner) return not_notion("bad percent-escape in the path");
    const auto in = split_path(*inner);
    if (in.size() != 4 || in[0] != "prod-files-secure") return not_notion("expected prod-files-secure/{workspace}/{file}/{name}");
    // The whole key was encoded once more than a plain S3 path: decode again.
    if (auto st = set_parts(f, in[1], in[2], in[3]); !st) return st.take_error();
  } else {
    if (parts.size() != 3) return not_notion("expected /{workspace}/{file}/{name}");
    if (auto st = set_parts(f, parts[0], parts[1], parts[2]); !st) return st.take_error();
  }

  if (auto id = query_value(url->query, "id")) {
    if (auto c = canonical_uuid(*id); !c.empty()) f.block_id = c;
  }
  if (auto date = query_value(url->query, "X-Amz-Date")) {
    const auto start = parse_amz_date(*date);
    const auto expires = query_value(url->query, "X-Amz-Expires");
    const auto secs = expires ? digits(*expires) : std::nullopt;
    if (start && secs) f.expires_at = *start + *secs;
  } else if (auto ts = query_value(url->query, "expirationTimestamp")) {
    if (auto v = digits(*ts)) f.expires_at = *v / 1000;  // milliseconds
  } else if (auto exp = query_value(url->query, "exp")) {
    if (auto v = digits(*exp)) f.expires_at = *v > 100'000'000'000 ? *v / 1000 : *v;
  }
  return f;
}

std::string cdn_url_for(const NotionFile& file, std::string_view cdn_base, const TransformParams& params) {
  while (!cdn_base.empty() && cdn_base.back() == '/') cdn_base.remove_suffix(1);
  std::string out(cdn_base);
  out += "/img/";
  out += file.workspace;
  out += '/';
  out += file.block_id ? *file.block_id : file.file_id;
  out += '/';
  out += percent_encode(file.filename);
  std::string q;
  auto add = [&](std::string_view k, const std::string& v) {
    q += q.empty() ? '?' : '&';
    q += k;
    q += '=';
    q += v;
  };
  if (params.w) add("w", std::to_string(*params.w));
  if (params.h) add("h", std::to_string(*params.h));
  if (params.fit) add("fit", std::string(to_string(*params.fit)));
  if (params.fmt) add("fmt", std::string(to_string(*params.fmt)));
  if (params.q) add("q", std::to_string(*params.q));
  if (params.dpr_tenths) {
    add("dpr", std::to_string(*params.dpr_tenths / 10) +
                   (*params.dpr_tenths % 10 ? "." + std::to_string(*params.dpr_tenths % 10) : ""));
  }
  return out + q;
}

}  // namespace nic
