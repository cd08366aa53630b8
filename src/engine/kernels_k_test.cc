// Kernels of the Q4_K, Q5_K and Q6_K weight types on every CPU path
// against the scalar reference (see kernels_internal.h), and the scalar
// reference against the float oracle DotRow (quants.h).
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/fp16.h"
#include "engine/kernels.h"
#include "engine/kernels_internal.h"
#include "engine/quants.h"

namespace xnai::engine {
namespace {

using kernels::ActFormat;
using kernels::BlockQ8K;
using kernels::kMaxTileCols;
using kernels::kMaxTileRows;
using kernels::TypeKernels;

constexpr TensorType kKTypes[] = {TensorType::kQ4_K, TensorType::kQ5_K, TensorType::kQ6_K};
constexpr int64_t kLengths[] = {256, 512, 1024, 4096};

// How the weight blocks are made.
enum class WeightMode {
  kQuantized,    // QuantizeRow of random floats
  kRandomBytes,  // random quants and scales, fixed sane d / dmin
  kMaxScales,    // every scale and min 63 (Q6_K: +127 / -128), extreme quants
};

// How the activation rows are made.
enum class ActMode {
  kRandom,   // mixed magnitudes per block
  kZeros,    // all zero: d = 0 blocks
  kOneHuge,  // one element 1e4 times the rest per row
};

std::string Describe(TensorType type, WeightMode wm, ActMode am, int64_t n) {
  return std::string(GetTypeTraits(type).name) + " weights " +
         std::to_string(static_cast<int>(wm)) + " acts " + std::to_string(static_cast<int>(am)) +
         " n " + std::to_string(n);
}

void SetF16(uint8_t* p, float f) {
  const uint16_t h = F32ToF16(f);
  std::memcpy(p, &h, 2);
}

// A 4 x n weight matrix with rows `stride` bytes apart (more than a row), at
// an odd address so that kernels cannot rely on alignment.
struct Weights {
  std::vector<uint8_t> storage;
  const uint8_t* data = nullptr;
  int64_t stride = 0;
};

Weights MakeWeights(TensorType type, int64_t n, WeightMode mode, std::mt19937& rng) {
  const TensorTypeTraits traits = GetTypeTraits(type);
  const int64_t row_bytes = n / traits.block_elems * traits.block_bytes;
  Weights w;
  w.stride = row_bytes + 37;
  w.storage.assign(static_cast<size_t>(w.stride * kMaxTileRows + 1), 0);
  uint8_t* base = w.storage.data() + 1;
  w.data = base;
  std::uniform_int_distribution<int> byte(0, 255);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int r = 0; r < kMaxTileRows; ++r) {
    uint8_t* row = base + r * w.stride;
    if (mode == WeightMode::kQuantized) {
      std::vector<float> x(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        // A per-32 offset and magnitude change, so that mins and scales vary.
        const float scale = 0.02f * (1.0f + static_cast<float>((i / 32) % 5));
        x[static_cast<size_t>(i)] = scale * normal(rng) + 0.01f * static_cast<float>((i / 32) % 3);
      }
      EXPECT_TRUE(QuantizeRow(type, x.data(), row, n).ok());
      continue;
    }
    for (int64_t i = 0; i < row_bytes; ++i) row[i] = static_cast<uint8_t>(byte(rng));
    for (int64_t b = 0; b < n / 256; ++b) {
      uint8_t* blk = row + b * traits.block_bytes;
      if (type == TensorType::kQ6_K) {
        SetF16(blk + 208, 0.0013f * static_cast<float>(1 + b % 3));
        if (mode == WeightMode::kMaxScales) {
          for (int s = 0; s < 16; ++s) blk[192 + s] = (s + r) % 2 ? 0x80 : 0x7f;  // -128 / +127
          std::memset(blk, (b + r) % 2 ? 0xff : 0x00, 192);  // q = 63 or 0 (= -32)
        }
      } else {
        SetF16(blk, 0.0021f * static_cast<float>(1 + b % 3));
        SetF16(blk + 2, 0.0037f);
        if (mode == WeightMode::kMaxScales) {
          std::memset(blk + 4, 0xff, 12);  // every scale and min 63
          if ((b + r) % 2) std::memset(blk + 16, 0xff, traits.block_bytes - 16);  // q at max
        }
      }
    }
  }
  return w;
}

// kMaxTileCols rows of n floats.
std::vector<float> MakeActivations(int64_t n, ActMode mode, std::mt19937& rng) {
  std::vector<float> x(static_cast<size_t>(n * kMaxTileCols), 0.0f);
  if (mode == ActMode::kZeros) return x;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t i = 0; i < n * kMaxTileCols; ++i) {
    x[static_cast<size_t>(i)] = normal(rng) * std::exp2(static_cast<float>((i / 256) % 7) - 3);
  }
  if (mode == ActMode::kOneHuge) {
    for (int c = 0; c < kMaxTileCols; ++c) x[static_cast<size_t>(c * n + (37 * c + 11) % n)] = 1e4f;
  }
  return x;
}

// Prepared rows act_stride bytes apart (more than a row), at an address that
// is only 4-byte aligned.
struct Acts {
  std::vector<uint8_t> storage;
  const uint8_t* data = nullptr;
  int64_t stride = 0;
};

Acts Prepare(const TypeKernels& k, const std::vector<float>& x, int64_t n) {
  Acts a;
  a.stride = kernels::ActRowBytes(k.act_format, n) + 20;
  a.storage.assign(static_cast<size_t>(a.stride * kMaxTileCols + 68), 0xcd);
  uint8_t* base = a.storage.data() + 4;
  for (int c = 0; c < kMaxTileCols; ++c) k.prepare_act(x.data() + c * n, base + c * a.stride, n);
  a.data = base;
  return a;
}

BlockQ8K LoadBlock(const uint8_t* p) {
  BlockQ8K b;
  std::memcpy(&b, p, sizeof(b));
  return b;
}

// Per element, the magnitude of the terms a kernel adds up for it (the
// kernels sum d*sc*q*a and dmin*m*a separately, so cancellation between them
// can make these larger than |w|): |d| sc q + |dmin| m for Q4_K/Q5_K, |w|
// for Q6_K.
std::vector<float> TermMagnitudes(TensorType type, const uint8_t* row, int64_t n) {
  const TensorTypeTraits traits = GetTypeTraits(type);
  std::vector<uint8_t> copy(row, row + n / 256 * traits.block_bytes);
  if (type != TensorType::kQ6_K) {
    for (int64_t b = 0; b < n / 256; ++b) {
      uint8_t* blk = copy.data() + b * traits.block_bytes;
      blk[1] &= 0x7f;  // d >= 0
      blk[3] |= 0x80;  // dmin <= 0, so that d*sc*q - dmin*m adds magnitudes
    }
  }
  std::vector<float> mag(static_cast<size_t>(n));
  EXPECT_TRUE(DequantizeRow(type, copy.data(), mag.data(), n).ok());
  for (float& m : mag) m = std::fabs(m);
  return mag;
}

// The dequantized values of a prepared activation row.
std::vector<float> DequantAct(const uint8_t* act, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t b = 0; b < n / 256; ++b) {
    const BlockQ8K blk = LoadBlock(act + b * static_cast<int64_t>(sizeof(BlockQ8K)));
    for (int i = 0; i < 256; ++i) v[static_cast<size_t>(b * 256 + i)] = blk.d * blk.q[i];
  }
  return v;
}

// Runs dot_tile on the top-left rows x cols of the 4 x 4 problem; out has
// stride out_stride and sentinel values outside the tile, which must survive.
std::vector<float> RunTile(const TypeKernels& k, int64_t n, const Weights& w, const Acts& a,
                           int rows, int cols) {
  constexpr int64_t kOutStride = 7;
  std::vector<float> out(static_cast<size_t>(kOutStride * kMaxTileCols), -12345.0f);
  k.dot_tile(n, w.data, w.stride, rows, a.data, a.stride, cols, out.data(), kOutStride);
  for (int c = 0; c < kMaxTileCols; ++c) {
    for (int r = 0; r < kOutStride; ++r) {
      if (c >= cols || r >= rows) {
        EXPECT_EQ(out[static_cast<size_t>(c * kOutStride + r)], -12345.0f)
            << "wrote outside the tile at col " << c << " row " << r;
      }
    }
  }
  std::vector<float> tile(static_cast<size_t>(rows * cols));
  for (int c = 0; c < cols; ++c) {
    for (int r = 0; r < rows; ++r) {
      tile[static_cast<size_t>(c * rows + r)] = out[static_cast<size_t>(c * kOutStride + r)];
    }
  }
  return tile;
}

template <typename Fn>
void ForEveryCase(Fn fn) {
  std::mt19937 rng(20240607);
  for (TensorType type : kKTypes) {
    for (int64_t n : kLengths) {
      for (WeightMode wm :
           {WeightMode::kQuantized, WeightMode::kRandomBytes, WeightMode::kMaxScales}) {
        const Weights w = MakeWeights(type, n, wm, rng);
        for (ActMode am : {ActMode::kRandom, ActMode::kZeros, ActMode::kOneHuge}) {
          const std::vector<float> x = MakeActivations(n, am, rng);
          SCOPED_TRACE(Describe(type, wm, am, n));
          fn(type, n, w, x);
        }
      }
    }
  }
}

TEST(KernelsKTest, EveryTypeHasScalarKernels) {
  for (TensorType type : kKTypes) {
    const TypeKernels* k = kernels::GetKernels(type, CpuPath::kScalar);
    ASSERT_NE(k, nullptr) << GetTypeTraits(type).name;
    EXPECT_EQ(k->act_format, ActFormat::kQ8K);
  }
  EXPECT_EQ(kernels::ScalarKKernels(TensorType::kQ8_0), nullptr);
}

// The activation block is as kernels.h defines it: d = max|x| / 127,
// q = x / d rounded half to even, bsums the sums of 16; d = 0 for zeros.
TEST(KernelsKTest, PrepareActFollowsTheDefinition) {
  const TypeKernels* k = kernels::ScalarKKernels(TensorType::kQ4_K);
  ASSERT_NE(k, nullptr);
  std::vector<float> x(512);
  // Block 0: max 127, so d = 1 and q = x exactly, halves included.
  for (int i = 0; i < 256; ++i) x[static_cast<size_t>(i)] = static_cast<float>(i % 64) - 32.5f;
  x[5] = -127.0f;
  x[6] = 2.5f;   // to 2
  x[7] = 3.5f;   // to 4
  x[8] = -0.5f;  // to -0
  // Block 1: all zero.
  std::vector<uint8_t> act(static_cast<size_t>(kernels::ActRowBytes(ActFormat::kQ8K, 512)));
  k->prepare_act(x.data(), act.data(), 512);
  const BlockQ8K b0 = LoadBlock(act.data());
  EXPECT_EQ(b0.d, 1.0f);
  EXPECT_EQ(b0.q[5], -127);
  EXPECT_EQ(b0.q[6], 2);
  EXPECT_EQ(b0.q[7], 4);
  EXPECT_EQ(b0.q[8], 0);
  EXPECT_EQ(b0.q[0], -32);  // -32.5 to even
  EXPECT_EQ(b0.q[1], -32);  // -31.5 to even
  for (int j = 0; j < 16; ++j) {
    int sum = 0;
    for (int i = 0; i < 16; ++i) sum += b0.q[16 * j + i];
    EXPECT_EQ(b0.bsums[j], sum) << j;
  }
  const BlockQ8K b1 = LoadBlock(act.data() + sizeof(BlockQ8K));
  EXPECT_EQ(b1.d, 0.0f);
  for (int i = 0; i < 256; ++i) ASSERT_EQ(b1.q[i], 0);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b1.bsums[j], 0);

  // Random data: |x - d*q| <= d/2 and the largest element maps to +-127.
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (float& v : x) v = normal(rng);
  k->prepare_act(x.data(), act.data(), 512);
  for (int b = 0; b < 2; ++b) {
    const BlockQ8K blk = LoadBlock(act.data() + b * sizeof(BlockQ8K));
    float amax = 0;
    int qmax = 0;
    for (int i = 0; i < 256; ++i) {
      amax = std::max(amax, std::fabs(x[static_cast<size_t>(256 * b + i)]));
      qmax = std::max(qmax, std::abs(static_cast<int>(blk.q[i])));
      EXPECT_LE(std::fabs(x[static_cast<size_t>(256 * b + i)] - blk.d * blk.q[i]),
                blk.d * 0.5f * 1.0001f);
    }
    EXPECT_EQ(blk.d, amax / 127.0f);
    EXPECT_EQ(qmax, 127);
  }
}

// Every path's quantizer writes the same bytes as the scalar one.
TEST(KernelsKTest, PrepareActIsIdenticalOnEveryPath) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  constexpr int64_t kN = 4096;
  std::vector<std::vector<float>> inputs;
  std::vector<float> x(kN);
  for (int64_t i = 0; i < kN; ++i) {
    x[static_cast<size_t>(i)] = normal(rng) * std::exp2(static_cast<float>(i / 256 % 9) * 4 - 20);
  }
  inputs.push_back(x);
  // Exact halves (d = 1) to pin the rounding rule, subnormals, one huge
  // element, and zeros.
  for (int64_t i = 0; i < kN; ++i) {
    x[static_cast<size_t>(i)] = static_cast<float>(i % 254) * 0.5f - 63.5f;
  }
  for (int64_t b = 0; b < kN / 256; ++b) x[static_cast<size_t>(b * 256 + 3)] = 127.0f;
  inputs.push_back(x);
  for (int64_t i = 0; i < kN; ++i) x[static_cast<size_t>(i)] = normal(rng) * 1e-39f;
  x[100] = 1e-44f;
  for (int64_t i = 256; i < 512; ++i) x[static_cast<size_t>(i)] = (i % 2 ? 1e-45f : -1e-45f);
  inputs.push_back(x);
  for (int64_t i = 0; i < kN; ++i) x[static_cast<size_t>(i)] = normal(rng);
  x[1000] = -3e38f;
  inputs.push_back(x);
  inputs.push_back(std::vector<float>(kN, 0.0f));

  const TypeKernels* scalar = kernels::ScalarKKernels(TensorType::kQ4_K);
  ASSERT_NE(scalar, nullptr);
  const int64_t bytes = kernels::ActRowBytes(ActFormat::kQ8K, kN);
  int paths_tested = 0;
  for (CpuPath path : {CpuPath::kAvx2, CpuPath::kAvx512}) {
    if (!CpuSupports(path)) continue;
    ++paths_tested;
    for (TensorType type : kKTypes) {
      const TypeKernels* k = kernels::GetKernels(type, path);
      ASSERT_NE(k, nullptr);
      for (size_t t = 0; t < inputs.size(); ++t) {
        std::vector<uint8_t> want(static_cast<size_t>(bytes)), got(static_cast<size_t>(bytes) + 1);
        scalar->prepare_act(inputs[t].data(), want.data(), kN);
        k->prepare_act(inputs[t].data(), got.data() + 1, kN);  // unaligned destination
        EXPECT_EQ(std::memcmp(want.data(), got.data() + 1, static_cast<size_t>(bytes)), 0)
            << CpuPathName(path) << " " << GetTypeTraits(type).name << " input " << t;
      }
    }
  }
  if (paths_tested == 0) GTEST_SKIP() << "the CPU supports neither avx2 nor avx512";
}

// The scalar kernel against the float oracle (dequantized weights dotted
// with the original activations). The only approximation is the 8-bit
// activations: each x_i is replaced by da*q_i with |x_i - da*q_i| <= da/2, so
//   |kernel - oracle| <= sum_blocks da/2 * sum_i |w_i|
// plus float rounding in both (bounded by 1e-5 of the summed term magnitudes).
TEST(KernelsKTest, ScalarMatchesFloatOracle) {
  ForEveryCase([](TensorType type, int64_t n, const Weights& w, const std::vector<float>& x) {
    const TypeKernels* k = kernels::ScalarKKernels(type);
    ASSERT_NE(k, nullptr);
    const Acts a = Prepare(*k, x, n);
    const std::vector<float> got = RunTile(*k, n, w, a, kMaxTileRows, kMaxTileCols);
    for (int r = 0; r < kMaxTileRows; ++r) {
      const uint8_t* row = w.data + r * w.stride;
      const std::vector<float> mag = TermMagnitudes(type, row, n);
      std::vector<float> deq(static_cast<size_t>(n));
      ASSERT_TRUE(DequantizeRow(type, row, deq.data(), n).ok());
      for (int c = 0; c < kMaxTileCols; ++c) {
        const float* xc = x.data() + c * n;
        const Result<float> want = DotRow(type, row, xc, n);
        ASSERT_TRUE(want);
        double quant_err = 0, terms = 0;
        for (int64_t b = 0; b < n / 256; ++b) {
          const BlockQ8K blk =
              LoadBlock(a.data + c * a.stride + b * static_cast<int64_t>(sizeof(BlockQ8K)));
          double wsum = 0;
          for (int i = 0; i < 256; ++i) {
            const size_t e = static_cast<size_t>(b * 256 + i);
            wsum += std::fabs(deq[e]);
            terms += mag[e] * (std::fabs(xc[e]) + blk.d);
          }
          quant_err += blk.d * 0.5 * wsum;
        }
        const double bound = quant_err * 1.001 + 1e-5 * terms + 1e-6;
        EXPECT_NEAR(got[static_cast<size_t>(c * kMaxTileRows + r)], want.value(), bound)
            << "row " << r << " col " << c;
      }
    }
  });
}

// A SIMD path against the scalar kernel on the same prepared activations:
// the integer parts are exact on both, so they differ only by float rounding
// (bounded by 1e-5 of the summed term magnitudes), on every tile shape.
void ExpectPathMatchesScalar(CpuPath path) {
  if (!CpuSupports(path)) GTEST_SKIP() << "the CPU does not support " << CpuPathName(path);
  ForEveryCase([path](TensorType type, int64_t n, const Weights& w, const std::vector<float>& x) {
    const TypeKernels* scalar = kernels::ScalarKKernels(type);
    // The path's own table, not GetKernels' fallback to a lower path.
    const TypeKernels* simd =
        path == CpuPath::kAvx512 ? kernels::Avx512KKernels(type) : kernels::Avx2KKernels(type);
    ASSERT_NE(scalar, nullptr);
    ASSERT_NE(simd, nullptr) << "no " << CpuPathName(path) << " kernel";
    const Acts a = Prepare(*scalar, x, n);
    std::vector<std::vector<float>> terms(kMaxTileRows, std::vector<float>(kMaxTileCols));
    for (int r = 0; r < kMaxTileRows; ++r) {
      const std::vector<float> mag = TermMagnitudes(type, w.data + r * w.stride, n);
      for (int c = 0; c < kMaxTileCols; ++c) {
        const std::vector<float> xa = DequantAct(a.data + c * a.stride, n);
        double t = 0;
        for (int64_t i = 0; i < n; ++i) {
          t += mag[static_cast<size_t>(i)] * std::fabs(xa[static_cast<size_t>(i)]);
        }
        terms[r][c] = static_cast<float>(t);
      }
    }
    for (int rows = 1; rows <= kMaxTileRows; ++rows) {
      for (int cols = 1; cols <= kMaxTileCols; ++cols) {
        const std::vector<float> want = RunTile(*scalar, n, w, a, rows, cols);
        const std::vector<float> got = RunTile(*simd, n, w, a, rows, cols);
        for (int c = 0; c < cols; ++c) {
          for (int r = 0; r < rows; ++r) {
            const size_t i = static_cast<size_t>(c * rows + r);
            EXPECT_NEAR(got[i], want[i], 1e-5 * terms[r][c] + 1e-6)
                << "tile " << rows << "x" << cols << " row " << r << " col " << c;
          }
        }
      }
    }
  });
}

TEST(KernelsKTest, Avx2MatchesScalar) { ExpectPathMatchesScalar(CpuPath::kAvx2); }

TEST(KernelsKTest, Avx512MatchesScalar) { ExpectPathMatchesScalar(CpuPath::kAvx512); }

}  // namespace
}  // namespace xnai::engine
