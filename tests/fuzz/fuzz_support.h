// Shared by the fuzz targets: splitting one input into several strings, a
// deterministic choice of options from the input, and invariant checks that
// abort (a finding for libFuzzer and a failure for the replay test).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#define NIC_FUZZ_CHECK(cond)                                                                  \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

namespace nic_fuzz {

// Reads the input as fields separated by a byte (like "\n"); the last field
// is the rest. Missing fields are empty.
class Fields {
 public:
  Fields(const std::uint8_t* data, std::size_t size)
      : rest_(reinterpret_cast<const char*>(data), size) {}
  std::string_view next(char sep = '\n') {
    const auto at = rest_.find(sep);
    const std::string_view field = rest_.substr(0, at);
    rest_ = at == std::string_view::npos ? std::string_view{} : rest_.substr(at + 1);
    return field;
  }
  std::string_view rest() const { return rest_; }

 private:
  std::string_view rest_;
};

// FNV-1a: options derived from the whole input, so a saved input replays
// with the same options.
inline std::uint32_t hash(const std::uint8_t* data, std::size_t size) {
  std::uint32_t h = 2166136261u;
  for (std::size_t i = 0; i < size; ++i) h = (h ^ data[i]) * 16777619u;
  return h;
}

// Takes a choice in [0, n) off the hash.
inline unsigned pick(std::uint32_t& h, unsigned n) {
  const unsigned v = h % n;
  h /= n;
  return v;
}

}  // namespace nic_fuzz
