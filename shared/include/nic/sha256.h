// SHA-256 (FIPS 180-4), HMAC-SHA256 (RFC 2104) and base64url (RFC 4648 §5).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nic {

using Digest = std::array<std::uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  void update(std::span<const std::uint8_t> data);
  void update(std::string_view data);
  Digest finish();

 private:
  std::array<std::uint32_t, 8> h_{};
  std::array<std::uint8_t, 64> buf_{};
  std::size_t buf_len_ = 0;
  std::uint64_t total_ = 0;
};

Digest sha256(std::string_view data);
std::string sha256_hex(std::string_view data);
std::string to_hex(std::span<const std::uint8_t> bytes);

Digest hmac_sha256(std::string_view key, std::string_view message);

std::string base64url_encode(std::span<const std::uint8_t> bytes);  // no padding
std::optional<std::vector<std::uint8_t>> base64url_decode(std::string_view text);

namespace detail {
// n whole 64-byte blocks into the state: the fastest code this CPU runs, and
// the portable code alone (the tests compare the two).
void sha256_blocks(std::array<std::uint32_t, 8>& state, const std::uint8_t* p, std::size_t n);
void sha256_blocks_portable(std::array<std::uint32_t, 8>& state, const std::uint8_t* p, std::size_t n);
}  // namespace detail

// Compares without an early exit (signature checks).
bool constant_time_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b);

}  // namespace nic
