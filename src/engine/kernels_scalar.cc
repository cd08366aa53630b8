// Portable C++ kernels of the F32, F16, BF16, Q8_0 and Q4_0 weight types (see
// kernels_internal.h): the reference every SIMD path is tested against, so
// they are written for clarity and exactness rather than speed.
//
// Activation quantization (ActFormat::kQ8), shared bit for bit by every path:
//   amax = max |x_i| over the 32 elements of a block
//   d    = amax / 127 (one IEEE float division)
//   q_i  = x_i / d (one IEEE float division), clamped to [-127, 127] and
//          rounded to nearest with ties to even (the CPU's default rounding
//          mode, which is what cvtps2dq does, so SIMD paths match exactly)
//   s    = d * float(sum of q_i)
//   A block whose d is 0 (all zeros, or so tiny that amax / 127 underflows)
//   stores d = 0, s = 0 and q = 0.
// Dividing rather than multiplying by 1/d keeps a subnormal d from producing
// an infinite reciprocal. Inputs must be finite.
//
// Dot products accumulate the per-block float terms in double, so the
// reference's own rounding error is negligible next to a SIMD path's.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/fp16.h"
#include "engine/kernels_internal.h"

namespace xnai::engine::kernels {
namespace {

constexpr int kBlock = 32;
constexpr int kQ8_0Bytes = 34;  // f16 d | int8 q[32]
constexpr int kQ4_0Bytes = 18;  // f16 d | u8 qs[16]

float LoadF16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return F16ToF32(h);
}

void PrepareF32(const float* x, void* act, int64_t n) {
  std::memcpy(act, x, static_cast<size_t>(n) * sizeof(float));
}

void QuantizeBlock(const float* x, BlockQ8* b) {
  float amax = 0;
  for (int i = 0; i < kBlock; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = amax / 127.0f;
  if (d == 0) {
    std::memset(b, 0, sizeof(*b));
    return;
  }
  int sum = 0;
  for (int i = 0; i < kBlock; ++i) {
    const float v = std::clamp(x[i] / d, -127.0f, 127.0f);
    const int q = static_cast<int>(std::nearbyint(v));
    b->q[i] = static_cast<int8_t>(q);
    sum += q;
  }
  b->d = d;
  b->s = d * static_cast<float>(sum);
}

void PrepareQ8(const float* x, void* act, int64_t n) {
  auto* blocks = static_cast<BlockQ8*>(act);
  for (int64_t b = 0; b < n / kBlock; ++b) QuantizeBlock(x + b * kBlock, &blocks[b]);
}

// --- float activations --------------------------------------------------------

struct F32Weights {
  static float Get(const uint8_t* row, int64_t i) {
    float v;
    std::memcpy(&v, row + 4 * i, 4);
    return v;
  }
};

struct F16Weights {
  static float Get(const uint8_t* row, int64_t i) { return LoadF16(row + 2 * i); }
};

struct Bf16Weights {
  static float Get(const uint8_t* row, int64_t i) {
    uint16_t b;
    std::memcpy(&b, row + 2 * i, 2);
    return Bf16ToF32(b);
  }
};

template <class Weights>
void DotFloat(int64_t n, const uint8_t* w, int64_t w_stride, int rows, const uint8_t* act,
              int64_t act_stride, int cols, float* out, int64_t out_stride) {
  for (int c = 0; c < cols; ++c) {
    const auto* x = reinterpret_cast<const float*>(act + c * act_stride);
    for (int r = 0; r < rows; ++r) {
      const uint8_t* row = w + r * w_stride;
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(Weights::Get(row, i)) * x[i];
      out[c * out_stride + r] = static_cast<float>(sum);
    }
  }
}

// --- quantized activations ------------------------------------------------------

// sum over a block of weight quant (offset removed) times activation quant:
// exact in int.
int BlockDotQ8_0(const uint8_t* wb, const BlockQ8& a) {
  int sum = 0;
  for (int i = 0; i < kBlock; ++i) sum += static_cast<int8_t>(wb[2 + i]) * a.q[i];
  return sum;
}

int BlockDotQ4_0(const uint8_t* wb, const BlockQ8& a) {
  const uint8_t* qs = wb + 2;
  int sum = 0;
  for (int j = 0; j < 16; ++j) {
    sum += ((qs[j] & 0xf) - 8) * a.q[j] + ((qs[j] >> 4) - 8) * a.q[j + 16];
  }
  return sum;
}

template <int kBlockBytes, int (*BlockDot)(const uint8_t*, const BlockQ8&)>
void DotQuant(int64_t n, const uint8_t* w, int64_t w_stride, int rows, const uint8_t* act,
              int64_t act_stride, int cols, float* out, int64_t out_stride) {
  const int64_t blocks = n / kBlock;
  for (int c = 0; c < cols; ++c) {
    const auto* a = reinterpret_cast<const BlockQ8*>(act + c * act_stride);
    for (int r = 0; r < rows; ++r) {
      const uint8_t* row = w + r * w_stride;
      double sum = 0;
      for (int64_t b = 0; b < blocks; ++b) {
        const uint8_t* wb = row + b * kBlockBytes;
        BlockQ8 ab;
        std::memcpy(&ab, &a[b], sizeof(ab));  // act rows need not be aligned either
        sum += static_cast<double>(LoadF16(wb)) * ab.d * BlockDot(wb, ab);
      }
      out[c * out_stride + r] = static_cast<float>(sum);
    }
  }
}

constexpr TypeKernels kF32Kernels = {ActFormat::kF32, PrepareF32, DotFloat<F32Weights>};
constexpr TypeKernels kF16Kernels = {ActFormat::kF32, PrepareF32, DotFloat<F16Weights>};
constexpr TypeKernels kBf16Kernels = {ActFormat::kF32, PrepareF32, DotFloat<Bf16Weights>};
constexpr TypeKernels kQ8_0Kernels = {ActFormat::kQ8, PrepareQ8,
                                      DotQuant<kQ8_0Bytes, BlockDotQ8_0>};
constexpr TypeKernels kQ4_0Kernels = {ActFormat::kQ8, PrepareQ8,
                                      DotQuant<kQ4_0Bytes, BlockDotQ4_0>};

}  // namespace

const TypeKernels* ScalarKernels(TensorType type) {
  switch (type) {
    case TensorType::kF32:
      return &kF32Kernels;
    case TensorType::kF16:
      return &kF16Kernels;
    case TensorType::kBF16:
      return &kBf16Kernels;
    case TensorType::kQ8_0:
      return &kQ8_0Kernels;
    case TensorType::kQ4_0:
      return &kQ4_0Kernels;
    default:
      return nullptr;
  }
}

}  // namespace xnai::engine::kernels
