// Start-up shared by the engine's conformance drivers (model, BERT): find the
// reference data, apply XNAI_CPU, list the reference files. Test-only;
// header-only so each driver includes it.
#pragma once

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "engine/cpu.h"
#include "gguf/testdata.h"

namespace xnai::engine {

struct ConformanceData {
  std::filesystem::path testdata;                 // the shared testdata directory
  std::vector<std::filesystem::path> references;  // its reference/*.json, sorted
};

// The shared testdata and its reference files, with the CPU path of XNAI_CPU
// active. nullopt, after a loud "SKIPPED ... `what` was NOT
// checked" on stderr, when the testdata is absent or the CPU lacks the path:
// the driver then exits 77 (ctest SKIP).
inline std::optional<ConformanceData> PrepareConformance(const std::string& what) {
  namespace fs = std::filesystem;
  const fs::path testdata = gguf::FindTestdataDir();
  if (testdata.empty() || !fs::is_directory(testdata / "reference")) {
    std::cerr << "\n*** SKIPPED: engine testdata not found (set XNAI_TESTDATA or put it at "
                 "../shared/testdata); "
              << what << " was NOT checked ***\n\n";
    return std::nullopt;
  }
  const Result<CpuPath> cpu_path = ActivateCpuPathFromEnv();
  if (!cpu_path) {
    std::cerr << "\n*** SKIPPED: " << cpu_path.error().message() << "; " << what
              << " was NOT checked on this path ***\n\n";
    return std::nullopt;
  }
  std::cout << "CPU path: " << CpuPathName(*cpu_path) << "\n";

  ConformanceData data{testdata, {}};
  for (const auto& entry : fs::directory_iterator(testdata / "reference")) {
    if (entry.path().extension() == ".json") data.references.push_back(entry.path());
  }
  std::sort(data.references.begin(), data.references.end());
  return data;
}

}  // namespace xnai::engine
