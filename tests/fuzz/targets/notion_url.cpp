// The four Notion file URL forms (and S3-compatible mirrors), as
// /api/v1/proxy and DELETE /api/v1/cache read them, then the CDN URL made
// from the result, which must route back to the same image.
#include <string>

#include "../fuzz_support.h"
#include "nic/allowed_hosts.h"
#include "nic/notion_url.h"
#include "nic/route.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view url(reinterpret_cast<const char*>(data), size);
  static const auto allowed = [] {
    auto hosts = nic::default_allowed_hosts();
    auto extra = nic::parse_allowed_hosts("http://127.0.0.1:9002,.example.com");
    if (extra) hosts.insert(hosts.end(), extra->begin(), extra->end());
    return hosts;
  }();
  auto file = nic::parse_notion_url(url, allowed);
  if (!file) return 0;
  NIC_FUZZ_CHECK(file->file_id.size() == 32);
  NIC_FUZZ_CHECK(!file->filename.empty());
  if (file->block_id) NIC_FUZZ_CHECK(file->block_id->size() == 32);

  const std::string cdn = nic::cdn_url_for(*file, "https://cdn.example", nic::TransformParams{});
  NIC_FUZZ_CHECK(cdn.starts_with("https://cdn.example/img/"));
  const std::string_view target = std::string_view(cdn).substr(std::string_view("https://cdn.example").size());
  if (target.size() > nic::kMaxTargetLength) return 0;
  auto r = nic::route("GET", target);
  NIC_FUZZ_CHECK(r.ok() && r->kind == nic::RouteKind::Image);
  NIC_FUZZ_CHECK(r->image.filename == file->filename);
  NIC_FUZZ_CHECK(r->image.id == (file->block_id ? *file->block_id : file->file_id));
  NIC_FUZZ_CHECK(r->image.workspace == file->workspace);
  (void)nic::parse_amz_date(url);
  return 0;
}
