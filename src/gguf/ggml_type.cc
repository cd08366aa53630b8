#include "gguf/ggml_type.h"

#include <array>
#include <string>

namespace xnai::gguf {
namespace {

// Block layouts (bytes) of the block types, for the record:
//   Q4_0  f16 d, 16 B nibbles                                = 18
//   Q4_1  f16 d, f16 m, 16 B nibbles                         = 20
//   Q5_0  f16 d, 4 B high bits, 16 B nibbles                 = 22
//   Q5_1  f16 d, f16 m, 4 B high bits, 16 B nibbles          = 24
//   Q8_0  f16 d, 32 x int8                                   = 34
//   Q8_1  f16 d, f16 s, 32 x int8                            = 36
//   Q2_K  16 B scales, 64 B quants, f16 d, f16 dmin          = 84
//   Q3_K  32 B hmask, 64 B quants, 12 B scales, f16 d        = 110
//   Q4_K  f16 d, f16 dmin, 12 B scales, 128 B nibbles        = 144
//   Q5_K  f16 d, f16 dmin, 12 B scales, 32 B qh, 128 B ql    = 176
//   Q6_K  128 B ql, 64 B qh, 16 x int8 scales, f16 d         = 210
//   Q8_K  f32 d, 256 x int8, 16 x int16 sums                 = 292
constexpr std::array<GgmlTypeInfo, 32> kTypes = {{
    {GgmlType::kF32, "F32", 1, 4},
    {GgmlType::kF16, "F16", 1, 2},
    {GgmlType::kQ4_0, "Q4_0", 32, 18},
    {GgmlType::kQ4_1, "Q4_1", 32, 20},
    {GgmlType::kQ5_0, "Q5_0", 32, 22},
    {GgmlType::kQ5_1, "Q5_1", 32, 24},
    {GgmlType::kQ8_0, "Q8_0", 32, 34},
    {GgmlType::kQ8_1, "Q8_1", 32, 36},
    {GgmlType::kQ2_K, "Q2_K", 256, 84},
    {GgmlType::kQ3_K, "Q3_K", 256, 110},
    {GgmlType::kQ4_K, "Q4_K", 256, 144},
    {GgmlType::kQ5_K, "Q5_K", 256, 176},
    {GgmlType::kQ6_K, "Q6_K", 256, 210},
    {GgmlType::kQ8_K, "Q8_K", 256, 292},
    {GgmlType::kIQ2_XXS, "IQ2_XXS", 256, 66},
    {GgmlType::kIQ2_XS, "IQ2_XS", 256, 74},
    {GgmlType::kIQ3_XXS, "IQ3_XXS", 256, 98},
    {GgmlType::kIQ1_S, "IQ1_S", 256, 50},
    {GgmlType::kIQ4_NL, "IQ4_NL", 32, 18},
    {GgmlType::kIQ3_S, "IQ3_S", 256, 110},
    {GgmlType::kIQ2_S, "IQ2_S", 256, 82},
    {GgmlType::kIQ4_XS, "IQ4_XS", 256, 136},
    {GgmlType::kI8, "I8", 1, 1},
    {GgmlType::kI16, "I16", 1, 2},
    {GgmlType::kI32, "I32", 1, 4},
    {GgmlType::kI64, "I64", 1, 8},
    {GgmlType::kF64, "F64", 1, 8},
    {GgmlType::kIQ1_M, "IQ1_M", 256, 56},
    {GgmlType::kBF16, "BF16", 1, 2},
    {GgmlType::kTQ1_0, "TQ1_0", 256, 54},
    {GgmlType::kTQ2_0, "TQ2_0", 256, 66},
    {GgmlType::kMXFP4, "MXFP4", 32, 17},
}};

constexpr GgmlTypeInfo kUnknownType = {GgmlType::kF32, "unknown", 1, 1};

}  // namespace

const GgmlTypeInfo* FindGgmlType(uint32_t id) {
  for (const GgmlTypeInfo& info : kTypes) {
    if (static_cast<uint32_t>(info.type) == id) return &info;
  }
  return nullptr;
}

const GgmlTypeInfo& GgmlTypeFacts(GgmlType type) {
  const GgmlTypeInfo* info = FindGgmlType(static_cast<uint32_t>(type));
  return info != nullptr ? *info : kUnknownType;
}

std::string_view GgmlTypeName(GgmlType type) {
  const GgmlTypeInfo* info = FindGgmlType(static_cast<uint32_t>(type));
  return info != nullptr ? info->name : std::string_view("unknown");
}

Result<int64_t> GgmlRowBytes(GgmlType type, int64_t n) {
  const GgmlTypeInfo* info = FindGgmlType(static_cast<uint32_t>(type));
  if (info == nullptr) {
    return Err(Status::Unsupported("unknown tensor type id " +
                                   std::to_string(static_cast<uint32_t>(type))));
  }
  if (n < 0 || n % info->block_elems != 0) {
    return Err(Status::InvalidArgument("row length " + std::to_string(n) +
                                       " is not a multiple of the " + std::string(info->name) +
                                       " block size " + std::to_string(info->block_elems)));
  }
  int64_t bytes = 0;
  if (__builtin_mul_overflow(n / info->block_elems, info->block_bytes, &bytes)) {
    return Err(Status::InvalidArgument("row of " + std::to_string(n) + " " +
                                       std::string(info->name) + " elements overflows int64"));
  }
  return bytes;
}

}  // namespace xnai::gguf
