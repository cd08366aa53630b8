// AVX-512 (F/BW/VL/DQ + VNNI) kernels of the F32, F16, BF16, Q8_0 and Q4_0
// weight types (see kernels_internal.h); tested against kernels_scalar.cc.
//
// Quantized weights: one 512-bit register holds two consecutive 32-element
// blocks. vpdpbusd multiplies unsigned by signed bytes, so the weights are
// made unsigned with an offset (Q8_0: q + 128, by flipping the sign bit;
// Q4_0: the raw nibble, i.e. (q - 8) + 8) and the activations stay signed:
//   sum(q * a) = sum((q + offset) * a) - offset * sum(a).
// The correction offset * sum(a) depends only on the activation block, so it
// is computed once per activation row and block (another vpdpbusd) and used
// as the starting value of every weight row's dot product: the per-block
// integer sum is exact and equals the scalar reference's. Each block's sum is
// then scaled by d_w * d_a in float and accumulated per lane. (Q8_0 tiles of
// two or more columns swap the roles: activations + 128, weights signed, the
// correction -128 * sum(w) per weight row pair; see DotQuantTile.)
//
// Tiles with two or more activation rows (GEMM) fold the integer sums before
// any float work (see DotQuantTile): weight rows are loaded in pairs so that
// two vpdpbusd give two rows' sums in one vector, the row pairs and then
// column pairs are folded with in-lane shuffles, and one cvt + mul + fma
// scales 16 exact block sums. Per-(row, column) float scaling, as earlier,
// took about half the time. Measured alternatives that lost on Zen 4:
// folding the plain [A | B] layout with more shuffle levels (28 shuffles per
// step), a vpgatherdd for the weight scales, unrolling two steps. The
// single-row GEMV keeps the per-row scaling: it is bound by loads, and the
// row-pair layout's extra shuffles made it slower.
//
// Float tiles reduce their accumulators with a fold tree (SumEach) rather
// than one horizontal reduction per output: for attention's n = 128 rows the
// reductions were a large part of a call.
#include "engine/kernels_internal.h"

#if defined(__x86_64__)

// GCC 12's AVX-512 headers build "undefined" vectors from self-initialized
// variables, which -Wuninitialized reports once they are inlined here.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include <array>
#include <cstring>
#include <utility>

namespace xnai::engine::kernels {
namespace {

// The tile loops run over compile-time bounds; unrolled, their arrays of
// vectors become registers (GCC at -O2 would keep them on the stack).
#define XNAI_UNROLL _Pragma("GCC unroll 16")

constexpr int kBlock = 32;

// --- activation preparation ---------------------------------------------------

void PrepareF32(const float* x, void* act, int64_t n) {
  std::memcpy(act, x, static_cast<size_t>(n) * sizeof(float));
}

// The scalar QuantizeBlock's arithmetic, lane-parallel: the same IEEE
// divisions, clamp and round-to-nearest-even (cvtps2dq under the default
// MXCSR), so the blocks are byte-identical.
void QuantizeBlock(const float* x, BlockQ8* b) {
  const __m512 x0 = _mm512_loadu_ps(x);
  const __m512 x1 = _mm512_loadu_ps(x + 16);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
  const float d = amax / 127.0f;
  if (d == 0) {
    std::memset(b, 0, sizeof(*b));
    return;
  }
  const __m512 vd = _mm512_set1_ps(d);
  const __m512 lo = _mm512_set1_ps(-127.0f);
  const __m512 hi = _mm512_set1_ps(127.0f);
  const __m512i q0 =
      _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_div_ps(x0, vd), lo), hi));
  const __m512i q1 =
      _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_div_ps(x1, vd), lo), hi));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(b->q), _mm512_cvtepi32_epi8(q0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(b->q + 16), _mm512_cvtepi32_epi8(q1));
  const int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
  b->d = d;
  b->s = d * static_cast<float>(sum);
}

void PrepareQ8(const float* x, void* act, int64_t n) {
  auto* blocks = static_cast<BlockQ8*>(act);
  for (int64_t b = 0; b < n / kBlock; ++b) QuantizeBlock(x + b * kBlock, &blocks[b]);
}

// Weights stream from memory in a GEMV, and rows are too short (1 KiB for
// Q8_0 of 1024) for the hardware prefetcher to run far ahead of four
// interleaved streams. So each step prefetches (into L2) the same position
// of a row about kPrefetchBytes further down: a later tile of a MatMul
// walking down the matrix. Prefetches never fault, so reading past the
// matrix is harmless. 16 KiB measured best (8 KiB and 32 KiB lose ~10%).
constexpr int64_t kPrefetchBytes = 16 << 10;

// The prefetch distance of an R-row tile: whole rows, at least the tile.
template <int R>
inline int64_t PrefetchOffset(int64_t w_stride) {
  const int64_t rows = w_stride > 0 ? (kPrefetchBytes + w_stride - 1) / w_stride : R;
  return (rows > R ? rows : R) * w_stride;
}

inline void Prefetch(const uint8_t* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T1);
}

// Sums of 32-bit lanes within 128-bit lanes, two vectors at a time:
// [x0 + x1, x2 + x3, y0 + y1, y2 + y3] per 128-bit lane.
inline __m512 FoldPairsPs(__m512 x, __m512 y) {
  return _mm512_add_ps(_mm512_shuffle_ps(x, y, 0x88), _mm512_shuffle_ps(x, y, 0xdd));
}

// Sums of 128-bit lanes, two vectors at a time: [x0 + x1, x2 + x3, y0 + y1,
// y2 + y3] in 128-bit lanes.
inline __m512 FoldLanesPs(__m512 x, __m512 y) {
  return _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x88), _mm512_shuffle_f32x4(x, y, 0xdd));
}

// The horizontal sums of N <= 16 vectors in lanes 0..N-1 (the rest 0): a
// tree of folds (45 shuffles and adds for 16 vectors instead of 16
// reductions of 8 each).
template <int N>
inline __m512 SumEach(const __m512 (&v)[N]) {
  static_assert(N >= 1 && N <= 16);
  const __m512 zero = _mm512_setzero_ps();
  constexpr int kN1 = (N + 1) / 2, kN2 = (kN1 + 1) / 2, kN3 = (kN2 + 1) / 2;
  __m512 l1[kN1], l2[kN2], l3[kN3];
  XNAI_UNROLL
  for (int i = 0; i < kN1; ++i) l1[i] = FoldPairsPs(v[2 * i], 2 * i + 1 < N ? v[2 * i + 1] : zero);
  XNAI_UNROLL
  for (int i = 0; i < kN2; ++i) {
    l2[i] = FoldPairsPs(l1[2 * i], 2 * i + 1 < kN1 ? l1[2 * i + 1] : zero);
  }
  XNAI_UNROLL
  for (int i = 0; i < kN3; ++i) {
    l3[i] = FoldLanesPs(l2[2 * i], 2 * i + 1 < kN2 ? l2[2 * i + 1] : zero);
  }
  return FoldLanesPs(l3[0], kN3 > 1 ? l3[kN3 - 1] : zero);
}

// --- float activations ----------------------------------------------------------

// Loaders of 16 weights as floats; the masked form reads only the lanes in
// `mask` (the row's tail) and zeroes the rest.
struct F32Weights {
  static constexpr int kElemBytes = 4;
  static __m512 Load(const uint8_t* row, int64_t i) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + i);
  }
  static __m512 LoadMasked(const uint8_t* row, int64_t i, __mmask16 mask) {
    return _mm512_maskz_loadu_ps(mask, reinterpret_cast<const float*>(row) + i);
  }
};

struct F16Weights {
  static constexpr int kElemBytes = 2;
  static __m512 Load(const uint8_t* row, int64_t i) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * i)));
  }
  static __m512 LoadMasked(const uint8_t* row, int64_t i, __mmask16 mask) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, row + 2 * i));
  }
};

struct Bf16Weights {
  static constexpr int kElemBytes = 2;
  static __m512 Widen(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static __m512 Load(const uint8_t* row, int64_t i) {
    return Widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * i)));
  }
  static __m512 LoadMasked(const uint8_t* row, int64_t i, __mmask16 mask) {
    return Widen(_mm256_maskz_loadu_epi16(mask, row + 2 * i));
  }
};

// A rows x cols tile of float dot products. Small tiles use two sets of
// accumulators so that the FMA latency does not bound a GEMV.
template <class W, int R, int C>
void DotFloatTile(int64_t n, const uint8_t* w, int64_t w_stride, const uint8_t* act,
                  int64_t act_stride, float* out, int64_t out_stride) {
  constexpr int kSets = R * C <= 4 ? 2 : 1;
  __m512 acc[kSets][R][C];
  XNAI_UNROLL
  for (int s = 0; s < kSets; ++s) {
    XNAI_UNROLL
    for (int r = 0; r < R; ++r) {
      XNAI_UNROLL
      for (int c = 0; c < C; ++c) acc[s][r][c] = _mm512_setzero_ps();
    }
  }
  const float* x[C];
  XNAI_UNROLL
  for (int c = 0; c < C; ++c) x[c] = reinterpret_cast<const float*>(act + c * act_stride);

  const int64_t prefetch_offset = PrefetchOffset<R>(w_stride);
  int64_t i = 0;
  for (; i + 16 * kSets <= n; i += 16 * kSets) {
    XNAI_UNROLL
    for (int s = 0; s < kSets; ++s) {
      const int64_t j = i + 16 * s;
      __m512 wv[R];
      XNAI_UNROLL
      for (int r = 0; r < R; ++r) {
        wv[r] = W::Load(w + r * w_stride, j);
        Prefetch(w + r * w_stride + j * W::kElemBytes + prefetch_offset);
      }
      XNAI_UNROLL
      for (int c = 0; c < C; ++c) {
        const __m512 xv = _mm512_loadu_ps(x[c] + j);
        XNAI_UNROLL
        for (int r = 0; r < R; ++r) acc[s][r][c] = _mm512_fmadd_ps(wv[r], xv, acc[s][r][c]);
      }
    }
  }
  for (; i < n; i += 16) {
    const int64_t left = n - i;
    const __mmask16 mask = left >= 16 ? 0xffff : static_cast<__mmask16>((1u << left) - 1);
    __m512 wv[R];
    XNAI_UNROLL
    for (int r = 0; r < R; ++r) wv[r] = W::LoadMasked(w + r * w_stride, i, mask);
    XNAI_UNROLL
    for (int c = 0; c < C; ++c) {
      const __m512 xv = _mm512_maskz_loadu_ps(mask, x[c] + i);
      XNAI_UNROLL
      for (int r = 0; r < R; ++r) acc[0][r][c] = _mm512_fmadd_ps(wv[r], xv, acc[0][r][c]);
    }
  }
  __m512 sums[R * C];
  XNAI_UNROLL
  for (int r = 0; r < R; ++r) {
    XNAI_UNROLL
    for (int c = 0; c < C; ++c) {
      sums[c * R + r] = acc[0][r][c];
      if constexpr (kSets > 1) sums[c * R + r] = _mm512_add_ps(sums[c * R + r], acc[1][r][c]);
    }
  }
  alignas(64) float v[16];
  _mm512_store_ps(v, SumEach<R * C>(sums));
  XNAI_UNROLL
  for (int c = 0; c < C; ++c) {
    XNAI_UNROLL
    for (int r = 0; r < R; ++r) out[c * out_stride + r] = v[c * R + r];
  }
}

// --- quantized weights ------------------------------------------------------------

// A step of a quantized tile covers two blocks (A and B) of a row. Two
// weight rows (r0, r1) are loaded together as two vectors of 128-bit lanes
//   lo = [r0 A[0:16], r1 A[0:16], r0 B[0:16], r1 B[0:16]]
//   hi = [r0 A[16:32], r1 A[16:32], r0 B[16:32], r1 B[16:32]]
// and an activation row as the matching
//   lo = [A[0:16], A[0:16], B[0:16], B[0:16]],  hi = [A[16:32], ...],
// so that two vpdpbusd give [r0 A, r1 A, r0 B, r1 B] per 128-bit lane (four
// partial sums each): two rows' sums in one vector without any folding.

// Q8_0 block: f16 d | int8 q[32].
struct Q8_0Weights {
  static constexpr int kBytes = 34;
  static constexpr bool kSigned = true;  // the quants are int8 as stored
  static constexpr char kOffset = static_cast<char>(128);

  // kRows (1 or 2) rows at p0 and p0 + stride; kPair: blocks A and B, else A
  // only (B zero).
  template <int kRows, bool kPair>
  static void Load(const uint8_t* p0, int64_t stride, __m512i& lo, __m512i& hi) {
    const auto load = [](const uint8_t* p) {
      return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    };
    __m512i a = _mm512_castsi256_si512(load(p0 + 2));
    if constexpr (kRows == 2) {
      a = _mm512_inserti64x4(a, load(p0 + stride + 2), 1);
    } else {
      a = _mm512_zextsi256_si512(load(p0 + 2));
    }
    __m512i b = _mm512_setzero_si512();
    if constexpr (kPair) {
      b = _mm512_castsi256_si512(load(p0 + kBytes + 2));
      if constexpr (kRows == 2) {
        b = _mm512_inserti64x4(b, load(p0 + stride + kBytes + 2), 1);
      } else {
        b = _mm512_zextsi256_si512(load(p0 + kBytes + 2));
      }
    }
    lo = _mm512_shuffle_i64x2(a, b, 0x88);
    hi = _mm512_shuffle_i64x2(a, b, 0xdd);
  }

  // For the single-column tile: blocks at p and p + kBytes in the low and
  // high 256 bits (or p alone, zeros above), made unsigned (q + 128).
  static __m512i LoadPair(const uint8_t* p) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kBytes + 2));
    const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
    return _mm512_xor_si512(v, _mm512_set1_epi8(kOffset));
  }
  static __m512i LoadOne(const uint8_t* p) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
    return _mm512_zextsi256_si512(_mm256_xor_si256(a, _mm256_set1_epi8(kOffset)));
  }
};

// Q4_0 block: f16 d | u8 qs[16]; element j < 16 is the low nibble of qs[j],
// j + 16 the high one. Loads yield the raw nibbles (q - 8 plus an offset of 8).
struct Q4_0Weights {
  static constexpr int kBytes = 18;
  static constexpr bool kSigned = false;
  static constexpr char kOffset = 8;

  template <int kRows, bool kPair>
  static void Load(const uint8_t* p0, int64_t stride, __m512i& lo, __m512i& hi) {
    const auto load = [](const uint8_t* p) {
      return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    };
    __m512i x = _mm512_zextsi128_si512(load(p0 + 2));
    if constexpr (kRows == 2) x = _mm512_inserti32x4(x, load(p0 + stride + 2), 1);
    if constexpr (kPair) {
      x = _mm512_inserti32x4(x, load(p0 + kBytes + 2), 2);
      if constexpr (kRows == 2) x = _mm512_inserti32x4(x, load(p0 + stride + kBytes + 2), 3);
    }
    const __m512i mask = _mm512_set1_epi8(0x0f);
    lo = _mm512_and_si512(x, mask);
    hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), mask);
  }

  static __m512i LoadPair(const uint8_t* p) {
    // [A, A, B, B] in 128-bit lanes, then the odd lanes shifted down a nibble.
    const __m256i a =
        _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2)));
    const __m256i b = _mm256_broadcastsi128_si256(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + kBytes + 2)));
    __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
    v = _mm512_mask_srli_epi16(v, 0xff00ff00u, v, 4);
    return _mm512_and_si512(v, _mm512_set1_epi8(0x0f));
  }
  static __m512i LoadOne(const uint8_t* p) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
    const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(a), _mm_srli_epi16(a, 4), 1);
    return _mm512_zextsi256_si512(_mm256_and_si256(v, _mm256_set1_epi8(0x0f)));
  }
};

inline uint16_t LoadU16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return h;
}

// The f16 scales of blocks b and b + 1 of R rows as floats:
// [A r0..r3, B r0..r3]; rows past R (and block b + 1 when !kPair) are 0.
template <class W, int R, bool kPair>
inline __m256 PairWeightScales(const uint8_t* w, int64_t w_stride, int64_t b) {
  uint64_t lo = 0, hi = 0;
  XNAI_UNROLL
  for (int r = 0; r < R; ++r) {
    const uint8_t* p = w + r * w_stride + b * W::kBytes;
    lo |= static_cast<uint64_t>(LoadU16(p)) << (16 * r);
    if constexpr (kPair) hi |= static_cast<uint64_t>(LoadU16(p + W::kBytes)) << (16 * r);
  }
  return _mm256_cvtph_ps(_mm_set_epi64x(static_cast<int64_t>(hi), static_cast<int64_t>(lo)));
}

// An activation row's blocks b, b + 1 (or b alone) as lo / hi (see above).
template <bool kPair>
inline void LoadAct(const BlockQ8* ab, __m512i& lo, __m512i& hi) {
  const auto bcast = [](const int8_t* q) {
    return _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
  };
  if constexpr (kPair) {
    lo = _mm512_mask_blend_epi32(0xff00, bcast(ab[0].q), bcast(ab[1].q));
    hi = _mm512_mask_blend_epi32(0xff00, bcast(ab[0].q + 16), bcast(ab[1].q + 16));
  } else {
    lo = _mm512_maskz_mov_epi32(0x00ff, bcast(ab[0].q));
    hi = _mm512_maskz_mov_epi32(0x00ff, bcast(ab[0].q + 16));
  }
}

// Sums of x's and y's adjacent dword pairs within 128-bit lanes:
// [x0 + x1, x2 + x3, y0 + y1, y2 + y3] per lane.
inline __m512i FoldPairs(__m512i x, __m512i y) {
  const __m512 xf = _mm512_castsi512_ps(x), yf = _mm512_castsi512_ps(y);
  const __m512i even = _mm512_castps_si512(_mm512_shuffle_ps(xf, yf, 0x88));
  const __m512i odd = _mm512_castps_si512(_mm512_shuffle_ps(xf, yf, 0xdd));
  return _mm512_add_epi32(even, odd);
}

// The activation scales (d) of blocks b, b + 1 of rows x and y (b alone:
// B's are 0) at lanes [xA, xA, yA, yA, xA, xA, yA, yA, xB, xB, yB, yB, ...].
template <bool kPair>
inline __m512 ActScales(const BlockQ8* x, const BlockQ8* y) {
  const __m512 a = _mm512_mask_blend_ps(0xcccc, _mm512_set1_ps(x[0].d), _mm512_set1_ps(y[0].d));
  if constexpr (!kPair) return _mm512_maskz_mov_ps(0x00ff, a);
  const __m512 b = _mm512_mask_blend_ps(0xcccc, _mm512_set1_ps(x[1].d), _mm512_set1_ps(y[1].d));
  return _mm512_mask_blend_ps(0xff00, a, b);
}

// The single-column tile (GEMV), where the weights stream from memory and
// there is no second column to share the folding with: each row's two blocks
// in one vector ([A | B] halves), its sum scaled per lane by d_w * d_a. (The
// row-pair layout below measured slower here.)
inline __m512 HalfScales(float a, float b) {
  return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(a)), _mm256_set1_ps(b), 1);
}

template <class W, int R, bool kPair>
inline void GemvStep(const uint8_t* w, int64_t w_stride, int64_t prefetch_offset, const BlockQ8* a,
                     int64_t b, __m512 (&acc)[R]) {
  const __m512i offset = _mm512_set1_epi8(W::kOffset);
  __m512i wq[R];
  __m512 wd[R];
  XNAI_UNROLL
  for (int r = 0; r < R; ++r) {
    const uint8_t* p = w + r * w_stride + b * W::kBytes;
    Prefetch(p + prefetch_offset);
    if constexpr (2 * W::kBytes > 64) Prefetch(p + prefetch_offset + 2 * W::kBytes - 1);
    if constexpr (kPair) {
      wq[r] = W::LoadPair(p);
      const __m128i da = _mm_set1_epi16(static_cast<short>(LoadU16(p)));
      const __m128i db = _mm_set1_epi16(static_cast<short>(LoadU16(p + W::kBytes)));
      wd[r] = _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(da), db, 1));
    } else {
      wq[r] = W::LoadOne(p);
      wd[r] = _mm512_zextps256_ps512(_mm256_set1_ps(_cvtsh_ss(LoadU16(p))));
    }
  }
  const BlockQ8* ab = a + b;
  __m512i aq;
  __m512 ad;
  if constexpr (kPair) {
    aq = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ab[0].q))),
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ab[1].q)), 1);
    ad = HalfScales(ab[0].d, ab[1].d);
  } else {
    aq = _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ab[0].q)));
    ad = _mm512_zextps256_ps512(_mm256_set1_ps(ab[0].d));
  }
  // -offset * sum(a) per lane group: the start of every row's sum.
  const __m512i zero = _mm512_setzero_si512();
  const __m512i start = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, offset, aq));
  XNAI_UNROLL
  for (int r = 0; r < R; ++r) {
    const __m512i sum = _mm512_dpbusd_epi32(start, wq[r], aq);
    acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(wd[r], ad), acc[r]);
  }
}

template <class W, int R>
void DotQuantGemv(int64_t n, const uint8_t* w, int64_t w_stride, const uint8_t* act, float* out) {
  const int64_t blocks = n / kBlock;
  const BlockQ8* a = reinterpret_cast<const BlockQ8*>(act);
  __m512 acc[R];
  XNAI_UNROLL
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  const int64_t prefetch_offset = PrefetchOffset<R>(w_stride);
  int64_t b = 0;
  for (; b + 2 <= blocks; b += 2) GemvStep<W, R, true>(w, w_stride, prefetch_offset, a, b, acc);
  if (b < blocks) GemvStep<W, R, false>(w, w_stride, prefetch_offset, a, b, acc);
  const __m512 sums = SumEach<R>(acc);
  alignas(64) float v[16];
  _mm512_store_ps(v, sums);
  XNAI_UNROLL
  for (int r = 0; r < R; ++r) out[r] = v[r];
}

// A rows x cols tile of quantized dot products. Per step and column, the
// row pairs' vectors (see above) are folded once more, (r0 r1) with (r2 r3):
//   [r0 A, r0 A, r2 A, r2 A | r1 A .. r3 A | r0 B .. r2 B | r1 B .. r3 B],
// and two columns' results once more into one vector of 16 distinct sums:
//   [c0 r0, c0 r2, c1 r0, c1 r2] A | [.. r1, .. r3] A | the same for B.
// All are exact integer (partial) block sums; one cvt + fma per two
// columns (or one odd column) scales them by d_w * d_a lanes made with one
// multiply. The offset of the unsigned operand of vpdpbusd is removed
// exactly through the start value of each sum: -offset * sum(activation
// quants) per column, or for Q8_0 with two columns or more (where the
// activations are made unsigned instead), -128 * sum(weight quants) per row
// pair.
template <class W, int R, int C>
void DotQuantTile(int64_t n, const uint8_t* w, int64_t w_stride, const uint8_t* act,
                  int64_t act_stride, float* out, int64_t out_stride) {
  constexpr int kRowPairs = (R + 1) / 2;
  constexpr int kColPairs = C / 2;
  constexpr bool kOddCol = C % 2 != 0;
  // Which side of vpdpbusd carries the offset.
  constexpr bool kActUnsigned = W::kSigned && C >= 2;
  if constexpr (C == 1) {
    DotQuantGemv<W, R>(n, w, w_stride, act, out);
    return;
  }
  const int64_t blocks = n / kBlock;
  const BlockQ8* a[C];
  XNAI_UNROLL
  for (int c = 0; c < C; ++c) a[c] = reinterpret_cast<const BlockQ8*>(act + c * act_stride);
  __m512 acc[kColPairs + 1];
  XNAI_UNROLL
  for (int i = 0; i <= kColPairs; ++i) acc[i] = _mm512_setzero_ps();
  const int64_t prefetch_offset = PrefetchOffset<R>(w_stride);
  const __m512i offset = _mm512_set1_epi8(W::kOffset);
  const __m512i zero = _mm512_setzero_si512();
  // Scale lane orders (indices into [A r0..r3, B r0..r3]).
  const __m512i pair_order = _mm512_setr_epi32(0, 2, 0, 2, 1, 3, 1, 3, 4, 6, 4, 6, 5, 7, 5, 7);
  const __m512i single_order = _mm512_setr_epi32(0, 0, 2, 2, 1, 1, 3, 3, 4, 4, 6, 6, 5, 5, 7, 7);

  auto step = [&]<bool kPair>(int64_t b) {
    __m512i wlo[kRowPairs], whi[kRowPairs], wstart[kRowPairs];
    XNAI_UNROLL
    for (int k = 0; k < kRowPairs; ++k) {
      const uint8_t* p = w + 2 * k * w_stride + b * W::kBytes;
      XNAI_UNROLL
      for (int j = 0; j < 2; ++j) {
        if (2 * k + j >= R) break;
        const uint8_t* q = p + j * w_stride;
        Prefetch(q + prefetch_offset);
        // A Q8_0 pair spans 68 bytes: its last line may not be the first's.
        if constexpr (2 * W::kBytes > 64) Prefetch(q + prefetch_offset + 2 * W::kBytes - 1);
      }
      if (2 * k + 1 < R) {
        W::template Load<2, kPair>(p, w_stride, wlo[k], whi[k]);
      } else {
        W::template Load<1, kPair>(p, w_stride, wlo[k], whi[k]);
      }
      if constexpr (kActUnsigned) {
        wstart[k] = _mm512_sub_epi32(
            zero, _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, offset, wlo[k]), offset, whi[k]));
      } else if constexpr (W::kSigned) {
        wlo[k] = _mm512_xor_si512(wlo[k], offset);
        whi[k] = _mm512_xor_si512(whi[k], offset);
      }
    }
    const __m256 wd = PairWeightScales<W, R, kPair>(w, w_stride, b);
    __m512i folded[C];
    XNAI_UNROLL
    for (int c = 0; c < C; ++c) {
      __m512i alo, ahi;
      LoadAct<kPair>(a[c] + b, alo, ahi);
      __m512i start;
      if constexpr (kActUnsigned) {
        alo = _mm512_xor_si512(alo, offset);
        ahi = _mm512_xor_si512(ahi, offset);
      } else {
        start = _mm512_sub_epi32(
            zero, _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, offset, alo), offset, ahi));
      }
      __m512i sum[2] = {zero, zero};
      XNAI_UNROLL
      for (int k = 0; k < kRowPairs; ++k) {
        if constexpr (kActUnsigned) {
          sum[k] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(wstart[k], alo, wlo[k]), ahi, whi[k]);
        } else {
          sum[k] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(start, wlo[k], alo), whi[k], ahi);
        }
      }
      folded[c] = FoldPairs(sum[0], sum[1]);
    }
    const __m512 wd16 = _mm512_castps256_ps512(wd);
    XNAI_UNROLL
    for (int i = 0; i < kColPairs; ++i) {
      const __m512 scale = _mm512_mul_ps(_mm512_permutexvar_ps(pair_order, wd16),
                                         ActScales<kPair>(a[2 * i] + b, a[2 * i + 1] + b));
      const __m512i sums = FoldPairs(folded[2 * i], folded[2 * i + 1]);
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), scale, acc[i]);
    }
    if constexpr (kOddCol) {
      const __m512 scale = _mm512_mul_ps(_mm512_permutexvar_ps(single_order, wd16),
                                         ActScales<kPair>(a[C - 1] + b, a[C - 1] + b));
      acc[kColPairs] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(folded[C - 1]), scale, acc[kColPairs]);
    }
  };
  int64_t b = 0;
  for (; b + 2 <= blocks; b += 2) step.template operator()<true>(b);
  if (b < blocks) step.template operator()<false>(b);

  // Blocks A and B added: [even rows | odd rows] of the layouts above.
  const auto halves = [](__m512 v) {
    alignas(32) float g[8];
    _mm256_store_ps(g, _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
    return std::to_array(g);
  };
  XNAI_UNROLL
  for (int i = 0; i < kColPairs; ++i) {
    const auto g = halves(acc[i]);
    float* o0 = out + (2 * i) * out_stride;
    float* o1 = o0 + out_stride;
    const float v0[4] = {g[0], g[4], g[1], g[5]};
    const float v1[4] = {g[2], g[6], g[3], g[7]};
    XNAI_UNROLL
    for (int r = 0; r < R; ++r) {
      o0[r] = v0[r];
      o1[r] = v1[r];
    }
  }
  if constexpr (kOddCol) {
    const auto g = halves(acc[kColPairs]);
    const float v[4] = {g[0] + g[1], g[4] + g[5], g[2] + g[3], g[6] + g[7]};
    float* o = out + (C - 1) * out_stride;
    XNAI_UNROLL
    for (int r = 0; r < R; ++r) o[r] = v[r];
  }
}

// --- dispatch on the tile shape -----------------------------------------------------

using TileFn = void (*)(int64_t, const uint8_t*, int64_t, const uint8_t*, int64_t, float*, int64_t);

template <template <class, int, int> class Tile, class W>
struct TileTable {
  template <int... I>
  static constexpr auto Make(std::integer_sequence<int, I...>) {
    return std::array<TileFn, sizeof...(I)>{
        &Tile<W, I / kMaxTileCols + 1, I % kMaxTileCols + 1>::Run...};
  }
  static constexpr auto kFns = Make(std::make_integer_sequence<int, kMaxTileRows * kMaxTileCols>());

  static void Dot(int64_t n, const uint8_t* w, int64_t w_stride, int rows, const uint8_t* act,
                  int64_t act_stride, int cols, float* out, int64_t out_stride) {
    kFns[(rows - 1) * kMaxTileCols + (cols - 1)](n, w, w_stride, act, act_stride, out, out_stride);
  }
};

template <class W, int R, int C>
struct FloatTile {
  static void Run(int64_t n, const uint8_t* w, int64_t ws, const uint8_t* act, int64_t as,
                  float* out, int64_t os) {
    DotFloatTile<W, R, C>(n, w, ws, act, as, out, os);
  }
};

template <class W, int R, int C>
struct QuantTile {
  static void Run(int64_t n, const uint8_t* w, int64_t ws, const uint8_t* act, int64_t as,
                  float* out, int64_t os) {
    DotQuantTile<W, R, C>(n, w, ws, act, as, out, os);
  }
};

constexpr TypeKernels kF32Kernels = {ActFormat::kF32, PrepareF32,
                                     TileTable<FloatTile, F32Weights>::Dot};
constexpr TypeKernels kF16Kernels = {ActFormat::kF32, PrepareF32,
                                     TileTable<FloatTile, F16Weights>::Dot};
constexpr TypeKernels kBf16Kernels = {ActFormat::kF32, PrepareF32,
                                      TileTable<FloatTile, Bf16Weights>::Dot};
constexpr TypeKernels kQ8_0Kernels = {ActFormat::kQ8, PrepareQ8,
                                      TileTable<QuantTile, Q8_0Weights>::Dot};
constexpr TypeKernels kQ4_0Kernels = {ActFormat::kQ8, PrepareQ8,
                                      TileTable<QuantTile, Q4_0Weights>::Dot};

}  // namespace

const TypeKernels* Avx512Kernels(TensorType type) {
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

#else  // !defined(__x86_64__)

namespace xnai::engine::kernels {

const TypeKernels* Avx512Kernels(TensorType type) { return nullptr; }

}  // namespace xnai::engine::kernels

#endif
