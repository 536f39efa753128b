// Accept negotiation: q-values parsed from hostile headers.
#include "../fuzz_support.h"
#include "nic/negotiate.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view accept(reinterpret_cast<const char*>(data), size);
  const auto q = nic::accept_q(accept);
  NIC_FUZZ_CHECK(q.avif >= 0 && q.avif <= 1000);
  NIC_FUZZ_CHECK(q.webp >= 0 && q.webp <= 1000);
  const auto choice = nic::negotiate(nic::RequestedFormat::Auto, accept);
  NIC_FUZZ_CHECK(choice.negotiated);
  if (choice.target == nic::TargetFormat::Avif) NIC_FUZZ_CHECK(q.avif > 0 && q.avif >= q.webp);
  if (choice.target == nic::TargetFormat::Webp) NIC_FUZZ_CHECK(q.webp > 0);
  NIC_FUZZ_CHECK(!nic::key_token(choice).empty());
  return 0;
}
