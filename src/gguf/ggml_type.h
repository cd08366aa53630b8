// The tensor element types of the GGUF format (the ggml type ids) and their
// storage facts: how many elements one block holds and how many bytes it
// takes. This is the single table of type sizes in xnai; the reader uses it to
// validate tensor sizes and the engine builds its kernels on top of it.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/status.h"

namespace xnai::gguf {

// Type ids exactly as the GGUF format stores them. Ids the format retired
// (4, 5: Q4_2/Q4_3; 31-33: Q4_0_4_4/4_8/8_8; 36-38: IQ4_NL_4_4/4_8/8_8) are
// not listed: a file using them is rejected as an unknown type.
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,
};

// Storage facts of one type. A row of n elements (n a multiple of
// block_elems) occupies n / block_elems * block_bytes bytes.
struct GgmlTypeInfo {
  GgmlType type;
  std::string_view name;  // "Q4_K", as the format and llama.cpp name it
  int64_t block_elems;    // elements per block (1 for plain element types)
  int64_t block_bytes;    // bytes per block
};

// Returns the facts for a raw type id, or nullptr when the id is not a type the
// format defines (including retired ids). Never fails otherwise.
const GgmlTypeInfo* FindGgmlType(uint32_t id);

// Facts for a known enum value. The enum only holds defined ids, so this
// never returns nullptr for a value of the enum produced by FindGgmlType.
const GgmlTypeInfo& GgmlTypeFacts(GgmlType type);

// "Q4_K"; "type#<id>" for a value outside the table.
std::string_view GgmlTypeName(GgmlType type);

// Bytes of one row of `n` elements. InvalidArgument when n is negative or not
// a whole number of blocks ("row length 33 is not a multiple of the Q8_0 block
// size 32"), or when the size overflows int64.
Result<int64_t> GgmlRowBytes(GgmlType type, int64_t n);

}  // namespace xnai::gguf
