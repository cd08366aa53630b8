// Which instruction set the engine's kernels use: detected once from the CPU,
// or forced with the XNAI_CPU environment variable (scalar | avx2 | avx512)
// for testing and comparison.
//
//   scalar  portable C++, no SIMD; the reference the other paths are tested
//           against.
//   avx2    AVX2 + FMA + F16C (x86-64-v3: Haswell, Zen 1-3): the baseline of
//           the target laptops.
//   avx512  AVX-512 F/BW/VL/DQ with VNNI (Ice Lake, Sapphire Rapids, Zen 4+).
//           A CPU with AVX-512 but without VNNI uses avx2.
//
// Thread safety: all functions are thread-safe.
#pragma once

#include <optional>
#include <string_view>

#include "base/status.h"

namespace xnai::engine {

enum class CpuPath { kScalar, kAvx2, kAvx512 };

// "scalar", "avx2", "avx512".
std::string_view CpuPathName(CpuPath path);

// The name's path; nullopt for anything else.
std::optional<CpuPath> ParseCpuPath(std::string_view name);

// True when this CPU (and OS) can run `path`.
bool CpuSupports(CpuPath path);

// The best path this CPU supports.
CpuPath DetectCpuPath();

// The path for an XNAI_CPU value: the detected one when `env_value` is null or
// empty; InvalidArgument for an unknown name ("XNAI_CPU=foo: expected scalar,
// avx2 or avx512"), Unsupported when the CPU lacks the instructions.
Result<CpuPath> SelectCpuPath(const char* env_value);

// The path the engine uses: set by SetActiveCpuPath, else chosen on first use
// from XNAI_CPU (falling back to the detected path, with a warning on stderr,
// when XNAI_CPU is invalid: front ends validate it first with SelectCpuPath).
CpuPath ActiveCpuPath();
void SetActiveCpuPath(CpuPath path);

// SelectCpuPath(getenv("XNAI_CPU")) made the active path; its errors. What
// front ends and test drivers call first.
Result<CpuPath> ActivateCpuPathFromEnv();

}  // namespace xnai::engine
