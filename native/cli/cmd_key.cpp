// nic key '/img/...?...' [--accept 'image/avif,...'] [--hash]
// Prints the canonical cache key (or its SHA-256 with --hash), computed by the
// same core as the edge and the origin. Signatures are not checked here.
#include <cstdio>
#include <string>
#include <string_view>

#include "cli_support.h"
#include "commands.h"
#include "nic/cache_key.h"
#include "nic/route.h"

int cmd_key(int argc, char** argv) {
  std::string target;
  std::string accept;
  bool hash = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--accept") {
      if (i + 1 >= argc) return nic::cli::usage_error("--accept needs a value");
      accept = argv[++i];
    } else if (arg == "--hash") {
      hash = true;
    } else if (arg.substr(0, 2) == "--") {
      return nic::cli::usage_error("key: unknown option " + std::string(arg));
    } else if (target.empty()) {
      target = arg;
    } else {
      return nic::cli::usage_error("key: one path expected");
    }
  }
  if (target.empty()) return nic::cli::usage_error("usage: nic key '/img/{ws}/{id}/{filename}?w=800' [--accept A] [--hash]");

  auto settings = nic::cli::settings_from_env();
  if (!settings) return nic::cli::fail(settings.error());
  auto route = nic::route("GET", target);
  if (!route) return nic::cli::fail(route.error());
  if (route->kind != nic::RouteKind::Image) {
    return nic::cli::fail({nic::ErrorCode::InvalidPath, "expected /img/{workspaceId}/{id}/{filename}"});
  }
  auto req = nic::prepare_image_request(route->image, route->path, route->query, accept, *settings, {});
  if (!req) return nic::cli::fail(req.error());
  std::printf("%s\n", hash ? req->key_hash.c_str() : req->key.c_str());
  return 0;
}
