// The signature check: verifying attacker-chosen path/query pairs, and
// signing then verifying (which must always pass). Input: "SECRET\nPATH\nQUERY".
#include <string>

#include "../fuzz_support.h"
#include "nic/signature.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  nic_fuzz::Fields in(data, size);
  std::string_view secret = in.next();
  const std::string_view path = in.next();
  const std::string_view query = in.rest();
  if (secret.empty()) secret = "k";

  auto s = nic::verify_signature(secret, path, query);
  if (!s) NIC_FUZZ_CHECK(s.error().code == nic::ErrorCode::InvalidSignature);

  // A URL we signed verifies, whatever else its query holds.
  const std::string signed_url = nic::sign_url(secret, path, query);
  NIC_FUZZ_CHECK(signed_url.starts_with(path));
  const auto q = signed_url.find('?', path.size());
  NIC_FUZZ_CHECK(q == path.size());
  const std::string_view signed_query = std::string_view(signed_url).substr(q + 1);
  NIC_FUZZ_CHECK(nic::verify_signature(secret, path, signed_query).ok());
  // ... and not under another secret.
  const std::string other = std::string(secret) + "x";
  NIC_FUZZ_CHECK(!nic::verify_signature(other, path, signed_query).ok());
  return 0;
}
