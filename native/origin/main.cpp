// nic-origin: reads the settings, opens the store, serves until SIGTERM.
#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "config.h"
#include "origin.h"
#include "server.h"

namespace {

constexpr const char* kUsage =
    "usage: nic-origin [--help | --version | --check-config]\n"
    "The Notion image origin. Configured by environment variables (see README):\n"
    "  PORT HOST LOG_LEVEL STORAGE_BACKEND CACHE_DIR ALLOWED_DOMAINS MAX_IMAGE_SIZE_BYTES\n"
    "  S3_BUCKET S3_REGION S3_ENDPOINT S3_ACCESS_KEY S3_SECRET_KEY (STORAGE_BACKEND=s3|r2)\n"
    "  UPSTREAM_TIMEOUT_MS RATE_LIMIT_PER_MINUTE RATE_LIMIT_PROXY RATE_LIMIT_IMAGE\n"
    "  RATE_LIMIT_CACHE_PURGE DAILY_PROXY_QUOTA CACHE_TTL_SECONDS API_KEYS HMAC_SECRET\n"
    "  CORS_ORIGINS NOTION_TOKEN NOTION_TOKENS NOTION_API_BASE NOTION_VERSION NOTION_RPS\n"
    "  MEMORY_CACHE_BYTES CACHE_MAX_BYTES MAX_INPUT_PIXELS FOLLOWER_TIMEOUT_MS WORKER_THREADS\n"
    "  TRANSFORM_CONCURRENCY TRANSFORM_QUEUE FETCH_CONCURRENCY SHUTDOWN_TIMEOUT_MS\n"
    "  ALLOWED_WIDTHS QUALITY_STEPS SOURCE_TTL_SECONDS\n"
    "  MAX_CONNECTIONS EDGE_SECRET RATE_LIMIT_IMAGE_MISS MAX_VARIANTS_PER_SOURCE\n"
    "  NOTION_QUEUE REVALIDATE_BACKOFF_MS REVALIDATE_BACKOFF_MAX_MS NOTION_DELETED_BLOCKS\n"
    "  TRANSFORM_MEMORY_BYTES WRITE_BEHIND_BYTES STORAGE_CONCURRENCY AVIF_SPEED\n"
    "  --check-config  validate, print the effective settings (secrets masked), exit 0 or 2\n"
    "A bad setting stops start-up with exit code 2.\n";

}  // namespace

namespace {

// glibc's allocator, set for a server whose big buffers (sources, decoded
// rows, encoder frames) come and go on many threads. By default it raises its
// mmap threshold to the largest block freed (up to 32 MiB), so such buffers
// land in per-thread arenas (8 per core) that keep their freed memory: on a
// cold page of 40 new images that held ~80 MB more than the work in flight
// (bench/README.md "Traffic: a cold page": peak RSS 193 MB -> 114 MB with
// these three). A fixed threshold returns big blocks at once, a low trim
// threshold gives back heap tops, one arena per core bounds the rest.
// With GLIBC_TUNABLES or MALLOC_ARENA_MAX in the environment nothing is
// changed: the operator's settings win.
void tune_allocator() {
  if (std::getenv("GLIBC_TUNABLES") != nullptr || std::getenv("MALLOC_ARENA_MAX") != nullptr) return;
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
  mallopt(M_ARENA_MAX, static_cast<int>(std::max(2u, std::thread::hardware_concurrency())));
}

}  // namespace

int main(int argc, char** argv) {
  tune_allocator();
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (!std::strcmp(argv[i], "--version")) {
      std::puts("nic-origin " NIC_VERSION);
      return 0;
    }
    if (!std::strcmp(argv[i], "--check-config")) {
      check_only = true;
      continue;
    }
    std::fprintf(stderr, "nic-origin: unknown argument '%s'\n%s", argv[i], kUsage);
    return 2;
  }
  auto config = nic::origin::load_config(nic::origin::process_env());
  if (!config) {
    std::fprintf(stderr, "nic-origin: bad setting: %s\n", config.error().message.c_str());
    return 2;
  }
  if (check_only) {
    std::fputs(nic::origin::describe_config(*config).c_str(), stdout);
    return 0;
  }
  auto origin = nic::origin::Origin::create(*config);
  if (!origin) {
    std::fprintf(stderr, "nic-origin: %s\n", origin.error().message.c_str());
    return 2;
  }
  return nic::origin::run_server(**origin, (*origin)->config());
}
