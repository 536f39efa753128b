// The CDN's own page: "/" (what it is, how to use it, a try-it panel and a
// live status panel) and its files under /page/, embedded at build time
// (page/ and the SDK's browser build; see embed_page.cmake).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "image.h"

namespace nic::origin {

struct PageAsset {
  std::vector<std::pair<std::string, std::string>> headers;  // Content-Type, Cache-Control, CSP...
  SharedBytes body;
};

// The asset served at `path` ("/", "/page/page.js", ...), or nullptr.
const PageAsset* page_asset(std::string_view path);

}  // namespace nic::origin
