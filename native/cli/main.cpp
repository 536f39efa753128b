#include <cstdio>
#include <cstring>
#include <string_view>

#include "commands.h"

namespace {

void usage(FILE* out) {
  std::fputs(
      "usage: nic <command> [options]\n"
      "  nic transform IN OUT [--w N] [--h N] [--fit MODE] [--fmt F] [--q N] [--dpr X]\n"
      "  nic key '/img/...?...' [--accept 'image/avif,...']\n"
      "  nic url NOTION_URL --cdn BASE [--w N] [--h N] [--fit MODE] [--fmt F] [--q N] [--dpr X]\n"
      "  nic sign '/img/...?...'            (needs HMAC_SECRET)\n"
      "  nic --version | --help\n",
      out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const std::string_view cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    usage(stdout);
    return 0;
  }
  if (cmd == "--version") {
    std::puts("nic " NIC_VERSION);
    return 0;
  }
  // Subcommands see argv starting at their own name.
  if (cmd == "key") return cmd_key(argc - 1, argv + 1);
  if (cmd == "url") return cmd_url(argc - 1, argv + 1);
  if (cmd == "sign") return cmd_sign(argc - 1, argv + 1);
  if (cmd == "transform") return cmd_transform(argc - 1, argv + 1);
  std::fprintf(stderr, "nic: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
