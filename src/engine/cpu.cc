#include "engine/cpu.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace xnai::engine {

namespace {

// -1 until chosen; then the CpuPath value.
std::atomic<int> g_active_path{-1};

}  // namespace

std::string_view CpuPathName(CpuPath path) {
  switch (path) {
    case CpuPath::kScalar:
      return "scalar";
    case CpuPath::kAvx2:
      return "avx2";
    case CpuPath::kAvx512:
      return "avx512";
  }
  return "scalar";
}

std::optional<CpuPath> ParseCpuPath(std::string_view name) {
  for (CpuPath path : {CpuPath::kScalar, CpuPath::kAvx2, CpuPath::kAvx512}) {
    if (name == CpuPathName(path)) return path;
  }
  return std::nullopt;
}

bool CpuSupports(CpuPath path) {
  switch (path) {
    case CpuPath::kScalar:
      return true;
    case CpuPath::kAvx2:
#if defined(__x86_64__)
      // __builtin_cpu_supports also checks that the OS saves the registers.
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("f16c");
#else
      return false;
#endif
    case CpuPath::kAvx512:
#if defined(__x86_64__)
      return CpuSupports(CpuPath::kAvx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni");
#else
      return false;
#endif
  }
  return false;
}

CpuPath DetectCpuPath() {
  if (CpuSupports(CpuPath::kAvx512)) return CpuPath::kAvx512;
  if (CpuSupports(CpuPath::kAvx2)) return CpuPath::kAvx2;
  return CpuPath::kScalar;
}

Result<CpuPath> SelectCpuPath(const char* env_value) {
  if (env_value == nullptr || *env_value == '\0') return DetectCpuPath();
  const std::optional<CpuPath> path = ParseCpuPath(env_value);
  if (!path) {
    return Err(Status::InvalidArgument(std::string("XNAI_CPU=") + env_value +
                                       ": expected scalar, avx2 or avx512"));
  }
  if (!CpuSupports(*path)) {
    return Err(Status::Unsupported(
        std::string("XNAI_CPU=") + env_value + ": this CPU lacks the " + env_value +
        " instructions (best available: " + std::string(CpuPathName(DetectCpuPath())) + ")"));
  }
  return *path;
}

CpuPath ActiveCpuPath() {
  int value = g_active_path.load(std::memory_order_acquire);
  if (value >= 0) return static_cast<CpuPath>(value);
  Result<CpuPath> selected = SelectCpuPath(std::getenv("XNAI_CPU"));
  CpuPath path = DetectCpuPath();
  if (selected) {
    path = *selected;
  } else {
    std::fprintf(stderr, "warning: %s; using %s\n", selected.error().message().c_str(),
                 std::string(CpuPathName(path)).c_str());
  }
  int expected = -1;
  g_active_path.compare_exchange_strong(expected, static_cast<int>(path));
  return static_cast<CpuPath>(g_active_path.load(std::memory_order_acquire));
}

void SetActiveCpuPath(CpuPath path) {
  g_active_path.store(static_cast<int>(path), std::memory_order_release);
}

Result<CpuPath> ActivateCpuPathFromEnv() {
  Result<CpuPath> path = SelectCpuPath(std::getenv("XNAI_CPU"));
  if (path) SetActiveCpuPath(*path);
  return path;
}

}  // namespace xnai::engine
