// Small helpers shared by the nic subcommands.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "nic/error.h"
#include "nic/settings.h"

namespace nic::cli {

// Prints "CODE: message" to stderr; the exit code for refused input.
inline int fail(const Error& e) {
  std::fprintf(stderr, "%s: %s\n", std::string(to_string(e.code)).c_str(), e.message.c_str());
  return 1;
}

inline int usage_error(std::string_view message) {
  std::fprintf(stderr, "nic: %s\n", std::string(message).c_str());
  return 2;
}

// ALLOWED_WIDTHS / QUALITY_STEPS from the environment, as the origin reads them.
inline Result<CoreSettings> settings_from_env() {
  CoreSettings s;
  if (const char* w = std::getenv("ALLOWED_WIDTHS"); w != nullptr && *w != '\0') {
    auto l = parse_int_list(w, 1, 8192, "ALLOWED_WIDTHS");
    if (!l) return l.take_error();
    s.allowed_widths = *l;
  }
  if (const char* q = std::getenv("QUALITY_STEPS"); q != nullptr && *q != '\0') {
    auto l = parse_int_list(q, 1, 100, "QUALITY_STEPS");
    if (!l) return l.take_error();
    s.quality_steps = *l;
  }
  return s;
}

}  // namespace nic::cli
