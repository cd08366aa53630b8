// AVX2 + FMA + F16C kernels of the K-quant weight types (Q4_K, Q5_K, Q6_K) on
// Q8_K activation rows; the scalar kernels in kernels_k_scalar.cc are the
// reference (see kernels_internal.h). No AVX-512 or AVX-VNNI instructions.
//
// A tile is computed one weight row at a time (16 ymm registers cannot hold a
// 4 x 4 tile of accumulators; a single row stream is also what the hardware
// prefetchers follow best). Per 256-element block of the row, the quants are
// unpacked 32 at a time (one ymm of unsigned bytes in element order) and used
// for every activation column: vpmaddubsw (u8 weights x s8 activations, pairs
// to int16, no saturation: 2 * 63 * 127 < 2^15), then vpmaddwd against the
// sub-block scales widened to int16, summed exactly in int32; once per block
// the sum is converted to float and multiplied by d*da. The Q4_K/Q5_K mins
// term is a float product of two 8-lane vectors (dmin*m_j, da*(bsums pair j));
// Q6_K's -32 offset is folded into the integer sum through bsums.
#include "engine/kernels_internal.h"

#if defined(__x86_64__)

#include <immintrin.h>

#include <array>
#include <cstddef>
#include <cstring>
#include <utility>

namespace xnai::engine::kernels {
namespace {

constexpr int kQkK = 256;
constexpr int64_t kActBlockBytes = sizeof(BlockQ8K);
constexpr int kActQOffset = offsetof(BlockQ8K, q);
constexpr int kActBsumsOffset = offsetof(BlockQ8K, bsums);

inline float LoadF16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline float LoadF32(const uint8_t* p) {
  float f;
  std::memcpy(&f, p, 4);
  return f;
}

inline uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline __m256i Load256(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

inline int HorizontalSum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// --- activation quantizer ---------------------------------------------------------

// Byte-identical to the scalar PrepareQ8K: the maximum is exact in any order,
// x / d is a correctly rounded division on both, and the rounding is
// explicitly to nearest even (not the MXCSR mode).
void PrepareQ8K(const float* x, void* act, int64_t n) {
  uint8_t* dst = static_cast<uint8_t*>(act);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
  // Undoes the lane interleaving of the two packs below.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t b = 0; b < n / kQkK; ++b) {
    const float* xb = x + b * kQkK;
    uint8_t* out = dst + b * kActBlockBytes;
    __m256 mx = _mm256_setzero_ps();
    for (int i = 0; i < kQkK; i += 8) {
      mx = _mm256_max_ps(mx, _mm256_and_ps(_mm256_loadu_ps(xb + i), abs_mask));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float d = amax / 127.0f;
    std::memcpy(out, &d, 4);
    if (d == 0) {
      std::memset(out + 4, 0, kActBlockBytes - 4);
      continue;
    }
    const __m256 vd = _mm256_set1_ps(d);
    int16_t bsums[16];
    for (int j = 0; j < 8; ++j) {  // 32 elements per step
      __m256i q[4];
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
        const __m256 v = _mm256_div_ps(_mm256_loadu_ps(xb + 32 * j + 8 * k), vd);
        const __m256 r = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q[k] = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(r), lo), hi);
      }
      bsums[2 * j] = static_cast<int16_t>(HorizontalSum(_mm256_add_epi32(q[0], q[1])));
      bsums[2 * j + 1] = static_cast<int16_t>(HorizontalSum(_mm256_add_epi32(q[2], q[3])));
      const __m256i packed =
          _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + kActQOffset + 32 * j),
                          _mm256_permutevar8x32_epi32(packed, order));
    }
    std::memcpy(out + kActBsumsOffset, bsums, sizeof(bsums));
  }
}

// --- products ---------------------------------------------------------------------

// The 8 scales and 8 mins (6 bits each) of a Q4_K/Q5_K block as the bytes
// of two 64-bit words (byte j = sub-block j); layout in quants.h.
inline void UnpackScalesMins(const uint8_t* s, uint64_t* sc, uint64_t* mn) {
  const uint32_t a = LoadU32(s), b = LoadU32(s + 4), c = LoadU32(s + 8);
  const uint32_t sc_lo = a & 0x3f3f3f3fu;
  const uint32_t sc_hi = (c & 0x0f0f0f0fu) | ((a >> 2) & 0x30303030u);
  const uint32_t mn_lo = b & 0x3f3f3f3fu;
  const uint32_t mn_hi = ((c >> 4) & 0x0f0f0f0fu) | ((b >> 2) & 0x30303030u);
  *sc = sc_lo | (static_cast<uint64_t>(sc_hi) << 32);
  *mn = mn_lo | (static_cast<uint64_t>(mn_hi) << 32);
}

// Shifts the 16-bit words of v left by s (s < 0: right by -s); s is a
// constant after unrolling.
__attribute__((always_inline)) inline __m256i ShiftWords(__m256i v, int s) {
  return s >= 0 ? _mm256_slli_epi16(v, s) : _mm256_srli_epi16(v, -s);
}

// Per-column data of one activation block.
template <int C>
struct ActBlocks {
  const uint8_t* q[C];
  float d[C];
  __m256 bsum_f[C];   // Q4_K/Q5_K: d * (bsums[2j] + bsums[2j+1]), j = 0..7
  __m256i bsum_w[C];  // Q6_K: the 16 bsums as int16
};

// Adds one block of a Q4_K (kFiveBit false) or Q5_K row times C activation
// blocks to acc[c] (8 partial sums each).
template <bool kFiveBit, int C>
__attribute__((always_inline)) inline void BlockQ45K(const uint8_t* wb, const ActBlocks<C>& a,
                                                     __m256 (&acc)[C]) {
  const float d = LoadF16(wb), dmin = LoadF16(wb + 2);
  uint64_t sc, mn;
  UnpackScalesMins(wb + 4, &sc, &mn);
  const __m256i scb = _mm256_set1_epi64x(static_cast<int64_t>(sc));
  const uint8_t* qs = wb + (kFiveBit ? 48 : 16);
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  const __m256i fifth = _mm256_set1_epi8(0x10);
  __m256i qh;
  if constexpr (kFiveBit) qh = Load256(wb + 16);
  __m256i s[C];
#pragma GCC unroll 4
  for (int c = 0; c < C; ++c) s[c] = _mm256_setzero_si256();
#pragma GCC unroll 4
  for (int p = 0; p < 4; ++p) {  // sub-blocks 2p (low nibbles) and 2p+1 (high)
    const __m256i packed = Load256(qs + 32 * p);
    __m256i q_lo = _mm256_and_si256(packed, nibble);
    __m256i q_hi = _mm256_and_si256(_mm256_srli_epi16(packed, 4), nibble);
    if constexpr (kFiveBit) {
      // Bit 2p (2p+1) of qh[l] to bit 4; bits moved across the bytes of a
      // word cannot reach bit 4 of the other byte for these shift counts.
      q_lo = _mm256_or_si256(q_lo, _mm256_and_si256(ShiftWords(qh, 4 - 2 * p), fifth));
      q_hi = _mm256_or_si256(q_hi, _mm256_and_si256(ShiftWords(qh, 3 - 2 * p), fifth));
    }
    // Scale byte j widened to every int16 lane (pshufb index j, then 0x80).
    const __m256i sc_lo =
        _mm256_shuffle_epi8(scb, _mm256_set1_epi16(static_cast<int16_t>(0x8000 | (2 * p))));
    const __m256i sc_hi =
        _mm256_shuffle_epi8(scb, _mm256_set1_epi16(static_cast<int16_t>(0x8000 | (2 * p + 1))));
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      const __m256i p_lo = _mm256_maddubs_epi16(q_lo, Load256(a.q[c] + 64 * p));
      const __m256i p_hi = _mm256_maddubs_epi16(q_hi, Load256(a.q[c] + 64 * p + 32));
      s[c] = _mm256_add_epi32(
          s[c], _mm256_add_epi32(_mm256_madd_epi16(p_lo, sc_lo), _mm256_madd_epi16(p_hi, sc_hi)));
    }
  }
  const __m256 mins = _mm256_mul_ps(
      _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(mn)))),
      _mm256_set1_ps(dmin));
#pragma GCC unroll 4
  for (int c = 0; c < C; ++c) {
    acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[c]), _mm256_set1_ps(d * a.d[c]), acc[c]);
    acc[c] = _mm256_fnmadd_ps(mins, a.bsum_f[c], acc[c]);
  }
}

// Adds one block of a Q6_K row times C activation blocks to acc[c]. Elements
// 128h+32k+l take the low nibble of ql[64h+l+32(k&1)] (high nibble for k >= 2)
// and bits 2k..2k+1 of qh[32h+l] as bits 4..5.
template <int C>
__attribute__((always_inline)) inline void BlockQ6K(const uint8_t* wb, const ActBlocks<C>& a,
                                                    __m256 (&acc)[C]) {
  const float d = LoadF16(wb + 208);
  const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(wb + 192));
  const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
  const __m256i offset = _mm256_mullo_epi16(sc16, _mm256_set1_epi16(-32));
  // Scales of sub-blocks 0..7 (h = 0) and 8..15 (h = 1) in both 128-bit lanes.
  const __m256i sc_half[2] = {_mm256_permute2x128_si256(sc16, sc16, 0x00),
                              _mm256_permute2x128_si256(sc16, sc16, 0x11)};
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  const __m256i top = _mm256_set1_epi8(0x30);
  __m256i s[C];
#pragma GCC unroll 4
  for (int c = 0; c < C; ++c) s[c] = _mm256_madd_epi16(a.bsum_w[c], offset);
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    const __m256i ql0 = Load256(wb + 64 * h), ql1 = Load256(wb + 64 * h + 32);
    const __m256i qh = Load256(wb + 128 + 32 * h);
    const __m256i q[4] = {_mm256_or_si256(_mm256_and_si256(ql0, nibble),
                                          _mm256_and_si256(_mm256_slli_epi16(qh, 4), top)),
                          _mm256_or_si256(_mm256_and_si256(ql1, nibble),
                                          _mm256_and_si256(_mm256_slli_epi16(qh, 2), top)),
                          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), nibble),
                                          _mm256_and_si256(qh, top)),
                          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), nibble),
                                          _mm256_and_si256(_mm256_srli_epi16(qh, 2), top))};
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
      // Elements 128h+32k .. +31: sub-blocks 8h+2k (int16 lanes 0..7, the low
      // 128 bits) and 8h+2k+1 (the high 128 bits).
      const __m256i idx = _mm256_setr_epi8(
          4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1,
          4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k + 2, 4 * k + 3, 4 * k + 2,
          4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2,
          4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3);
      const __m256i sc = _mm256_shuffle_epi8(sc_half[h], idx);
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) {
        const __m256i prod = _mm256_maddubs_epi16(q[k], Load256(a.q[c] + 128 * h + 32 * k));
        s[c] = _mm256_add_epi32(s[c], _mm256_madd_epi16(prod, sc));
      }
    }
  }
#pragma GCC unroll 4
  for (int c = 0; c < C; ++c) {
    acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[c]), _mm256_set1_ps(d * a.d[c]), acc[c]);
  }
}

enum class KType { kQ4, kQ5, kQ6 };

template <KType kType>
constexpr int kBlockBytes = kType == KType::kQ4 ? 144 : (kType == KType::kQ5 ? 176 : 210);

template <KType kType, int C>
void Tile(int64_t n, const uint8_t* w, int64_t w_stride, int rows, const uint8_t* act,
          int64_t act_stride, float* out, int64_t out_stride) {
  for (int r = 0; r < rows; ++r) {
    __m256 acc[C];
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / kQkK; ++b) {
      ActBlocks<C> a;
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) {
        const uint8_t* ab = act + c * act_stride + b * kActBlockBytes;
        a.q[c] = ab + kActQOffset;
        a.d[c] = LoadF32(ab);
        const __m256i bs = Load256(ab + kActBsumsOffset);
        if constexpr (kType == KType::kQ6) {
          a.bsum_w[c] = bs;
        } else {
          const __m256 pairs = _mm256_cvtepi32_ps(_mm256_madd_epi16(bs, _mm256_set1_epi16(1)));
          a.bsum_f[c] = _mm256_mul_ps(pairs, _mm256_set1_ps(a.d[c]));
        }
      }
      const uint8_t* wb = w + r * w_stride + b * kBlockBytes<kType>;
      if constexpr (kType == KType::kQ4) BlockQ45K<false, C>(wb, a, acc);
      if constexpr (kType == KType::kQ5) BlockQ45K<true, C>(wb, a, acc);
      if constexpr (kType == KType::kQ6) BlockQ6K<C>(wb, a, acc);
    }
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) out[c * out_stride + r] = HorizontalSum(acc[c]);
  }
}

using TileFn = void (*)(int64_t, const uint8_t*, int64_t, int, const uint8_t*, int64_t, float*,
                        int64_t);

template <KType kType, int... I>
constexpr std::array<TileFn, sizeof...(I)> MakeTiles(std::integer_sequence<int, I...>) {
  return {&Tile<kType, I + 1>...};
}

template <KType kType>
void DotTile(int64_t n, const uint8_t* w, int64_t w_stride, int rows, const uint8_t* act,
             int64_t act_stride, int cols, float* out, int64_t out_stride) {
  static constexpr std::array<TileFn, kMaxTileCols> kTiles =
      MakeTiles<kType>(std::make_integer_sequence<int, kMaxTileCols>());
  kTiles[cols - 1](n, w, w_stride, rows, act, act_stride, out, out_stride);
}

constexpr TypeKernels kQ4KKernels = {ActFormat::kQ8K, PrepareQ8K, DotTile<KType::kQ4>};
constexpr TypeKernels kQ5KKernels = {ActFormat::kQ8K, PrepareQ8K, DotTile<KType::kQ5>};
constexpr TypeKernels kQ6KKernels = {ActFormat::kQ8K, PrepareQ8K, DotTile<KType::kQ6>};

}  // namespace

const TypeKernels* Avx2KKernels(TensorType type) {
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

#else  // !defined(__x86_64__)

namespace xnai::engine::kernels {

const TypeKernels* Avx2KKernels(TensorType) { return nullptr; }

}  // namespace xnai::engine::kernels

#endif
