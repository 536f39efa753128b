// EXIF orientation: the one tag the engine reads (0x0112 in IFD0). All other
// metadata is dropped; outputs carry none.
#include <cstring>

#include "image.h"

namespace nic::detail {

int exif_orientation(Bytes exif) {
  const std::uint8_t* p = exif.data();
  std::size_t n = exif.size();
  if (n >= 6 && std::memcmp(p, "Exif\0\0", 6) == 0) {
    p += 6;
    n -= 6;
  }
  if (n < 8) return 1;
  bool little;
  if (p[0] == 'I' && p[1] == 'I') {
    little = true;
  } else if (p[0] == 'M' && p[1] == 'M') {
    little = false;
  } else {
    return 1;
  }
  auto u16 = [&](std::size_t at) -> unsigned {
    return little ? (p[at] | (p[at + 1] << 8)) : ((p[at] << 8) | p[at + 1]);
  };
  auto u32 = [&](std::size_t at) -> std::uint32_t {
    return little ? (static_cast<std::uint32_t>(u16(at)) | (static_cast<std::uint32_t>(u16(at + 2)) << 16))
                  : ((static_cast<std::uint32_t>(u16(at)) << 16) | u16(at + 2));
  };
  if (u16(2) != 42) return 1;
  const std::uint32_t ifd = u32(4);
  if (ifd > n || n - ifd < 2) return 1;
  const unsigned entries = u16(ifd);
  for (unsigned i = 0; i < entries; ++i) {
    const std::size_t e = ifd + 2 + static_cast<std::size_t>(i) * 12;
    if (e + 12 > n) return 1;
    if (u16(e) != 0x0112) continue;
    const unsigned type = u16(e + 2);
    if (type != 3 || u32(e + 4) < 1) return 1;  // SHORT, count >= 1
    const unsigned v = u16(e + 8);
    return (v >= 1 && v <= 8) ? static_cast<int>(v) : 1;
  }
  return 1;
}

}  // namespace nic::detail
