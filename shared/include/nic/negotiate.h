// Accept negotiation for fmt=auto, and the final output format for a source.
#pragma once

#include <cstdint>
#include <string_view>

#include "nic/format.h"

namespace nic {

// What the request resolves to before the source is known.
enum class TargetFormat : std::uint8_t { Avif, Webp, Jpeg, Png, Original };

struct FormatChoice {
  TargetFormat target = TargetFormat::Original;
  // True when it came from fmt=auto. An animated GIF is passed through for
  // auto but gives its first frame for an explicit fmt, so the two differ in
  // the cache key ("auto-avif" vs "avif").
  bool negotiated = false;
};

// q-values (0..1000, thousandths) the Accept header gives image/avif and
// image/webp by explicit entries. Wildcards (image/*, */*) never opt a client
// into AVIF or WebP: curl's "*/*" does not mean it decodes AVIF (Next.js and
// Cloudflare behave the same). A malformed entry is skipped.
struct AcceptQ {
  int avif = 0;
  int webp = 0;
};
AcceptQ accept_q(std::string_view accept);

// fmt=auto: AVIF if accepted with the higher (or equal) q, else WebP if
// accepted, else the source's own format. Explicit formats pass through.
FormatChoice negotiate(RequestedFormat requested, std::string_view accept);

// Does the response depend on Accept (so it carries Vary: Accept)?
inline bool varies_on_accept(RequestedFormat requested) {
  return requested == RequestedFormat::Auto;
}

// The token in the cache key: avif, webp, jpeg, png, original, auto-avif, auto-webp.
std::string_view key_token(FormatChoice choice);

// The encoding the origin produces for a source. SVG is never rasterised
// (passed through); an animated GIF under auto/original is passed through;
// "original" keeps the source's own format.
ImageFormat output_format(FormatChoice choice, ImageFormat source, bool animated);

}  // namespace nic
