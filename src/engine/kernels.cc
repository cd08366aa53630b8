#include "engine/kernels.h"

#include "engine/kernels_internal.h"

namespace xnai::engine::kernels {

int64_t ActBlockElems(ActFormat format) {
  switch (format) {
    case ActFormat::kF32:
      return 1;
    case ActFormat::kQ8:
      return 32;
    case ActFormat::kQ8K:
      return 256;
  }
  return 1;
}

int64_t ActRowBytes(ActFormat format, int64_t n) {
  switch (format) {
    case ActFormat::kF32:
      return n * static_cast<int64_t>(sizeof(float));
    case ActFormat::kQ8:
      return n / 32 * static_cast<int64_t>(sizeof(BlockQ8));
    case ActFormat::kQ8K:
      return n / 256 * static_cast<int64_t>(sizeof(BlockQ8K));
  }
  return 0;
}

const TypeKernels* GetKernels(TensorType type, CpuPath path) {
  const TypeKernels* found = nullptr;
  switch (path) {
    case CpuPath::kAvx512:
      found = Avx512Kernels(type);
      if (found == nullptr) found = Avx512KKernels(type);
      if (found != nullptr) return found;
      [[fallthrough]];
    case CpuPath::kAvx2:
      found = Avx2Kernels(type);
      if (found == nullptr) found = Avx2KKernels(type);
      if (found != nullptr) return found;
      [[fallthrough]];
    case CpuPath::kScalar:
      found = ScalarKernels(type);
      if (found == nullptr) found = ScalarKKernels(type);
      return found;
  }
  return nullptr;
}

}  // namespace xnai::engine::kernels
