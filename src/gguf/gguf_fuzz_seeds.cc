#include "gguf/gguf_fuzz_seeds.h"

#include <cstdint>
#include <span>
#include <string_view>

#include "gguf/gguf_writer.h"

namespace xnai::gguf {
namespace {

// Seed construction only fails on a programming error in this file.
void Check(const Status& status) {
  if (!status.ok()) __builtin_trap();
}

std::string Bytes(size_t n, uint8_t salt) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>((i * 31 + salt) & 0xff);
  return out;
}

std::string AllTypesFile() {
  GgufWriter w;
  Check(w.Add("general.architecture", WriterValue::String("qwen3")));
  Check(w.Add("u8", WriterValue::Uint8(200)));
  Check(w.Add("i8", WriterValue::Int8(-100)));
  Check(w.Add("u16", WriterValue::Uint16(60000)));
  Check(w.Add("i16", WriterValue::Int16(-30000)));
  Check(w.Add("u32", WriterValue::Uint32(4000000000u)));
  Check(w.Add("i32", WriterValue::Int32(-2000000000)));
  Check(w.Add("u64", WriterValue::Uint64(UINT64_MAX)));
  Check(w.Add("i64", WriterValue::Int64(INT64_MIN)));
  Check(w.Add("f32", WriterValue::Float32(1.5f)));
  Check(w.Add("f64", WriterValue::Float64(-2.25)));
  Check(w.Add("b", WriterValue::Bool(true)));
  const std::vector<std::string> strings = {"a", "", "hello", "\xc3\xa9t\xc3\xa9"};
  Check(w.Add("strs", WriterValue::StringArray(std::span<const std::string>(strings))));
  const std::vector<float> floats = {0.5f, -1.0f, 3.25f};
  Check(w.Add("floats", WriterValue::ArrayOf<float>(floats)));
  const std::vector<int32_t> ints = {1, -2, 3};
  Check(w.Add("ints", WriterValue::ArrayOf<int32_t>(ints)));
  Check(w.Add("bools", WriterValue::BoolArray({true, false, true})));
  const std::vector<WriterValue> inner = {
      WriterValue::ArrayOf<int32_t>(ints),
      WriterValue::StringArray(std::span<const std::string>(strings))};
  Result<WriterValue> nested = WriterValue::Array(ValueType::kArray, inner);
  Check(nested ? Status::Ok() : nested.error());
  Check(w.Add("nested", *nested));
  const int64_t dims_f32[] = {4, 3};
  Check(w.AddTensor("f32", GgmlType::kF32, dims_f32, Bytes(48, 1)));
  const int64_t dims_q8[] = {64, 2};
  Check(w.AddTensor("q8", GgmlType::kQ8_0, dims_q8, Bytes(4 * 34, 2)));
  const int64_t dims_q4k[] = {256};
  Check(w.AddTensor("q4k", GgmlType::kQ4_K, dims_q4k, Bytes(144, 3)));
  return w.Build();
}

std::string AlignedFile() {
  GgufWriter w;
  Check(w.Add("general.alignment", WriterValue::Uint32(64)));
  Check(w.Add("general.name", WriterValue::String("aligned")));
  const int64_t dims[] = {3, 1, 1, 2};
  Check(w.AddTensor("f16", GgmlType::kF16, dims, Bytes(12, 4)));
  const int64_t dims_bf[] = {5};
  Check(w.AddTensor("bf16", GgmlType::kBF16, dims_bf, Bytes(10, 5)));
  const int64_t dims_q6[] = {256};
  Check(w.AddTensor("q6k", GgmlType::kQ6_K, dims_q6, Bytes(210, 6)));
  return w.Build();
}

std::string VocabOnlyFile() {
  GgufWriter w;
  Check(w.Add("tokenizer.ggml.model", WriterValue::String("gpt2")));
  const std::vector<std::string> tokens = {"<s>", "</s>", "a", "b", "ab"};
  Check(w.Add("tokenizer.ggml.tokens",
              WriterValue::StringArray(std::span<const std::string>(tokens))));
  const std::vector<int32_t> types = {3, 3, 1, 1, 1};
  Check(w.Add("tokenizer.ggml.token_type", WriterValue::ArrayOf<int32_t>(types)));
  const std::vector<std::string> merges = {"a b"};
  Check(w.Add("tokenizer.ggml.merges",
              WriterValue::StringArray(std::span<const std::string>(merges))));
  return w.Build();
}

}  // namespace

std::vector<std::string> MakeFuzzSeeds() {
  return {AllTypesFile(), AlignedFile(), VocabOnlyFile()};
}

}  // namespace xnai::gguf
