// PNG through the engine's entry points. The seeds (corpus/png_spng) are the
// files the fast path hands to libspng: 16-bit, 1/2/4-bit, Adam7, colour-key
// tRNS; png_fast's seeds are the ones it decodes itself.
#include "../fuzz_decode.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return nic_fuzz::fuzz_decode(nic::ImageFormat::Png, data, size);
}
