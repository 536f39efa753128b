// Strict percent-decoding, canonical encoding and query splitting.
#include <string>

#include "../fuzz_support.h"
#include "nic/percent.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (bool plus : {false, true}) {
    auto decoded = nic::percent_decode(text, nic::ErrorCode::InvalidPath, plus);
    if (decoded) {
      NIC_FUZZ_CHECK(decoded->size() <= text.size());
    } else {
      NIC_FUZZ_CHECK(decoded.error().code == nic::ErrorCode::InvalidPath);
    }
  }
  // encode is canonical and decode reverses it exactly, for any bytes.
  const std::string encoded = nic::percent_encode(text);
  for (char c : encoded) NIC_FUZZ_CHECK(c > 0x20 && c < 0x7f && c != '+' && c != '/');
  auto back = nic::percent_decode(encoded, nic::ErrorCode::InvalidParam, true);
  NIC_FUZZ_CHECK(back && *back == text);
  NIC_FUZZ_CHECK(nic::percent_encode(*back) == encoded);

  std::size_t total = 0;
  for (const auto& p : nic::split_query(text)) {
    NIC_FUZZ_CHECK(p.name.data() >= text.data() && p.name.data() + p.name.size() <= text.data() + text.size());
    total += p.name.size() + p.value.size();
  }
  NIC_FUZZ_CHECK(total <= text.size());
  return 0;
}
