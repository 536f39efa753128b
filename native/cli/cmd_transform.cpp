// nic transform IN OUT [--w N] [--h N] [--fit MODE] [--fmt F] [--q N] [--dpr X] [--memory]
//
// The flags become the same query parameters a URL carries and go through the
// core's parser and normaliser, so values, errors and snapping match the
// origin. --fmt auto (the default) means the source's own format: there is no
// Accept header on a command line. --memory also prints the peak memory the
// origin would charge for this transform (its byte budget's estimate).
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "commands.h"
#include "nic/negotiate.h"
#include "nic/params.h"
#include "nic/percent.h"
#include "nic/settings.h"
#include "transform.h"

namespace {

constexpr const char* kUsage =
    "usage: nic transform IN OUT [--w N] [--h N] [--fit MODE] [--fmt F] [--q N] [--dpr X] [--memory]\n";

int refuse(const nic::Error& e) {
  std::fprintf(stderr, "%s: %s\n", std::string(nic::to_string(e.code)).c_str(), e.message.c_str());
  return 1;
}

bool read_file(const char* path, std::vector<std::uint8_t>& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

bool write_file(const char* path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return false;
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out.flush());
}

// The process's peak resident bytes so far (VmHWM), 0 where /proc has none.
unsigned long long peak_resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  }
  return 0;
}

}  // namespace

int cmd_transform(int argc, char** argv) {
  static constexpr std::string_view kFlags[] = {"w", "h", "fit", "fmt", "q", "dpr"};
  std::vector<const char*> positional;
  std::string query;
  bool show_memory = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--memory") {
      show_memory = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg.size() > 2 && arg.substr(0, 2) == "--") {
      const std::string_view name = arg.substr(2);
      bool known = false;
      for (auto f : kFlags) known = known || f == name;
      if (!known || i + 1 >= argc) {
        std::fprintf(stderr, "nic transform: %s '%s'\n", known ? "missing value for" : "unknown option",
                     argv[i]);
        std::fputs(kUsage, stderr);
        return 2;
      }
      if (!query.empty()) query += '&';
      query += std::string(name) + "=" + nic::percent_encode(argv[++i]);
      continue;
    }
    positional.push_back(argv[i]);
  }
  if (positional.size() != 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }

  auto parsed = nic::parse_params(nic::split_query(query));
  if (!parsed) return refuse(parsed.error());
  const nic::NormalizedParams params = nic::normalize(*parsed, nic::CoreSettings{});
  const nic::FormatChoice choice = nic::negotiate(params.fmt, "");

  const unsigned long long resident_at_start = show_memory ? peak_resident_bytes() : 0;
  std::vector<std::uint8_t> source;
  if (!read_file(positional[0], source)) {
    std::fprintf(stderr, "nic transform: cannot read %s: %s\n", positional[0], std::strerror(errno));
    return 1;
  }
  std::uint64_t estimate = 0;
  if (show_memory) {
    auto info = nic::probe_image(source, nic::TransformLimits{});
    if (!info) return refuse(info.error());
    estimate = nic::estimate_transform_bytes(source, *info, params, choice);
  }
  auto out = nic::transform_image(source, params, choice, nic::TransformLimits{});
  if (!out) return refuse(out.error());
  if (!write_file(positional[1], out->bytes)) {
    std::fprintf(stderr, "nic transform: cannot write %s: %s\n", positional[1], std::strerror(errno));
    return 1;
  }
  std::printf("%s %dx%d %zu bytes%s\n", std::string(nic::to_string(out->format)).c_str(), out->width,
              out->height, out->bytes.size(), out->passthrough ? " (passthrough)" : "");
  if (show_memory) {
    // The estimate, and what this process really held (its peak, less what
    // it held before reading the source: the program and its libraries).
    const unsigned long long peak = peak_resident_bytes();
    std::printf("memory estimate %llu bytes, used %llu bytes\n", static_cast<unsigned long long>(estimate),
                peak > resident_at_start ? peak - resident_at_start : 0ULL);
  }
  return 0;
}
