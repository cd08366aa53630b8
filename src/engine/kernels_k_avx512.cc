// AVX-512 (F/BW/VL/DQ + VNNI) kernels of the K-quant weight types (Q4_K,
// Q5_K, Q6_K) on Q8_K activation rows; the scalar kernels in
// kernels_k_scalar.cc are the reference (see kernels_internal.h).
//
// Per 256-element block and weight row, the quants are unpacked once into four
// zmm registers of unsigned bytes laid out like the activation bytes (64
// consecutive elements each), then reused for every activation column of the
// tile. Per (row, column): vpdpbusd (u8 weights x s8 activations) sums 4
// products per int32 lane; those sums fit in int16 (4 * 63 * 127 < 2^15), so
// two vectors are packed to int16 and multiplied by the sub-block scales with
// vpmaddwd / vpdpwssd, giving an int32 vector whose lanes add up to
// sum_j sc_j * sum(q*a over sub-block j), exactly. It is converted to float
// and multiplied by d*da once per block. Per block and tile, the Q4_K/Q5_K
// scales and mins of all rows are decoded together in one vector, and the
// mins term of every (row, column) pair is computed in integers (int16 mins
// times int16 bsums pair sums) and scaled once; Q6_K's -32 offset is folded
// into the integer sum through bsums.
//
// All tiles interleave their rows per block (independent dependency chains,
// and one activation block serves all rows) and prefetch in software: wider
// tiles the next tile's rows, matrix-vector tiles two tiles ahead to L2 and
// 1 KiB ahead to L1 (see Tile).
#include "engine/kernels_internal.h"

#if defined(__x86_64__)

#include <immintrin.h>

#include <array>
#include <cstddef>
#include <cstring>
#include <utility>

// GCC 12's AVX-512 intrinsics (the zero-extending casts, permutes, etc.)
// start from an undefined vector that it then reports as uninitialized.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

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

// --- activation quantizer ---------------------------------------------------------

// Byte-identical to the scalar PrepareQ8K: the maximum is exact in any order,
// x / d is a correctly rounded division on both, and the rounding is
// explicitly to nearest even (not the MXCSR mode).
void PrepareQ8K(const float* x, void* act, int64_t n) {
  uint8_t* dst = static_cast<uint8_t*>(act);
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  for (int64_t b = 0; b < n / kQkK; ++b) {
    const float* xb = x + b * kQkK;
    uint8_t* out = dst + b * kActBlockBytes;
    __m512 mx = _mm512_setzero_ps();
    for (int i = 0; i < kQkK; i += 16) {
      mx = _mm512_max_ps(mx, _mm512_and_ps(_mm512_loadu_ps(xb + i), abs_mask));
    }
    const float amax = _mm512_reduce_max_ps(mx);
    const float d = amax / 127.0f;
    std::memcpy(out, &d, 4);
    if (d == 0) {
      std::memset(out + 4, 0, kActBlockBytes - 4);
      continue;
    }
    const __m512 vd = _mm512_set1_ps(d);
    const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
    int16_t bsums[16];
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) {
      const __m512 v = _mm512_div_ps(_mm512_loadu_ps(xb + 16 * j), vd);
      __m512i q = _mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      q = _mm512_min_epi32(_mm512_max_epi32(q, lo), hi);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + kActQOffset + 16 * j),
                       _mm512_cvtepi32_epi8(q));
      bsums[j] = static_cast<int16_t>(_mm512_reduce_add_epi32(q));
    }
    std::memcpy(out + kActBsumsOffset, bsums, sizeof(bsums));
  }
}
// --- weight unpacking -------------------------------------------------------------

enum class KType { kQ4, kQ5, kQ6 };

template <KType kType>
constexpr int kBlockBytes = kType == KType::kQ4 ? 144 : (kType == KType::kQ5 ? 176 : 210);

// One weight block of one row, ready for products with any activation block.
struct RowBlock {
  __m512i q[4];   // unsigned quants of elements 64k .. 64k+63
  __m512i sc[2];  // int16 scales for the packed dot products of q[2p], q[2p+1]
  __m512i off;    // Q6_K: -32 * sc_s as int16 in lanes 0..15, zero above
};

// The dot products are summed in int32 lanes by vpdpbusd, 4 elements each,
// and two such vectors (quants k = 2p and 2p+1) are then packed to int16 with
// vpackssdw: in 128-bit lane i, words 0..3 come from dword lanes 4i..4i+3
// of the first, words 4..7 from those of the second. These give, for each
// word, the sub-block whose scale multiplies it (Q4_K/Q5_K: 32 elements, 8
// dword lanes per sub-block; Q6_K: 16 elements, 4 dword lanes).
constexpr int PackedSubBlock(bool q6, int p, int lane, int word) {
  const int first = word < 4 ? 0 : 1;  // which of the two packed vectors
  const int k = 2 * p + first;         // its quants q[k], elements 64k..64k+63
  const int dword = 4 * lane + word % 4;
  return q6 ? (64 * k + 4 * dword) / 16 : (64 * k + 4 * dword) / 32;
}

// vpermw indices (Q4_K/Q5_K): word -> scale word of a row pair's decoded
// scales (see DecodeScales: row 2t's scales are words 0..7, row 2t+1's words
// 16..23), for the even [0] and odd [1] row of the pair.
struct Q45ScalePermute {
  alignas(64) int16_t words[2][2][32];
  constexpr Q45ScalePermute() : words() {
    for (int odd = 0; odd < 2; ++odd) {
      for (int p = 0; p < 2; ++p) {
        for (int i = 0; i < 32; ++i) {
          words[odd][p][i] =
              static_cast<int16_t>(16 * odd + PackedSubBlock(false, p, i / 8, i % 8));
        }
      }
    }
  }
};
constexpr Q45ScalePermute kQ45ScalePermute;

// vpermw indices (Q6_K): word -> scale word.
struct Q6ScalePermute {
  alignas(64) int16_t words[2][32];
  constexpr Q6ScalePermute() : words() {
    for (int p = 0; p < 2; ++p) {
      for (int i = 0; i < 32; ++i) {
        words[p][i] = static_cast<int16_t>(PackedSubBlock(true, p, i / 8, i % 8));
      }
    }
  }
};
constexpr Q6ScalePermute kQ6ScalePermute;

// The 6-bit scales and mins of R Q4_K/Q5_K rows' blocks (layout in
// quants.h), decoded together: 128-bit lane r holds row r's sc_0..7 in bytes
// 0..7 and m_0..7 in bytes 8..15. From the 12 packed bytes s_0..11:
//   sc_j = s_j & 63, m_j = s_{j+4} & 63                          (j < 4)
//   sc_j = (s_{j+4} & 15) | (s_{j-4} >> 6) << 4,
//   m_j = (s_{j+4} >> 4) | (s_j >> 6) << 4                       (j >= 4)
template <int R>
__attribute__((always_inline)) inline __m512i DecodeScales(const uint8_t* s, int64_t stride) {
  __m512i x = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s)));
#pragma GCC unroll 4
  for (int r = 1; r < R; ++r) {
    x = _mm512_inserti32x4(x, _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + r * stride)), r);
  }
  // Dwords [s0..3, s8..11, s4..7, s8..11] (low bits; the last shifted by 4)
  // and [-, s0..3, -, s4..7] (the top two bits, to bits 4..5).
  const __m512i lo_idx =
      _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
  const __m512i hi_idx =
      _mm512_broadcast_i32x4(_mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
  __m512i lo = _mm512_srlv_epi32(_mm512_shuffle_epi8(x, lo_idx),
                                 _mm512_broadcast_i32x4(_mm_setr_epi32(0, 0, 0, 4)));
  lo = _mm512_and_si512(
      lo, _mm512_broadcast_i32x4(_mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f)));
  const __m512i hi = _mm512_srli_epi32(_mm512_shuffle_epi8(x, hi_idx), 2);
  return _mm512_ternarylogic_epi32(
      hi, _mm512_broadcast_i32x4(_mm_setr_epi32(0, 0x30303030, 0, 0x30303030)), lo, 0xea);
}

// Unpacks the quants of a Q4_K/Q5_K block to element order. Bytes
// 32k..32k+31 of qs hold elements 64k+l (low nibbles) and 64k+32+l (high
// nibbles): broadcast them to both halves and shift the upper half's qwords
// by 4.
template <bool kFiveBit>
__attribute__((always_inline)) inline void UnpackQ45KQuants(const uint8_t* blk, RowBlock* rb) {
  const uint8_t* qs = blk + (kFiveBit ? 48 : 16);
  const __m512i shift = _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0);
  const __m512i nibble = _mm512_set1_epi8(0x0f);
  __m512i qh;
  if constexpr (kFiveBit) {
    qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16)));
  }
#pragma GCC unroll 16
  for (int k = 0; k < 4; ++k) {
    const __m512i packed =
        _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * k)));
    __m512i q = _mm512_and_si512(_mm512_srlv_epi64(packed, shift), nibble);
    if constexpr (kFiveBit) {
      // The fifth bit of element 64k+l is bit 2k of qh[l], of 64k+32+l bit 2k+1.
      const __m512i sel =
          _mm512_mask_blend_epi64(0xf0, _mm512_set1_epi8(static_cast<char>(1 << (2 * k))),
                                  _mm512_set1_epi8(static_cast<char>(1 << (2 * k + 1))));
      const __mmask64 set = _mm512_test_epi8_mask(qh, sel);
      q = _mm512_mask_add_epi8(q, set, q, _mm512_set1_epi8(16));
    }
    rb->q[k] = q;
  }
}

// Q6_K: elements 128h+32k+l take the low nibble of ql[64h+l+32(k&1)] (high
// nibble for k >= 2) and bits 2k..2k+1 of qh[32h+l] as bits 4..5.
__attribute__((always_inline)) inline void UnpackQ6K(const uint8_t* blk, RowBlock* rb) {
  const __m256i sc16 =
      _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 192)));
  const __m512i scz = _mm512_zextsi256_si512(sc16);
#pragma GCC unroll 16
  for (int p = 0; p < 2; ++p) {
    rb->sc[p] = _mm512_permutexvar_epi16(_mm512_load_si512(kQ6ScalePermute.words[p]), scz);
  }
  rb->off = _mm512_zextsi256_si512(_mm256_mullo_epi16(sc16, _mm256_set1_epi16(-32)));
  const __m512i nibble = _mm512_set1_epi8(0x0f);
  const __m512i top = _mm512_set1_epi8(0x30);
  // Per 16-bit word shifts that bring bits 2k..2k+1 of qh to bits 4..5: k = 0
  // and 1 (left by 4 and 2) for the first register of a half, k = 2 and 3
  // (right by 0 and 2) for the second. Bits shifted across the byte boundary
  // of a word land outside 4..5 and are masked off.
  const __m512i left = _mm512_mask_blend_epi64(0xf0, _mm512_set1_epi16(4), _mm512_set1_epi16(2));
  const __m512i right = _mm512_mask_blend_epi64(0xf0, _mm512_setzero_si512(), _mm512_set1_epi16(2));
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    const __m512i ql = _mm512_loadu_si512(blk + 64 * h);
    const __m512i qh = _mm512_broadcast_i64x4(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * h)));
    const __m512i hi01 = _mm512_and_si512(_mm512_sllv_epi16(qh, left), top);
    const __m512i hi23 = _mm512_and_si512(_mm512_srlv_epi16(qh, right), top);
    rb->q[2 * h] = _mm512_ternarylogic_epi32(ql, nibble, hi01, 0xea);  // (ql & 0x0f) | hi
    rb->q[2 * h + 1] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(ql, 4), nibble, hi23, 0xea);
  }
}

// --- tiles ------------------------------------------------------------------------

// Prefetches the cache lines of a block (one more than its size in lines,
// for a block that straddles line boundaries; prefetches never fault).
template <int kBytes>
__attribute__((always_inline)) inline void PrefetchBlock(const uint8_t* p) {
#pragma GCC unroll 8
  for (int i = 0; i < kBytes; i += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(p + i), _MM_HINT_T0);
  }
  _mm_prefetch(reinterpret_cast<const char*>(p + kBytes - 1), _MM_HINT_T0);
}

// Lane layouts of the per-block vectors of R weight blocks by C activation
// blocks. Lane L = r*C + c is (weight block r, activation block c) of the
// d*da factors and, for C > 1, of the mins sums; for C = 1 the mins sums of
// weight block r are in lanes 4r..4r+3. With kDiag (C = 1), weight block r
// pairs with activation block r instead of 0. Plain integers (loaded where
// used), so that no AVX-512 code runs at static initialization.
template <int C, bool kDiag>
struct TileIndex {
  alignas(64) int32_t d_row[16];   // lane -> (d, dmin) pair of its row: 2 * row
  alignas(64) int32_t d6_row[16];  // Q6_K: lane -> d of its row
  alignas(64) int32_t col[16];     // lane -> column
  alignas(64) int32_t m_row[16];   // lane -> dmin of its row in the mins layout
  alignas(64) int32_t m_col[16];   // lane -> column in the mins layout
  alignas(64) int32_t a[4][16];    // C > 1: lane -> dword k of its row's mins words
  alignas(64) int32_t b[4][16];    // C > 1: lane -> dword k of its column's pair sums
  constexpr TileIndex() : d_row(), d6_row(), col(), m_row(), m_col(), a(), b() {
    for (int i = 0; i < 16; ++i) {
      d_row[i] = 2 * (i / C);
      d6_row[i] = i / C;
      col[i] = kDiag ? i : i % C;
      m_row[i] = 2 * (C == 1 ? i / 4 : i / C) + 1;
      m_col[i] = kDiag ? i / 4 : (C == 1 ? 0 : i % C);
      for (int k = 0; k < 4; ++k) {
        a[k][i] = (4 * (i / C) + k) % 16;
        b[k][i] = (4 * (i % C) + k) % 16;
      }
    }
  }
};
template <int C, bool kDiag>
constexpr TileIndex<C, kDiag> kTileIndex;

// Matrix-vector prefetch distances (see Tile).
constexpr int kPrefetchTiles = 2;
constexpr int kPrefetchBytes = 1024;

// Adds the products of R weight blocks (w_stride bytes apart) with C
// activation blocks (a_stride bytes apart) to acc[r][c] (16 partial sums
// each) and the Q4_K/Q5_K mins terms to accm (to be subtracted; lanes as in
// TileIndex). With kDiag, C = 1 and weight block r pairs with activation
// block r.
//
// Per call: the d*da factors of all (row, column) pairs in one vector; for
// Q4_K/Q5_K the scales and mins of all R blocks decoded together, and the
// mins term of all pairs in integers (vpmaddwd of the int16 mins with the
// int16 pair sums of bsums) converted and scaled once; then per weight block
// the quants unpacked once and, per column, four vpdpbusd, the scales applied
// with vpmaddwd / vpdpwssd on the sums packed to int16, one conversion and
// one FMA.
template <KType kType, int R, int C, bool kDiag>
__attribute__((always_inline)) inline void AccumulateBlocks(const uint8_t* wb, int64_t w_stride,
                                                            const uint8_t* ab, int64_t a_stride,
                                                            __m512 (&acc)[R][C], __m512& accm) {
  static_assert(!kDiag || C == 1);
  constexpr bool kQ6 = kType == KType::kQ6;
  constexpr int kA = kDiag ? R : C;  // activation blocks read
  const TileIndex<C, kDiag>& idx = kTileIndex<C, kDiag>;
  // Factors: d (Q6_K) or (d, dmin) pairs of the rows, da of the columns.
  __m128i dh = _mm_setzero_si128();
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    if constexpr (kQ6) {
      uint16_t h;
      std::memcpy(&h, wb + r * w_stride + 208, 2);
      dh = _mm_insert_epi16(dh, h, r);
    } else {
      dh = _mm_insert_epi32(dh, static_cast<int>(LoadU32(wb + r * w_stride)), r);
    }
  }
  __m128 da4 = _mm_setzero_ps();
#pragma GCC unroll 4
  for (int c = 0; c < kA; ++c) {
    const __m128 v = _mm_set_ss(LoadF32(ab + c * a_stride));
    da4 = c == 0 ? v : _mm_insert_ps(da4, v, c << 4);
  }
  const __m512 dw = _mm512_zextps256_ps512(_mm256_cvtph_ps(dh));
  const __m512 da = _mm512_zextps128_ps512(da4);
  const __m512 ddv =
      _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_load_si512(kQ6 ? idx.d6_row : idx.d_row), dw),
                    _mm512_permutexvar_ps(_mm512_load_si512(idx.col), da));
  // For tiles of several columns (and Q4_K) from memory: each FMA then takes
  // its factor as a broadcast load instead of a permute on the vector pipes
  // (measured: faster there, slower for the Q5_K/Q6_K matrix-vector tiles).
  constexpr bool kDdInMemory = C > 1 || kType == KType::kQ4;
  alignas(64) float dd[16];
  if constexpr (kDdInMemory) {
    _mm512_store_ps(dd, ddv);
    asm("" : "+m"(dd));
  }

  __m512i sm;          // Q4_K/Q5_K: decoded scales and mins
  __m512i bsum_w[kA];  // Q6_K: bsums as int16 lanes 0..15
  if constexpr (kQ6) {
#pragma GCC unroll 4
    for (int c = 0; c < kA; ++c) {
      bsum_w[c] = _mm512_zextsi256_si512(_mm256_loadu_si256(
          reinterpret_cast<const __m256i*>(ab + c * a_stride + kActBsumsOffset)));
    }
  } else {
    sm = DecodeScales<R>(wb + 4, w_stride);
    // The mins of row r as int16 words 8r..8r+7, and the pair sums
    // bsums[2j] + bsums[2j+1] (at most 32 * 127 in magnitude) of activation
    // block c as int16 words 8c..8c+7 (C = 1 without kDiag: in every lane).
    const __m512i mw = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(
        _mm512_permutexvar_epi64(_mm512_set_epi64(7, 7, 7, 7, 7, 5, 3, 1), sm)));
    __m512i pw;
#pragma GCC unroll 4
    for (int c = 0; c < kA; ++c) {
      const __m256i bs =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ab + c * a_stride + kActBsumsOffset));
      // (vpackssdw, exact here, rather than vpmovdw: measured much faster.)
      const __m256i pr = _mm256_madd_epi16(bs, _mm256_set1_epi16(1));
      const __m128i pairs =
          _mm_packs_epi32(_mm256_castsi256_si128(pr), _mm256_extracti128_si256(pr, 1));
      if constexpr (kA == 1) {
        pw = _mm512_broadcast_i32x4(pairs);
      } else {
        pw = c == 0 ? _mm512_zextsi128_si512(pairs) : _mm512_inserti32x4(pw, pairs, c);
      }
    }
    __m512i mi;
    if constexpr (C == 1) {
      mi = _mm512_madd_epi16(mw, pw);  // row r in lanes 4r..4r+3
    } else {
      mi = _mm512_setzero_si512();
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
        mi = _mm512_dpwssd_epi32(mi, _mm512_permutexvar_epi32(_mm512_load_si512(idx.a[k]), mw),
                                 _mm512_permutexvar_epi32(_mm512_load_si512(idx.b[k]), pw));
      }
    }
    const __m512 fm = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_load_si512(idx.m_row), dw),
                                    _mm512_permutexvar_ps(_mm512_load_si512(idx.m_col), da));
    accm = _mm512_fmadd_ps(_mm512_cvtepi32_ps(mi), fm, accm);
  }
  __m512i smw[2];
  if constexpr (!kQ6) {
    smw[0] = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(sm));
    if constexpr (R > 2) smw[1] = _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(sm, 1));
  }

#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    const uint8_t* wr = wb + r * w_stride;
    RowBlock rb;
    if constexpr (kQ6) {
      UnpackQ6K(wr, &rb);
    } else {
      UnpackQ45KQuants<kType == KType::kQ5>(wr, &rb);
#pragma GCC unroll 2
      for (int p = 0; p < 2; ++p) {
        rb.sc[p] = _mm512_permutexvar_epi16(_mm512_load_si512(kQ45ScalePermute.words[r & 1][p]),
                                            smw[r >> 1]);
      }
    }
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      const int a = kDiag ? r : c;
      const uint8_t* aq = ab + a * a_stride + kActQOffset;
      // Per 4 elements in int32 (at most 4 * 63 * 127 < 2^15, so the
      // packing to int16 is exact), then times the scales in pairs.
      __m512i dot[4];
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
        dot[k] =
            _mm512_dpbusd_epi32(_mm512_setzero_si512(), rb.q[k], _mm512_loadu_si512(aq + 64 * k));
      }
      __m512i s = _mm512_madd_epi16(_mm512_packs_epi32(dot[0], dot[1]), rb.sc[0]);
      s = _mm512_dpwssd_epi32(s, _mm512_packs_epi32(dot[2], dot[3]), rb.sc[1]);
      if constexpr (kQ6) s = _mm512_dpwssd_epi32(s, bsum_w[a], rb.off);
      acc[r][c] =
          _mm512_fmadd_ps(_mm512_cvtepi32_ps(s),
                          kDdInMemory ? _mm512_set1_ps(dd[r * C + c])
                                      : _mm512_permutexvar_ps(_mm512_set1_epi32(r * C + c), ddv),
                          acc[r][c]);
    }
  }
}

// The sum of the mins terms in accm (lanes as in TileIndex) of (row r, column c).
template <int C>
inline float MinsOf(const float* mins, int r, int c) {
  return C == 1 ? (mins[4 * r] + mins[4 * r + 1]) + (mins[4 * r + 2] + mins[4 * r + 3])
                : mins[r * C + c];
}

template <KType kType, int R, int C>
void Tile(int64_t n, const uint8_t* w, int64_t w_stride, const uint8_t* act, int64_t act_stride,
          float* out, int64_t out_stride) {
  constexpr int kB = kBlockBytes<kType>;
  {
    __m512 acc[R][C];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
    }
    __m512 accm = _mm512_setzero_ps();
    const int64_t nb = n / kQkK;
    if constexpr (C == 1) {
      // Matrix-vector: the rows of a tile are read interleaved, which the
      // hardware prefetchers follow poorly from DRAM. Two tiles down (where
      // the caller walks a matrix tile by tile) to L2 now, and below, block
      // by block, the bytes kPrefetchBytes ahead (as one ascending stream:
      // the rows of a matrix are usually contiguous) to L1.
      const uint8_t* p = w + kPrefetchTiles * R * w_stride;
      for (int64_t i = 0; i < R * w_stride; i += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(p + i), _MM_HINT_T1);
      }
    }
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* wb = w + b * kB;
      // The weights of the next tile down (where the caller walks a matrix
      // tile by tile), so that they are in L1 when it starts.
      if constexpr (C > 1) {
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) PrefetchBlock<kB>(wb + (r + R) * w_stride);
      } else {
        const uint8_t* p = w + kPrefetchBytes + b * (R * kB);
#pragma GCC unroll 16
        for (int i = 0; i < R * kB; i += 64) {
          _mm_prefetch(reinterpret_cast<const char*>(p + i), _MM_HINT_T0);
        }
      }
      AccumulateBlocks<kType, R, C, false>(wb, w_stride, act + b * kActBlockBytes, act_stride, acc,
                                           accm);
    }
    if constexpr (R == 4 && C > 1) {
      // Per column, the four row sums at once: halves, then quarters of the
      // four accumulators added so that 128-bit lane r holds row r's partial
      // sums, then added within lanes (lane 4r: row r), and the mins terms
      // (lane r*C + c) subtracted.
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) {
        const __m512 a01 = _mm512_add_ps(_mm512_shuffle_f32x4(acc[0][c], acc[1][c], 0x44),
                                         _mm512_shuffle_f32x4(acc[0][c], acc[1][c], 0xee));
        const __m512 a23 = _mm512_add_ps(_mm512_shuffle_f32x4(acc[2][c], acc[3][c], 0x44),
                                         _mm512_shuffle_f32x4(acc[2][c], acc[3][c], 0xee));
        __m512 v = _mm512_add_ps(_mm512_shuffle_f32x4(a01, a23, 0x88),
                                 _mm512_shuffle_f32x4(a01, a23, 0xdd));
        v = _mm512_add_ps(v, _mm512_permute_ps(v, 0x4e));
        v = _mm512_add_ps(v, _mm512_permute_ps(v, 0xb1));
        __m128 sums = _mm512_castps512_ps128(
            _mm512_permutexvar_ps(_mm512_castsi128_si512(_mm_setr_epi32(0, 4, 8, 12)), v));
        if constexpr (kType != KType::kQ6) {
          sums = _mm_sub_ps(
              sums,
              _mm512_castps512_ps128(_mm512_permutexvar_ps(
                  _mm512_castsi128_si512(_mm_setr_epi32(c, C + c, 2 * C + c, 3 * C + c)), accm)));
        }
        _mm_storeu_ps(out + c * out_stride, sums);
      }
      return;
    }
    alignas(64) float mins[16];
    _mm512_store_ps(mins, accm);
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        float v = _mm512_reduce_add_ps(acc[r][c]);
        if constexpr (kType != KType::kQ6) v -= MinsOf<C>(mins, r, c);
        out[c * out_stride + r] = v;
      }
    }
  }
}

using TileFn = void (*)(int64_t, const uint8_t*, int64_t, const uint8_t*, int64_t, float*, int64_t);

template <KType kType, int... I>
constexpr std::array<TileFn, sizeof...(I)> MakeTiles(std::integer_sequence<int, I...>) {
  return {&Tile<kType, I / kMaxTileCols + 1, I % kMaxTileCols + 1>...};
}

template <KType kType>
void DotTile(int64_t n, const uint8_t* w, int64_t w_stride, int rows, const uint8_t* act,
             int64_t act_stride, int cols, float* out, int64_t out_stride) {
  static constexpr std::array<TileFn, kMaxTileRows* kMaxTileCols> kTiles =
      MakeTiles<kType>(std::make_integer_sequence<int, kMaxTileRows * kMaxTileCols>());
  kTiles[(rows - 1) * kMaxTileCols + (cols - 1)](n, w, w_stride, act, act_stride, out, out_stride);
}

constexpr TypeKernels kQ4KKernels = {ActFormat::kQ8K, PrepareQ8K, DotTile<KType::kQ4>};
constexpr TypeKernels kQ5KKernels = {ActFormat::kQ8K, PrepareQ8K, DotTile<KType::kQ5>};
constexpr TypeKernels kQ6KKernels = {ActFormat::kQ8K, PrepareQ8K, DotTile<KType::kQ6>};

}  // namespace

const TypeKernels* Avx512KKernels(TensorType type) {
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

const TypeKernels* Avx512KKernels(TensorType) { return nullptr; }

}  // namespace xnai::engine::kernels

#endif
