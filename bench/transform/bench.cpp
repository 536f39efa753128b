// nic_bench: the transform benchmark's native side (run by run.sh and corpus.py).
//   nic_bench gen DIR                       photo.jpg (3000x2000), screenshot.png (2000x1400)
//   nic_bench gen-corpus DIR PHOTO.jpg      the generated part of the corpus (screenshot,
//                                           diagram, alpha cut-out, grey photo, and PHOTO
//                                           tagged Display P3 / untagged)
//   nic_bench run IN FMT WIDTH REPS OUT [QS PREFIX]
//                                           median CPU ms, best and median wall ms, bytes,
//                                           peak RSS of this process, the first (cold) run's
//                                           wall ms; with QS (q,q,...) also writes PREFIX.q<N>
//                                           at each quality. NIC_AVIF_SPEED sets AVIF_SPEED,
//                                           NIC_THREADS the encoder threads (default: idle cores).
//   nic_bench score SOURCE OUT...           PSNR and SSIM of each OUT against a double-precision
//                                           Lanczos3 downscale of SOURCE to OUT's size
//   nic_bench zlib6 IN.png                  bytes of the same pixels as zlib level 6 with
//                                           adaptive filters (libspng)
#include <sys/resource.h>

#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <cstdlib>
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

// A diagram: boxes, arrows, anti-aliased circles and lines, glyph-like text.
fixture::Pixels diagram(int w, int h) {
  fixture::Pixels px = fixture::blank(w, h, 3);
  std::fill(px.p.begin(), px.p.end(), std::uint8_t{255});
  fixture::Rng rng;
  auto blend = [&](int x, int y, const std::uint8_t* c, double a) {
    if (x < 0 || y < 0 || x >= w || y >= h || a <= 0) return;
    std::uint8_t* p = px.at(x, y);
    for (int i = 0; i < 3; ++i) p[i] = static_cast<std::uint8_t>(p[i] * (1 - a) + c[i] * a + 0.5);
  };
  const std::uint8_t palette[5][3] = {{66, 133, 244}, {219, 68, 55}, {244, 180, 0}, {15, 157, 88}, {60, 60, 60}};
  for (int b = 0; b < 12; ++b) {  // boxes with borders and labels
    const int bx = (b % 4) * w / 4 + w / 32, by = (b / 4) * h / 3 + h / 16, bw = w / 6, bh = h / 6;
    const std::uint8_t* c = palette[b % 5];
    const std::uint8_t fill[3] = {static_cast<std::uint8_t>(255 - (255 - c[0]) / 5), static_cast<std::uint8_t>(255 - (255 - c[1]) / 5),
                                  static_cast<std::uint8_t>(255 - (255 - c[2]) / 5)};
    for (int y = by; y < by + bh; ++y) {
      for (int x = bx; x < bx + bw; ++x) {
        const bool border = y < by + 3 || y >= by + bh - 3 || x < bx + 3 || x >= bx + bw - 3;
        blend(x, y, border ? c : fill, 1.0);
      }
    }
    for (int line = 0; line < 3; ++line) {  // label text
      int x = bx + 12;
      const int y0 = by + 14 + line * 18;
      while (x < bx + bw - 20) {
        const int gw = 4 + static_cast<int>(rng.next() % 4);
        for (int yy = 0; yy < 10; ++yy) {
          for (int xx = 0; xx < gw; ++xx) {
            if ((rng.next() & 3) != 0) blend(x + xx, y0 + yy, palette[4], 0.85);
          }
        }
        x += gw + 2 + (rng.next() % 7 == 0 ? 6 : 0);
      }
    }
    if (b % 4 != 3) {  // an arrow to the next box: anti-aliased line
      const double x0 = bx + bw, y0 = by + bh / 2.0, x1 = bx + w / 4.0, y1 = y0 + (b % 3 - 1) * 20;
      for (int x = static_cast<int>(x0); x < static_cast<int>(x1); ++x) {
        const double t = (x - x0) / (x1 - x0), yc = y0 + t * (y1 - y0);
        for (int y = static_cast<int>(yc) - 2; y <= static_cast<int>(yc) + 2; ++y) {
          blend(x, y, palette[4], std::clamp(1.5 - std::abs(y - yc), 0.0, 1.0));
        }
      }
    }
  }
  for (int k = 0; k < 6; ++k) {  // anti-aliased discs
    const double cx = w * (0.1 + 0.15 * k), cy = h * 0.93, r = h * 0.03;
    for (int y = static_cast<int>(cy - r - 2); y <= static_cast<int>(cy + r + 2); ++y) {
      for (int x = static_cast<int>(cx - r - 2); x <= static_cast<int>(cx + r + 2); ++x) {
        const double d = std::hypot(x - cx, y - cy);
        blend(x, y, palette[k % 5], std::clamp(r - d + 0.5, 0.0, 1.0));
      }
    }
  }
  return px;
}

// The photo with a soft-edged transparent surround (a product cut-out).
fixture::Pixels cutout(const fixture::Pixels& photo) {
  fixture::Pixels out = fixture::to_rgba(photo);
  for (int y = 0; y < out.h; ++y) {
    for (int x = 0; x < out.w; ++x) {
      const double dx = (x - out.w * 0.5) / (out.w * 0.38), dy = (y - out.h * 0.5) / (out.h * 0.42);
      const double d = std::sqrt(dx * dx + dy * dy);
      out.at(x, y)[3] = static_cast<std::uint8_t>(std::clamp((1.05 - d) / 0.1, 0.0, 1.0) * 255 + 0.5);
    }
  }
  return out;
}

// Inserts an APP2 ICC_PROFILE segment right after SOI (profiles up to 64 KB).
std::vector<std::uint8_t> with_icc(const std::vector<std::uint8_t>& jpeg, const std::vector<std::uint8_t>& icc) {
  static const char kTag[12] = {'I', 'C', 'C', '_', 'P', 'R', 'O', 'F', 'I', 'L', 'E', 0};
  const std::size_t length = 2 + sizeof kTag + 2 + icc.size();  // the length field counts itself
  std::vector<std::uint8_t> out(jpeg.size() + 2 + length);
  std::size_t at = 0;
  out[at++] = jpeg[0];
  out[at++] = jpeg[1];
  out[at++] = 0xFF;
  out[at++] = 0xE2;
  out[at++] = static_cast<std::uint8_t>(length >> 8);
  out[at++] = static_cast<std::uint8_t>(length & 0xFF);
  std::memcpy(&out[at], kTag, sizeof kTag);
  at += sizeof kTag;
  out[at++] = 1;  // part 1
  out[at++] = 1;  // of 1
  std::memcpy(&out[at], icc.data(), icc.size());
  at += icc.size();
  std::memcpy(&out[at], jpeg.data() + 2, jpeg.size() - 2);
  return out;
}

int gen_corpus(const std::string& dir, const std::string& photo_path) {
  const auto photo_bytes = read_file(photo_path);
  const fixture::Pixels photo = fixture::decode(photo_bytes);
  if (photo.w == 0) return 2;
  fixture::Pixels rgb = fixture::blank(photo.w, photo.h, 3);
  fixture::Pixels grey = fixture::blank(photo.w, photo.h, 1);
  for (std::size_t i = 0; i < static_cast<std::size_t>(photo.w) * photo.h; ++i) {
    const std::uint8_t* p = &photo.p[i * 4];
    std::memcpy(&rgb.p[i * 3], p, 3);
    grey.p[i] = static_cast<std::uint8_t>((p[0] * 299 + p[1] * 587 + p[2] * 114 + 500) / 1000);
  }
  fixture::JpegOptions o;
  o.quality = 92;
  bool ok = write_file(dir + "/gen-screenshot.png", fixture::encode_png(fixture::screenshot(2000, 1400)));
  ok = ok && write_file(dir + "/gen-diagram.png", fixture::encode_png(diagram(1800, 1200)));
  ok = ok && write_file(dir + "/gen-cutout.png", fixture::encode_png(cutout(rgb)));
  ok = ok && write_file(dir + "/gen-grey.jpg", fixture::encode_jpeg(grey, o));
  // The same photo untagged and tagged Display P3: the conversion's cost.
  const auto plain = fixture::encode_jpeg(rgb, o);
  ok = ok && write_file(dir + "/gen-untagged.jpg", plain);
  ok = ok && write_file(dir + "/gen-p3.jpg", with_icc(plain, fixture::display_p3_icc()));
  return ok ? 0 : 1;
}

double cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

int run(const std::string& in, const std::string& fmt, int width, int reps, const std::string& out,
        const std::string& qualities, const std::string& prefix) {
  const auto source = read_file(in);
  const auto requested = nic::parse_requested_format(fmt);
  if (source.empty() || !requested) return 2;
  nic::NormalizedParams p;
  p.w = width;
  p.fmt = *requested;
  // Not enlarged: the engine never does (fit=inside); w above the source's width is the source's.
  const nic::FormatChoice choice = nic::negotiate(p.fmt, "");
  std::vector<double> ms;
  std::vector<double> cpu;
  std::vector<std::uint8_t> bytes;
  double cold = 0;
  nic::TransformLimits limits;
  if (const char* speed = std::getenv("NIC_AVIF_SPEED")) limits.avif_speed = std::atoi(speed);  // AVIF_SPEED
  if (const char* threads = std::getenv("NIC_THREADS")) limits.max_threads = std::atoi(threads);
  for (int i = 0; i <= reps; ++i) {  // the first run warms up (and is the cold request)
    const double c0 = cpu_ms();
    const auto t0 = std::chrono::steady_clock::now();
    auto result = nic::transform_image(source, p, choice, limits);
    const auto t1 = std::chrono::steady_clock::now();
    const double c1 = cpu_ms();
    if (!result) {
      std::fprintf(stderr, "%s\n", result.error().message.c_str());
      return 1;
    }
    if (i == 0) cold = std::chrono::duration<double, std::milli>(t1 - t0).count();
    if (i > 0) {
      ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      cpu.push_back(c1 - c0);
    }
    bytes = std::move(result->bytes);
  }
  std::sort(ms.begin(), ms.end());
  std::sort(cpu.begin(), cpu.end());
  write_file(out, bytes);
  for (std::size_t at = 0; !qualities.empty() && at != std::string::npos;) {
    const std::size_t comma = qualities.find(',', at);
    const int q = std::atoi(qualities.substr(at, comma == std::string::npos ? std::string::npos : comma - at).c_str());
    at = comma == std::string::npos ? comma : comma + 1;
    nic::NormalizedParams pq = p;
    pq.q = q;
    auto result = nic::transform_image(source, pq, choice, limits);
    if (!result) return 1;
    write_file(prefix + ".q" + std::to_string(q), result->bytes);
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("cpu=%.1f ms=%.1f median=%.1f bytes=%zu rss_kb=%ld cold=%.1f\n", cpu.empty() ? 0.0 : cpu[cpu.size() / 2],
              ms.empty() ? cold : ms.front(), ms.empty() ? cold : ms[ms.size() / 2], bytes.size(), ru.ru_maxrss, cold);
  return 0;
}

// SSIM (Wang et al. 2004) on the luma of premultiplied RGB, 8x8 windows
// every 4 pixels, the usual constants for 8-bit samples.
double ssim(const fixture::Pixels& a, const fixture::Pixels& b) {
  if (a.w != b.w || a.h != b.h || a.w < 8 || a.h < 8) return 0;
  auto luma = [](const fixture::Pixels& px) {
    std::vector<double> y(static_cast<std::size_t>(px.w) * px.h);
    for (std::size_t i = 0; i < y.size(); ++i) {
      const std::uint8_t* p = &px.p[i * 4];
      y[i] = (0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]) * p[3] / 255.0;
    }
    return y;
  };
  const auto ya = luma(a), yb = luma(b);
  const double c1 = (0.01 * 255) * (0.01 * 255), c2 = (0.03 * 255) * (0.03 * 255);
  double total = 0;
  int windows = 0;
  for (int y0 = 0; y0 + 8 <= a.h; y0 += 4) {
    for (int x0 = 0; x0 + 8 <= a.w; x0 += 4) {
      double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
      for (int y = y0; y < y0 + 8; ++y) {
        for (int x = x0; x < x0 + 8; ++x) {
          const double va = ya[static_cast<std::size_t>(y) * a.w + x], vb = yb[static_cast<std::size_t>(y) * a.w + x];
          sa += va;
          sb += vb;
          saa += va * va;
          sbb += vb * vb;
          sab += va * vb;
        }
      }
      const double n = 64, ma = sa / n, mb = sb / n;
      const double va = saa / n - ma * ma, vb = sbb / n - mb * mb, cov = sab / n - ma * mb;
      total += ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
      ++windows;
    }
  }
  return total / windows;
}

// The same pixels as libspng writes them at zlib level 6 with the adaptive
// filter heuristic (RGB, or RGBA when any pixel is not opaque).
int zlib6(const std::string& path) {
  const fixture::Pixels px = fixture::decode(read_file(path));
  if (px.w == 0) return 2;
  bool alpha = false;
  for (std::size_t i = 3; i < px.p.size(); i += 4) alpha = alpha || px.p[i] != 255;
  std::vector<std::uint8_t> raw;
  for (std::size_t i = 0; i < px.p.size(); i += 4) raw.insert(raw.end(), px.p.begin() + static_cast<long>(i), px.p.begin() + static_cast<long>(i) + (alpha ? 4 : 3));
  spng_ctx* ctx = spng_ctx_new(SPNG_CTX_ENCODER);
  spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
  spng_set_option(ctx, SPNG_IMG_COMPRESSION_LEVEL, 6);
  spng_set_option(ctx, SPNG_FILTER_CHOICE, SPNG_FILTER_CHOICE_ALL);
  spng_ihdr ihdr{};
  ihdr.width = static_cast<std::uint32_t>(px.w);
  ihdr.height = static_cast<std::uint32_t>(px.h);
  ihdr.bit_depth = 8;
  ihdr.color_type = alpha ? SPNG_COLOR_TYPE_TRUECOLOR_ALPHA : SPNG_COLOR_TYPE_TRUECOLOR;
  spng_set_ihdr(ctx, &ihdr);
  std::size_t len = 0;
  if (spng_encode_image(ctx, raw.data(), raw.size(), SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE) == 0) {
    int err = 0;
    std::free(spng_get_png_buffer(ctx, &len, &err));
  }
  spng_ctx_free(ctx);
  std::printf("bytes=%zu\n", len);
  return len > 0 ? 0 : 1;
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
    std::printf("%s psnr=%.3f ssim=%.5f size=%dx%d\n", path.c_str(), fixture::psnr(got, ref), ssim(got, ref), got.w,
                got.h);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "gen" && argc == 3) return gen(argv[2]);
  if (mode == "gen-corpus" && argc == 4) return gen_corpus(argv[2], argv[3]);
  if (mode == "zlib6" && argc == 3) return zlib6(argv[2]);
  if (mode == "run" && (argc == 7 || argc == 9)) {
    return run(argv[2], argv[3], std::atoi(argv[4]), std::atoi(argv[5]), argv[6], argc == 9 ? argv[7] : "",
               argc == 9 ? argv[8] : "");
  }
  if (mode == "score" && argc >= 4) return score(argv[2], std::vector<std::string>(argv + 3, argv + argc));
  std::fputs("usage: nic_bench gen DIR | gen-corpus DIR PHOTO | run IN FMT WIDTH REPS OUT [QS PREFIX] | score SOURCE OUT... | zlib6 IN\n",
             stderr);
  return 2;
}
