// Unit tests of engine::Encoder on tiny random BERT models built in memory
// with GgufWriter (no testdata needed): the pooled embedding must agree with
// a plain float64 re-implementation written here from the math (embeddings +
// LayerNorm, post-LN bidirectional attention and GELU feed-forward blocks, CLS
// or mean pooling), and every bad input or broken file must fail cleanly with
// the documented status code. Agreement with the reference implementation's
// numbers is bert_conformance_test's job.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/encoder.h"
#include "engine/quants.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"

namespace xnai::engine {
namespace {

using Code = Status::Code;
using gguf::GgufWriter;
using gguf::WriterValue;

struct TinySpec {
  TensorType weight_type = TensorType::kF32;  // of the 2-D weights
  int64_t n_vocab = 50;
  int64_t n_embd = 32;
  int64_t n_layer = 2;
  int64_t n_head = 4;
  int64_t n_ff = 64;
  int64_t n_pos = 16;   // rows of position_embd.weight
  int64_t n_types = 2;  // rows of token_types.weight
  int64_t pooling = 2;  // bert.pooling_type; < 0: not written
  std::string arch = "bert";
  double eps = 1e-12;
  std::string drop;      // a tensor left out
  std::string misshape;  // a tensor written with one row too many
};

// The weights as the engine sees them (after the round trip through the
// stored type), for the float64 reference.
using Weights = std::map<std::string, std::vector<double>>;

class TinyBuilder {
 public:
  explicit TinyBuilder(const TinySpec& spec) : spec_(spec), rng_(4321) {}

  std::string Build() {
    const TinySpec& s = spec_;
    Check(writer_.Add("general.architecture", WriterValue::String(s.arch)));
    const std::string a = s.arch + ".";
    Check(writer_.Add(a + "context_length", WriterValue::Uint32(512)));
    Check(writer_.Add(a + "embedding_length", WriterValue::Uint32(s.n_embd)));
    Check(writer_.Add(a + "block_count", WriterValue::Uint32(s.n_layer)));
    Check(writer_.Add(a + "feed_forward_length", WriterValue::Uint32(s.n_ff)));
    Check(writer_.Add(a + "attention.head_count", WriterValue::Uint32(s.n_head)));
    Check(writer_.Add(a + "attention.layer_norm_epsilon", WriterValue::Float32(s.eps)));
    Check(writer_.Add(a + "attention.causal", WriterValue::Bool(false)));
    if (s.pooling >= 0) {
      Check(writer_.Add(a + "pooling_type", WriterValue::Uint32(s.pooling)));
    }
    const int64_t e = s.n_embd;
    Matrix("token_embd.weight", e, s.n_vocab, 1.0f);
    Add("position_embd.weight", TensorType::kF32, e, s.n_pos, Random(e * s.n_pos, 0, 0.5f));
    Add("token_types.weight", TensorType::kF32, e, s.n_types, Random(e * s.n_types, 0, 0.5f));
    Norm("token_embd_norm", e);
    for (int64_t layer = 0; layer < s.n_layer; ++layer) {
      const std::string blk = "blk." + std::to_string(layer) + ".";
      for (const char* name : {"attn_q", "attn_k", "attn_v", "attn_output"}) {
        Matrix(blk + name + ".weight", e, e, 1.0f);
        Vector(blk + name + ".bias", e, 0.0f, 0.3f);
      }
      Norm(blk + "attn_output_norm", e);
      Matrix(blk + "ffn_up.weight", e, s.n_ff, 1.0f);
      Vector(blk + "ffn_up.bias", s.n_ff, 0.0f, 0.3f);
      Matrix(blk + "ffn_down.weight", s.n_ff, e, 1.0f);
      Vector(blk + "ffn_down.bias", e, 0.0f, 0.3f);
      Norm(blk + "layer_output_norm", e);
    }
    return writer_.Build();
  }

  const Weights& weights() const { return weights_; }

 private:
  static void Check(const Status& status) { ASSERT_TRUE(status.ok()) << status.ToString(); }

  std::vector<float> Random(int64_t n, float mean, float spread) {
    std::uniform_real_distribution<float> dist(-spread, spread);
    std::vector<float> out(static_cast<size_t>(n));
    for (float& value : out) value = mean + dist(rng_);
    return out;
  }

  void Add(const std::string& name, TensorType type, int64_t cols, int64_t rows,
           std::vector<float> values) {
    if (name == spec_.drop) return;
    if (name == spec_.misshape) {
      ++rows;
      values.resize(static_cast<size_t>(cols * std::max<int64_t>(rows, 1)), 0.5f);
    }
    std::vector<int64_t> dims = {cols};
    if (rows > 0) dims.push_back(rows);
    const int64_t n_rows = std::max<int64_t>(rows, 1);
    const int64_t row_bytes = *RowBytes(type, cols);
    std::string data(static_cast<size_t>(row_bytes * n_rows), '\0');
    std::vector<double>& stored = weights_[name];
    std::vector<float> back(static_cast<size_t>(cols));
    for (int64_t row = 0; row < n_rows; ++row) {
      Check(QuantizeRow(type, values.data() + row * cols, data.data() + row * row_bytes, cols));
      Check(DequantizeRow(type, reinterpret_cast<const uint8_t*>(data.data()) + row * row_bytes,
                          back.data(), cols));
      stored.insert(stored.end(), back.begin(), back.end());
    }
    Check(writer_.AddTensor(name, type, dims, data));
  }

  void Matrix(const std::string& name, int64_t cols, int64_t rows, float scale) {
    const float spread = scale * std::sqrt(3.0f / static_cast<float>(cols));
    Add(name, spec_.weight_type, cols, rows, Random(cols * rows, 0.0f, spread));
  }
  void Vector(const std::string& name, int64_t n, float mean, float spread) {
    Add(name, TensorType::kF32, n, 0, Random(n, mean, spread));
  }
  void Norm(const std::string& prefix, int64_t n) {
    Vector(prefix + ".weight", n, 1.0f, 0.3f);
    Vector(prefix + ".bias", n, 0.0f, 0.3f);
  }

  TinySpec spec_;
  std::mt19937 rng_;
  GgufWriter writer_;
  Weights weights_;
};

struct Tiny {
  std::string bytes;
  std::unique_ptr<gguf::GgufFile> file;
  Weights weights;
};

Result<std::unique_ptr<Encoder>> LoadTiny(const TinySpec& spec, Tiny& out, int n_threads = 1) {
  TinyBuilder builder(spec);
  out.bytes = builder.Build();
  out.weights = builder.weights();
  auto file = gguf::OpenGgufFromMemory(out.bytes);
  if (!file) return Err(file.error());
  out.file = std::move(*file);
  return Encoder::Load(*out.file, n_threads);
}

// --- float64 reference ---------------------------------------------------------

using Rows = std::vector<std::vector<double>>;  // (n_tokens, width)

void RefLayerNorm(std::vector<double>& x, const std::vector<double>& w,
                  const std::vector<double>& b, double eps) {
  double mean = 0;
  for (double value : x) mean += value;
  mean /= static_cast<double>(x.size());
  double var = 0;
  for (double value : x) var += (value - mean) * (value - mean);
  var /= static_cast<double>(x.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = (x[i] - mean) / std::sqrt(var + eps) * w[i] + b[i];
}

// y = W x + b with W (rows, cols) row-major.
std::vector<double> RefLinear(const std::vector<double>& w, const std::vector<double>& b,
                              const std::vector<double>& x) {
  const size_t cols = x.size(), rows = b.size();
  std::vector<double> y(rows);
  for (size_t r = 0; r < rows; ++r) {
    double sum = b[r];
    for (size_t c = 0; c < cols; ++c) sum += w[r * cols + c] * x[c];
    y[r] = sum;
  }
  return y;
}

std::vector<double> RefEmbed(const TinySpec& s, const Weights& w,
                             const std::vector<int32_t>& tokens) {
  const size_t n = tokens.size(), e = static_cast<size_t>(s.n_embd);
  const size_t hd = e / static_cast<size_t>(s.n_head);
  Rows x(n, std::vector<double>(e));
  for (size_t t = 0; t < n; ++t) {
    for (size_t i = 0; i < e; ++i) {
      x[t][i] = w.at("token_embd.weight")[tokens[t] * e + i] +
                w.at("position_embd.weight")[t * e + i] + w.at("token_types.weight")[i];
    }
    RefLayerNorm(x[t], w.at("token_embd_norm.weight"), w.at("token_embd_norm.bias"), s.eps);
  }
  for (int64_t layer = 0; layer < s.n_layer; ++layer) {
    const std::string blk = "blk." + std::to_string(layer) + ".";
    auto lin = [&](const std::string& name, const std::vector<double>& in) {
      return RefLinear(w.at(blk + name + ".weight"), w.at(blk + name + ".bias"), in);
    };
    Rows q(n), k(n), v(n), attn(n, std::vector<double>(e, 0.0));
    for (size_t t = 0; t < n; ++t) {
      q[t] = lin("attn_q", x[t]);
      k[t] = lin("attn_k", x[t]);
      v[t] = lin("attn_v", x[t]);
    }
    for (size_t t = 0; t < n; ++t) {
      for (size_t h = 0; h < static_cast<size_t>(s.n_head); ++h) {
        std::vector<double> p(n);
        double max_score = -1e300, sum = 0;
        for (size_t u = 0; u < n; ++u) {
          double dot = 0;
          for (size_t i = 0; i < hd; ++i) dot += q[t][h * hd + i] * k[u][h * hd + i];
          p[u] = dot / std::sqrt(static_cast<double>(hd));
          max_score = std::max(max_score, p[u]);
        }
        for (double& value : p) sum += (value = std::exp(value - max_score));
        for (size_t u = 0; u < n; ++u) {
          for (size_t i = 0; i < hd; ++i) attn[t][h * hd + i] += p[u] / sum * v[u][h * hd + i];
        }
      }
    }
    for (size_t t = 0; t < n; ++t) {
      std::vector<double> o = lin("attn_output", attn[t]);
      for (size_t i = 0; i < e; ++i) x[t][i] += o[i];
      RefLayerNorm(x[t], w.at(blk + "attn_output_norm.weight"), w.at(blk + "attn_output_norm.bias"),
                   s.eps);
      std::vector<double> up = lin("ffn_up", x[t]);
      for (double& u : up) {
        u = 0.5 * u * (1 + std::tanh(std::sqrt(2 / M_PI) * (u + 0.044715 * u * u * u)));
      }
      std::vector<double> down = lin("ffn_down", up);
      for (size_t i = 0; i < e; ++i) x[t][i] += down[i];
      RefLayerNorm(x[t], w.at(blk + "layer_output_norm.weight"),
                   w.at(blk + "layer_output_norm.bias"), s.eps);
    }
  }
  if (s.pooling == 2) return x[0];
  std::vector<double> mean(e, 0.0);
  for (size_t t = 0; t < n; ++t) {
    for (size_t i = 0; i < e; ++i) mean[i] += x[t][i] / static_cast<double>(n);
  }
  return mean;
}

void ExpectClose(const std::vector<float>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(got[i] - want[i]));
    max_abs = std::max(max_abs, std::abs(want[i]));
  }
  EXPECT_LE(max_diff, tol) << "max |got - want| over " << got.size() << " values";
  EXPECT_GT(max_abs, 0.1) << "reference is near zero: the comparison would be vacuous";
}

const std::vector<int32_t> kTokens = {1, 7, 42, 3, 3, 19, 49, 2};

// --- agreement with the float64 reference ----------------------------------------

struct Case {
  TensorType type;
  int64_t pooling;
  double tol;
};

class EncoderReference : public ::testing::TestWithParam<Case> {};

TEST_P(EncoderReference, MatchesFloat64) {
  TinySpec spec;
  spec.weight_type = GetParam().type;
  spec.pooling = GetParam().pooling;
  Tiny tiny;
  auto encoder = LoadTiny(spec, tiny, /*n_threads=*/2);
  ASSERT_TRUE(encoder.has_value()) << encoder.error().ToString();
  EXPECT_EQ((*encoder)->dim(), spec.n_embd);
  EXPECT_EQ((*encoder)->max_tokens(), spec.n_pos);
  EXPECT_EQ((*encoder)->hparams().pooling, spec.pooling == 1 ? Pooling::kMean : Pooling::kCls);
  const std::vector<double> want = RefEmbed(spec, tiny.weights, kTokens);
  auto got = (*encoder)->Embed(kTokens, /*normalize=*/false);
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  ExpectClose(*got, want, GetParam().tol);

  // Normalized: unit length, the same direction.
  auto unit = (*encoder)->Embed(kTokens, /*normalize=*/true);
  ASSERT_TRUE(unit.has_value());
  double norm = 0;
  for (double value : want) norm += value * value;
  norm = std::sqrt(norm);
  std::vector<double> want_unit(want.size());
  for (size_t i = 0; i < want.size(); ++i) want_unit[i] = want[i] / norm;
  ExpectClose(*unit, want_unit, GetParam().tol);

  // A single token (just [CLS]) and the longest allowed sequence also work.
  std::vector<int32_t> one = {5};
  auto single = (*encoder)->Embed(one, false);
  ASSERT_TRUE(single.has_value());
  ExpectClose(*single, RefEmbed(spec, tiny.weights, one), GetParam().tol);
  std::vector<int32_t> full(static_cast<size_t>(spec.n_pos));
  for (size_t i = 0; i < full.size(); ++i) full[i] = static_cast<int32_t>((i * 7) % 50);
  auto longest = (*encoder)->Embed(full, false);
  ASSERT_TRUE(longest.has_value()) << longest.error().ToString();
  ExpectClose(*longest, RefEmbed(spec, tiny.weights, full), GetParam().tol);
}

INSTANTIATE_TEST_SUITE_P(Types, EncoderReference,
                         ::testing::Values(Case{TensorType::kF32, 2, 1e-4},
                                           Case{TensorType::kF32, 1, 1e-4},
                                           Case{TensorType::kF16, 2, 1e-4},
                                           // Quantized weights take activations
                                           // quantized to 8 bits per block of 32
                                           // (as the reference implementation
                                           // does): ~0.4% per element, a few
                                           // percent after the layers of this
                                           // 32-wide model.
                                           Case{TensorType::kQ8_0, 1, 5e-2}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(info.param.type == TensorType::kF32   ? "F32"
                                              : info.param.type == TensorType::kF16 ? "F16"
                                                                                    : "Q8_0") +
                                  (info.param.pooling == 1 ? "_mean" : "_cls");
                         });

TEST(Encoder, AttentionIsBidirectional) {
  // With CLS pooling a causal pass would make the first token's output
  // independent of later tokens; a bidirectional one must see them.
  TinySpec spec;
  Tiny tiny;
  auto encoder = LoadTiny(spec, tiny);
  ASSERT_TRUE(encoder.has_value());
  std::vector<int32_t> a = {1, 7, 42, 2};
  std::vector<int32_t> b = {1, 7, 43, 2};
  auto ea = (*encoder)->Embed(a, false);
  auto eb = (*encoder)->Embed(b, false);
  ASSERT_TRUE(ea && eb);
  double diff = 0;
  for (size_t i = 0; i < ea->size(); ++i)
    diff = std::max(diff, double(std::abs((*ea)[i] - (*eb)[i])));
  EXPECT_GT(diff, 1e-3);
}

TEST(Encoder, SameResultWithOneOrTwoThreads) {
  TinySpec spec;
  spec.n_embd = 256;
  spec.n_head = 4;
  spec.n_ff = 1024;
  spec.n_layer = 1;
  Tiny one, two;
  auto e1 = LoadTiny(spec, one, 1);
  auto e2 = LoadTiny(spec, two, 2);
  ASSERT_TRUE(e1 && e2);
  std::vector<int32_t> tokens(16, 3);
  auto r1 = (*e1)->Embed(tokens, true);
  auto r2 = (*e2)->Embed(tokens, true);
  ASSERT_TRUE(r1 && r2);
  EXPECT_EQ(*r1, *r2);
}

// --- bad input -----------------------------------------------------------------

TEST(Encoder, RejectsBadTokens) {
  TinySpec spec;
  Tiny tiny;
  auto encoder = LoadTiny(spec, tiny);
  ASSERT_TRUE(encoder.has_value());
  const Encoder& enc = **encoder;

  auto empty = enc.Embed(std::vector<int32_t>{}, false);
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().code(), Code::kInvalidArgument);

  std::vector<int32_t> too_long(static_cast<size_t>(spec.n_pos + 1), 1);
  auto long_result = enc.Embed(too_long, false);
  ASSERT_FALSE(long_result.has_value());
  EXPECT_EQ(long_result.error().code(), Code::kInvalidArgument);
  EXPECT_NE(long_result.error().message().find("context"), std::string::npos);

  for (int32_t bad : {-1, static_cast<int32_t>(spec.n_vocab)}) {
    std::vector<int32_t> tokens = {1, 2, bad, 3};
    auto result = enc.Embed(tokens, true);
    ASSERT_FALSE(result.has_value()) << bad;
    EXPECT_EQ(result.error().code(), Code::kInvalidArgument);
    EXPECT_NE(result.error().message().find(std::to_string(bad)), std::string::npos);
    EXPECT_NE(result.error().message().find("index 2"), std::string::npos);
  }
}

// --- broken files --------------------------------------------------------------

Status LoadError(const TinySpec& spec) {
  Tiny tiny;
  auto encoder = LoadTiny(spec, tiny);
  if (encoder) return Status::Ok();
  return encoder.error();
}

TEST(EncoderLoad, MissingTensorIsNotFound) {
  for (const char* name :
       {"token_embd.weight", "position_embd.weight", "token_types.weight", "token_embd_norm.bias",
        "blk.0.attn_q.bias", "blk.1.attn_output_norm.weight", "blk.1.ffn_down.weight",
        "blk.0.layer_output_norm.bias"}) {
    TinySpec spec;
    spec.drop = name;
    Status status = LoadError(spec);
    EXPECT_EQ(status.code(), Code::kNotFound) << name << ": " << status.ToString();
    EXPECT_NE(status.message().find(name), std::string::npos) << status.ToString();
  }
}

TEST(EncoderLoad, MisshapenTensorIsCorruption) {
  for (const char* name : {"blk.0.attn_k.weight", "blk.1.ffn_up.weight", "blk.0.ffn_up.bias",
                           "token_embd_norm.weight"}) {
    TinySpec spec;
    spec.misshape = name;
    Status status = LoadError(spec);
    EXPECT_EQ(status.code(), Code::kCorruption) << name << ": " << status.ToString();
    EXPECT_NE(status.message().find(name), std::string::npos) << status.ToString();
  }
}

TEST(EncoderLoad, BadMetadata) {
  TinySpec spec;
  spec.arch = "llama";
  EXPECT_EQ(LoadError(spec).code(), Code::kUnsupported);

  for (int64_t pooling : {0, 3, 4}) {
    spec = TinySpec();
    spec.pooling = pooling;
    Status status = LoadError(spec);
    EXPECT_EQ(status.code(), Code::kUnsupported) << pooling;
    EXPECT_NE(status.message().find("pooling"), std::string::npos);
  }
  spec = TinySpec();
  spec.pooling = -1;
  EXPECT_EQ(LoadError(spec).code(), Code::kNotFound);

  spec = TinySpec();
  spec.n_head = 5;  // 32 is not a multiple of 5
  EXPECT_EQ(LoadError(spec).code(), Code::kCorruption);

  spec = TinySpec();
  spec.eps = 0;
  EXPECT_EQ(LoadError(spec).code(), Code::kCorruption);

  spec = TinySpec();
  spec.weight_type = TensorType::kQ8_0;
  EXPECT_TRUE(LoadError(spec).ok());
}

}  // namespace
}  // namespace xnai::engine
