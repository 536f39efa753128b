#include "nic/settings.h"

#include <algorithm>
#include <string>
#include "nic/text.h"

namespace nic {
Result<long long> parse_int_setting(std::string_view text, long long lo, long long hi,
                                    std::string_view variable) {
  const std::string_view t = trim(text);
  auto bad = [&] {
    return make_error(ErrorCode::InvalidParam,
                      std::string(variable) + ": expected an integer in " + std::to_string(lo) +
                          ".." + std::to_string(hi) + ", got '" + std::string(text) + "'");
  };
  if (t.empty() || t.size() > 18) return bad();
  long long v = 0;
  for (char c : t) {
    if (c < '0' || c > '9') return bad();
    v = v * 10 + (c - '0');
  }
  if (v < lo || v > hi) return bad();
  return v;
}

Result<std::vector<int>> parse_int_list(std::string_view text, int lo, int hi,
                                        std::string_view variable) {
  std::vector<int> out;
  std::string_view rest = text;
  while (true) {
    const auto comma = rest.find(',');
    const std::string_view item = trim(rest.substr(0, comma));
    auto v = parse_int_setting(item, lo, hi, variable);
    if (!v) return v.take_error();
    out.push_back(static_cast<int>(*v));
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace nic
