// AVX2 + FMA + F16C kernels of the F32, F16, BF16, Q8_0 and Q4_0 weight types
// (see kernels_internal.h); tested against kernels_scalar.cc. No AVX-512.
//
// Quantized weights: one 256-bit register holds one 32-element block and
// vpmaddubsw multiplies unsigned by signed bytes into pairwise int16 sums,
// then vpmaddwd sums those into int32 lanes. The operands are made to fit:
//   Q8_0: |w| as the unsigned operand and the activation with w's sign
//         applied (vpsignb); |w| <= 128 and |a| <= 127, so a pair is at most
//         2 * 128 * 127 = 32512 and never saturates.
//   Q4_0: the raw nibble q (0..15) as the unsigned operand; the offset of 8 is
//         removed per int16 pair with 8 * (a0 + a1), computed once per
//         activation block: |pair| <= 2 * 15 * 127 + 2 * 8 * 127, no saturation.
// So each block's integer sum is exact (equal to the scalar reference's) and
// is scaled by d_w * d_a in float.
//
// Tiles: AVX2 has 16 vector registers, so a float tile with more than 8
// outputs is computed as column slices of at most 8 (e.g. 4 x 4 as two
// 4 x 2); the weight rows are then read once per slice (from cache after the
// first). Quantized tiles of two or more columns are computed whole, with
// each weight block loaded (and |w| computed) once for all columns, and the
// integer block sums folded before the float work: four (row, column) sums
// per 128-bit half with unpack + add (vphaddd is slower on Zen 4), then one
// cvt + fma per four outputs (see DotQuantTileFolded). On a (noisy) Zen 4
// that took a 4 x 4 tile from about 35 to about 45 GMAC/s (Q8_0) and from
// about 32 to about 41 (Q4_0). The single-column GEMV tiles keep the
// per-(row, column) scaling.
#include "engine/kernels_internal.h"

#if defined(__x86_64__)

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

inline uint16_t LoadU16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return h;
}

inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// --- activation preparation ---------------------------------------------------

void PrepareF32(const float* x, void* act, int64_t n) {
  std::memcpy(act, x, static_cast<size_t>(n) * sizeof(float));
}

// The scalar QuantizeBlock's arithmetic, lane-parallel: the same IEEE
// divisions, clamp and round-to-nearest-even (cvtps2dq under the default
// MXCSR), so the blocks are byte-identical.
void QuantizeBlock(const float* x, BlockQ8* b) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 v[4];
  XNAI_UNROLL
  for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(x + 8 * k);
  const __m256 m =
      _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v[0], abs_mask), _mm256_and_ps(v[1], abs_mask)),
                    _mm256_max_ps(_mm256_and_ps(v[2], abs_mask), _mm256_and_ps(v[3], abs_mask)));
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  const float d = _mm_cvtss_f32(m4) / 127.0f;
  if (d == 0) {
    std::memset(b, 0, sizeof(*b));
    return;
  }
  const __m256 vd = _mm256_set1_ps(d);
  const __m256 lo = _mm256_set1_ps(-127.0f);
  const __m256 hi = _mm256_set1_ps(127.0f);
  __m256i q[4];
  XNAI_UNROLL
  for (int k = 0; k < 4; ++k) {
    q[k] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_div_ps(v[k], vd), lo), hi));
  }
  // The packs work within 128-bit lanes; the permute restores element order.
  const __m256i packed =
      _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
  const __m256i ordered =
      _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(b->q), ordered);
  const __m256i s8 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
  __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
  b->d = d;
  b->s = d * static_cast<float>(_mm_cvtsi128_si32(s4));
}

void PrepareQ8(const float* x, void* act, int64_t n) {
  auto* blocks = static_cast<BlockQ8*>(act);
  for (int64_t b = 0; b < n / kBlock; ++b) QuantizeBlock(x + b * kBlock, &blocks[b]);
}

// Weights stream from memory in a GEMV, and rows are too short (1 KiB for
// Q8_0 of 1024) for the hardware prefetcher to run far ahead of several
// interleaved streams. So each step prefetches (into L2) the same position
// of a row about kPrefetchBytes further down: a later tile of a MatMul
// walking down the matrix. Prefetches never fault, so reading past the
// matrix is harmless.
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

// --- float activations ----------------------------------------------------------

// Loaders of 8 weights as floats, and of one (for the row's tail).
struct F32Weights {
  static constexpr int kElemBytes = 4;
  static __m256 Load(const uint8_t* row, int64_t i) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + i);
  }
  static float Get(const uint8_t* row, int64_t i) {
    float v;
    std::memcpy(&v, row + 4 * i, 4);
    return v;
  }
};

struct F16Weights {
  static constexpr int kElemBytes = 2;
  static __m256 Load(const uint8_t* row, int64_t i) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i)));
  }
  static float Get(const uint8_t* row, int64_t i) { return _cvtsh_ss(LoadU16(row + 2 * i)); }
};

struct Bf16Weights {
  static constexpr int kElemBytes = 2;
  static __m256 Load(const uint8_t* row, int64_t i) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static float Get(const uint8_t* row, int64_t i) {
    const uint32_t bits = static_cast<uint32_t>(LoadU16(row + 2 * i)) << 16;
    float v;
    std::memcpy(&v, &bits, 4);
    return v;
  }
};

// A rows x cols tile (R * C <= 8) of float dot products. Small tiles use two
// sets of accumulators so that the FMA latency does not bound a GEMV.
template <class W, int R, int C>
void DotFloatTile(int64_t n, const uint8_t* w, int64_t w_stride, const uint8_t* act,
                  int64_t act_stride, float* out, int64_t out_stride) {
  static_assert(R * C <= 8);
  constexpr int kSets = R * C <= 4 ? 2 : 1;
  __m256 acc[kSets][R][C];
  XNAI_UNROLL
  for (int s = 0; s < kSets; ++s) {
    XNAI_UNROLL
    for (int r = 0; r < R; ++r) {
      XNAI_UNROLL
      for (int c = 0; c < C; ++c) acc[s][r][c] = _mm256_setzero_ps();
    }
  }
  const float* x[C];
  XNAI_UNROLL
  for (int c = 0; c < C; ++c) x[c] = reinterpret_cast<const float*>(act + c * act_stride);

  const int64_t prefetch_offset = PrefetchOffset<R>(w_stride);
  int64_t i = 0;
  for (; i + 8 * kSets <= n; i += 8 * kSets) {
    XNAI_UNROLL
    for (int s = 0; s < kSets; ++s) {
      const int64_t j = i + 8 * s;
      __m256 wv[R];
      XNAI_UNROLL
      for (int r = 0; r < R; ++r) {
        wv[r] = W::Load(w + r * w_stride, j);
        // One prefetch per 64 bytes of a row.
        const int64_t at = j * W::kElemBytes;
        if (at % 64 == 0) Prefetch(w + r * w_stride + at + prefetch_offset);
      }
      XNAI_UNROLL
      for (int c = 0; c < C; ++c) {
        const __m256 xv = _mm256_loadu_ps(x[c] + j);
        XNAI_UNROLL
        for (int r = 0; r < R; ++r) acc[s][r][c] = _mm256_fmadd_ps(wv[r], xv, acc[s][r][c]);
      }
    }
  }
  for (; i + 8 <= n; i += 8) {
    __m256 wv[R];
    XNAI_UNROLL
    for (int r = 0; r < R; ++r) wv[r] = W::Load(w + r * w_stride, i);
    XNAI_UNROLL
    for (int c = 0; c < C; ++c) {
      const __m256 xv = _mm256_loadu_ps(x[c] + i);
      XNAI_UNROLL
      for (int r = 0; r < R; ++r) acc[0][r][c] = _mm256_fmadd_ps(wv[r], xv, acc[0][r][c]);
    }
  }
  XNAI_UNROLL
  for (int r = 0; r < R; ++r) {
    XNAI_UNROLL
    for (int c = 0; c < C; ++c) {
      __m256 sum = acc[0][r][c];
      if constexpr (kSets > 1) sum = _mm256_add_ps(sum, acc[1][r][c]);
      float total = HorizontalSum(sum);
      for (int64_t j = i; j < n; ++j) total += W::Get(w + r * w_stride, j) * x[c][j];
      out[c * out_stride + r] = total;
    }
  }
}

// --- quantized weights ------------------------------------------------------------

// Q8_0 block: f16 d | int8 q[32].
struct Q8_0Weights {
  static constexpr int kBytes = 34;
  static constexpr bool kSignTrick = true;
  static __m256i Load(const uint8_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
  }
};

// Q4_0 block: f16 d | u8 qs[16]; element j < 16 is the low nibble of qs[j],
// j + 16 the high one. Loads yield the raw nibbles.
struct Q4_0Weights {
  static constexpr int kBytes = 18;
  static constexpr bool kSignTrick = false;
  static __m256i Load(const uint8_t* p) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
    const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(a), _mm_srli_epi16(a, 4), 1);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
  }
};

// A rows x cols tile (R * C <= 8) of quantized dot products, one block per
// step.
template <class W, int R, int C>
void DotQuantTile(int64_t n, const uint8_t* w, int64_t w_stride, const uint8_t* act,
                  int64_t act_stride, float* out, int64_t out_stride) {
  static_assert(R * C <= 8);
  const int64_t blocks = n / kBlock;
  const BlockQ8* a[C];
  XNAI_UNROLL
  for (int c = 0; c < C; ++c) a[c] = reinterpret_cast<const BlockQ8*>(act + c * act_stride);
  __m256 acc[R][C];
  XNAI_UNROLL
  for (int r = 0; r < R; ++r) {
    XNAI_UNROLL
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  }
  const __m256i ones16 = _mm256_set1_epi16(1);
  const int64_t prefetch_offset = PrefetchOffset<R>(w_stride);
  for (int64_t b = 0; b < blocks; ++b) {
    __m256i wq[R], wu[R];
    __m256 wd[R];
    XNAI_UNROLL
    for (int r = 0; r < R; ++r) {
      const uint8_t* p = w + r * w_stride + b * W::kBytes;
      Prefetch(p + prefetch_offset);
      wq[r] = W::Load(p);
      if constexpr (W::kSignTrick) wu[r] = _mm256_abs_epi8(wq[r]);
      wd[r] = _mm256_set1_ps(_cvtsh_ss(LoadU16(p)));
    }
    XNAI_UNROLL
    for (int c = 0; c < C; ++c) {
      const BlockQ8* ab = a[c] + b;
      const __m256i aq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ab->q));
      const __m256 ad = _mm256_broadcast_ss(&ab->d);
      __m256i corr;
      if constexpr (!W::kSignTrick) corr = _mm256_maddubs_epi16(_mm256_set1_epi8(8), aq);
      XNAI_UNROLL
      for (int r = 0; r < R; ++r) {
        __m256i pairs;
        if constexpr (W::kSignTrick) {
          pairs = _mm256_maddubs_epi16(wu[r], _mm256_sign_epi8(aq, wq[r]));
        } else {
          pairs = _mm256_sub_epi16(_mm256_maddubs_epi16(wq[r], aq), corr);
        }
        const __m256i sum = _mm256_madd_epi16(pairs, ones16);
        acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_mul_ps(wd[r], ad), acc[r][c]);
      }
    }
  }
  XNAI_UNROLL
  for (int r = 0; r < R; ++r) {
    XNAI_UNROLL
    for (int c = 0; c < C; ++c) out[c * out_stride + r] = HorizontalSum(acc[r][c]);
  }
}

// Per 128-bit half: the sums of the four lanes of s0, s1, s2 and s3, in that
// order (what two levels of vphaddd give, with single-uop shuffles).
inline __m256i Fold4(__m256i s0, __m256i s1, __m256i s2, __m256i s3) {
  const __m256i t01 =
      _mm256_add_epi32(_mm256_unpacklo_epi32(s0, s1), _mm256_unpackhi_epi32(s0, s1));
  const __m256i t23 =
      _mm256_add_epi32(_mm256_unpacklo_epi32(s2, s3), _mm256_unpackhi_epi32(s2, s3));
  return _mm256_add_epi32(_mm256_unpacklo_epi64(t01, t23), _mm256_unpackhi_epi64(t01, t23));
}

// The d_w[r] * d_a[c] lanes of each group G of DotQuantTileFolded: output
// k = 4 G + j (j = lane % 4) is row k / kCols, column k % kCols; dw8 holds
// [d_w[0..3] | d_w[0..3]] and da8 the columns' d_a in the group's order.
template <int R, int kCols, int G>
inline __m256 GroupScale(__m256 dw8, __m256 da8) {
  constexpr auto row = [](int j) {
    const int r = (4 * G + j) / kCols;
    return r < R ? r : R - 1;
  };
  constexpr int kImm = row(0) | row(1) << 2 | row(2) << 4 | row(3) << 6;
  return _mm256_mul_ps(_mm256_permute_ps(dw8, kImm), da8);
}

// A rows x cols tile (cols >= 2) of quantized dot products whose integer
// block sums are folded before any float work. Output k = r * kCols + c
// (kCols = cols rounded up to 2 or 4) has lane k % 4 of group k / 4 in both
// 128-bit halves: per block, each (row, column) pair gives 8 int32 partial
// sums (vpmaddwd), and Fold4 turns a group's four into exact sums of the
// block's two 16-element halves. One cvt + fma per group then scales them by
// d_w[r] * d_a[c] lanes (one vpermilps of the weight scales and one
// multiply), and the two halves are added at the end. (Adding the halves per
// block as well, with vperm2i128, gave no speed and a larger float rounding
// error when block sums cancel.) Missing outputs (3 rows or 3 columns)
// repeat a computed vector and are not stored. Groups are processed one at
// a time (their weight rows loaded there), which keeps every accumulator in
// a register.
template <class W, int R, int C>
void DotQuantTileFolded(int64_t n, const uint8_t* w, int64_t w_stride, const uint8_t* act,
                        int64_t act_stride, float* out, int64_t out_stride) {
  static_assert(C >= 2 && C <= 4 && R >= 1 && R <= 4);
  constexpr int kCols = C == 3 ? 4 : C;
  constexpr int kOuts = R * kCols;
  constexpr int kGroups = (kOuts + 3) / 4;
  const int64_t blocks = n / kBlock;
  const BlockQ8* a[C];
  XNAI_UNROLL
  for (int c = 0; c < C; ++c) a[c] = reinterpret_cast<const BlockQ8*>(act + c * act_stride);
  __m256 acc[kGroups];
  XNAI_UNROLL
  for (int f = 0; f < kGroups; ++f) acc[f] = _mm256_setzero_ps();
  const __m256i ones16 = _mm256_set1_epi16(1);
  const int64_t prefetch_offset = PrefetchOffset<R>(w_stride);
  for (int64_t b = 0; b < blocks; ++b) {
    // Scales: the f16 weight scales in one conversion; [d_w | d_w] and the
    // activation scales in group order [d_a | d_a], combined per group.
    uint64_t halves = 0;
    XNAI_UNROLL
    for (int r = 0; r < R; ++r) {
      halves |= static_cast<uint64_t>(LoadU16(w + r * w_stride + b * W::kBytes)) << (16 * r);
    }
    const __m128 dw4 = _mm_cvtph_ps(_mm_cvtsi64_si128(static_cast<long long>(halves)));
    const __m256 dw8 = _mm256_set_m128(dw4, dw4);
    __m128 da4 = _mm_setr_ps(a[0][b].d, a[1][b].d, C > 2 ? a[C > 2 ? 2 : 0][b].d : 0.0f,
                             C > 3 ? a[C > 3 ? 3 : 0][b].d : 0.0f);
    if constexpr (kCols == 2) da4 = _mm_movelh_ps(da4, da4);
    const __m256 da8 = _mm256_set_m128(da4, da4);
    __m256i aq[C], corr[C];
    XNAI_UNROLL
    for (int c = 0; c < C; ++c) {
      aq[c] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[c][b].q));
      if constexpr (!W::kSignTrick) corr[c] = _mm256_maddubs_epi16(_mm256_set1_epi8(8), aq[c]);
    }
    // One group: its weight rows (one or two, loaded here), four products,
    // the fold and the scaling, so that little stays live across groups.
    auto group = [&]<int G>() {
      constexpr int kRow0 = 4 * G / kCols;
      __m256i wq[4 / kCols], wu[4 / kCols];
      XNAI_UNROLL
      for (int j = 0; j < 4 / kCols; ++j) {
        if (kRow0 + j >= R) break;
        const uint8_t* p = w + (kRow0 + j) * w_stride + b * W::kBytes;
        Prefetch(p + prefetch_offset);
        wq[j] = W::Load(p);
        if constexpr (W::kSignTrick) wu[j] = _mm256_abs_epi8(wq[j]);
      }
      __m256i s[4];
      XNAI_UNROLL
      for (int i = 0; i < 4; ++i) {
        const int k = 4 * G + i;
        const int r = k / kCols, c = k % kCols;
        if (r >= R || c >= C) {
          s[i] = s[i & 1 ? i - 1 : 0];
          continue;
        }
        const int j = r - kRow0;
        __m256i pairs;
        if constexpr (W::kSignTrick) {
          pairs = _mm256_maddubs_epi16(wu[j], _mm256_sign_epi8(aq[c], wq[j]));
        } else {
          pairs = _mm256_sub_epi16(_mm256_maddubs_epi16(wq[j], aq[c]), corr[c]);
        }
        s[i] = _mm256_madd_epi16(pairs, ones16);
      }
      const __m256i sums = Fold4(s[0], s[1], s[2], s[3]);
      acc[G] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), GroupScale<R, kCols, G>(dw8, da8), acc[G]);
    };
    [&]<int... G>(std::integer_sequence<int, G...>) { (group.template operator()<G>(), ...); }
    (std::make_integer_sequence<int, kGroups>());
  }
  alignas(16) float lanes[kGroups * 4];
  XNAI_UNROLL
  for (int f = 0; f < kGroups; ++f) {
    _mm_store_ps(lanes + 4 * f,
                 _mm_add_ps(_mm256_castps256_ps128(acc[f]), _mm256_extractf128_ps(acc[f], 1)));
  }
  for (int k = 0; k < kOuts; ++k) {
    if (k % kCols < C) out[(k % kCols) * out_stride + k / kCols] = lanes[k];
  }
}

// --- dispatch on the tile shape -----------------------------------------------------

using TileFn = void (*)(int64_t, const uint8_t*, int64_t, const uint8_t*, int64_t, float*, int64_t);

// Runs a R x C tile as column slices of at most 8 / R columns.
template <template <class, int, int> class Tile, class W, int R, int C>
void Sliced(int64_t n, const uint8_t* w, int64_t ws, const uint8_t* act, int64_t as, float* out,
            int64_t os) {
  constexpr int kMaxCols = Tile<W, R, 1>::kMaxCols;
  constexpr int kSlice = C <= kMaxCols ? C : kMaxCols;
  Tile<W, R, kSlice>::Run(n, w, ws, act, as, out, os);
  if constexpr (C > kSlice) {
    Sliced<Tile, W, R, C - kSlice>(n, w, ws, act + kSlice * as, as, out + kSlice * os, os);
  }
}

template <template <class, int, int> class Tile, class W>
struct TileTable {
  template <int... I>
  static constexpr auto Make(std::integer_sequence<int, I...>) {
    return std::array<TileFn, sizeof...(I)>{
        &Sliced<Tile, W, I / kMaxTileCols + 1, I % kMaxTileCols + 1>...};
  }
  static constexpr auto kFns = Make(std::make_integer_sequence<int, kMaxTileRows * kMaxTileCols>());

  static void Dot(int64_t n, const uint8_t* w, int64_t w_stride, int rows, const uint8_t* act,
                  int64_t act_stride, int cols, float* out, int64_t out_stride) {
    kFns[(rows - 1) * kMaxTileCols + (cols - 1)](n, w, w_stride, act, act_stride, out, out_stride);
  }
};

template <class W, int R, int C>
struct FloatTile {
  static constexpr int kMaxCols = 8 / R;
  static void Run(int64_t n, const uint8_t* w, int64_t ws, const uint8_t* act, int64_t as,
                  float* out, int64_t os) {
    DotFloatTile<W, R, C>(n, w, ws, act, as, out, os);
  }
};

template <class W, int R, int C>
struct QuantTile {
  static constexpr int kMaxCols = kMaxTileCols;
  static void Run(int64_t n, const uint8_t* w, int64_t ws, const uint8_t* act, int64_t as,
                  float* out, int64_t os) {
    if constexpr (C == 1) {
      DotQuantTile<W, R, C>(n, w, ws, act, as, out, os);
    } else {
      DotQuantTileFolded<W, R, C>(n, w, ws, act, as, out, os);
    }
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

const TypeKernels* Avx2Kernels(TensorType type) {
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

const TypeKernels* Avx2Kernels(TensorType type) { return nullptr; }

}  // namespace xnai::engine::kernels

#endif
