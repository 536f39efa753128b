// Runs a fuzz target's LLVMFuzzerTestOneInput over files and directories
// without libFuzzer: the regression test of every native build (gcc, and
// the ASan+UBSan pass), so crash inputs kept under regressions/ stay fixed
// on machines without clang. Exit 0 when every input ran; a crash aborts.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

bool run_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return false;
  }
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // A copy of exactly `size` bytes on the heap, so ASan sees reads past the end.
  std::vector<std::uint8_t> data(bytes.begin(), bytes.end());
  LLVMFuzzerTestOneInput(data.empty() ? nullptr : data.data(), data.size());
  return true;
}

}  // namespace

// replay [--optional] PATH...: a PATH after --optional may be missing (a
// target with no regression inputs yet has no directory).
int main(int argc, char** argv) {
  std::size_t count = 0;
  bool optional = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--optional") == 0) {
      optional = true;
      continue;
    }
    const std::filesystem::path arg(argv[i]);
    std::error_code ec;
    if (std::filesystem::is_directory(arg, ec)) {
      std::vector<std::filesystem::path> files;
      for (const auto& entry : std::filesystem::directory_iterator(arg)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
      std::sort(files.begin(), files.end());
      for (const auto& f : files) {
        if (!run_file(f)) return 1;
        ++count;
      }
    } else if (std::filesystem::is_regular_file(arg, ec)) {
      if (!run_file(arg)) return 1;
      ++count;
    } else if (!optional) {
      std::fprintf(stderr, "no such input: %s\n", argv[i]);
      return 1;
    }
    optional = false;
  }
  std::printf("replayed %zu inputs\n", count);
  return count == 0 ? 1 : 0;
}
