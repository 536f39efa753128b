// Loads tab-separated test vectors from tests/vectors/ (native and wasm alike).
#pragma once

#include <string>
#include <vector>

namespace nic::test {

struct VectorRow {
  int line = 0;
  std::vector<std::string> fields;
};

// Path relative to the repository root. Lines starting with '#' and empty
// lines are skipped. Returns an empty list if the file cannot be read.
std::vector<VectorRow> load_vectors(const std::string& relative_path);
std::string source_dir();

}  // namespace nic::test
