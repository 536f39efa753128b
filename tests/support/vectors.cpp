#include "vectors.h"

#include <cstdio>
#include <cstdlib>

namespace nic::test {

std::string source_dir() {
  // Under WASI the runner passes the preopened root in the environment.
  if (const char* env = std::getenv("NIC_SOURCE_DIR"); env != nullptr && *env != '\0') return env;
  return NIC_SOURCE_DIR;
}

std::vector<VectorRow> load_vectors(const std::string& relative_path) {
  std::vector<VectorRow> rows;
  const std::string path = source_dir() + "/" + relative_path;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return rows;
  std::string content;
  char buf[65536];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) content.append(buf, n);
  std::fclose(f);

  int line_no = 0;
  std::size_t pos = 0;
  while (pos < content.size()) {
    auto end = content.find('\n', pos);
    if (end == std::string::npos) end = content.size();
    std::string line = content.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    VectorRow row;
    row.line = line_no;
    std::size_t start = 0;
    while (true) {
      const auto tab = line.find('\t', start);
      row.fields.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace nic::test
