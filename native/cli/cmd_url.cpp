// nic url NOTION_URL --cdn BASE [--w N] [--h N] [--fit M] [--fmt F] [--q N] [--dpr X]
// Rewrites a Notion file URL into a permanent CDN URL. The block id is used
// when the Notion URL names it; otherwise the file id (register it through
// /api/v1/proxy). Signed with HMAC_SECRET when that is set.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cli_support.h"
#include "commands.h"
#include "nic/allowed_hosts.h"
#include "nic/notion_url.h"
#include "nic/params.h"
#include "nic/percent.h"
#include "nic/signature.h"

int cmd_url(int argc, char** argv) {
  std::string notion_url;
  std::string cdn;
  std::string query;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--cdn") {
      if (i + 1 >= argc) return nic::cli::usage_error("--cdn needs a value");
      cdn = argv[++i];
    } else if (arg == "--w" || arg == "--h" || arg == "--fit" || arg == "--fmt" || arg == "--q" || arg == "--dpr") {
      if (i + 1 >= argc) return nic::cli::usage_error(std::string(arg) + " needs a value");
      if (!query.empty()) query += '&';
      query += std::string(arg.substr(2)) + "=" + nic::percent_encode(argv[++i]);
    } else if (arg.substr(0, 2) == "--") {
      return nic::cli::usage_error("url: unknown option " + std::string(arg));
    } else if (notion_url.empty()) {
      notion_url = arg;
    } else {
      return nic::cli::usage_error("url: one Notion URL expected");
    }
  }
  if (notion_url.empty() || cdn.empty()) return nic::cli::usage_error("usage: nic url NOTION_URL --cdn BASE [--w N ...]");

  auto allowed = nic::default_allowed_hosts();
  if (const char* env = std::getenv("ALLOWED_DOMAINS"); env != nullptr && *env != '\0') {
    auto parsed = nic::parse_allowed_hosts(env);
    if (!parsed) return nic::cli::fail(parsed.error());
    allowed = *parsed;
  }
  auto params = nic::parse_params(nic::split_query(query));
  if (!params) return nic::cli::fail(params.error());
  auto file = nic::parse_notion_url(notion_url, allowed);
  if (!file) return nic::cli::fail(file.error());

  std::string url = nic::cdn_url_for(*file, cdn, *params);
  if (const char* secret = std::getenv("HMAC_SECRET"); secret != nullptr && *secret != '\0') {
    // Sign the path and query; the base stays in front.
    const auto img = url.find("/img/");
    const std::string base = url.substr(0, img);
    const std::string rest = url.substr(img);
    const auto q = rest.find('?');
    const std::string path = rest.substr(0, q);
    const std::string qs = q == std::string::npos ? std::string() : rest.substr(q + 1);
    url = base + nic::sign_url(secret, path, qs);
  }
  std::printf("%s\n", url.c_str());
  return 0;
}
