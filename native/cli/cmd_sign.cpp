// nic sign '/img/...?...' (or '/api/v1/proxy?url=...'): prints the URL with its `sig` parameter, computed
// with HMAC_SECRET from the environment exactly as the edge and the origin
// verify it. Exit 2 when HMAC_SECRET is unset, 1 when the path is refused.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cli_support.h"
#include "commands.h"
#include "nic/route.h"
#include "nic/signature.h"

int cmd_sign(int argc, char** argv) {
  if (argc != 2) return nic::cli::usage_error("usage: nic sign '/img/{workspace}/{id}/{filename}?w=...'");
  const char* secret = std::getenv("HMAC_SECRET");
  if (secret == nullptr || *secret == '\0') return nic::cli::usage_error("sign: HMAC_SECRET is not set");
  const std::string_view target = argv[1];
  auto routed = nic::route("GET", target);
  if (!routed) return nic::cli::fail(routed.error());
  if (routed->kind != nic::RouteKind::Image && routed->kind != nic::RouteKind::Proxy) {
    return nic::cli::usage_error("sign: expected an /img/... or /api/v1/proxy?... path");
  }
  const std::string signed_url = nic::sign_url(secret, routed->path, routed->query);
  std::printf("%s\n", signed_url.c_str());
  return 0;
}
