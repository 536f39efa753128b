// The /img request path end to end in the core, as both hosts run it:
// route -> prepare_image_request (params, signature, normalise, negotiate,
// key). Input: "METHOD\nTARGET\nACCEPT\nSECRET" (each optional).
#include <string>

#include "../fuzz_support.h"
#include "nic/cache_key.h"
#include "nic/error.h"
#include "nic/route.h"
#include "nic/settings.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  nic_fuzz::Fields in(data, size);
  const std::string_view method = in.next();
  const std::string_view target = in.next();
  const std::string_view accept = in.next();
  const std::string_view secret = in.rest();

  auto r = nic::route(method, target);
  if (!r) {
    NIC_FUZZ_CHECK(nic::http_status(r.error().code) >= 400);
    return 0;
  }
  NIC_FUZZ_CHECK(target.size() <= nic::kMaxTargetLength);
  if (r->kind != nic::RouteKind::Image) return 0;
  NIC_FUZZ_CHECK(!r->image.filename.empty() && r->image.filename.size() <= nic::kMaxFilenameBytes);
  NIC_FUZZ_CHECK(r->image.id.size() == 32);

  static const nic::CoreSettings settings;
  auto req = nic::prepare_image_request(r->image, r->path, r->query, accept, settings, secret);
  if (!req) {
    const auto code = req.error().code;
    NIC_FUZZ_CHECK(code == nic::ErrorCode::InvalidParam || code == nic::ErrorCode::InvalidSignature);
    return 0;
  }
  NIC_FUZZ_CHECK(req->key.starts_with("v1/"));
  NIC_FUZZ_CHECK(req->key_hash == nic::cache_key_hash(req->key));
  NIC_FUZZ_CHECK(req->key_hash.size() == 64);
  // The key is printable ASCII without spaces: it is a storage name and a header value.
  for (char c : req->key) NIC_FUZZ_CHECK(c > 0x20 && c < 0x7f);
  // Normalised sizes stay in range (and h cannot open an unbounded key space).
  if (req->params.w) NIC_FUZZ_CHECK(*req->params.w >= 1 && *req->params.w <= nic::kMaxDimension);
  if (req->params.h) NIC_FUZZ_CHECK(*req->params.h >= 1 && *req->params.h <= nic::kMaxDimension);
  return 0;
}
