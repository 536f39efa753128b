#include <catch2/catch.hpp>

#include "nic/negotiate.h"

using nic::FormatChoice;
using nic::ImageFormat;
using nic::RequestedFormat;
using nic::TargetFormat;

TEST_CASE("Accept negotiation by q-values", "[negotiate]") {
  struct Case {
    const char* accept;
    const char* token;
  };
  const Case cases[] = {
      {"image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", "auto-avif"},  // Chrome
      {"image/webp,*/*", "auto-webp"},                                                       // old Firefox
      {"image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5", "original"},         // Safari 13
      {"*/*", "original"},
      {"image/*", "original"},
      {"", "original"},
      {"image/avif;q=0,image/webp", "auto-webp"},
      {"image/avif;q=0, image/webp;q=0", "original"},
      {"image/avif;q=0.5,image/webp;q=0.9", "auto-webp"},
      {"image/avif;q=0.9,image/webp;q=0.9", "auto-avif"},
      {"  IMAGE/AVIF ; Q=0.7 ,\timage/webp;q=0.6", "auto-avif"},
      {"image/avif;q=2,image/webp", "auto-webp"},      // malformed q skips the entry
      {"image/avif;q=0.1234", "original"},             // four decimals is malformed
      {"image/avif;q=1.000", "auto-avif"},
      {"image/avif;q=0.", "original"},                 // "0." is q=0
      {"image/avif;q=0,image/avif;q=0.5", "auto-avif"},  // the higher duplicate wins
      {",,,image/webp,,", "auto-webp"},
      {"image/avif;level=1;q=0.4", "auto-avif"},
      {"image/avifx,image/webpx", "original"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.accept);
    CHECK(nic::key_token(nic::negotiate(RequestedFormat::Auto, c.accept)) == c.token);
  }
}

TEST_CASE("explicit formats ignore Accept and do not vary", "[negotiate]") {
  CHECK(nic::key_token(nic::negotiate(RequestedFormat::Jpeg, "image/avif")) == "jpeg");
  CHECK(nic::key_token(nic::negotiate(RequestedFormat::Avif, "")) == "avif");
  CHECK(nic::key_token(nic::negotiate(RequestedFormat::Original, "image/avif")) == "original");
  CHECK(nic::varies_on_accept(RequestedFormat::Auto));
  CHECK_FALSE(nic::varies_on_accept(RequestedFormat::Webp));
}

TEST_CASE("output format for a source", "[negotiate]") {
  const FormatChoice auto_avif{TargetFormat::Avif, true};
  const FormatChoice avif{TargetFormat::Avif, false};
  const FormatChoice original{TargetFormat::Original, true};
  CHECK(nic::output_format(auto_avif, ImageFormat::Jpeg, false) == ImageFormat::Avif);
  CHECK(nic::output_format(original, ImageFormat::Png, false) == ImageFormat::Png);
  CHECK(nic::output_format(auto_avif, ImageFormat::Svg, false) == ImageFormat::Svg);   // never rasterised
  CHECK(nic::output_format(auto_avif, ImageFormat::Gif, true) == ImageFormat::Gif);    // animation kept
  CHECK(nic::output_format(avif, ImageFormat::Gif, true) == ImageFormat::Avif);        // explicit: first frame
  CHECK(nic::output_format(original, ImageFormat::Gif, true) == ImageFormat::Gif);
}
