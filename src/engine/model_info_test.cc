#include "engine/model_info.h"

#include <vector>

#include <gtest/gtest.h>

#include "engine/quants.h"
#include "gguf/gguf_writer.h"

namespace xnai::engine {
namespace {

using gguf::GgmlType;
using gguf::GgufWriter;
using gguf::WriterValue;

// A tiny two-tensor "model": a Q8_0 matrix and an F32 norm vector.
std::string TinyModel(bool with_template) {
  GgufWriter writer;
  EXPECT_TRUE(writer.Add("general.architecture", WriterValue::String("qwen3")).ok());
  EXPECT_TRUE(writer.Add("general.name", WriterValue::String("tiny")).ok());
  EXPECT_TRUE(writer.Add("qwen3.context_length", WriterValue::Uint32(4096)).ok());
  EXPECT_TRUE(writer.Add("tokenizer.ggml.model", WriterValue::String("gpt2")).ok());
  std::vector<std::string> tokens = {"a", "b", "c"};
  EXPECT_TRUE(writer.Add("tokenizer.ggml.tokens", WriterValue::StringArray(tokens)).ok());
  if (with_template) {
    EXPECT_TRUE(writer.Add("tokenizer.chat_template", WriterValue::String("{{ x }}")).ok());
  }
  std::vector<float> weights(64 * 4, 0.5f);
  std::string q8(RowBytes(GgmlType::kQ8_0, 64).value() * 4, '\0');
  for (int row = 0; row < 4; ++row) {
    EXPECT_TRUE(QuantizeRow(GgmlType::kQ8_0, weights.data() + row * 64,
                            q8.data() + row * (q8.size() / 4), 64)
                    .ok());
  }
  int64_t matrix_dims[] = {64, 4};
  EXPECT_TRUE(writer.AddTensor("blk.0.attn_q.weight", GgmlType::kQ8_0, matrix_dims, q8).ok());
  std::vector<float> norm(64, 1.0f);
  int64_t norm_dims[] = {64};
  EXPECT_TRUE(writer
                  .AddTensor("blk.0.attn_norm.weight", GgmlType::kF32, norm_dims,
                             std::string_view(reinterpret_cast<const char*>(norm.data()),
                                              norm.size() * sizeof(float)))
                  .ok());
  return writer.Build();
}

TEST(ModelInfoTest, SummarizesMetadataAndTensorTypes) {
  std::string bytes = TinyModel(true);
  auto file = gguf::OpenGgufFromMemory(bytes);
  ASSERT_TRUE(file.has_value()) << file.error().ToString();
  ModelInfo info = DescribeModel(**file);
  EXPECT_EQ(info.architecture, "qwen3");
  EXPECT_EQ(info.name, "tiny");
  EXPECT_EQ(info.context_length, 4096);
  EXPECT_EQ(info.vocabulary, "gpt2");
  EXPECT_EQ(info.vocabulary_size, 3);
  EXPECT_TRUE(info.has_chat_template);
  EXPECT_EQ(info.parameters, 64 * 4 + 64);
  ASSERT_EQ(info.types.size(), 2u);
  EXPECT_EQ(info.types[0].type, "Q8_0");  // the larger share comes first
  EXPECT_EQ(info.types[0].elements, 256);
  EXPECT_EQ(info.types[0].bytes, 4u * 68u);  // 2 blocks of 34 bytes per row
  EXPECT_EQ(info.types[1].type, "F32");
  EXPECT_EQ(info.types[1].bytes, 256u);
  EXPECT_EQ(info.tensor_bytes, 4u * 68u + 256u);
  EXPECT_EQ(info.file_bytes, bytes.size());
}

TEST(ModelInfoTest, VocabularyOnlyFileHasNoArchitecture) {
  GgufWriter writer;
  ASSERT_TRUE(writer.Add("tokenizer.ggml.model", WriterValue::String("bert")).ok());
  std::string bytes = writer.Build();
  auto file = gguf::OpenGgufFromMemory(bytes);
  ASSERT_TRUE(file.has_value());
  ModelInfo info = DescribeModel(**file);
  EXPECT_EQ(info.architecture, "");
  EXPECT_EQ(info.parameters, 0);
  EXPECT_FALSE(info.has_chat_template);
  EXPECT_EQ(info.vocabulary, "bert");
  EXPECT_TRUE(info.types.empty());
}

}  // namespace
}  // namespace xnai::engine
