// Kernels of the F32, F16, BF16, Q8_0 and Q4_0 weight types on every CPU path:
// the scalar path against the float oracle DotRow (quants.h), every SIMD path
// against the scalar path (see kernels_internal.h).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/cpu.h"
#include "engine/fp16.h"
#include "engine/kernels.h"
#include "engine/quants.h"

namespace xnai::engine {
namespace {

using kernels::ActFormat;
using kernels::BlockQ8;
using kernels::TypeKernels;

constexpr TensorType kTypes[] = {TensorType::kF32, TensorType::kF16, TensorType::kBF16,
                                 TensorType::kQ8_0, TensorType::kQ4_0};
constexpr CpuPath kSimdPaths[] = {CpuPath::kAvx2, CpuPath::kAvx512};

bool IsFloatType(TensorType type) {
  return type == TensorType::kF32 || type == TensorType::kF16 || type == TensorType::kBF16;
}

// Row lengths: quantized rows are whole blocks of 32; float rows any length.
std::vector<int64_t> RowLengths(TensorType type) {
  if (IsFloatType(type)) return {1, 7, 33, 64, 96, 1024, 4096};
  return {32, 64, 96, 1024, 4096};
}

int64_t WeightRowBytes(TensorType type, int64_t n) { return RowBytes(type, n).value(); }

// Uniform values in [-scale, scale].
std::vector<float> RandomFloats(std::mt19937& rng, int64_t n, float scale) {
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

// `rows` weight rows of n elements, w_stride bytes apart (the padding is
// filled with junk so that a kernel reading past a row shows up).
struct Weights {
  std::vector<uint8_t> bytes;
  int64_t stride = 0;
};

Weights MakeWeights(TensorType type, const std::vector<std::vector<float>>& rows, int64_t n) {
  Weights w;
  w.stride = WeightRowBytes(type, n) + 13;  // odd: rows are not even 2-byte aligned
  w.bytes.assign(static_cast<size_t>(w.stride * rows.size() + 64), 0xa5);
  for (size_t r = 0; r < rows.size(); ++r) {
    EXPECT_TRUE(QuantizeRow(type, rows[r].data(), w.bytes.data() + 1 + r * w.stride, n).ok());
  }
  return w;
}

const uint8_t* RowPtr(const Weights& w, int r) { return w.bytes.data() + 1 + r * w.stride; }

// Prepared activation rows, act_stride bytes apart (padded, 8-byte aligned).
struct Acts {
  std::vector<uint64_t> storage;
  int64_t stride = 0;
  const uint8_t* data() const { return reinterpret_cast<const uint8_t*>(storage.data()); }
};

Acts PrepareActs(const TypeKernels& k, const std::vector<std::vector<float>>& xs, int64_t n) {
  Acts a;
  a.stride = (kernels::ActRowBytes(k.act_format, n) + 8 + 7) / 8 * 8;
  a.storage.assign(static_cast<size_t>(a.stride * xs.size() / 8 + 1), 0x5a5a5a5a5a5a5a5aull);
  for (size_t c = 0; c < xs.size(); ++c) {
    k.prepare_act(xs[c].data(), reinterpret_cast<uint8_t*>(a.storage.data()) + c * a.stride, n);
  }
  return a;
}

// The activations a prepared row stands for (the dequantized kQ8 blocks).
std::vector<float> ActValues(ActFormat format, const uint8_t* act, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  if (format == ActFormat::kF32) {
    std::memcpy(v.data(), act, static_cast<size_t>(n) * sizeof(float));
    return v;
  }
  for (int64_t b = 0; b < n / 32; ++b) {
    BlockQ8 block;
    std::memcpy(&block, act + b * sizeof(BlockQ8), sizeof(block));
    for (int i = 0; i < 32; ++i) v[static_cast<size_t>(32 * b + i)] = block.d * block.q[i];
  }
  return v;
}

std::vector<float> Dequantize(TensorType type, const uint8_t* row, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  EXPECT_TRUE(DequantizeRow(type, row, v.data(), n).ok());
  return v;
}

double SumAbsProducts(const std::vector<float>& a, const std::vector<float>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += std::fabs(static_cast<double>(a[i]) * b[i]);
  return sum;
}

constexpr int kOutStride = kernels::kMaxTileRows + 3;
constexpr float kSentinel = -12345.0f;

// Runs a rows x cols tile; checks that only the tile's outputs were written.
std::vector<float> RunTile(const TypeKernels& k, int64_t n, const Weights& w, int rows,
                           const Acts& a, int cols) {
  std::vector<float> out(kOutStride * kernels::kMaxTileCols, kSentinel);
  k.dot_tile(n, RowPtr(w, 0), w.stride, rows, a.data(), a.stride, cols, out.data(), kOutStride);
  for (int c = 0; c < kernels::kMaxTileCols; ++c) {
    for (int r = 0; r < kOutStride; ++r) {
      if (c >= cols || r >= rows) {
        EXPECT_EQ(out[c * kOutStride + r], kSentinel)
            << "wrote outside the tile at " << c << "," << r;
      }
    }
  }
  return out;
}

// Compares `path` with the scalar path on all tile shapes for the given
// weight rows and activation rows: |simd - scalar| <= 1e-5 * sum|w_i a_i| +
// 1e-6. The integer block sums of the quantized kernels are exact on every
// path, so only float rounding differs: the scaling of each block sum and the
// order of the accumulation (at most about n / 16 additions per lane, each
// off by at most 2^-24 of a partial sum bounded by sum|w_i a_i|).
void ExpectPathMatchesScalar(CpuPath path, TensorType type, int64_t n,
                             const std::vector<std::vector<float>>& w_rows,
                             const std::vector<std::vector<float>>& x_rows) {
  const TypeKernels* scalar = kernels::GetKernels(type, CpuPath::kScalar);
  const TypeKernels* simd = kernels::GetKernels(type, path);
  ASSERT_NE(scalar, nullptr);
  ASSERT_NE(simd, nullptr);
  ASSERT_EQ(simd->act_format, scalar->act_format);
  const Weights w = MakeWeights(type, w_rows, n);
  const Acts scalar_acts = PrepareActs(*scalar, x_rows, n);
  const Acts simd_acts = PrepareActs(*simd, x_rows, n);
  ASSERT_EQ(scalar_acts.storage, simd_acts.storage) << "prepare_act differs";

  std::vector<std::vector<float>> wv, av;
  for (int r = 0; r < kernels::kMaxTileRows; ++r) wv.push_back(Dequantize(type, RowPtr(w, r), n));
  for (int c = 0; c < kernels::kMaxTileCols; ++c) {
    av.push_back(ActValues(scalar->act_format, scalar_acts.data() + c * scalar_acts.stride, n));
  }
  for (int rows = 1; rows <= kernels::kMaxTileRows; ++rows) {
    for (int cols = 1; cols <= kernels::kMaxTileCols; ++cols) {
      SCOPED_TRACE(std::to_string(rows) + "x" + std::to_string(cols) + " tile");
      const std::vector<float> want = RunTile(*scalar, n, w, rows, scalar_acts, cols);
      const std::vector<float> got = RunTile(*simd, n, w, rows, simd_acts, cols);
      for (int c = 0; c < cols; ++c) {
        for (int r = 0; r < rows; ++r) {
          const double bound = 1e-5 * SumAbsProducts(wv[r], av[c]) + 1e-6;
          const float a = got[c * kOutStride + r], b = want[c * kOutStride + r];
          EXPECT_LE(std::fabs(static_cast<double>(a) - b), bound)
              << "row " << r << " col " << c << ": " << a << " vs scalar " << b;
        }
      }
    }
  }
}

std::vector<std::vector<float>> RandomRows(std::mt19937& rng, int count, int64_t n) {
  std::vector<std::vector<float>> rows;
  // Different magnitudes per row, so that scales differ.
  for (int i = 0; i < count; ++i) rows.push_back(RandomFloats(rng, n, 0.25f * (i + 1)));
  return rows;
}

TEST(KernelsQ8Test, EveryTypeHasScalarKernels) {
  for (TensorType type : kTypes) {
    const TypeKernels* k = kernels::GetKernels(type, CpuPath::kScalar);
    ASSERT_NE(k, nullptr) << GetTypeTraits(type).name;
    EXPECT_EQ(k->act_format, IsFloatType(type) ? ActFormat::kF32 : ActFormat::kQ8);
  }
}

// The scalar kernels against the float oracle DotRow, which multiplies the
// dequantized weights with the original (unquantized) activations. For
// quantized weights the only difference is the activation quantization:
// each x_i becomes d * q_i with |x_i - d * q_i| <= d / 2 (rounding to
// nearest; the clamp never moves a value by more), so
//   |kernel - oracle| <= sum_i |w_i| * d(block of i) / 2
// plus float rounding (1e-5 * sum|w_i x_i|, the oracle sums in float). For
// random data this is roughly 1% of sum|w_i x_i|.
TEST(KernelsQ8Test, ScalarMatchesFloatOracle) {
  std::mt19937 rng(1234);
  for (TensorType type : kTypes) {
    const TypeKernels* k = kernels::GetKernels(type, CpuPath::kScalar);
    ASSERT_NE(k, nullptr);
    for (int64_t n : RowLengths(type)) {
      SCOPED_TRACE(std::string(GetTypeTraits(type).name) + " n=" + std::to_string(n));
      const auto w_rows = RandomRows(rng, kernels::kMaxTileRows, n);
      const auto x_rows = RandomRows(rng, kernels::kMaxTileCols, n);
      const Weights w = MakeWeights(type, w_rows, n);
      const Acts acts = PrepareActs(*k, x_rows, n);
      const std::vector<float> out = RunTile(*k, n, w, 4, acts, 4);
      for (int c = 0; c < 4; ++c) {
        for (int r = 0; r < 4; ++r) {
          const std::vector<float> wv = Dequantize(type, RowPtr(w, r), n);
          double bound = 1e-5 * SumAbsProducts(wv, x_rows[c]) + 1e-6;
          if (k->act_format == ActFormat::kQ8) {
            BlockQ8 block;
            for (int64_t i = 0; i < n; ++i) {
              if (i % 32 == 0) std::memcpy(&block, acts.data() + c * acts.stride + i / 32 * 40, 40);
              bound += std::fabs(wv[i]) * block.d * 0.5 * (1 + 1e-6);
            }
          }
          const float want = DotRow(type, RowPtr(w, r), x_rows[c].data(), n).value();
          EXPECT_LE(std::fabs(static_cast<double>(out[c * kOutStride + r]) - want), bound)
              << "row " << r << " col " << c << ": " << out[c * kOutStride + r] << " vs oracle "
              << want;
        }
      }
    }
  }
}

TEST(KernelsQ8Test, QuantizedActivationsFollowTheDefinition) {
  const TypeKernels* k = kernels::GetKernels(TensorType::kQ8_0, CpuPath::kScalar);
  ASSERT_NE(k, nullptr);
  // Block 0: amax 127, so d = 1 and ties round to even; block 1: all zeros.
  std::vector<float> x(64, 0.0f);
  for (int i = 0; i < 32; ++i) x[i] = static_cast<float>(i) - 16.5f;
  x[31] = 127.0f;
  BlockQ8 blocks[2];
  k->prepare_act(x.data(), blocks, 64);
  EXPECT_EQ(blocks[0].d, 1.0f);
  int sum = 0;
  for (int i = 0; i < 31; ++i) {
    EXPECT_EQ(blocks[0].q[i], static_cast<int>(std::nearbyint(x[i]))) << i;
    sum += blocks[0].q[i];
  }
  EXPECT_EQ(blocks[0].q[0], -16);  // -16.5 rounds to even
  EXPECT_EQ(blocks[0].q[1], -16);  // -15.5 too
  EXPECT_EQ(blocks[0].q[31], 127);
  EXPECT_EQ(blocks[0].s, static_cast<float>(sum + 127));
  EXPECT_EQ(blocks[1].d, 0.0f);
  EXPECT_EQ(blocks[1].s, 0.0f);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(blocks[1].q[i], 0);
}

// prepare_act must be byte-identical across paths (the integer dot products
// are then identical too): blocks of every magnitude, ties, zeros, blocks
// whose scale underflows, and values at the clamp.
TEST(KernelsQ8Test, PrepareActIsByteIdenticalOnEveryPath) {
  std::mt19937 rng(99);
  constexpr int64_t kN = 32 * 64;
  std::vector<float> x(kN);
  const float magnitudes[] = {1.0f, 1e-3f, 1e3f, 1e30f, 1e-30f, 1e-39f, 1e-44f, 0.0f};
  for (int64_t b = 0; b < kN / 32; ++b) {
    const float m = magnitudes[b % 8];
    std::uniform_real_distribution<float> dist(-m, m);
    for (int i = 0; i < 32; ++i) x[32 * b + i] = dist(rng);
  }
  // Exact ties: d = 1 and halves.
  for (int i = 0; i < 32; ++i) x[i] = static_cast<float>(i) - 15.5f;
  x[31] = -127.0f;
  // A block with one large value and the rest tiny.
  for (int i = 0; i < 32; ++i) x[32 + i] = 1e-9f * static_cast<float>(i);
  x[40] = 5.0f;
  for (TensorType type : kTypes) {
    const TypeKernels* scalar = kernels::GetKernels(type, CpuPath::kScalar);
    const int64_t bytes = kernels::ActRowBytes(scalar->act_format, kN);
    std::vector<uint8_t> want(bytes);
    scalar->prepare_act(x.data(), want.data(), kN);
    for (CpuPath path : kSimdPaths) {
      if (!CpuSupports(path)) continue;
      const TypeKernels* simd = kernels::GetKernels(type, path);
      std::vector<uint8_t> got(bytes);
      simd->prepare_act(x.data(), got.data(), kN);
      EXPECT_EQ(got, want) << GetTypeTraits(type).name << " on " << CpuPathName(path);
    }
  }
}

class KernelsQ8PathTest : public testing::TestWithParam<CpuPath> {};

TEST_P(KernelsQ8PathTest, RandomDataMatchesScalar) {
  if (!CpuSupports(GetParam())) {
    GTEST_SKIP() << "this CPU does not support " << CpuPathName(GetParam());
  }
  std::mt19937 rng(42);
  for (TensorType type : kTypes) {
    for (int64_t n : RowLengths(type)) {
      SCOPED_TRACE(std::string(GetTypeTraits(type).name) + " n=" + std::to_string(n));
      const auto w_rows = RandomRows(rng, kernels::kMaxTileRows, n);
      const auto x_rows = RandomRows(rng, kernels::kMaxTileCols, n);
      ExpectPathMatchesScalar(GetParam(), type, n, w_rows, x_rows);
    }
  }
}

TEST_P(KernelsQ8PathTest, ZerosGiveZeros) {
  if (!CpuSupports(GetParam())) {
    GTEST_SKIP() << "this CPU does not support " << CpuPathName(GetParam());
  }
  std::mt19937 rng(7);
  constexpr int64_t kN = 96;
  const std::vector<std::vector<float>> zeros(4, std::vector<float>(kN, 0.0f));
  const auto random = RandomRows(rng, 4, kN);
  for (TensorType type : kTypes) {
    SCOPED_TRACE(GetTypeTraits(type).name);
    const TypeKernels* k = kernels::GetKernels(type, GetParam());
    // Zero activations with random weights, then zero weights with random
    // activations.
    for (int zero_side = 0; zero_side < 2; ++zero_side) {
      const Weights w = MakeWeights(type, zero_side == 0 ? random : zeros, kN);
      const Acts a = PrepareActs(*k, zero_side == 0 ? zeros : random, kN);
      const std::vector<float> out = RunTile(*k, kN, w, 4, a, 4);
      for (int c = 0; c < 4; ++c) {
        for (int r = 0; r < 4; ++r) EXPECT_EQ(out[c * kOutStride + r], 0.0f);
      }
    }
  }
}

// Extreme magnitudes of weights and activations, within float range.
TEST_P(KernelsQ8PathTest, ExtremeScalesMatchScalar) {
  if (!CpuSupports(GetParam())) {
    GTEST_SKIP() << "this CPU does not support " << CpuPathName(GetParam());
  }
  std::mt19937 rng(5);
  constexpr int64_t kN = 256;
  // (weight magnitude, activation magnitude): huge f16 weights with large
  // activations, tiny (subnormal f16) weights with tiny activations, mixed.
  const std::pair<float, float> scales[] = {
      {60000.0f, 1e25f}, {1e-7f, 1e-30f}, {60000.0f, 1e-30f}, {1e-7f, 1e25f}};
  for (TensorType type : kTypes) {
    for (auto [wm, xm] : scales) {
      SCOPED_TRACE(std::string(GetTypeTraits(type).name) + " w " + std::to_string(wm) + " x " +
                   std::to_string(xm));
      std::vector<std::vector<float>> w_rows, x_rows;
      for (int i = 0; i < 4; ++i) {
        w_rows.push_back(RandomFloats(rng, kN, wm));
        x_rows.push_back(RandomFloats(rng, kN, xm));
      }
      ExpectPathMatchesScalar(GetParam(), type, kN, w_rows, x_rows);
    }
  }
}

// Q8_0 weights at the int8 extremes (-128 is not produced by the quantizer
// but is a valid block) and Q4_0 nibbles at 0 and 15, against activations at
// +-127: the largest integer sums the kernels must hold exactly.
TEST_P(KernelsQ8PathTest, IntegerExtremesMatchScalar) {
  if (!CpuSupports(GetParam())) {
    GTEST_SKIP() << "this CPU does not support " << CpuPathName(GetParam());
  }
  constexpr int64_t kN = 160;
  std::vector<std::vector<float>> x_rows;
  for (int c = 0; c < 4; ++c) {
    std::vector<float> x(kN);
    for (int64_t i = 0; i < kN; ++i) {
      // Col 0: all +127 q; col 1: all -127; cols 2, 3: alternating signs.
      const float sign = c == 0 ? 1.0f : c == 1 ? -1.0f : ((i + c) % 2 ? 1.0f : -1.0f);
      x[i] = sign * 3.0f;
    }
    x_rows.push_back(x);
  }
  for (TensorType type : {TensorType::kQ8_0, TensorType::kQ4_0}) {
    SCOPED_TRACE(GetTypeTraits(type).name);
    const TypeKernels* scalar = kernels::GetKernels(type, CpuPath::kScalar);
    const TypeKernels* simd = kernels::GetKernels(type, GetParam());
    const int64_t block_bytes = GetTypeTraits(type).block_bytes;
    Weights w;
    w.stride = WeightRowBytes(type, kN) + 5;
    w.bytes.assign(static_cast<size_t>(w.stride * 4 + 64), 0);
    const uint16_t d = F32ToF16(0.5f);
    for (int r = 0; r < 4; ++r) {
      uint8_t* row = w.bytes.data() + 1 + r * w.stride;
      for (int64_t b = 0; b < kN / 32; ++b) {
        uint8_t* block = row + b * block_bytes;
        std::memcpy(block, &d, 2);
        for (int i = 2; i < block_bytes; ++i) {
          // Row 0 all minimum, row 1 all maximum, rows 2 and 3 mixed.
          const bool high = r == 1 || (r >= 2 && (i + r + b) % 3 == 0);
          block[i] = type == TensorType::kQ8_0 ? (high ? 0x7f : 0x80) : (high ? 0xff : 0x00);
        }
      }
    }
    const Acts scalar_acts = PrepareActs(*scalar, x_rows, kN);
    const Acts simd_acts = PrepareActs(*simd, x_rows, kN);
    ASSERT_EQ(scalar_acts.storage, simd_acts.storage);
    for (int rows = 1; rows <= 4; ++rows) {
      for (int cols = 1; cols <= 4; ++cols) {
        const std::vector<float> want = RunTile(*scalar, kN, w, rows, scalar_acts, cols);
        const std::vector<float> got = RunTile(*simd, kN, w, rows, simd_acts, cols);
        for (int c = 0; c < cols; ++c) {
          for (int r = 0; r < rows; ++r) {
            // Every block sum is exact and scales are powers of two apart
            // from d_a = 3/127: allow only float rounding.
            const float b = want[c * kOutStride + r];
            EXPECT_NEAR(got[c * kOutStride + r], b, 1e-6 * std::fabs(b) + 1e-6)
                << rows << "x" << cols << " row " << r << " col " << c;
          }
        }
      }
    }
    // The all-minimum row times the all-+127 activations, computed by hand.
    const std::vector<float> out = RunTile(*scalar, kN, w, 1, scalar_acts, 1);
    const double q = type == TensorType::kQ8_0 ? -128 : -8;
    EXPECT_NEAR(out[0], kN * 0.5 * q * 3.0, 1e-5 * kN * 0.5 * 128 * 3.0);
  }
}

INSTANTIATE_TEST_SUITE_P(SimdPaths, KernelsQ8PathTest, testing::ValuesIn(kSimdPaths),
                         [](const testing::TestParamInfo<CpuPath>& info) {
                           return std::string(CpuPathName(info.param));
                         });

}  // namespace
}  // namespace xnai::engine
