// Fit geometry: for a source size and the normalised w/h/fit, which part of
// the source is used, what size it is resized to, and the output canvas.
// Sharp's semantics; `inside` never enlarges.
#pragma once

#include <optional>

#include "nic/error.h"
#include "nic/params.h"

namespace nic {

struct Rect {
  int x = 0;
  int y = 0;
  int w = 0;
  int h = 0;
};

struct Geometry {
  Rect crop;             // region of the (orientation-corrected) source to use
  int resize_w = 0;      // the crop is scaled to resize_w x resize_h
  int resize_h = 0;
  int canvas_w = 0;      // final output size (contain letterboxes into it)
  int canvas_h = 0;
  int offset_x = 0;      // where the resized image sits on the canvas
  int offset_y = 0;
};

// src_w/src_h >= 1. Errors only for impossible input (INVALID_PARAM).
Result<Geometry> compute_geometry(int src_w, int src_h, std::optional<int> w, std::optional<int> h,
                                  Fit fit);

}  // namespace nic
