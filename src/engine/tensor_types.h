// Tensor element types as the engine sees them: the ggml type ids and storage
// facts come from gguf/ggml_type.h (the one table of sizes); this layer adds
// which of them the engine's kernels support.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/status.h"
#include "gguf/ggml_type.h"

namespace xnai::engine {

using TensorType = gguf::GgmlType;

struct TensorTypeTraits {
  TensorType type;
  std::string_view name;  // "Q4_K"
  int64_t block_elems;    // elements per block
  int64_t block_bytes;    // bytes per block
  bool supported;         // the engine can dequantize it and take dot products
};

// The types the engine supports: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K.
bool IsSupportedType(TensorType type);

// OK for a supported type; Unsupported "tensor type Q2_K is not supported
// yet" otherwise (the message names the type, or its id if unknown).
Status CheckSupportedType(TensorType type);

// Traits of any type the format defines; supported=false and name "unknown"
// for a value outside the table.
TensorTypeTraits GetTypeTraits(TensorType type);

// Bytes of a row of n elements (see gguf::GgmlRowBytes for the errors).
inline Result<int64_t> RowBytes(TensorType type, int64_t n) { return gguf::GgmlRowBytes(type, n); }

}  // namespace xnai::engine
