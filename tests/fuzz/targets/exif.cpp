// The EXIF reader (orientation tag of IFD0), as JPEG APP1 and PNG eXIf give it.
#include "../fuzz_support.h"
#include "image.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const int o = nic::detail::exif_orientation(nic::detail::Bytes(data, size));
  NIC_FUZZ_CHECK(o >= 1 && o <= 8);
  return 0;
}
