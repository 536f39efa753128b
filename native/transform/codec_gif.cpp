// GIF: the header and frame count by walking the block structure (no LZW
// decoding), the first frame through giflib.
#include <cstring>
#include <memory>
#include <string>

#include <gif_lib.h>

#include "image.h"

namespace nic::detail {
namespace {

struct GifDeleter {
  void operator()(GifFileType* g) const {
    int err = 0;
    DGifCloseFile(g, &err);
  }
};
using GifPtr = std::unique_ptr<GifFileType, GifDeleter>;

struct MemoryReader {
  Bytes data;
  std::size_t pos = 0;
};

int read_memory(GifFileType* gif, GifByteType* out, int n) {
  auto* r = static_cast<MemoryReader*>(gif->UserData);
  if (n <= 0) return 0;
  const std::size_t left = r->data.size() - r->pos;
  const std::size_t take = static_cast<std::size_t>(n) < left ? static_cast<std::size_t>(n) : left;
  std::memcpy(out, r->data.data() + r->pos, take);
  r->pos += take;
  return static_cast<int>(take);
}

// What the block walk finds.
struct GifLayout {
  int width = 0;
  int height = 0;
  int frames = 0;
  bool transparency = false;  // the first frame's graphic control has a transparent index
  bool partial_first = false;  // the first frame does not cover the canvas
};

// Walks header, extensions and image descriptors, skipping data sub-blocks.
// Stops after the second frame (enough to call it animated).
Result<GifLayout> walk(Bytes d) {
  GifLayout g;
  if (d.size() < 13) return corrupt("GIF: truncated header");
  g.width = d[6] | (d[7] << 8);
  g.height = d[8] | (d[9] << 8);
  std::size_t pos = 13;
  if (d[10] & 0x80) pos += 3u * (1u << ((d[10] & 7) + 1));
  bool pending_transparency = false;
  auto skip_sub_blocks = [&]() -> bool {
    while (pos < d.size()) {
      const std::size_t len = d[pos];
      pos += 1 + len;
      if (len == 0) return true;
    }
    return false;
  };
  while (true) {
    if (pos >= d.size()) return corrupt("GIF: data ended early");
    const std::uint8_t kind = d[pos++];
    if (kind == 0x3B) break;  // trailer
    if (kind == 0x21) {       // extension
      if (pos >= d.size()) return corrupt("GIF: data ended early");
      const std::uint8_t label = d[pos++];
      if (label == 0xF9 && pos + 5 <= d.size() && d[pos] >= 4) {
        pending_transparency = (d[pos + 1] & 1) != 0;
      }
      if (!skip_sub_blocks()) return corrupt("GIF: data ended early");
      continue;
    }
    if (kind != 0x2C) return corrupt("GIF: unknown block");
    if (pos + 9 > d.size()) return corrupt("GIF: data ended early");
    const int left = d[pos] | (d[pos + 1] << 8);
    const int top = d[pos + 2] | (d[pos + 3] << 8);
    const int fw = d[pos + 4] | (d[pos + 5] << 8);
    const int fh = d[pos + 6] | (d[pos + 7] << 8);
    const std::uint8_t flags = d[pos + 8];
    pos += 9;
    if (flags & 0x80) pos += 3u * (1u << ((flags & 7) + 1));
    pos += 1;  // LZW minimum code size
    if (pos > d.size() || !skip_sub_blocks()) return corrupt("GIF: data ended early");
    if (++g.frames == 1) {
      g.transparency = pending_transparency;
      g.partial_first = left > 0 || top > 0 || fw < g.width || fh < g.height;
    } else {
      break;
    }
    pending_transparency = false;
  }
  if (g.frames == 0) return corrupt("GIF: no image");
  return g;
}

}  // namespace

Result<Header> probe_gif(Bytes data) {
  auto layout = walk(data);
  if (!layout) return layout.take_error();
  if (layout->width < 1 || layout->height < 1) return corrupt("GIF: empty canvas");
  Header h;
  h.format = ImageFormat::Gif;
  h.width = layout->width;
  h.height = layout->height;
  h.alpha = layout->transparency || layout->partial_first;
  h.animated = layout->frames > 1;
  return h;
}

Status decode_gif(Bytes data, RowSink& sink) {
  auto layout = walk(data);
  if (!layout) return layout.take_error();
  MemoryReader reader{data, 0};
  int err = 0;
  GifPtr gif(DGifOpen(&reader, read_memory, &err));
  if (!gif) return corrupt(std::string("GIF: ") + GifErrorString(err));
  const int sw = gif->SWidth;
  const int sh = gif->SHeight;
  auto canvas = make_image(sw, sh, true);  // transparent where no frame pixel lands
  if (!canvas) return canvas.take_error();

  int transparent = -1;
  bool done = false;
  while (!done) {
    GifRecordType type;
    if (DGifGetRecordType(gif.get(), &type) == GIF_ERROR) return corrupt("GIF: unreadable record");
    switch (type) {
      case EXTENSION_RECORD_TYPE: {
        int code = 0;
        GifByteType* ext = nullptr;
        if (DGifGetExtension(gif.get(), &code, &ext) == GIF_ERROR) return corrupt("GIF: bad extension");
        if (code == GRAPHICS_EXT_FUNC_CODE && ext != nullptr && ext[0] >= 4 && (ext[1] & 1)) {
          transparent = ext[4];
        }
        while (ext != nullptr) {
          if (DGifGetExtensionNext(gif.get(), &ext) == GIF_ERROR) return corrupt("GIF: bad extension");
        }
        break;
      }
      case IMAGE_DESC_RECORD_TYPE: {
        if (DGifGetImageDesc(gif.get()) == GIF_ERROR) return corrupt("GIF: bad image descriptor");
        const GifImageDesc& desc = gif->Image;
        const ColorMapObject* map = desc.ColorMap ? desc.ColorMap : gif->SColorMap;
        if (map == nullptr || desc.Width < 1 || desc.Height < 1) return corrupt("GIF: no colour map");
        std::vector<GifByteType> line(static_cast<std::size_t>(desc.Width));
        // Interlaced rows arrive in four passes.
        static constexpr int kStart[4] = {0, 4, 2, 1};
        static constexpr int kStep[4] = {8, 8, 4, 2};
        const int passes = desc.Interlace ? 4 : 1;
        for (int p = 0; p < passes; ++p) {
          const int start = desc.Interlace ? kStart[p] : 0;
          const int step = desc.Interlace ? kStep[p] : 1;
          for (int fy = start; fy < desc.Height; fy += step) {
            if (DGifGetLine(gif.get(), line.data(), desc.Width) == GIF_ERROR) {
              return corrupt("GIF: image data ended early");
            }
            const int y = desc.Top + fy;
            if (y < 0 || y >= sh) continue;
            std::uint8_t* out = canvas->row(y);
            for (int fx = 0; fx < desc.Width; ++fx) {
              const int x = desc.Left + fx;
              if (x < 0 || x >= sw) continue;
              const int index = line[static_cast<std::size_t>(fx)];
              if (index == transparent || index >= map->ColorCount) continue;
              const GifColorType& c = map->Colors[index];
              std::uint8_t* px = out + static_cast<std::size_t>(x) * 4;
              px[0] = c.Red;
              px[1] = c.Green;
              px[2] = c.Blue;
              px[3] = 255;
            }
          }
        }
        done = true;  // the first frame is all a still output uses
        break;
      }
      case TERMINATE_RECORD_TYPE: return corrupt("GIF: no image");
      default: break;
    }
  }
  const bool alpha = layout->transparency || layout->partial_first;
  if (auto s = sink.begin(sw, sh, alpha); !s) return s;
  for (int y = 0; y < sh; ++y) {
    if (!sink.row(canvas->row(y))) break;
  }
  return Ok{};
}

}  // namespace nic::detail
