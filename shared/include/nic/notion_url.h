// Notion file URLs: the four forms Notion hands out, and the reverse (a
// Notion URL rewritten to a permanent CDN URL).
//  1. https://prod-files-secure.s3.us-west-2.amazonaws.com/{ws}/{file}/{name}?X-Amz-...
//  2. https://s3.us-west-2.amazonaws.com/prod-files-secure/{ws}/{file}/{name}?X-Amz-...
//  3. https://file.notion.so/f/f/{ws}/{file}/{name}?table=block&id={block}&spaceId=..&expirationTimestamp=..&signature=..
//  4. https://img.notionusercontent.com/s3/prod-files-secure%2F{ws}%2F{file}%2F{name}/size/w=..?exp=..&sig=..&id={block}
// Any other host in ALLOWED_DOMAINS with path /{ws}/{file}/{name} reads like form 1.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nic/allowed_hosts.h"
#include "nic/error.h"
#include "nic/params.h"

namespace nic {

struct NotionFile {
  std::string workspace;   // canonical
  std::string file_id;     // canonical (32 hex)
  std::string filename;    // decoded
  std::string url;         // the signed URL as given (what to download)
  std::optional<std::string> block_id;      // canonical, when the URL names it
  std::optional<std::int64_t> expires_at;   // unix seconds, when the URL says
};

// MISSING_URL for empty, URL_TOO_LONG, INVALID_PARAM for unparsable,
// DOMAIN_NOT_ALLOWED / HTTPS_REQUIRED for hosts outside `allowed`,
// INVALID_PARAM when the path is not a Notion file path.
Result<NotionFile> parse_notion_url(std::string_view url, const std::vector<AllowedHost>& allowed);

// "20240101T000000Z" -> unix seconds.
std::optional<std::int64_t> parse_amz_date(std::string_view text);

// {cdn_base}/img/{ws}/{block id or file id}/{name}?{params}; the block id is
// preferred (it never expires), the file id needs /api/v1/proxy registration.
std::string cdn_url_for(const NotionFile& file, std::string_view cdn_base,
                        const TransformParams& params);

}  // namespace nic
