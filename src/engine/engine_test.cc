#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "engine/fp16.h"
#include "engine/quants.h"
#include "engine/tensor_types.h"
#include "gguf/gguf_reader.h"
#include "gguf/testdata.h"

namespace xnai::engine {
namespace {

using Code = Status::Code;

const TensorType kSupported[] = {TensorType::kF32,  TensorType::kF16,  TensorType::kBF16,
                                 TensorType::kQ8_0, TensorType::kQ4_0, TensorType::kQ4_K,
                                 TensorType::kQ5_K, TensorType::kQ6_K};

uint16_t HalfBits(float f) { return F32ToF16(f); }
float Bits(uint32_t u) { return std::bit_cast<float>(u); }

double RelativeRms(const std::vector<float>& got, const std::vector<float>& want) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    err += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
    ref += static_cast<double>(want[i]) * want[i];
  }
  return std::sqrt(err / ref);
}

// --- type table ------------------------------------------------------------------

TEST(TensorTypes, TableFacts) {
  struct Fact {
    TensorType type;
    uint32_t id;
    const char* name;
    int64_t elems, bytes;
    bool supported;
  };
  const Fact facts[] = {
      {TensorType::kF32, 0, "F32", 1, 4, true},
      {TensorType::kF16, 1, "F16", 1, 2, true},
      {TensorType::kQ4_0, 2, "Q4_0", 32, 18, true},
      {TensorType::kQ4_1, 3, "Q4_1", 32, 20, false},
      {TensorType::kQ5_0, 6, "Q5_0", 32, 22, false},
      {TensorType::kQ8_0, 8, "Q8_0", 32, 34, true},
      {TensorType::kQ2_K, 10, "Q2_K", 256, 84, false},
      {TensorType::kQ3_K, 11, "Q3_K", 256, 110, false},
      {TensorType::kQ4_K, 12, "Q4_K", 256, 144, true},
      {TensorType::kQ5_K, 13, "Q5_K", 256, 176, true},
      {TensorType::kQ6_K, 14, "Q6_K", 256, 210, true},
      {TensorType::kQ8_K, 15, "Q8_K", 256, 292, false},
      {TensorType::kBF16, 30, "BF16", 1, 2, true},
  };
  for (const Fact& f : facts) {
    EXPECT_EQ(static_cast<uint32_t>(f.type), f.id);
    const TensorTypeTraits t = GetTypeTraits(f.type);
    EXPECT_EQ(t.name, f.name);
    EXPECT_EQ(t.block_elems, f.elems) << f.name;
    EXPECT_EQ(t.block_bytes, f.bytes) << f.name;
    EXPECT_EQ(t.supported, f.supported) << f.name;
    EXPECT_EQ(IsSupportedType(f.type), f.supported);
  }
  EXPECT_EQ(*RowBytes(TensorType::kQ4_K, 4096), 16 * 144);
  EXPECT_FALSE(RowBytes(TensorType::kQ4_K, 100));
  EXPECT_EQ(gguf::FindGgmlType(4), nullptr);  // retired Q4_2
  EXPECT_EQ(gguf::FindGgmlType(1000), nullptr);
}

TEST(TensorTypes, UnsupportedTypesAreNamed) {
  Status s = CheckSupportedType(TensorType::kQ2_K);
  EXPECT_EQ(s.code(), Code::kUnsupported);
  EXPECT_EQ(s.message(), "tensor type Q2_K is not supported yet");
  EXPECT_EQ(CheckSupportedType(static_cast<TensorType>(77)).message(),
            "tensor type id 77 is unknown");
  std::vector<uint8_t> block(84);
  std::vector<float> out(256), x(256, 1.0f);
  Status d = DequantizeRow(TensorType::kQ2_K, block.data(), out.data(), 256);
  EXPECT_EQ(d.code(), Code::kUnsupported);
  EXPECT_EQ(d.message(), "tensor type Q2_K is not supported yet");
  EXPECT_EQ(QuantizeRow(TensorType::kIQ4_XS, out.data(), block.data(), 256).message(),
            "tensor type IQ4_XS is not supported yet");
  auto dot = DotRow(TensorType::kQ3_K, block.data(), x.data(), 256);
  ASSERT_FALSE(dot);
  EXPECT_EQ(dot.error().message(), "tensor type Q3_K is not supported yet");
  // Partial blocks.
  Status partial = DequantizeRow(TensorType::kQ8_0, block.data(), out.data(), 33);
  EXPECT_EQ(partial.code(), Code::kInvalidArgument);
  EXPECT_EQ(partial.message(), "row length 33 is not a multiple of the Q8_0 block size 32");
  EXPECT_FALSE(DotRow(TensorType::kQ6_K, block.data(), x.data(), 128));
}

// --- F16 / BF16 --------------------------------------------------------------------

TEST(Fp16, EdgeValues) {
  EXPECT_EQ(HalfBits(0.0f), 0x0000);
  EXPECT_EQ(HalfBits(-0.0f), 0x8000);
  EXPECT_EQ(HalfBits(1.0f), 0x3c00);
  EXPECT_EQ(HalfBits(-2.0f), 0xc000);
  EXPECT_EQ(HalfBits(65504.0f), 0x7bff);  // largest half
  EXPECT_EQ(HalfBits(65519.0f), 0x7bff);  // below the midpoint
  EXPECT_EQ(HalfBits(65520.0f), 0x7c00);  // midpoint: ties to even -> inf
  EXPECT_EQ(HalfBits(1e10f), 0x7c00);
  EXPECT_EQ(HalfBits(-INFINITY), 0xfc00);
  EXPECT_EQ(HalfBits(INFINITY), 0x7c00);
  const uint16_t nan = HalfBits(NAN);
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
  EXPECT_NE(HalfBits(Bits(0x7f800001)) & 0x03ff, 0);  // signalling NaN with a low payload
  EXPECT_EQ(HalfBits(0x1p-14f), 0x0400);              // smallest normal
  EXPECT_EQ(HalfBits(0x1p-24f), 0x0001);              // smallest subnormal
  EXPECT_EQ(HalfBits(0x1p-25f), 0x0000);              // tie between 0 and 2^-24 -> even (0)
  EXPECT_EQ(HalfBits(0x1.8p-25f), 0x0001);
  EXPECT_EQ(HalfBits(0x1.8p-24f), 0x0002);  // 1.5 * 2^-24: tie -> even (2)
  EXPECT_EQ(HalfBits(0x1.4p-24f), 0x0001);
  EXPECT_EQ(HalfBits(1023 * 0x1p-24f), 0x03ff);  // largest subnormal
  EXPECT_EQ(HalfBits(0x1.ffcp-15f), 0x0400);     // rounds up into the normals
  EXPECT_EQ(HalfBits(1.0f + 0x1p-11f), 0x3c00);  // tie -> even
  EXPECT_EQ(HalfBits(1.0f + 0x3p-11f), 0x3c02);  // tie -> even (up)
  EXPECT_EQ(HalfBits(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);
  EXPECT_EQ(HalfBits(Bits(0x00000001)), 0x0000);  // float subnormal
  EXPECT_EQ(HalfBits(-Bits(0x00000001)), 0x8000);

  EXPECT_EQ(F16ToF32(0x3c00), 1.0f);
  EXPECT_EQ(F16ToF32(0x7bff), 65504.0f);
  EXPECT_EQ(F16ToF32(0x0001), 0x1p-24f);
  EXPECT_EQ(F16ToF32(0x03ff), 1023 * 0x1p-24f);
  EXPECT_EQ(F16ToF32(0x8001), -0x1p-24f);
  EXPECT_TRUE(std::signbit(F16ToF32(0x8000)));
  EXPECT_EQ(F16ToF32(0xfc00), -INFINITY);
  EXPECT_TRUE(std::isnan(F16ToF32(0x7e00)));
  EXPECT_TRUE(std::isnan(F16ToF32(0x7c01)));
}

TEST(Fp16, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = F16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(F16ToF32(F32ToF16(f)))) << h;
    } else {
      ASSERT_EQ(F32ToF16(f), h) << std::hex << h;
    }
  }
}

TEST(Fp16, RandomFloatsRoundToNearestEven) {
  // Independent check: the chosen half is never farther from f than its
  // neighbours, and at an exact tie it is the even one.
  std::mt19937 rng(42);
  for (int i = 0; i < 200000; ++i) {
    // Exponents across the half range and a little beyond.
    const uint32_t bits = (rng() & 0x807fffffu) | ((100u + rng() % 45u) << 23);
    const float f = Bits(bits);
    const uint16_t h = F32ToF16(f);
    const double got = F16ToF32(h);
    if (std::isinf(got)) {
      ASSERT_GE(std::fabs(f), 65520.0f);
      continue;
    }
    const double err = std::fabs(got - static_cast<double>(f));
    for (int delta : {-1, 1}) {
      const uint16_t nb = static_cast<uint16_t>(h + delta);
      if ((nb & 0x7fff) >= 0x7c00 || ((h & 0x7fff) == 0 && delta < 0)) continue;
      if ((nb ^ h) & 0x8000) continue;  // crossed the sign
      const double nerr = std::fabs(static_cast<double>(F16ToF32(nb)) - f);
      ASSERT_LE(err, nerr) << std::hexfloat << f;
      if (err == nerr) {
        ASSERT_EQ(h & 1, 0) << std::hexfloat << f;
      }
    }
  }
}

TEST(Bf16, EdgeValues) {
  EXPECT_EQ(F32ToBf16(1.0f), 0x3f80);
  EXPECT_EQ(F32ToBf16(-0.0f), 0x8000);
  EXPECT_EQ(F32ToBf16(Bits(0x3f808000)), 0x3f80);  // tie -> even (down)
  EXPECT_EQ(F32ToBf16(Bits(0x3f818000)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(F32ToBf16(Bits(0x3f808001)), 0x3f81);
  EXPECT_EQ(F32ToBf16(Bits(0x3f807fff)), 0x3f80);
  EXPECT_EQ(F32ToBf16(INFINITY), 0x7f80);
  EXPECT_EQ(F32ToBf16(-INFINITY), 0xff80);
  EXPECT_EQ(F32ToBf16(Bits(0x7f7fffff)), 0x7f80);    // FLT_MAX rounds to inf
  EXPECT_EQ(F32ToBf16(Bits(0x00000001)), 0x0000);    // tiny subnormal
  EXPECT_EQ(F32ToBf16(Bits(0x00010000)), 0x0001);    // bf16 subnormal kept
  const uint16_t nan = F32ToBf16(Bits(0x7f800001));  // NaN whose payload is in the low bits
  EXPECT_TRUE(std::isnan(Bf16ToF32(nan)));
  EXPECT_TRUE(std::isnan(Bf16ToF32(F32ToBf16(NAN))));
  EXPECT_EQ(Bf16ToF32(0x3f80), 1.0f);
  EXPECT_EQ(Bf16ToF32(0xc0a0), -5.0f);
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const float f = Bf16ToF32(static_cast<uint16_t>(b));
    if (!std::isnan(f)) {
      ASSERT_EQ(F32ToBf16(f), b);
    }
  }
}

// --- hand-built blocks with known values ------------------------------------------
//
// Each block is assembled byte by byte from the layout description, with
// scales chosen so the expected floats follow by hand; this checks the
// layouts themselves, not only that quantize and dequantize agree.

void PutHalf(std::vector<uint8_t>* b, size_t at, uint16_t h) {
  (*b)[at] = static_cast<uint8_t>(h & 0xff);
  (*b)[at + 1] = static_cast<uint8_t>(h >> 8);
}

std::vector<float> Dequant(TensorType type, const std::vector<uint8_t>& block, int64_t n) {
  std::vector<float> out(n);
  Status s = DequantizeRow(type, block.data(), out.data(), n);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

// DotRow against an all-ones-weighted and a ramp x, compared with the
// expected floats.
void ExpectDotMatches(TensorType type, const std::vector<uint8_t>& block,
                      const std::vector<float>& expected) {
  std::vector<float> x(expected.size());
  double want = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = 0.01f * static_cast<float>(i % 17) - 0.05f;
    want += static_cast<double>(expected[i]) * x[i];
  }
  auto got = DotRow(type, block.data(), x.data(), static_cast<int64_t>(x.size()));
  ASSERT_TRUE(got);
  EXPECT_NEAR(*got, want, 1e-4 * (1 + std::fabs(want)));
}

TEST(KnownBlocks, Q8_0) {
  std::vector<uint8_t> b(34);
  PutHalf(&b, 0, 0x3800);  // d = 0.5
  for (int i = 0; i < 32; ++i) b[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(i * 8 - 128));
  const std::vector<float> y = Dequant(TensorType::kQ8_0, b, 32);
  std::vector<float> expected(32);
  for (int i = 0; i < 32; ++i) expected[i] = 0.5f * (i * 8 - 128);
  EXPECT_EQ(y, expected);
  ExpectDotMatches(TensorType::kQ8_0, b, expected);
}

TEST(KnownBlocks, Q4_0) {
  std::vector<uint8_t> b(18);
  PutHalf(&b, 0, 0x4000);  // d = 2
  for (int j = 0; j < 16; ++j) b[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const std::vector<float> y = Dequant(TensorType::kQ4_0, b, 32);
  // Element j (j < 16): low nibble j; element 16 + j: high nibble 15 - j.
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 2.0f * (j - 8)) << j;
    EXPECT_EQ(y[16 + j], 2.0f * (15 - j - 8)) << j;
  }
  ExpectDotMatches(TensorType::kQ4_0, b, y);
}

// Scale bytes for sub-block scales sc = {1, 2, 3, 4, 33, 34, 35, 36} and mins
// m = {5, 6, 7, 8, 40, 41, 42, 63}, packed by hand:
//   bytes 0-3: sc[j] | (sc[j+4] >> 4) << 6   -> 0x81 0x82 0x83 0x84
//   bytes 4-7: m[j]  | (m[j+4] >> 4) << 6    -> 0x85 0x86 0x87 0xc8
//   bytes 8-11: (sc[j+4] & 15) | (m[j+4] & 15) << 4 -> 0x81 0x92 0xa3 0xf4
constexpr uint8_t kKScales[12] = {0x81, 0x82, 0x83, 0x84, 0x85, 0x86,
                                  0x87, 0xc8, 0x81, 0x92, 0xa3, 0xf4};
constexpr int kKSc[8] = {1, 2, 3, 4, 33, 34, 35, 36};
constexpr int kKMin[8] = {5, 6, 7, 8, 40, 41, 42, 63};

TEST(KnownBlocks, Q4_K) {
  std::vector<uint8_t> b(144);
  PutHalf(&b, 0, 0x3c00);  // d = 1
  PutHalf(&b, 2, 0x3800);  // dmin = 0.5
  std::memcpy(&b[4], kKScales, 12);
  for (int k = 0; k < 128; ++k) b[16 + k] = static_cast<uint8_t>((k % 16) | (((k / 8) % 16) << 4));
  const std::vector<float> y = Dequant(TensorType::kQ4_K, b, 256);
  for (int i = 0; i < 256; ++i) {
    const int chunk = i / 64, pos = i % 64;
    const int byte = 32 * chunk + pos % 32;  // index into qs
    const int q = pos < 32 ? byte % 16 : (byte / 8) % 16;
    const int j = i / 32;
    EXPECT_EQ(y[i], 1.0f * kKSc[j] * q - 0.5f * kKMin[j]) << i;
  }
  ExpectDotMatches(TensorType::kQ4_K, b, y);
}

TEST(KnownBlocks, Q5_K) {
  std::vector<uint8_t> b(176);
  PutHalf(&b, 0, 0x3400);  // d = 0.25
  PutHalf(&b, 2, 0x4000);  // dmin = 2
  std::memcpy(&b[4], kKScales, 12);
  for (int l = 0; l < 32; ++l) b[16 + l] = static_cast<uint8_t>(l * 37 + 11);  // qh
  for (int k = 0; k < 128; ++k) b[48 + k] = static_cast<uint8_t>(k * 5 + 3);   // qs
  const std::vector<float> y = Dequant(TensorType::kQ5_K, b, 256);
  for (int i = 0; i < 256; ++i) {
    const int chunk = i / 64, pos = i % 64, l = pos % 32;
    const uint8_t qs = static_cast<uint8_t>((32 * chunk + l) * 5 + 3);
    const uint8_t qh = static_cast<uint8_t>(l * 37 + 11);
    const int low = pos < 32 ? qs & 15 : qs >> 4;
    const int high = (qh >> (2 * chunk + (pos < 32 ? 0 : 1))) & 1;
    const int j = i / 32;
    EXPECT_EQ(y[i], 0.25f * kKSc[j] * (low + 16 * high) - 2.0f * kKMin[j]) << i;
  }
  ExpectDotMatches(TensorType::kQ5_K, b, y);
}

TEST(KnownBlocks, Q6_K) {
  std::vector<uint8_t> b(210);
  for (int k = 0; k < 128; ++k) b[k] = static_cast<uint8_t>(k * 7 + 1);        // ql
  for (int k = 0; k < 64; ++k) b[128 + k] = static_cast<uint8_t>(k * 29 + 5);  // qh
  for (int s = 0; s < 16; ++s) b[192 + s] = static_cast<uint8_t>(static_cast<int8_t>(3 * s - 20));
  PutHalf(&b, 208, 0x3000);  // d = 0.125
  const std::vector<float> y = Dequant(TensorType::kQ6_K, b, 256);
  for (int i = 0; i < 256; ++i) {
    const int half = i / 128, r = i % 128, k = r / 32, l = r % 32;
    const uint8_t ql = static_cast<uint8_t>((64 * half + l + 32 * (k % 2)) * 7 + 1);
    const uint8_t qh = static_cast<uint8_t>((32 * half + l) * 29 + 5);
    const int low = k < 2 ? ql & 15 : ql >> 4;
    const int high = (qh >> (2 * k)) & 3;
    const int scale = 3 * (i / 16) - 20;
    EXPECT_EQ(y[i], 0.125f * scale * ((low | (high << 4)) - 32)) << i;
  }
  ExpectDotMatches(TensorType::kQ6_K, b, y);
}

// --- quantizers on random data -------------------------------------------------------

std::vector<float> Gaussian(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

struct RoundTrip {
  std::vector<uint8_t> bytes;
  std::vector<float> values;
};

RoundTrip QuantizeDequantize(TensorType type, const std::vector<float>& x) {
  const int64_t n = static_cast<int64_t>(x.size());
  RoundTrip rt;
  rt.bytes.resize(*RowBytes(type, n));
  rt.values.resize(n);
  Status q = QuantizeRow(type, x.data(), rt.bytes.data(), n);
  EXPECT_TRUE(q.ok()) << q.ToString();
  Status d = DequantizeRow(type, rt.bytes.data(), rt.values.data(), n);
  EXPECT_TRUE(d.ok()) << d.ToString();
  return rt;
}

// Relative RMS error bounds for Gaussian data: the step of each format over
// sqrt(12), with room for the scale search (measured values in comments).
double ErrorBound(TensorType type) {
  switch (type) {
    case TensorType::kF32:
      return 0;
    case TensorType::kF16:
      return 5e-4;  // ~2.1e-4
    case TensorType::kBF16:
      return 4e-3;  // ~1.6e-3
    case TensorType::kQ8_0:
      return 0.01;  // ~0.0054
    case TensorType::kQ6_K:
      return 0.025;  // ~0.019
    case TensorType::kQ5_K:
      return 0.045;  // ~0.036
    case TensorType::kQ4_K:
      return 0.09;  // ~0.072
    case TensorType::kQ4_0:
      return 0.13;  // ~0.086
    default:
      return 0;
  }
}

TEST(Quantizers, ErrorBoundsOnRandomData) {
  const std::vector<float> x = Gaussian(8192, 7);
  for (TensorType type : kSupported) {
    SCOPED_TRACE(std::string(GetTypeTraits(type).name));
    const RoundTrip rt = QuantizeDequantize(type, x);
    const double err = RelativeRms(rt.values, x);
    EXPECT_LE(err, ErrorBound(type));
    // Not absurdly good either: a lossy type that reproduces the input
    // exactly means the test data or the round trip is broken.
    if (type != TensorType::kF32) {
      EXPECT_GT(err, ErrorBound(type) / 10);
    }
    std::printf("  %-5s relative RMS error %.5f\n", std::string(GetTypeTraits(type).name).c_str(),
                err);
  }
}

TEST(Quantizers, HandleSpecialRows) {
  for (TensorType type : kSupported) {
    SCOPED_TRACE(std::string(GetTypeTraits(type).name));
    // All zeros stays all zeros.
    const std::vector<float> zeros(512, 0.0f);
    EXPECT_EQ(QuantizeDequantize(type, zeros).values, zeros);
    // One large outlier in small noise, constant rows, negative-only and
    // positive-only rows: all finite, error bounded by the row's range.
    std::vector<float> outlier = Gaussian(512, 3, 0.01f);
    outlier[100] = 50.0f;
    const std::vector<float> constant(512, -3.5f);
    std::vector<float> positive = Gaussian(512, 4);
    for (float& f : positive) f = std::fabs(f) + 1.0f;
    std::vector<float> negative = positive;
    for (float& f : negative) f = -f;
    for (const std::vector<float>* row :
         std::vector<const std::vector<float>*>{&outlier, &constant, &positive, &negative}) {
      const RoundTrip rt = QuantizeDequantize(type, *row);
      float range = 0;
      for (float f : *row) range = std::max(range, std::fabs(f));
      for (size_t i = 0; i < row->size(); ++i) {
        ASSERT_TRUE(std::isfinite(rt.values[i]));
        ASSERT_LE(std::fabs(rt.values[i] - (*row)[i]), 0.2f * range + 1e-6f) << i;
      }
    }
    // The outlier itself survives closely (it sets its block's scale).
    const RoundTrip rt = QuantizeDequantize(type, outlier);
    EXPECT_NEAR(rt.values[100], 50.0f, 50.0f * 0.02f);
  }
}

TEST(Quantizers, DotRowMatchesDequantizedDot) {
  const int64_t n = 2048;
  const std::vector<float> w = Gaussian(n, 11);
  const std::vector<float> x = Gaussian(n, 12);
  for (TensorType type : kSupported) {
    SCOPED_TRACE(std::string(GetTypeTraits(type).name));
    const RoundTrip rt = QuantizeDequantize(type, w);
    double want = 0, magnitude = 0;
    for (int64_t i = 0; i < n; ++i) {
      want += static_cast<double>(rt.values[i]) * x[i];
      magnitude += std::fabs(static_cast<double>(rt.values[i]) * x[i]);
    }
    auto got = DotRow(type, rt.bytes.data(), x.data(), n);
    ASSERT_TRUE(got) << got.error().ToString();
    EXPECT_NEAR(*got, want, 1e-5 * magnitude);
    // Rows are independent: the dot of the second half alone.
    const int64_t half_bytes = *RowBytes(type, n / 2);
    auto second = DotRow(type, rt.bytes.data() + half_bytes, x.data() + n / 2, n / 2);
    ASSERT_TRUE(second);
    double want_second = 0;
    for (int64_t i = n / 2; i < n; ++i) want_second += static_cast<double>(rt.values[i]) * x[i];
    EXPECT_NEAR(*second, want_second, 1e-5 * magnitude);
  }
  // Empty rows are fine.
  auto empty = DotRow(TensorType::kQ4_K, nullptr, nullptr, 0);
  ASSERT_TRUE(empty);
  EXPECT_EQ(*empty, 0.0f);
}

// --- the reference models --------------------------------------------------------

// The qwen3-s-* files hold the same random weights in different types. Each
// quantized tensor is compared with the F16 file's tensor of the same name:
// a layout error (wrong nibble order, scale packing, ...) shows up as an
// error of order 1 instead of the few percent quantization costs.
TEST(ReferenceModels, QuantizedTensorsMatchF16) {
  namespace fs = std::filesystem;
  const fs::path dir = gguf::FindTestdataDir();
  if (dir.empty()) {
    GTEST_SKIP() << "*** reference data not found: set XNAI_TESTDATA or place it at "
                    "<repo>/../shared/testdata — quant layouts NOT cross-checked ***";
  }
  auto f16 = gguf::OpenGguf(dir / "models" / "qwen3-s-f16.gguf");
  ASSERT_TRUE(f16) << f16.error().ToString();
  struct Case {
    const char* file;
    TensorType type;
    double max_error;  // relative RMS over all tensors of that type
  };
  const Case cases[] = {
      {"qwen3-s-bf16.gguf", TensorType::kBF16, 0.005},
      {"qwen3-s-q8_0.gguf", TensorType::kQ8_0, 0.01},
      {"qwen3-s-q6_k.gguf", TensorType::kQ6_K, 0.025},
      {"qwen3-s-q5_k.gguf", TensorType::kQ5_K, 0.05},
      {"qwen3-s-q4_k.gguf", TensorType::kQ4_K, 0.1},
      {"qwen3-s-q4_0.gguf", TensorType::kQ4_0, 0.13},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file);
    auto q = gguf::OpenGguf(dir / "models" / c.file);
    ASSERT_TRUE(q) << q.error().ToString();
    double err2 = 0, ref2 = 0, mine_err2 = 0, mine_ref2 = 0;
    int compared = 0;
    for (const gguf::TensorInfo& t : (*q)->tensors()) {
      const gguf::TensorInfo* ref = (*f16)->FindTensor(t.name);
      ASSERT_NE(ref, nullptr) << t.name;
      ASSERT_EQ(t.dims, ref->dims) << t.name;
      if (t.type != c.type) continue;  // e.g. 1-D norms kept in F32
      ASSERT_EQ(ref->type, TensorType::kF16) << t.name;
      std::vector<float> got(t.n_elements), want(t.n_elements);
      ASSERT_TRUE(DequantizeRow(t.type, t.data, got.data(), t.n_elements).ok());
      ASSERT_TRUE(DequantizeRow(ref->type, ref->data, want.data(), t.n_elements).ok());
      double te = 0, tr = 0;
      for (int64_t i = 0; i < t.n_elements; ++i) {
        te += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
        tr += static_cast<double>(want[i]) * want[i];
      }
      // Per tensor too, so one broken tensor cannot hide in the total.
      EXPECT_LE(std::sqrt(te / tr), c.max_error * 1.5) << t.name;
      err2 += te;
      ref2 += tr;
      ++compared;
      // Our own quantizer on (the first rows of) the same weights, to report
      // how it compares with the reference implementation's.
      const int64_t n = std::min<int64_t>(t.n_elements, 64 * t.dims[0]);
      const std::vector<float> src(want.begin(), want.begin() + n);
      const RoundTrip mine = QuantizeDequantize(c.type, src);
      for (int64_t i = 0; i < n; ++i) {
        mine_err2 += (static_cast<double>(mine.values[i]) - src[i]) *
                     (static_cast<double>(mine.values[i]) - src[i]);
        mine_ref2 += static_cast<double>(src[i]) * src[i];
      }
    }
    ASSERT_GT(compared, 10);
    const double err = std::sqrt(err2 / ref2);
    const double mine = std::sqrt(mine_err2 / mine_ref2);
    std::printf("  %-18s %2d tensors of %s: relative RMS vs F16 %.5f (xnai quantizer %.5f)\n",
                c.file, compared, std::string(GetTypeTraits(c.type).name).c_str(), err, mine);
    EXPECT_LE(err, c.max_error);
    EXPECT_GT(err, 0.0);  // a different type must differ somewhere
    // Our reference quantizer should be in the same league.
    EXPECT_LE(mine, err * 1.6 + 1e-4);
  }
}

}  // namespace
}  // namespace xnai::engine
