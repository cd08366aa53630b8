// Unit tests of engine/synth: every preset loads with the engine and has its
// hyperparameters, every type gives finite logits, the random quant blocks
// have the intended statistics, the synthetic tokenizers are valid, output is
// deterministic by seed, and the Q4_K_M mix matches the reference files.
#include "engine/synth.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/files.h"
#include "engine/encoder.h"
#include "engine/model.h"
#include "engine/quants.h"
#include "engine/tokenizer.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"
#include "gguf/testdata.h"

namespace xnai::engine {
namespace {

namespace fs = std::filesystem;

constexpr SynthType kAllTypes[] = {
    SynthType::kF32,  SynthType::kF16,  SynthType::kBF16, SynthType::kQ8_0,   SynthType::kQ4_0,
    SynthType::kQ4_K, SynthType::kQ5_K, SynthType::kQ6_K, SynthType::kQ4_K_M, SynthType::kQ5_K_M};

class SynthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("xnai-synth-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Writes a model and opens it; fails the test on any error.
  std::unique_ptr<gguf::GgufFile> Synth(const SynthOptions& options, const std::string& name) {
    const fs::path path = dir_ / name;
    auto result = WriteSynthModel(options, path);
    EXPECT_TRUE(result.has_value()) << result.error().ToString();
    if (!result) return nullptr;
    EXPECT_EQ(fs::file_size(path), result->file_bytes);
    auto file = gguf::OpenGguf(path);
    EXPECT_TRUE(file.has_value()) << file.error().ToString();
    return file ? std::move(*file) : nullptr;
  }

  static SynthOptions Options(const std::string& preset, SynthType type, int64_t max_layers = 0) {
    SynthOptions options;
    options.shape = *FindSynthPreset(preset);
    options.type = type;
    options.max_layers = max_layers;
    return options;
  }

  fs::path dir_;
};

// --- presets and names ------------------------------------------------------------

TEST(SynthNames, PresetsAreUniqueAndFindable) {
  std::set<std::string> names;
  for (const SynthShape& shape : SynthPresets()) {
    EXPECT_TRUE(names.insert(shape.name).second) << shape.name;
    ASSERT_TRUE(FindSynthPreset(shape.name).has_value());
    EXPECT_EQ(FindSynthPreset(shape.name)->n_embd, shape.n_embd);
  }
  for (const char* required : {"qwen3-0.6b", "qwen3-1.7b", "llama-3.2-1b", "smollm2-135m",
                               "bge-small", "all-minilm-l6", "tiny-qwen3", "tiny-bert"}) {
    EXPECT_TRUE(names.count(required)) << required;
  }
  EXPECT_FALSE(FindSynthPreset("qwen3-0.6").has_value());
  EXPECT_NE(SynthPresetNames().find("smollm2-135m"), std::string::npos);
}

TEST(SynthNames, RealHyperparameters) {
  const SynthShape q = *FindSynthPreset("qwen3-0.6b");
  EXPECT_EQ(q.n_embd, 1024);
  EXPECT_EQ(q.n_layer, 28);
  EXPECT_EQ(q.n_head, 16);
  EXPECT_EQ(q.n_head_kv, 8);
  EXPECT_EQ(q.head_dim, 128);
  EXPECT_EQ(q.n_ff, 3072);
  EXPECT_EQ(q.n_vocab, 151936);
  EXPECT_TRUE(q.tied);
  const SynthShape l = *FindSynthPreset("llama-3.2-1b");
  EXPECT_EQ(l.n_embd, 2048);
  EXPECT_EQ(l.n_layer, 16);
  EXPECT_EQ(l.n_head, 32);
  EXPECT_EQ(l.n_head_kv, 8);
  EXPECT_EQ(l.n_ff, 8192);
  EXPECT_EQ(l.n_vocab, 128256);
  EXPECT_EQ(l.rope_theta, 500000.0);
  const SynthShape b = *FindSynthPreset("bge-small");
  EXPECT_EQ(b.n_embd, 384);
  EXPECT_EQ(b.n_layer, 12);
  EXPECT_EQ(b.bert_pooling, 2);
  EXPECT_EQ(FindSynthPreset("all-minilm-l6")->n_layer, 6);
  EXPECT_EQ(FindSynthPreset("all-minilm-l6")->bert_pooling, 1);
}

TEST(SynthNames, TypesParseCaseInsensitively) {
  for (SynthType type : kAllTypes) {
    const std::string name(SynthTypeName(type));
    ASSERT_EQ(ParseSynthType(name), type) << name;
    std::string lower = name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_EQ(ParseSynthType(lower), type) << lower;
    EXPECT_NE(SynthTypeNames().find(name), std::string::npos);
  }
  EXPECT_FALSE(ParseSynthType("Q3_K").has_value());
  EXPECT_FALSE(ParseSynthType("").has_value());
  EXPECT_EQ(SynthFileType(SynthType::kQ4_K_M), 15u);
  EXPECT_EQ(SynthFileType(SynthType::kQ8_0), 7u);
}

// --- type mixes -------------------------------------------------------------------

// Layers whose attn_v and ffn_down get Q6_K under Q4_K_M.
std::vector<int64_t> MoreBitsLayers(int64_t n_layer) {
  std::vector<int64_t> out;
  for (int64_t layer = 0; layer < n_layer; ++layer) {
    if (SynthTensorType(SynthType::kQ4_K_M, SynthRole::kAttnV, layer, n_layer, 1024, true) ==
        TensorType::kQ6_K) {
      out.push_back(layer);
    }
  }
  return out;
}

TEST(SynthMix, Q4KMLayerRule) {
  // The first and last eighth and every third layer in between.
  EXPECT_EQ(MoreBitsLayers(28),
            (std::vector<int64_t>{0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27}));
  EXPECT_EQ(MoreBitsLayers(16), (std::vector<int64_t>{0, 1, 4, 7, 10, 13, 14, 15}));
  EXPECT_EQ(MoreBitsLayers(2), (std::vector<int64_t>{1}));
  for (int64_t layer = 0; layer < 28; ++layer) {
    const bool more = SynthTensorType(SynthType::kQ4_K_M, SynthRole::kAttnV, layer, 28, 1024,
                                      true) == TensorType::kQ6_K;
    EXPECT_EQ(SynthTensorType(SynthType::kQ4_K_M, SynthRole::kFfnDown, layer, 28, 3072, true),
              more ? TensorType::kQ6_K : TensorType::kQ4_K);
    for (SynthRole role : {SynthRole::kAttnQ, SynthRole::kAttnK, SynthRole::kAttnOutput,
                           SynthRole::kFfnGate, SynthRole::kFfnUp}) {
      EXPECT_EQ(SynthTensorType(SynthType::kQ4_K_M, role, layer, 28, 1024, true),
                TensorType::kQ4_K);
      EXPECT_EQ(SynthTensorType(SynthType::kQ5_K_M, role, layer, 28, 1024, true),
                TensorType::kQ5_K);
    }
  }
  // The output projection: output.weight, or token_embd when tied.
  EXPECT_EQ(SynthTensorType(SynthType::kQ4_K_M, SynthRole::kTokenEmbd, 0, 28, 1024, true),
            TensorType::kQ6_K);
  EXPECT_EQ(SynthTensorType(SynthType::kQ4_K_M, SynthRole::kTokenEmbd, 0, 28, 1024, false),
            TensorType::kQ4_K);
  EXPECT_EQ(SynthTensorType(SynthType::kQ4_K_M, SynthRole::kOutput, 0, 28, 1024, false),
            TensorType::kQ6_K);
}

TEST(SynthMix, RowLengthFallbacks) {
  EXPECT_EQ(SynthTensorType(SynthType::kQ4_K, SynthRole::kAttnQ, 0, 30, 576, true),
            TensorType::kQ4_0);
  EXPECT_EQ(SynthTensorType(SynthType::kQ5_K, SynthRole::kAttnQ, 0, 30, 576, true),
            TensorType::kQ8_0);
  EXPECT_EQ(SynthTensorType(SynthType::kQ6_K, SynthRole::kAttnQ, 0, 30, 384, true),
            TensorType::kQ8_0);
  EXPECT_EQ(SynthTensorType(SynthType::kQ4_K_M, SynthRole::kTokenEmbd, 0, 12, 384, true),
            TensorType::kQ8_0);
  EXPECT_EQ(SynthTensorType(SynthType::kQ4_K, SynthRole::kFfnDown, 0, 30, 1536, true),
            TensorType::kQ4_K);
  EXPECT_EQ(SynthTensorType(SynthType::kQ8_0, SynthRole::kAttnQ, 0, 2, 100, true),
            TensorType::kF16);
  EXPECT_EQ(SynthTensorType(SynthType::kF32, SynthRole::kAttnQ, 0, 2, 100, true), TensorType::kF32);
}

// Synthesizes the shape of a reference Q4_K_M file and compares every
// tensor's type with it.
void ExpectSameTypes(const gguf::GgufFile& mine, const gguf::GgufFile& reference) {
  ASSERT_EQ(mine.tensors().size(), reference.tensors().size());
  for (const gguf::TensorInfo& ref : reference.tensors()) {
    const gguf::TensorInfo* got = mine.FindTensor(ref.name);
    ASSERT_NE(got, nullptr) << ref.name;
    EXPECT_EQ(got->type, ref.type) << ref.name;
    EXPECT_EQ(got->dims, ref.dims) << ref.name;
  }
}

TEST_F(SynthTest, Q4KMMatchesReferenceFiles) {
  const fs::path testdata = gguf::FindTestdataDir();
  if (testdata.empty()) GTEST_SKIP() << "reference testdata not found (set XNAI_TESTDATA)";

  SynthOptions qwen = Options("tiny-qwen3", SynthType::kQ4_K_M);  // the qwen3-s shape
  auto mine = Synth(qwen, "qwen3-s.gguf");
  auto ref = gguf::OpenGguf(testdata / "models" / "qwen3-s-q4_k_m.gguf");
  ASSERT_TRUE(ref.has_value()) << ref.error().ToString();
  ASSERT_NE(mine, nullptr);
  ExpectSameTypes(*mine, **ref);

  SynthOptions llama = Options("tiny-qwen3", SynthType::kQ4_K_M);
  SynthShape& s = llama.shape;  // the llama-s shape: separate output, 8 heads of 32
  s.architecture = "llama";
  s.n_head = 8;
  s.n_head_kv = 4;
  s.head_dim = 32;
  s.tied = false;
  s.write_head_dim = false;
  s.rope_theta = 1e4;
  auto mine_llama = Synth(llama, "llama-s.gguf");
  auto ref_llama = gguf::OpenGguf(testdata / "models" / "llama-s-q4_k_m.gguf");
  ASSERT_TRUE(ref_llama.has_value()) << ref_llama.error().ToString();
  ASSERT_NE(mine_llama, nullptr);
  ExpectSameTypes(*mine_llama, **ref_llama);
}

// --- every preset loads --------------------------------------------------------------

TEST_F(SynthTest, EveryPresetLoadsWithItsHyperparameters) {
  for (const SynthShape& shape : SynthPresets()) {
    SCOPED_TRACE(shape.name);
    // One layer keeps the big presets cheap; everything else is full size
    // (the vocabulary too). Q4_0 is the smallest type.
    SynthOptions options = Options(shape.name, SynthType::kQ4_0, 1);
    auto file = Synth(options, shape.name + ".gguf");
    ASSERT_NE(file, nullptr);
    auto tokenizer = Tokenizer::FromGguf(*file);
    ASSERT_TRUE(tokenizer.has_value()) << tokenizer.error().ToString();
    EXPECT_EQ((*tokenizer)->vocab_size(), shape.n_vocab);
    const std::vector<int32_t> ids = (*tokenizer)
                                         ->Encode("hello world, the quick brown fox",
                                                  /*add_special=*/true, false);
    EXPECT_GE(ids.size(), 3u);
    if (shape.architecture == "bert") {
      auto encoder = Encoder::Load(*file, 1);
      ASSERT_TRUE(encoder.has_value()) << encoder.error().ToString();
      const EncoderHparams& hp = (*encoder)->hparams();
      EXPECT_EQ(hp.n_vocab, shape.n_vocab);
      EXPECT_EQ(hp.n_embd, shape.n_embd);
      EXPECT_EQ(hp.n_layer, 1);
      EXPECT_EQ(hp.n_head, shape.n_head);
      EXPECT_EQ(hp.head_dim, shape.head_dim);
      EXPECT_EQ(hp.n_ff, shape.n_ff);
      EXPECT_EQ(hp.n_ctx, shape.n_ctx);
      EXPECT_FLOAT_EQ(hp.norm_eps, static_cast<float>(shape.norm_eps));
      EXPECT_EQ(static_cast<int>(hp.pooling), shape.bert_pooling);
      EXPECT_EQ(ids.front(), (*tokenizer)->cls_id());
      EXPECT_EQ(ids.back(), (*tokenizer)->sep_id());
      auto embedding = (*encoder)->Embed(ids, true);
      ASSERT_TRUE(embedding.has_value()) << embedding.error().ToString();
      for (float v : *embedding) ASSERT_TRUE(std::isfinite(v));
    } else {
      auto model = Model::Load(*file);
      ASSERT_TRUE(model.has_value()) << model.error().ToString();
      const ModelHparams& hp = (*model)->hparams();
      EXPECT_EQ(hp.architecture, shape.architecture);
      EXPECT_EQ(hp.n_vocab, shape.n_vocab);
      EXPECT_EQ(hp.n_embd, shape.n_embd);
      EXPECT_EQ(hp.n_layer, 1);
      EXPECT_EQ(hp.n_head, shape.n_head);
      EXPECT_EQ(hp.n_head_kv, shape.n_head_kv);
      EXPECT_EQ(hp.head_dim, shape.head_dim);
      EXPECT_EQ(hp.n_rot, shape.head_dim);
      EXPECT_EQ(hp.n_ff, shape.n_ff);
      EXPECT_EQ(hp.n_ctx, shape.n_ctx);
      EXPECT_FLOAT_EQ(hp.rms_eps, static_cast<float>(shape.norm_eps));
      EXPECT_FLOAT_EQ(hp.rope_theta, static_cast<float>(shape.rope_theta));
      EXPECT_EQ(hp.tied_output, shape.tied);
      EXPECT_EQ(hp.qk_norm, shape.architecture == "qwen3");
      EXPECT_GE((*tokenizer)->bos_id(), 0);
      EXPECT_GE((*tokenizer)->eos_id(), 0);
      EXPECT_TRUE((*tokenizer)->IsControl((*tokenizer)->eos_id()));
      EXPECT_EQ(file->FindTensor("rope_freqs.weight") != nullptr, shape.rope_scale_factor > 0);
    }
  }
}

TEST_F(SynthTest, Llama3RopeFactors) {
  auto file = Synth(Options("llama-3.2-1b", SynthType::kQ4_0, 1), "llama.gguf");
  ASSERT_NE(file, nullptr);
  const gguf::TensorInfo* freqs = file->FindTensor("rope_freqs.weight");
  ASSERT_NE(freqs, nullptr);
  ASSERT_EQ(freqs->n_elements, 32);
  const float* f = reinterpret_cast<const float*>(freqs->data);
  // High frequencies unscaled, the lowest divided by the factor 32, the
  // band between rising monotonically.
  EXPECT_FLOAT_EQ(f[0], 1.0f);
  EXPECT_FLOAT_EQ(f[31], 32.0f);
  for (int i = 1; i < 32; ++i) EXPECT_GE(f[i], f[i - 1]);
}

// --- numbers -----------------------------------------------------------------------

std::vector<float> Dequantized(const gguf::TensorInfo& tensor) {
  std::vector<float> out(static_cast<size_t>(tensor.n_elements));
  const int64_t cols = tensor.dims[0];
  const int64_t row_bytes = *RowBytes(tensor.type, cols);
  for (int64_t row = 0; row < tensor.n_elements / cols; ++row) {
    EXPECT_TRUE(
        DequantizeRow(tensor.type, tensor.data + row * row_bytes, out.data() + row * cols, cols)
            .ok());
  }
  return out;
}

TEST_F(SynthTest, EveryTypeHasSaneWeightsAndFiniteLogits) {
  for (SynthType type : kAllTypes) {
    SCOPED_TRACE(SynthTypeName(type));
    auto file = Synth(Options("tiny-qwen3", type), std::string(SynthTypeName(type)) + ".gguf");
    ASSERT_NE(file, nullptr);
    // Every 2-D weight: mean about 0, standard deviation about 0.02.
    for (const gguf::TensorInfo& tensor : file->tensors()) {
      if (tensor.n_dims != 2) continue;
      SCOPED_TRACE(std::string(tensor.name));
      const std::vector<float> values = Dequantized(tensor);
      double sum = 0, sum_squares = 0;
      for (float v : values) {
        ASSERT_TRUE(std::isfinite(v));
        sum += v;
        sum_squares += static_cast<double>(v) * v;
      }
      const double mean = sum / values.size();
      const double stddev = std::sqrt(sum_squares / values.size() - mean * mean);
      EXPECT_LT(std::abs(mean), 0.002);
      EXPECT_GT(stddev, 0.014);
      EXPECT_LT(stddev, 0.026);
    }
    auto model = Model::Load(*file);
    ASSERT_TRUE(model.has_value()) << model.error().ToString();
    Sequence sequence = (*model)->NewSequence();
    const std::vector<int32_t> tokens = {1, 500, 4000, 17, 256, 3000, 42, 4095};
    auto logits = (*model)->Forward(sequence, tokens, /*all_logits=*/true);
    ASSERT_TRUE(logits.has_value()) << logits.error().ToString();
    double sum_squares = 0;
    for (float v : *logits) {
      ASSERT_TRUE(std::isfinite(v));
      sum_squares += static_cast<double>(v) * v;
    }
    const double rms = std::sqrt(sum_squares / logits->size());
    EXPECT_GT(rms, 0.05);  // not vacuous
    EXPECT_LT(rms, 50.0);  // not blown up
  }
}

TEST_F(SynthTest, EveryTypeGivesFiniteEmbeddings) {
  for (SynthType type : kAllTypes) {
    SCOPED_TRACE(SynthTypeName(type));
    auto file = Synth(Options("tiny-bert", type), std::string(SynthTypeName(type)) + ".gguf");
    ASSERT_NE(file, nullptr);
    auto encoder = Encoder::Load(*file, 1);
    ASSERT_TRUE(encoder.has_value()) << encoder.error().ToString();
    auto embedding = (*encoder)->Embed(std::vector<int32_t>{101, 2000, 3000, 4000, 102}, false);
    ASSERT_TRUE(embedding.has_value()) << embedding.error().ToString();
    double norm = 0;
    for (float v : *embedding) {
      ASSERT_TRUE(std::isfinite(v));
      norm += static_cast<double>(v) * v;
    }
    EXPECT_GT(norm, 1e-6);
  }
}

// --- determinism ------------------------------------------------------------------

TEST_F(SynthTest, DeterministicBySeed) {
  SynthOptions options = Options("tiny-qwen3", SynthType::kQ4_K_M);
  options.seed = 7;
  ASSERT_TRUE(WriteSynthModel(options, dir_ / "a.gguf").has_value());
  ASSERT_TRUE(WriteSynthModel(options, dir_ / "b.gguf").has_value());
  options.seed = 8;
  ASSERT_TRUE(WriteSynthModel(options, dir_ / "c.gguf").has_value());
  const std::string a = *ReadFileToString(dir_ / "a.gguf");
  const std::string b = *ReadFileToString(dir_ / "b.gguf");
  const std::string c = *ReadFileToString(dir_ / "c.gguf");
  EXPECT_TRUE(a == b);
  EXPECT_EQ(a.size(), c.size());
  EXPECT_FALSE(a == c);
  // The vocabulary does not depend on the seed, only the weights do.
  auto file_a = gguf::OpenGgufFromMemory(a);
  auto file_c = gguf::OpenGgufFromMemory(c);
  ASSERT_TRUE(file_a.has_value() && file_c.has_value());
  auto tokens_a = (*file_a)->GetStringArray("tokenizer.ggml.tokens");
  auto tokens_c = (*file_c)->GetStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens_a.has_value() && tokens_c.has_value());
  EXPECT_TRUE(std::equal(tokens_a->begin(), tokens_a->end(), tokens_c->begin(), tokens_c->end()));
}

// --- tokenizers ---------------------------------------------------------------------

TEST(SynthVocab, ByteLevelBpeIsValid) {
  for (const char* preset : {"qwen3-0.6b", "llama-3.2-1b", "smollm2-135m", "tiny-qwen3"}) {
    SCOPED_TRACE(preset);
    const SynthShape shape = *FindSynthPreset(preset);
    auto vocab = MakeSynthVocab(shape);
    ASSERT_TRUE(vocab.has_value()) << vocab.error().ToString();
    ASSERT_EQ(static_cast<int64_t>(vocab->tokens.size()), shape.n_vocab);
    ASSERT_EQ(vocab->token_types.size(), vocab->tokens.size());
    std::unordered_map<std::string, int32_t> ids;
    for (size_t i = 0; i < vocab->tokens.size(); ++i) {
      ASSERT_TRUE(ids.emplace(vocab->tokens[i], static_cast<int32_t>(i)).second)
          << "duplicate token " << vocab->tokens[i];
    }
    // The first 256 are the bytes: printable ASCII stands for itself, a
    // space is "Ġ" (U+0120).
    EXPECT_EQ(vocab->tokens['a'], "a");
    EXPECT_EQ(vocab->tokens[' '], "\xc4\xa0");
    // Every merge joins two tokens into a later one.
    for (size_t rank = 0; rank < vocab->merges.size(); ++rank) {
      const std::string& merge = vocab->merges[rank];
      const size_t space = merge.find(' ', 1);
      ASSERT_NE(space, std::string::npos) << merge;
      const std::string left = merge.substr(0, space), right = merge.substr(space + 1);
      ASSERT_TRUE(ids.count(left) && ids.count(right)) << merge;
      auto joined = ids.find(left + right);
      ASSERT_NE(joined, ids.end()) << merge;
      EXPECT_EQ(joined->second, static_cast<int32_t>(256 + rank)) << merge;
      ASSERT_LT(ids[left], joined->second);
      ASSERT_LT(ids[right], joined->second);
    }
    EXPECT_EQ(vocab->token_types[vocab->bos_id], 3);
    EXPECT_EQ(vocab->token_types[vocab->eos_id], 3);
  }
  // The real special ids where they fit.
  auto qwen = MakeSynthVocab(*FindSynthPreset("qwen3-0.6b"));
  EXPECT_EQ(qwen->tokens[151643], "<|endoftext|>");
  EXPECT_EQ(qwen->eos_id, 151645);
  auto llama = MakeSynthVocab(*FindSynthPreset("llama-3.2-1b"));
  EXPECT_EQ(llama->bos_id, 128000);
  EXPECT_EQ(llama->eos_id, 128009);
  EXPECT_EQ(llama->tokens[128255], "<|reserved_special_token_247|>");
}

TEST(SynthVocab, WordPieceIsValid) {
  const SynthShape shape = *FindSynthPreset("bge-small");
  auto vocab = MakeSynthVocab(shape);
  ASSERT_TRUE(vocab.has_value()) << vocab.error().ToString();
  ASSERT_EQ(static_cast<int64_t>(vocab->tokens.size()), 30522);
  EXPECT_EQ(vocab->tokens[0], "[PAD]");
  EXPECT_EQ(vocab->tokens[100], "[UNK]");
  EXPECT_EQ(vocab->tokens[101], "[CLS]");
  EXPECT_EQ(vocab->tokens[102], "[SEP]");
  EXPECT_EQ(vocab->tokens[103], "[MASK]");
  EXPECT_EQ(std::unordered_set<std::string>(vocab->tokens.begin(), vocab->tokens.end()).size(),
            vocab->tokens.size());
}

TEST_F(SynthTest, TokenizerRoundTripsText) {
  auto file = Synth(Options("tiny-qwen3", SynthType::kQ8_0), "tiny.gguf");
  ASSERT_NE(file, nullptr);
  auto tokenizer = Tokenizer::FromGguf(*file);
  ASSERT_TRUE(tokenizer.has_value()) << tokenizer.error().ToString();
  const std::string text = "The capital of France is Paris. Hello, wörld! 123";
  const std::vector<int32_t> ids = (*tokenizer)->Encode(text, false, false);
  EXPECT_LT(ids.size(), text.size());  // some merges apply
  std::string decoded;
  for (int32_t id : ids) decoded += (*tokenizer)->TokenPiece(id);
  EXPECT_EQ(decoded, text);
}

// --- errors and the streaming writer -------------------------------------------------

TEST_F(SynthTest, Errors) {
  SynthOptions options = Options("tiny-qwen3", SynthType::kQ8_0);
  auto missing_dir = WriteSynthModel(options, dir_ / "no" / "such" / "dir.gguf");
  ASSERT_FALSE(missing_dir.has_value());
  EXPECT_EQ(missing_dir.error().code(), Status::Code::kNotFound);
  EXPECT_NE(missing_dir.error().message().find("dir.gguf"), std::string::npos);

  options.shape.n_head_kv = 3;  // 4 heads are not a multiple of 3
  auto bad = WriteSynthModel(options, dir_ / "bad.gguf");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), Status::Code::kInvalidArgument);
  options.shape = *FindSynthPreset("tiny-qwen3");
  options.shape.n_vocab = 100;  // no room for the byte tokens
  EXPECT_FALSE(WriteSynthModel(options, dir_ / "bad.gguf").has_value());
  EXPECT_FALSE(fs::exists(dir_ / "bad.gguf"));
  for (const auto& entry : fs::directory_iterator(dir_)) ADD_FAILURE() << entry.path();
}

TEST_F(SynthTest, StreamedTensorsMatchBuild) {
  gguf::GgufWriter writer;
  ASSERT_TRUE(writer.Add("general.architecture", gguf::WriterValue::String("none")).ok());
  const std::string small = "0123456789abcdef";
  ASSERT_TRUE(writer.AddTensor("small", TensorType::kI8, std::vector<int64_t>{16}, small).ok());
  // 3 MiB rows x 5: several batches of kRowBatchBytes.
  const int64_t cols = 3 << 20, rows = 5;
  std::vector<std::pair<int64_t, int64_t>> calls;
  auto source = [&calls, cols](int64_t begin, int64_t end, char* out) {
    calls.emplace_back(begin, end);
    for (int64_t row = begin; row < end; ++row) {
      std::memset(out + (row - begin) * cols, static_cast<int>('A' + row),
                  static_cast<size_t>(cols));
    }
  };
  ASSERT_TRUE(
      writer.AddTensorRows("big", TensorType::kI8, std::vector<int64_t>{cols, rows}, source).ok());
  EXPECT_FALSE(writer.AddTensorRows("empty", TensorType::kI8, std::vector<int64_t>{4}, {}).ok());
  const std::string built = writer.Build();
  EXPECT_EQ(built.size(), writer.FileSize());
  // Consecutive batches in row order, covering every row once.
  ASSERT_GE(calls.size(), 2u);
  int64_t next = 0;
  for (const auto& [begin, end] : calls) {
    EXPECT_EQ(begin, next);
    next = end;
  }
  EXPECT_EQ(next, rows);
  ASSERT_TRUE(writer.WriteToFile(dir_ / "streamed.gguf").ok());
  EXPECT_TRUE(*ReadFileToString(dir_ / "streamed.gguf") == built);
  auto file = gguf::OpenGgufFromMemory(built);
  ASSERT_TRUE(file.has_value()) << file.error().ToString();
  EXPECT_EQ((*file)->FindTensor("big")->data[4 * cols], 'A' + 4);
}

// --- a real shape end to end (slow: run with --gtest_also_run_disabled_tests) ---------

TEST_F(SynthTest, DISABLED_Qwen3FullSizeGivesFiniteLogits) {
  for (SynthType type : {SynthType::kQ8_0, SynthType::kQ4_K_M}) {
    SCOPED_TRACE(SynthTypeName(type));
    auto file = Synth(Options("qwen3-0.6b", type), "qwen3.gguf");
    ASSERT_NE(file, nullptr);
    EXPECT_NEAR(static_cast<double>(file->file_size()) / (1 << 20),
                type == SynthType::kQ8_0 ? 610.7 : 379.2, 1.0);
    auto model = Model::Load(*file);
    ASSERT_TRUE(model.has_value()) << model.error().ToString();
    Sequence sequence = (*model)->NewSequence();
    auto logits = (*model)->Forward(sequence, std::vector<int32_t>{9707, 1879, 11, 151643}, true);
    ASSERT_TRUE(logits.has_value()) << logits.error().ToString();
    for (float v : *logits) ASSERT_TRUE(std::isfinite(v));
  }
}

}  // namespace
}  // namespace xnai::engine
