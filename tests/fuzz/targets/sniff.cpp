// Format sniffing and header probing of any bytes (what the origin does to a
// download before it stores it): never more than a header is read, and the
// pixel limit holds.
#include <span>

#include "../fuzz_support.h"
#include "nic/format.h"
#include "transform.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  const auto format = nic::sniff_format(bytes);
  const nic::TransformLimits limits{1u << 20, nic::kMaxDimension};
  auto info = nic::probe_image(bytes, limits);
  if (!format) {
    NIC_FUZZ_CHECK(!info && info.error().code == nic::ErrorCode::UnsupportedFormat);
    return 0;
  }
  if (!info) return 0;
  NIC_FUZZ_CHECK(info->format == *format);
  if (*format != nic::ImageFormat::Svg) {
    NIC_FUZZ_CHECK(info->width >= 1 && info->height >= 1);
    NIC_FUZZ_CHECK(static_cast<std::uint64_t>(info->width) * static_cast<std::uint64_t>(info->height) <=
                   limits.max_input_pixels);
  }
  return 0;
}
