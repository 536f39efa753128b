// The engine's own PNG decoder (png_fast.cpp), called directly with a sink
// that checks what it is given against the header, then the whole PNG path
// through the engine's entry points. Seeds: 8-bit, not interlaced.
#include <vector>

#include "../fuzz_decode.h"
#include "image.h"
#include "png_fast.h"

namespace {

class CheckingSink : public nic::detail::RowSink {
 public:
  nic::Status begin(int width, int height, bool) override {
    NIC_FUZZ_CHECK(!begun_);
    begun_ = true;
    NIC_FUZZ_CHECK(width >= 1 && height >= 1);
    width_ = width;
    height_ = height;
    return nic::Ok{};
  }
  bool row(const std::uint8_t* rgba) override {
    NIC_FUZZ_CHECK(begun_ && rows_ < height_);
    // Touch every byte of the row: ASan reports a short buffer here.
    unsigned sum = 0;
    for (int i = 0; i < width_ * 4; ++i) sum += rgba[i];
    checksum_ += sum;
    ++rows_;
    return true;
  }
  bool begun_ = false;
  int width_ = 0;
  int height_ = 0;
  int rows_ = 0;
  unsigned checksum_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  const auto format = nic::sniff_format(bytes);
  if (!format || *format != nic::ImageFormat::Png) return -1;
  auto header = nic::detail::probe_png(bytes);
  if (header && static_cast<std::uint64_t>(header->width) * static_cast<std::uint64_t>(header->height) <=
                    nic_fuzz::kFuzzMaxPixels) {
    CheckingSink sink;
    auto fast = nic::detail::decode_png_fast(bytes, sink);
    if (fast && *fast == nic::detail::FastPng::Decoded) {
      NIC_FUZZ_CHECK(sink.width_ == header->width && sink.height_ == header->height);
      NIC_FUZZ_CHECK(sink.rows_ == sink.height_);
    } else if (fast) {
      NIC_FUZZ_CHECK(!sink.begun_);  // NotHandled sends nothing
    }
  }
  return nic_fuzz::fuzz_decode(nic::ImageFormat::Png, data, size);
}
