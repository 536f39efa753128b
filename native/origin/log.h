// One-line logs on stderr: "level message". The level is set once at start-up.
#pragma once

#include <cstdio>
#include <string_view>

#include "config.h"

namespace nic::origin {

inline LogLevel& log_threshold() {
  static LogLevel level = LogLevel::Info;
  return level;
}

inline void log(LogLevel level, std::string_view message) {
  if (level < log_threshold()) return;
  std::fprintf(stderr, "nic-origin %s %.*s\n", std::string(to_string(level)).c_str(),
               static_cast<int>(message.size()), message.data());
}

}  // namespace nic::origin
