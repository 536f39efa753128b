// nic_bench: the transform benchmark's native side (run by run.sh).
//   nic_bench gen DIR                       photo.jpg (3000x2000), screenshot.png (2000x1400)
//   nic_bench run IN FMT WIDTH REPS OUT     median CPU ms, best and median wall ms, bytes,
//                                           peak RSS of this process
//   nic_bench score SOURCE OUT...           PSNR of each OUT against a double-precision
//                                           Lanczos3 downscale of SOURCE to OUT's size
#include <sys/resource.h>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "nic/negotiate.h"
#include "transform.h"
#include "transform_fixtures.h"

namespace {

std::vector<std::uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool write_file(const std::string& path, const std::vector<std::uint8_t>& b) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  return static_cast<bool>(out);
}

int gen(const std::string& dir) {
  fixture::JpegOptions o;
  o.quality = 90;  // a typical camera/phone export
  const auto jpeg = fixture::encode_jpeg(fixture::photo(3000, 2000), o);
  const auto png = fixture::encode_png(fixture::screenshot(2000, 1400));
  if (!write_file(dir + "/photo.jpg", jpeg) || !write_file(dir + "/screenshot.png", png)) return 1;
  std::printf("photo.jpg %zu bytes, screenshot.png %zu bytes\n", jpeg.size(), png.size());
  return 0;
}

double cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

int run(const std::string& in, const std::string& fmt, int width, int reps, const std::string& out) {
  const auto source = read_file(in);
  const auto requested = nic::parse_requested_format(fmt);
  if (source.empty() || !requested) return 2;
  nic::NormalizedParams p;
  p.w = width;
  p.fmt = *requested;
  const nic::FormatChoice choice = nic::negotiate(p.fmt, "");
  std::vector<double> ms;
  std::vector<double> cpu;
  std::vector<std::uint8_t> bytes;
  for (int i = 0; i <= reps; ++i) {  // the first run warms up
    const double c0 = cpu_ms();
    const auto t0 = std::chrono::steady_clock::now();
    auto result = nic::transform_image(source, p, choice, nic::TransformLimits{});
    const auto t1 = std::chrono::steady_clock::now();
    const double c1 = cpu_ms();
    if (!result) {
      std::fprintf(stderr, "%s\n", result.error().message.c_str());
      return 1;
    }
    if (i > 0) {
      ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      cpu.push_back(c1 - c0);
    }
    bytes = std::move(result->bytes);
  }
  std::sort(ms.begin(), ms.end());
  std::sort(cpu.begin(), cpu.end());
  write_file(out, bytes);
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("cpu=%.1f ms=%.1f median=%.1f bytes=%zu rss_kb=%ld\n", cpu[cpu.size() / 2], ms.front(),
              ms[ms.size() / 2], bytes.size(), ru.ru_maxrss);
  return 0;
}

int score(const std::string& source_path, const std::vector<std::string>& outs) {
  const fixture::Pixels source = fixture::decode(read_file(source_path));
  if (source.w == 0) return 2;
  fixture::Pixels ref;
  for (const auto& path : outs) {
    const fixture::Pixels got = fixture::decode(read_file(path));
    if (got.w == 0) {
      std::printf("%s psnr=nan\n", path.c_str());
      continue;
    }
    if (ref.w != got.w || ref.h != got.h) {
      ref = fixture::lanczos_reference(source, 0, 0, source.w, source.h, got.w, got.h);
    }
    std::printf("%s psnr=%.2f size=%dx%d\n", path.c_str(), fixture::psnr(got, ref), got.w, got.h);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "gen" && argc == 3) return gen(argv[2]);
  if (mode == "run" && argc == 7) return run(argv[2], argv[3], std::atoi(argv[4]), std::atoi(argv[5]), argv[6]);
  if (mode == "score" && argc >= 4) return score(argv[2], std::vector<std::string>(argv + 3, argv + argc));
  std::fputs("usage: nic_bench gen DIR | run IN FMT WIDTH REPS OUT | score SOURCE OUT...\n", stderr);
  return 2;
}
