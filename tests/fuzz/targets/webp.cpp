// The webp decoder path of the transform engine (see fuzz_decode.h).
#include "../fuzz_decode.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return nic_fuzz::fuzz_decode(nic::ImageFormat::Webp, data, size);
}
