// Fit geometry: Sharp's fit semantics, without enlargement (see geometry.cpp).
// Built natively and for wasm32-wasi (no exceptions).
#include "nic/geometry.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <optional>
#include <vector>

namespace {

using nic::Fit;

struct Case {
  const char* name;
  int src_w, src_h;
  std::optional<int> w, h;
  Fit fit;
  // expected
  nic::Rect crop;
  int resize_w, resize_h;
  int canvas_w, canvas_h;
  int offset_x, offset_y;
};

void check(const Case& c) {
  INFO(c.name);
  const auto g = nic::compute_geometry(c.src_w, c.src_h, c.w, c.h, c.fit);
  REQUIRE(g.ok());
  CHECK(g->crop.x == c.crop.x);
  CHECK(g->crop.y == c.crop.y);
  CHECK(g->crop.w == c.crop.w);
  CHECK(g->crop.h == c.crop.h);
  CHECK(g->resize_w == c.resize_w);
  CHECK(g->resize_h == c.resize_h);
  CHECK(g->canvas_w == c.canvas_w);
  CHECK(g->canvas_h == c.canvas_h);
  CHECK(g->offset_x == c.offset_x);
  CHECK(g->offset_y == c.offset_y);
}

const std::optional<int> none;

}  // namespace

TEST_CASE("compute_geometry: downscaling follows Sharp's fit modes", "[geometry]") {
  const std::vector<Case> cases = {
      // name, src, w, h, fit, crop, resize, canvas, offset
      {"no target keeps the source", 3000, 2000, none, none, Fit::Cover, {0, 0, 3000, 2000}, 3000, 2000, 3000, 2000, 0, 0},
      {"width only", 3000, 2000, 800, none, Fit::Inside, {0, 0, 3000, 2000}, 800, 533, 800, 533, 0, 0},
      {"height only", 3000, 2000, none, 500, Fit::Inside, {0, 0, 3000, 2000}, 750, 500, 750, 500, 0, 0},
      {"width only, cover is the same", 3000, 2000, 800, none, Fit::Cover, {0, 0, 3000, 2000}, 800, 533, 800, 533, 0, 0},
      {"width only, contain is the same", 3000, 2000, 800, none, Fit::Contain, {0, 0, 3000, 2000}, 800, 533, 800, 533, 0, 0},
      {"width only rounds to nearest", 1001, 333, 500, none, Fit::Fill, {0, 0, 1001, 333}, 500, 166, 500, 166, 0, 0},
      {"inside, width limits", 3000, 2000, 800, 800, Fit::Inside, {0, 0, 3000, 2000}, 800, 533, 800, 533, 0, 0},
      {"inside, height limits", 2000, 3000, 800, 800, Fit::Inside, {0, 0, 2000, 3000}, 533, 800, 533, 800, 0, 0},
      {"outside, covers both", 3000, 2000, 800, 800, Fit::Outside, {0, 0, 3000, 2000}, 1200, 800, 1200, 800, 0, 0},
      {"outside, portrait", 2000, 3000, 800, 800, Fit::Outside, {0, 0, 2000, 3000}, 800, 1200, 800, 1200, 0, 0},
      {"cover crops the width of a wide source", 3000, 2000, 800, 800, Fit::Cover, {500, 0, 2000, 2000}, 800, 800, 800, 800, 0, 0},
      {"cover crops the height of a tall source", 2000, 3000, 800, 400, Fit::Cover, {0, 1000, 2000, 1000}, 800, 400, 800, 400, 0, 0},
      {"cover with the same aspect crops nothing", 3000, 2000, 300, 200, Fit::Cover, {0, 0, 3000, 2000}, 300, 200, 300, 200, 0, 0},
      {"contain letterboxes top and bottom", 3000, 2000, 800, 800, Fit::Contain, {0, 0, 3000, 2000}, 800, 533, 800, 800, 0, 133},
      {"contain pillarboxes left and right", 2000, 3000, 800, 800, Fit::Contain, {0, 0, 2000, 3000}, 533, 800, 800, 800, 133, 0},
      {"fill stretches", 3000, 2000, 800, 800, Fit::Fill, {0, 0, 3000, 2000}, 800, 800, 800, 800, 0, 0},
      {"tiny result is at least one pixel", 10000, 10, 100, none, Fit::Inside, {0, 0, 10000, 10}, 100, 1, 100, 1, 0, 0},
      {"one-pixel source", 1, 1, 64, 64, Fit::Cover, {0, 0, 1, 1}, 1, 1, 1, 1, 0, 0},
  };
  for (const auto& c : cases) {
    SECTION(c.name) { check(c); }
  }
}

TEST_CASE("compute_geometry: no fit mode enlarges", "[geometry]") {
  const std::vector<Case> cases = {
      {"inside keeps a small source", 600, 400, 1024, 1024, Fit::Inside, {0, 0, 600, 400}, 600, 400, 600, 400, 0, 0},
      {"width only keeps a small source", 600, 400, 640, none, Fit::Inside, {0, 0, 600, 400}, 600, 400, 600, 400, 0, 0},
      {"height only keeps a small source", 600, 400, none, 401, Fit::Cover, {0, 0, 600, 400}, 600, 400, 600, 400, 0, 0},
      {"outside keeps a small source", 600, 400, 640, 640, Fit::Outside, {0, 0, 600, 400}, 600, 400, 600, 400, 0, 0},
      {"outside that would enlarge one axis keeps the source", 600, 400, 500, 500, Fit::Outside, {0, 0, 600, 400}, 600, 400, 600, 400, 0, 0},
      // cover 640x640 of 600x400 would scale by 1.6; the box shrinks to 400x400 instead.
      {"cover keeps the box aspect", 600, 400, 640, 640, Fit::Cover, {100, 0, 400, 400}, 400, 400, 400, 400, 0, 0},
      {"cover, one axis too big", 600, 400, 300, 500, Fit::Cover, {180, 0, 240, 400}, 240, 400, 240, 400, 0, 0},
      {"cover, tall source", 400, 600, 800, 200, Fit::Cover, {0, 250, 400, 100}, 400, 100, 400, 100, 0, 0},
      // contain 640x640 of 600x400 would scale by 1.0667; the box becomes 600x600.
      {"contain keeps the box aspect", 600, 400, 640, 640, Fit::Contain, {0, 0, 600, 400}, 600, 400, 600, 600, 0, 100},
      {"contain, tall source", 400, 600, 1280, 640, Fit::Contain, {0, 0, 400, 600}, 400, 600, 1200, 600, 400, 0},
      {"contain that fits downscales", 600, 400, 300, 400, Fit::Contain, {0, 0, 600, 400}, 300, 200, 300, 400, 0, 100},
      {"fill keeps the box aspect", 600, 400, 640, 640, Fit::Fill, {0, 0, 600, 400}, 400, 400, 400, 400, 0, 0},
      {"fill, one axis too big", 600, 400, 300, 800, Fit::Fill, {0, 0, 600, 400}, 150, 400, 150, 400, 0, 0},
      {"exact size is not a resize", 600, 400, 600, 400, Fit::Fill, {0, 0, 600, 400}, 600, 400, 600, 400, 0, 0},
  };
  for (const auto& c : cases) {
    SECTION(c.name) { check(c); }
  }
}

// The first broken invariant for one input, or nullptr.
static const char* violated(int sw, int sh, int bw, int bh, Fit fit) {
  const auto g = nic::compute_geometry(sw, sh, bw, bh, fit);
  if (!g.ok()) return "returned an error";
  if (g->resize_w < 1 || g->resize_h < 1) return "empty output";
  if (g->resize_w > g->crop.w || g->resize_h > g->crop.h) return "enlarges";
  if (g->crop.x < 0 || g->crop.y < 0 || g->crop.x + g->crop.w > sw || g->crop.y + g->crop.h > sh)
    return "crop outside the source";
  if (g->offset_x < 0 || g->offset_y < 0 || g->offset_x + g->resize_w > g->canvas_w ||
      g->offset_y + g->resize_h > g->canvas_h)
    return "image outside the canvas";
  if (fit != Fit::Outside && (g->canvas_w > bw || g->canvas_h > bh)) return "canvas exceeds the box";
  if (fit != Fit::Contain && (g->offset_x != 0 || g->offset_y != 0 || g->canvas_w != g->resize_w ||
                              g->canvas_h != g->resize_h))
    return "canvas differs from the image without contain";
  if (fit == Fit::Cover || fit == Fit::Fill || fit == Fit::Contain) {
    // The box's aspect ratio survives even when the box is shrunk; rounding
    // one side moves the ratio by at most 1/(shorter side).
    const double want = static_cast<double>(bw) / bh;
    const double got = static_cast<double>(g->canvas_w) / g->canvas_h;
    const int shorter = std::min(g->canvas_w, g->canvas_h);
    if (shorter > 1 && std::abs(got / want - 1.0) > 1.0 / shorter + 1e-9) return "aspect lost";
    if (bw <= sw && bh <= sh && (g->canvas_w != bw || g->canvas_h != bh))
      return "not the exact box although no enlargement was needed";
  }
  if (fit == Fit::Inside || fit == Fit::Outside) {
    const double want = static_cast<double>(sw) / sh;
    const double got = static_cast<double>(g->resize_w) / g->resize_h;
    const int shorter = std::min(g->resize_w, g->resize_h);
    if (shorter > 1 && std::abs(got / want - 1.0) > 1.0 / shorter + 1e-9) return "source aspect lost";
  }
  return nullptr;
}

TEST_CASE("compute_geometry: invariants hold over many sizes", "[geometry]") {
  const int sizes[] = {1, 2, 3, 7, 31, 100, 333, 640, 1999, 8192};
  const Fit fits[] = {Fit::Cover, Fit::Contain, Fit::Fill, Fit::Inside, Fit::Outside};
  int checked = 0;
  for (int sw : sizes) {
    for (int sh : sizes) {
      for (int bw : sizes) {
        for (int bh : sizes) {
          for (Fit fit : fits) {
            if (const char* what = violated(sw, sh, bw, bh, fit)) {
              INFO("src " << sw << "x" << sh << " box " << bw << "x" << bh << " fit "
                          << static_cast<int>(fit));
              FAIL(what);
            }
            ++checked;
          }
        }
      }
    }
  }
  CHECK(checked == 10 * 10 * 10 * 10 * 5);
}

TEST_CASE("compute_geometry: impossible input is INVALID_PARAM", "[geometry]") {
  struct Bad {
    const char* name;
    int sw, sh;
    std::optional<int> w, h;
  };
  const std::vector<Bad> cases = {
      {"zero source width", 0, 10, 5, 5},
      {"negative source height", 10, -1, 5, 5},
      {"zero target width", 10, 10, 0, 5},
      {"negative target height", 10, 10, none, -3},
  };
  for (const auto& c : cases) {
    SECTION(c.name) {
      const auto g = nic::compute_geometry(c.sw, c.sh, c.w, c.h, Fit::Inside);
      REQUIRE_FALSE(g.ok());
      CHECK(g.error().code == nic::ErrorCode::InvalidParam);
    }
  }
}
