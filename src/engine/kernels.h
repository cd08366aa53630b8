// Matrix-product kernels: for each weight type and CPU path, how activations
// are prepared and how a tile of dot products between weight rows and
// prepared activation rows is computed. ops::MatMul drives them; the scalar
// path is the reference every SIMD path is tested against.
//
// Activations are quantized per row before a product with a quantized weight
// (llama.cpp does the same), so the inner loops are integer dot products:
//   Q8_0 and Q4_0 weights pair with ActFormat::kQ8 rows (blocks of 32),
//   Q4_K, Q5_K and Q6_K weights with ActFormat::kQ8K rows (blocks of 256),
//   F32, F16 and BF16 weights with plain float rows (ActFormat::kF32).
// The activation formats are in-memory only (never written to files); their
// blocks are below. A row's blocks are contiguous, and ActRowBytes gives its
// size.
//
// Thread safety: kernels are pure functions; tables are immutable.
#pragma once

#include <cstdint>

#include "base/status.h"
#include "engine/cpu.h"
#include "engine/tensor_types.h"

namespace xnai::engine::kernels {

enum class ActFormat { kF32, kQ8, kQ8K };

// 32 activations: x[i] ~ d * q[i]; s = d * sum(q) (for weights with an offset
// such as Q4_0). d = max|x| / 127, q = round(x / d).
struct BlockQ8 {
  float d;
  float s;
  int8_t q[32];
};
static_assert(sizeof(BlockQ8) == 40);

// 256 activations: x[i] ~ d * q[i]; bsums[j] = sum of q[16j .. 16j+15].
// d = max|x| / 127, q = round(x / d).
struct BlockQ8K {
  float d;
  int8_t q[256];
  int16_t bsums[16];
};
static_assert(sizeof(BlockQ8K) == 292);

// Elements per activation block: 1 (kF32), 32 (kQ8), 256 (kQ8K).
int64_t ActBlockElems(ActFormat format);

// Bytes of a prepared row of n elements (n a multiple of ActBlockElems).
int64_t ActRowBytes(ActFormat format, int64_t n);

// The largest tile a dot kernel computes in one call.
constexpr int kMaxTileRows = 4;  // weight rows
constexpr int kMaxTileCols = 4;  // activation rows

struct TypeKernels {
  ActFormat act_format;

  // Prepares n floats (n a multiple of the weight type's block size) as one
  // activation row at `act` (ActRowBytes(act_format, n) bytes). For kF32 a
  // copy.
  void (*prepare_act)(const float* x, void* act, int64_t n);

  // The dot products of `rows` weight rows (1..kMaxTileRows, each n elements,
  // consecutive rows w_stride bytes apart) with `cols` prepared activation
  // rows (1..kMaxTileCols, act_stride bytes apart):
  //   out[c * out_stride + r] = dot(weight row r, activation row c).
  // n is a multiple of the weight type's block size.
  void (*dot_tile)(int64_t n, const uint8_t* w, int64_t w_stride, int rows, const uint8_t* act,
                   int64_t act_stride, int cols, float* out, int64_t out_stride);
};

// The kernels for `type` on `path`. When `path` has no kernel of its own for
// the type, the next lower path's (avx512 -> avx2 -> scalar). Null only for a
// type the engine does not support.
const TypeKernels* GetKernels(TensorType type, CpuPath path);

}  // namespace xnai::engine::kernels
