// Portable reference kernels of the K-quant weight types (Q4_K, Q5_K, Q6_K)
// paired with Q8_K activation rows (see kernels.h, kernels_internal.h). The
// SIMD paths are tested against these, and the Q8_K quantizer here defines the
// activation bytes every path must reproduce exactly.
//
// Each product is computed in integers per 256-element block (exact), then
// scaled to float once per block:
//   Q4_K/Q5_K: d*da * sum_j sc_j * sum(q*a over sub-block j)
//              - dmin*da * sum_j m_j * (bsums[2j] + bsums[2j+1])
//   Q6_K:      d*da * sum_s sc_s * (sum(q*a over sub-block s) - 32 * bsums[s])
// with q the stored unsigned quants (0..15, 0..31, 0..63) and a the int8
// activations.
#include <cmath>
#include <cstring>

#include "engine/fp16.h"
#include "engine/kernels_internal.h"

namespace xnai::engine::kernels {
namespace {

constexpr int kQkK = 256;
constexpr int kQ4KBytes = 144;
constexpr int kQ5KBytes = 176;
constexpr int kQ6KBytes = 210;

float LoadF16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return F16ToF32(h);
}

// Round half to even, independent of the floating-point environment (the
// SIMD quantizers use explicit round-to-nearest-even instructions, and the
// bytes must be identical). |v| is small here, so trunc and the difference
// are exact.
float RoundHalfEven(float v) {
  const float t = std::trunc(v);
  const float frac = v - t;
  const float half = std::fabs(frac);
  if (half > 0.5f || (half == 0.5f && std::fmod(t, 2.0f) != 0.0f)) {
    return t + (v < 0 ? -1.0f : 1.0f);
  }
  return t;
}

// Q8_K: d = max|x| / 127, q = round-half-even(x / d) clamped to [-127, 127]
// (a true division, not a multiplication by 1/d, so that every path rounds
// identically). d = 0 (all zeros, or a maximum so small that d underflows)
// gives q = 0 everywhere.
void PrepareQ8K(const float* x, void* act, int64_t n) {
  uint8_t* dst = static_cast<uint8_t*>(act);
  for (int64_t b = 0; b < n / kQkK; ++b) {
    const float* xb = x + b * kQkK;
    BlockQ8K out;  // built here and copied: `act` need not be aligned for BlockQ8K
    float amax = 0;
    for (int i = 0; i < kQkK; ++i) amax = std::fmax(amax, std::fabs(xb[i]));
    const float d = amax / 127.0f;
    out.d = d;
    for (int i = 0; i < kQkK; ++i) {
      float q = d != 0 ? RoundHalfEven(xb[i] / d) : 0.0f;
      q = std::fmin(std::fmax(q, -127.0f), 127.0f);
      out.q[i] = static_cast<int8_t>(q);
    }
    for (int j = 0; j < 16; ++j) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += out.q[16 * j + i];
      out.bsums[j] = static_cast<int16_t>(sum);
    }
    std::memcpy(dst + b * static_cast<int64_t>(sizeof(BlockQ8K)), &out, sizeof(BlockQ8K));
  }
}

// The 6-bit sub-block scales and mins of a Q4_K/Q5_K block (layout in
// quants.h).
void UnpackScalesMins(const uint8_t* s, int* sc, int* mn) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = s[j] & 63;
    mn[j] = s[j + 4] & 63;
  }
  for (int j = 4; j < 8; ++j) {
    sc[j] = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
    mn[j] = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// One weight block unpacked to element order, so that the products with
// every activation column of a tile reuse it.
struct UnpackedK {
  float d = 0, dmin = 0;  // dmin unused by Q6_K
  int scales[16] = {};    // 8 (Q4_K/Q5_K, per 32) or 16 (Q6_K, per 16)
  int mins[8] = {};
  uint8_t q[kQkK] = {};
};

template <bool kFiveBit>
void UnpackQ45K(const uint8_t* b, UnpackedK* u) {
  u->d = LoadF16(b);
  u->dmin = LoadF16(b + 2);
  UnpackScalesMins(b + 4, u->scales, u->mins);
  const uint8_t* qh = b + 16;
  const uint8_t* qs = kFiveBit ? b + 48 : b + 16;
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      uint8_t lo = qs[32 * c + l] & 0xf, hi = qs[32 * c + l] >> 4;
      if (kFiveBit) {
        lo |= static_cast<uint8_t>(((qh[l] >> (2 * c)) & 1) << 4);
        hi |= static_cast<uint8_t>(((qh[l] >> (2 * c + 1)) & 1) << 4);
      }
      u->q[64 * c + l] = lo;
      u->q[64 * c + 32 + l] = hi;
    }
  }
}

void UnpackQ6K(const uint8_t* b, UnpackedK* u) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192);
  u->d = LoadF16(b + 208);
  for (int s = 0; s < 16; ++s) u->scales[s] = scales[s];
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 32; ++l) {
      const int hb = qh[32 * h + l];
      const int l0 = ql[64 * h + l], l1 = ql[64 * h + 32 + l];
      u->q[128 * h + l] = static_cast<uint8_t>((l0 & 0xf) | ((hb & 3) << 4));
      u->q[128 * h + 32 + l] = static_cast<uint8_t>((l1 & 0xf) | (((hb >> 2) & 3) << 4));
      u->q[128 * h + 64 + l] = static_cast<uint8_t>((l0 >> 4) | (((hb >> 4) & 3) << 4));
      u->q[128 * h + 96 + l] = static_cast<uint8_t>((l1 >> 4) | (((hb >> 6) & 3) << 4));
    }
  }
}

// sum(q*a) over `len` elements; len is 16 or 32, so the int32 cannot
// overflow (63 * 127 * 32 < 2^18).
inline int DotBytes(const uint8_t* q, const int8_t* a, int len) {
  int sum = 0;
  for (int i = 0; i < len; ++i) sum += q[i] * a[i];
  return sum;
}

// A whole block's product in float; the integer parts are exact (at most
// 63 * 31 * 127 * 256 in magnitude for Q4_K/Q5_K, 128 * 63 * 127 * 256 for
// Q6_K, both below 2^31).
float BlockDotQ45K(const UnpackedK& u, const BlockQ8K& a) {
  int sumi = 0, summ = 0;
  for (int j = 0; j < 8; ++j) {
    sumi += u.scales[j] * DotBytes(u.q + 32 * j, a.q + 32 * j, 32);
    summ += u.mins[j] * (a.bsums[2 * j] + a.bsums[2 * j + 1]);
  }
  return a.d * (u.d * static_cast<float>(sumi) - u.dmin * static_cast<float>(summ));
}

float BlockDotQ6K(const UnpackedK& u, const BlockQ8K& a) {
  int sumi = 0;
  for (int s = 0; s < 16; ++s) {
    sumi += u.scales[s] * (DotBytes(u.q + 16 * s, a.q + 16 * s, 16) - 32 * a.bsums[s]);
  }
  return a.d * u.d * static_cast<float>(sumi);
}

enum class KType { kQ4, kQ5, kQ6 };

template <KType kType>
void DotTile(int64_t n, const uint8_t* w, int64_t w_stride, int rows, const uint8_t* act,
             int64_t act_stride, int cols, float* out, int64_t out_stride) {
  constexpr int kBlockBytes =
      kType == KType::kQ4 ? kQ4KBytes : (kType == KType::kQ5 ? kQ5KBytes : kQ6KBytes);
  float acc[kMaxTileRows][kMaxTileCols] = {};
  UnpackedK u;
  BlockQ8K ab[kMaxTileCols];  // copies: the rows need not be aligned for BlockQ8K
  for (int64_t b = 0; b < n / kQkK; ++b) {
    for (int c = 0; c < cols; ++c) {
      std::memcpy(&ab[c], act + c * act_stride + b * static_cast<int64_t>(sizeof(BlockQ8K)),
                  sizeof(BlockQ8K));
    }
    for (int r = 0; r < rows; ++r) {
      const uint8_t* wb = w + r * w_stride + b * kBlockBytes;
      if constexpr (kType == KType::kQ4) UnpackQ45K<false>(wb, &u);
      if constexpr (kType == KType::kQ5) UnpackQ45K<true>(wb, &u);
      if constexpr (kType == KType::kQ6) UnpackQ6K(wb, &u);
      for (int c = 0; c < cols; ++c) {
        acc[r][c] += kType == KType::kQ6 ? BlockDotQ6K(u, ab[c]) : BlockDotQ45K(u, ab[c]);
      }
    }
  }
  for (int c = 0; c < cols; ++c) {
    for (int r = 0; r < rows; ++r) out[c * out_stride + r] = acc[r][c];
  }
}

constexpr TypeKernels kQ4KKernels = {ActFormat::kQ8K, PrepareQ8K, DotTile<KType::kQ4>};
constexpr TypeKernels kQ5KKernels = {ActFormat::kQ8K, PrepareQ8K, DotTile<KType::kQ5>};
constexpr TypeKernels kQ6KKernels = {ActFormat::kQ8K, PrepareQ8K, DotTile<KType::kQ6>};

}  // namespace

const TypeKernels* ScalarKKernels(TensorType type) {
  switch (type) {
    case TensorType::kQ4_K:
      return &kQ4KKernels;
    case TensorType::kQ5_K:
      return &kQ5KKernels;
    case TensorType::kQ6_K:
      return &kQ6KKernels;
    default:
      return nullptr;
  }
}

}  // namespace xnai::engine::kernels
