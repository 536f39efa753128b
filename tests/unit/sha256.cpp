#include <catch2/catch.hpp>

#include <array>
#include <string>
#include <vector>

#include "nic/sha256.h"

using nic::to_hex;

TEST_CASE("sha256 matches the NIST FIPS 180-2 vectors", "[sha256]") {
  struct Case {
    std::string input;
    const char* digest;
  };
  const Case cases[] = {
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
      {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
       "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
      {std::string(1000000, 'a'), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.input.size());
    CHECK(nic::sha256_hex(c.input) == c.digest);
  }
}

TEST_CASE("sha256 gives the same digest however the input is split", "[sha256]") {
  std::string data;
  for (int i = 0; i < 1000; ++i) data += static_cast<char>(i * 7);
  const auto whole = nic::sha256_hex(data);
  for (std::size_t chunk : {1u, 3u, 63u, 64u, 65u, 127u}) {
    nic::Sha256 s;
    for (std::size_t at = 0; at < data.size(); at += chunk) s.update(std::string_view(data).substr(at, chunk));
    CHECK(to_hex(s.finish()) == whole);
  }
}

TEST_CASE("sha256: the CPU's fastest block code agrees with the portable code", "[sha256]") {
  // On x86-64 with the SHA extensions the two are different code; elsewhere the same.
  std::vector<std::uint8_t> data(64 * 37);
  std::uint32_t x = 2463534242u;
  for (auto& b : data) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<std::uint8_t>(x);
  }
  for (std::size_t n : {1u, 2u, 3u, 16u, 37u}) {
    std::array<std::uint32_t, 8> fast{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    auto slow = fast;
    nic::detail::sha256_blocks(fast, data.data(), n);
    nic::detail::sha256_blocks_portable(slow, data.data(), n);
    CAPTURE(n);
    CHECK(fast == slow);
  }
}

TEST_CASE("hmac-sha256 matches RFC 4231", "[hmac]") {
  struct Case {
    std::string key;
    std::string data;
    const char* mac;
  };
  const Case cases[] = {
      {std::string(20, '\x0b'), "Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {"Jefe", "what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {std::string(20, '\xaa'), std::string(50, '\xdd'), "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First",
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {std::string(131, '\xaa'),
       "This is a test using a larger than block-size key and a larger than block-size data. The key needs to be "
       "hashed before being used by the HMAC algorithm.",
       "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
  for (const auto& c : cases) {
    CHECK(to_hex(nic::hmac_sha256(c.key, c.data)) == c.mac);
  }
  // RFC 4231 case 5: output truncated to 128 bits.
  CHECK(to_hex(nic::hmac_sha256(std::string(20, '\x0c'), "Test With Truncation")).substr(0, 32) ==
        "a3b6167473100ee06e0c796c2955552b");
}

TEST_CASE("base64url round-trips and rejects bad input", "[base64]") {
  const auto enc = [](std::string_view s) {
    return nic::base64url_encode(
        std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
  };
  SECTION("RFC 4648 vectors without padding") {
    CHECK(enc("") == "");
    CHECK(enc("f") == "Zg");
    CHECK(enc("fo") == "Zm8");
    CHECK(enc("foo") == "Zm9v");
    CHECK(enc("foob") == "Zm9vYg");
    CHECK(enc("fooba") == "Zm9vYmE");
    CHECK(enc("foobar") == "Zm9vYmFy");
    CHECK(enc("\xfb\xff") == "-_8");
  }
  SECTION("decode") {
    auto d = nic::base64url_decode("Zm9vYmE");
    REQUIRE(d);
    CHECK(std::string(d->begin(), d->end()) == "fooba");
    CHECK_FALSE(nic::base64url_decode("Zm9v="));   // padding is not base64url here
    CHECK_FALSE(nic::base64url_decode("Zm9+"));    // '+' is base64, not base64url
    CHECK_FALSE(nic::base64url_decode("Z"));       // impossible length
    CHECK_FALSE(nic::base64url_decode("Zh"));      // non-zero trailing bits
  }
}

TEST_CASE("constant_time_equal", "[hmac]") {
  const std::uint8_t a[] = {1, 2, 3};
  const std::uint8_t b[] = {1, 2, 4};
  const std::uint8_t c[] = {1, 2};
  CHECK(nic::constant_time_equal(a, a));
  CHECK_FALSE(nic::constant_time_equal(a, b));
  CHECK_FALSE(nic::constant_time_equal(a, c));
}
