// Query parsing and normalisation on their own, with settings that vary
// (ALLOWED_WIDTHS / QUALITY_STEPS parsed from the input like the
// environment). Input: "WIDTHS\nQUALITY\nQUERY".
#include <algorithm>

#include "../fuzz_support.h"
#include "nic/params.h"
#include "nic/percent.h"
#include "nic/settings.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  nic_fuzz::Fields in(data, size);
  const std::string_view widths = in.next();
  const std::string_view quality = in.next();
  const std::string_view query = in.rest();

  nic::CoreSettings settings;
  if (!widths.empty()) {
    auto w = nic::parse_int_list(widths, 1, nic::kMaxDimension, "ALLOWED_WIDTHS");
    if (!w) return 0;
    NIC_FUZZ_CHECK(!w->empty() && std::is_sorted(w->begin(), w->end()));
    settings.allowed_widths = *w;
  }
  if (!quality.empty()) {
    auto q = nic::parse_int_list(quality, 1, 100, "QUALITY_STEPS");
    if (!q) return 0;
    settings.quality_steps = *q;
  }

  const auto raw = nic::split_query(query);
  auto params = nic::parse_params(raw);
  if (!params) {
    NIC_FUZZ_CHECK(params.error().code == nic::ErrorCode::InvalidParam);
    return 0;
  }
  const auto n = nic::normalize(*params, settings);
  if (n.w) {
    NIC_FUZZ_CHECK(std::find(settings.allowed_widths.begin(), settings.allowed_widths.end(), *n.w) !=
                   settings.allowed_widths.end());
  }
  if (n.h) NIC_FUZZ_CHECK(*n.h >= 1 && *n.h <= nic::kMaxDimension);
  if (n.q) {
    NIC_FUZZ_CHECK(std::find(settings.quality_steps.begin(), settings.quality_steps.end(), *n.q) !=
                   settings.quality_steps.end());
  }
  // Normalising is idempotent on what it produced: the same request again gives the same key.
  const auto again = nic::normalize(*params, settings);
  NIC_FUZZ_CHECK(again.w == n.w && again.h == n.h && again.q == n.q);
  return 0;
}
