#include "nic/byte_range.h"

#include <charconv>
#include <optional>

#include "nic/text.h"

namespace nic {
namespace {

std::optional<std::int64_t> digits(std::string_view s) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
  std::int64_t v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;  // overflow
  return v;
}

}  // namespace

RangeDecision decide_range(std::string_view range, std::string_view if_range, std::string_view etag,
                           std::int64_t length) {
  using Kind = RangeDecision::Kind;
  const RangeDecision whole;
  range = trim(range);
  if_range = trim(if_range);
  if (range.empty() || length < 0) return whole;
  // If-Range uses the strong comparison: a weak or other tag, or a date, means "send it all".
  if (!if_range.empty() && (etag.empty() || etag.starts_with("W/") || if_range != etag)) return whole;
  if (range.size() < 6 || ascii_lower(range.substr(0, 6)) != "bytes=") return whole;
  const auto spec = trim(range.substr(6));
  const auto dash = spec.find('-');
  if (dash == std::string_view::npos || spec.find(',') != std::string_view::npos) return whole;
  const auto a = trim(spec.substr(0, dash));
  const auto b = trim(spec.substr(dash + 1));
  if (a.empty()) {  // the last N bytes
    const auto n = digits(b);
    if (!n) return whole;
    if (*n == 0 || length == 0) return {Kind::Unsatisfiable};
    return {Kind::Partial, *n >= length ? 0 : length - *n, length - 1};
  }
  const auto first = digits(a);
  const auto last = b.empty() ? std::optional<std::int64_t>(length - 1) : digits(b);
  if (!first || !last) return whole;
  if (*first >= length) return {Kind::Unsatisfiable};
  if (*last < *first) return whole;
  return {Kind::Partial, *first, *last < length ? *last : length - 1};
}

std::string content_range(const RangeDecision& d, std::int64_t length) {
  if (d.kind == RangeDecision::Kind::Partial) {
    return "bytes " + std::to_string(d.first) + "-" + std::to_string(d.last) + "/" + std::to_string(length);
  }
  return "bytes */" + std::to_string(length);
}

}  // namespace nic
