// Locates the shared engine reference data (see ../shared/testdata/README.md)
// for tests: $XNAI_TESTDATA, else <repo>/../shared/testdata where the repo
// root is $XNAI_SOURCE_DIR (set by ctest) or the compile-time source dir.
// Test-only helper; header-only so any test binary can use it.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include "base/files.h"

namespace xnai::gguf {

// Returns the directory, or an empty path when none exists.
inline std::filesystem::path FindTestdataDir() {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (const char* env = std::getenv("XNAI_TESTDATA"); env != nullptr && *env != '\0') {
    return fs::is_directory(env, ec) ? fs::path(env) : fs::path();
  }
  fs::path root;
  if (const char* src = std::getenv("XNAI_SOURCE_DIR"); src != nullptr && *src != '\0') {
    root = src;
  }
#ifdef XNAI_PROJECT_SOURCE_DIR
  if (root.empty()) root = XNAI_PROJECT_SOURCE_DIR;
#endif
  if (root.empty()) return {};
  fs::path dir = root / ".." / "shared" / "testdata";
  return fs::is_directory(dir, ec) ? fs::weakly_canonical(dir, ec) : fs::path();
}

// Reads a reference file whole (base's ReadFileToString); false when it
// cannot be read.
inline bool ReadTestFile(const std::filesystem::path& path, std::string& out) {
  auto data = ReadFileToString(path);
  if (!data) return false;
  out = std::move(*data);
  return true;
}

}  // namespace xnai::gguf
