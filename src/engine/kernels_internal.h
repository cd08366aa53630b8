// The per-path kernel tables behind kernels::GetKernels. Each function
// returns the table for `type` on its path, or null when that path has no
// kernel of its own for the type. Every path's files are compiled with that
// path's instruction-set flags and must only be called when the CPU supports
// it (GetKernels is only asked for a path after CpuSupports).
//
//   kernels_scalar.cc   / kernels_avx2.cc   / kernels_avx512.cc:
//       F32, F16, BF16, Q8_0, Q4_0 (ActFormat kF32 / kQ8)
//   kernels_k_scalar.cc / kernels_k_avx2.cc / kernels_k_avx512.cc:
//       Q4_K, Q5_K, Q6_K (ActFormat kQ8K)
#pragma once

#include "engine/kernels.h"

namespace xnai::engine::kernels {

const TypeKernels* ScalarKernels(TensorType type);
const TypeKernels* Avx2Kernels(TensorType type);
const TypeKernels* Avx512Kernels(TensorType type);

const TypeKernels* ScalarKKernels(TensorType type);
const TypeKernels* Avx2KKernels(TensorType type);
const TypeKernels* Avx512KKernels(TensorType type);

}  // namespace xnai::engine::kernels
