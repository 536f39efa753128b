// Upstream URL parsing and the address policy behind PRIVATE_HOST: the
// parser never accepts what the allow list cannot judge, and every IP
// literal gets a private/public answer without crashing.
#include <string>

#include "../fuzz_support.h"
#include "nic/allowed_hosts.h"
#include "nic/url.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)nic::is_private_address(text);
  (void)nic::is_ip_literal(text);
  (void)nic::parse_allowed_hosts(text);

  auto url = nic::parse_url(text);
  if (!url) return 0;
  NIC_FUZZ_CHECK(url->scheme == "http" || url->scheme == "https");
  NIC_FUZZ_CHECK(!url->host.empty() && url->port != 0);
  NIC_FUZZ_CHECK(url->path.starts_with("/"));
  for (char c : url->host) NIC_FUZZ_CHECK(c != '@' && c != '/' && c != '\\' && c != '%');
  static const auto allowed = nic::default_allowed_hosts();
  (void)nic::check_allowed(*url, allowed);
  (void)nic::allowed_literally(*url, allowed);
  return 0;
}
