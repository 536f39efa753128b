// A PNG decode path of our own for the common case (8-bit, not interlaced;
// grey, grey+alpha, RGB, RGBA, palette with or without tRNS): every chunk's
// CRC checked, the IDAT chunks inflated at once with libdeflate into a buffer
// of the size the header promises, the rows unfiltered in place and handed to
// the sink as RGBA. Everything else (16-bit, sub-byte depths, Adam7, a grey or
// RGB colour key, unknown critical chunks, ancillary chunks with a bad CRC)
// goes to libspng, which decides.
#pragma once

#include "image.h"

namespace nic::detail {

enum class FastPng {
  Decoded,      // the sink has every row it asked for
  NotHandled,   // nothing was sent to the sink: decode with libspng
};

// CORRUPT_IMAGE (or TOO_MANY_PIXELS) when the file is broken in a way any
// decoder would refuse: a bad CRC on IHDR, PLTE or IDAT, a chunk running past
// the end, a zlib stream that is corrupt or shorter than the image, or a row
// with a filter type above 4. Nothing is sent to the sink before the whole
// image has been inflated and checked.
Result<FastPng> decode_png_fast(Bytes data, RowSink& sink);

// Reverses a PNG row filter in place: `row` holds `bytes` filtered bytes,
// `prev` the previous unfiltered row (zeros for the first), `bpp` 1..4 bytes
// per pixel. Returns false for a filter type above 4.
bool png_unfilter(std::uint8_t filter, std::uint8_t* row, const std::uint8_t* prev, std::size_t bytes,
                  int bpp);

}  // namespace nic::detail
