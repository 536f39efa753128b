// Fit geometry with Sharp's fit semantics, except that NO mode enlarges.
//
// Enlargement policy (a CDN decision, documented in the README): Sharp
// upscales for cover/contain/fill/outside. Here a source smaller than the
// requested box is never upscaled: the box itself is shrunk uniformly until
// the mode needs no enlargement, so cover/contain/fill still return the
// requested ASPECT RATIO (layouts stay intact) at the largest size the source
// supports, and outside/inside return the source at its own size. Upscaling
// adds bytes but no detail (the browser scales up for free), and width
// normalisation snaps widths UP, so Sharp's rule would upscale often.
//
// The crop is expressed in source coordinates (crop first, then resize), which
// is what Sharp's "resize to cover, then centre-crop" amounts to, minus the
// work on pixels that are thrown away.
#include "nic/geometry.h"

#include <algorithm>
#include <cstdint>
#include <string>

namespace nic {
namespace {

using i64 = std::int64_t;

// round(a * b / c) for positive values, at least 1.
int scale_round(i64 a, i64 b, i64 c) {
  const i64 v = (2 * a * b + c) / (2 * c);
  return static_cast<int>(std::max<i64>(1, v));
}

// The largest centred rectangle of aspect box_w:box_h inside src_w x src_h.
Rect centre_crop(int src_w, int src_h, int box_w, int box_h) {
  Rect r{0, 0, src_w, src_h};
  // Compare src_w/src_h with box_w/box_h without division.
  const i64 lhs = static_cast<i64>(src_w) * box_h;
  const i64 rhs = static_cast<i64>(box_w) * src_h;
  if (lhs > rhs) {  // source is wider: crop the width
    r.w = std::min(src_w, scale_round(src_h, box_w, box_h));
    r.x = (src_w - r.w) / 2;
  } else if (lhs < rhs) {  // source is taller: crop the height
    r.h = std::min(src_h, scale_round(src_w, box_h, box_w));
    r.y = (src_h - r.h) / 2;
  }
  return r;
}

Geometry plain(int src_w, int src_h, int out_w, int out_h) {
  Geometry g;
  g.crop = Rect{0, 0, src_w, src_h};
  g.resize_w = g.canvas_w = out_w;
  g.resize_h = g.canvas_h = out_h;
  return g;
}

}  // namespace

Result<Geometry> compute_geometry(int src_w, int src_h, std::optional<int> w, std::optional<int> h,
                                  Fit fit) {
  if (src_w < 1 || src_h < 1) {
    return make_error(ErrorCode::InvalidParam, "source dimensions must be positive");
  }
  if ((w && *w < 1) || (h && *h < 1)) {
    return make_error(ErrorCode::InvalidParam, "w and h must be positive");
  }

  // No target: the source as it is.
  if (!w && !h) return plain(src_w, src_h, src_w, src_h);

  // One dimension: the other follows the aspect ratio; every fit mode agrees.
  if (!w || !h) {
    if (w) {
      if (*w >= src_w) return plain(src_w, src_h, src_w, src_h);
      return plain(src_w, src_h, *w, scale_round(src_h, *w, src_w));
    }
    if (*h >= src_h) return plain(src_w, src_h, src_w, src_h);
    return plain(src_w, src_h, scale_round(src_w, *h, src_h), *h);
  }

  const int bw = *w;
  const int bh = *h;
  // Which axis limits: compare bw/src_w with bh/src_h without division.
  const i64 sx_num = static_cast<i64>(bw) * src_h;  // sx = bw/src_w ~ sx_num
  const i64 sy_num = static_cast<i64>(bh) * src_w;  // sy = bh/src_h ~ sy_num
  const bool x_limits = sx_num <= sy_num;           // sx <= sy

  switch (fit) {
    case Fit::Inside:
    case Fit::Outside: {
      // inside scales by min(sx, sy), outside by max(sx, sy); never above 1.
      const bool by_width = (fit == Fit::Inside) ? x_limits : !x_limits;
      if (by_width) {
        if (bw >= src_w) return plain(src_w, src_h, src_w, src_h);
        return plain(src_w, src_h, bw, scale_round(src_h, bw, src_w));
      }
      if (bh >= src_h) return plain(src_w, src_h, src_w, src_h);
      return plain(src_w, src_h, scale_round(src_w, bh, src_h), bh);
    }

    case Fit::Cover: {
      // Cover scales by max(sx, sy). Above 1, shrink the box by that factor
      // instead: the output keeps the box's aspect and needs no upscaling.
      int ow = bw;
      int oh = bh;
      const bool needs_enlarge = x_limits ? (bh > src_h) : (bw > src_w);
      if (needs_enlarge) {
        if (x_limits) {  // max scale is sy = bh/src_h
          ow = std::min(src_w, scale_round(bw, src_h, bh));
          oh = src_h;
        } else {  // max scale is sx = bw/src_w
          ow = src_w;
          oh = std::min(src_h, scale_round(bh, src_w, bw));
        }
      }
      Geometry g;
      g.crop = centre_crop(src_w, src_h, ow, oh);
      g.resize_w = g.canvas_w = ow;
      g.resize_h = g.canvas_h = oh;
      return g;
    }

    case Fit::Contain: {
      // Contain scales by min(sx, sy) and letterboxes onto the box. Above 1,
      // shrink the box so the image keeps its own size.
      int cw = bw;
      int ch = bh;
      int rw = 0;
      int rh = 0;
      if (x_limits) {
        if (bw > src_w) {
          cw = src_w;
          ch = std::max(src_h, scale_round(bh, src_w, bw));
          rw = src_w;
          rh = src_h;
        } else {
          rw = bw;
          rh = std::min(bh, scale_round(src_h, bw, src_w));
        }
      } else {
        if (bh > src_h) {
          ch = src_h;
          cw = std::max(src_w, scale_round(bw, src_h, bh));
          rw = src_w;
          rh = src_h;
        } else {
          rh = bh;
          rw = std::min(bw, scale_round(src_w, bh, src_h));
        }
      }
      Geometry g;
      g.crop = Rect{0, 0, src_w, src_h};
      g.resize_w = rw;
      g.resize_h = rh;
      g.canvas_w = cw;
      g.canvas_h = ch;
      g.offset_x = (cw - rw) / 2;
      g.offset_y = (ch - rh) / 2;
      return g;
    }

    case Fit::Fill: {
      // Fill stretches each axis; shrink the box by max(sx, sy) when above 1.
      int ow = bw;
      int oh = bh;
      if (bw > src_w || bh > src_h) {
        if (x_limits) {  // sy is the larger factor
          ow = scale_round(bw, src_h, bh);
          oh = src_h;
        } else {
          ow = src_w;
          oh = scale_round(bh, src_w, bw);
        }
        ow = std::min(ow, src_w);
        oh = std::min(oh, src_h);
      }
      return plain(src_w, src_h, ow, oh);
    }
  }
  return make_error(ErrorCode::InvalidParam, "unknown fit mode");
}

}  // namespace nic
