// Unit tests of engine::Model and the ops under it, on tiny random models
// built in memory with GgufWriter (no testdata needed). Agreement with the
// reference implementation's numbers is model_conformance_test's job; these
// tests check that the pass is self-consistent (batch vs one token at a time,
// sequences independent, truncation), agrees with a plain float64
// re-implementation written from the math, and fails cleanly on bad input.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "base/files.h"
#include "engine/cpu.h"
#include "engine/model.h"
#include "engine/ops.h"
#include "engine/quants.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"

namespace xnai::engine {
namespace {

using Code = Status::Code;
using gguf::GgufWriter;
using gguf::WriterValue;

// --- tiny models ------------------------------------------------------------------

struct TinySpec {
  std::string arch = "llama";
  TensorType weight_type = TensorType::kF32;  // of the 2-D weights
  int64_t n_vocab = 64;
  int64_t n_embd = 32;
  int64_t n_layer = 2;
  int64_t n_head = 4;
  int64_t n_head_kv = 2;
  int64_t head_dim = 0;  // 0: not written (n_embd / n_head)
  int64_t n_ff = 64;
  int64_t n_ctx = 64;
  bool tied = false;     // no output.weight
  std::string drop;      // a tensor left out
  std::string misshape;  // a tensor written with one row too many
  std::string q4_1;      // a tensor written as Q4_1 (not supported by the engine)
  bool write_arch = true;
};

// Random weights: norms near 1, matrices and biases with entries of a size
// that keeps activations O(1) through the layers.
class TinyBuilder {
 public:
  explicit TinyBuilder(const TinySpec& spec) : spec_(spec), rng_(1234) {}

  std::string Build() {
    const TinySpec& s = spec_;
    const std::string a = s.arch + ".";
    if (s.write_arch) Check(writer_.Add("general.architecture", WriterValue::String(s.arch)));
    Check(writer_.Add(a + "context_length", WriterValue::Uint32(s.n_ctx)));
    Check(writer_.Add(a + "embedding_length", WriterValue::Uint32(s.n_embd)));
    Check(writer_.Add(a + "block_count", WriterValue::Uint32(s.n_layer)));
    Check(writer_.Add(a + "feed_forward_length", WriterValue::Uint32(s.n_ff)));
    Check(writer_.Add(a + "attention.head_count", WriterValue::Uint32(s.n_head)));
    Check(writer_.Add(a + "attention.head_count_kv", WriterValue::Uint32(s.n_head_kv)));
    Check(writer_.Add(a + "attention.layer_norm_rms_epsilon", WriterValue::Float32(1e-6f)));
    Check(writer_.Add(a + "rope.freq_base", WriterValue::Float32(s.arch == "llama" ? 1e4f : 1e6f)));
    if (s.head_dim > 0) {
      Check(writer_.Add(a + "attention.key_length", WriterValue::Uint32(s.head_dim)));
      Check(writer_.Add(a + "attention.value_length", WriterValue::Uint32(s.head_dim)));
    }
    const int64_t hd = s.head_dim > 0 ? s.head_dim : s.n_embd / s.n_head;
    const int64_t q_dim = s.n_head * hd, kv_dim = s.n_head_kv * hd;

    Matrix("token_embd.weight", s.n_embd, s.n_vocab, 1.0f);
    Vector("output_norm.weight", s.n_embd, 1.0f, 0.2f);
    if (!s.tied) Matrix("output.weight", s.n_embd, s.n_vocab, 1.0f);
    for (int64_t layer = 0; layer < s.n_layer; ++layer) {
      const std::string blk = "blk." + std::to_string(layer) + ".";
      Vector(blk + "attn_norm.weight", s.n_embd, 1.0f, 0.2f);
      Matrix(blk + "attn_q.weight", s.n_embd, q_dim, 1.0f);
      Matrix(blk + "attn_k.weight", s.n_embd, kv_dim, 1.0f);
      Matrix(blk + "attn_v.weight", s.n_embd, kv_dim, 1.0f);
      Matrix(blk + "attn_output.weight", q_dim, s.n_embd, 1.0f);
      if (s.arch == "qwen2") {
        Vector(blk + "attn_q.bias", q_dim, 0.0f, 0.5f);
        Vector(blk + "attn_k.bias", kv_dim, 0.0f, 0.5f);
        Vector(blk + "attn_v.bias", kv_dim, 0.0f, 0.5f);
      }
      if (s.arch == "qwen3") {
        Vector(blk + "attn_q_norm.weight", hd, 1.0f, 0.2f);
        Vector(blk + "attn_k_norm.weight", hd, 1.0f, 0.2f);
      }
      Vector(blk + "ffn_norm.weight", s.n_embd, 1.0f, 0.2f);
      Matrix(blk + "ffn_gate.weight", s.n_embd, s.n_ff, 1.0f);
      Matrix(blk + "ffn_up.weight", s.n_embd, s.n_ff, 1.0f);
      Matrix(blk + "ffn_down.weight", s.n_ff, s.n_embd, 1.0f);
    }
    return writer_.Build();
  }

 private:
  static void Check(const Status& status) { ASSERT_TRUE(status.ok()) << status.ToString(); }

  std::vector<float> Random(int64_t n, float mean, float spread) {
    std::uniform_real_distribution<float> dist(-spread, spread);
    std::vector<float> out(static_cast<size_t>(n));
    for (float& value : out) value = mean + dist(rng_);
    return out;
  }

  void Add(const std::string& name, TensorType type, int64_t cols, int64_t rows,
           const std::vector<float>& values) {
    if (name == spec_.drop) return;
    if (name == spec_.misshape) ++rows;
    if (name == spec_.q4_1) type = TensorType::kQ4_1;
    std::vector<int64_t> dims = {cols};
    if (rows > 0) dims.push_back(rows);
    const int64_t n_rows = std::max<int64_t>(rows, 1);
    const int64_t row_bytes = *RowBytes(type, cols);
    std::string data(static_cast<size_t>(row_bytes * n_rows), '\0');
    for (int64_t row = 0; row < n_rows && type != TensorType::kQ4_1; ++row) {
      const float* src = values.data() + std::min<int64_t>(row, values.size() / cols - 1) * cols;
      Check(QuantizeRow(type, src, data.data() + row * row_bytes, cols));
    }
    Check(writer_.AddTensor(name, type, dims, data));
  }

  // A (rows, cols) matrix with entries of rms about scale / sqrt(cols).
  void Matrix(const std::string& name, int64_t cols, int64_t rows, float scale) {
    const float spread = scale * std::sqrt(3.0f / static_cast<float>(cols));
    Add(name, spec_.weight_type, cols, rows, Random(cols * rows, 0.0f, spread));
  }
  void Vector(const std::string& name, int64_t n, float mean, float spread) {
    Add(name, TensorType::kF32, n, 0, Random(n, mean, spread));
  }

  TinySpec spec_;
  std::mt19937 rng_;
  GgufWriter writer_;
};

// A built model with the bytes and file it lives in.
struct TinyModel {
  std::string bytes;
  std::unique_ptr<gguf::GgufFile> file;
  std::unique_ptr<Model> model;
};

Result<std::unique_ptr<Model>> LoadTiny(const TinySpec& spec, TinyModel& out,
                                        ModelOptions options = {}) {
  out.bytes = TinyBuilder(spec).Build();
  auto file = gguf::OpenGgufFromMemory(out.bytes);
  if (!file) return Err(file.error());
  out.file = std::move(*file);
  return Model::Load(*out.file, options);
}

std::unique_ptr<TinyModel> MustLoad(const TinySpec& spec, ModelOptions options = {}) {
  auto tiny = std::make_unique<TinyModel>();
  auto model = LoadTiny(spec, *tiny, options);
  EXPECT_TRUE(model.has_value()) << model.error().ToString();
  if (model) tiny->model = std::move(*model);
  return tiny;
}

TinySpec SpecFor(const std::string& arch) {
  TinySpec spec;
  spec.arch = arch;
  if (arch == "qwen3") {
    spec.head_dim = 16;  // not n_embd / n_head = 8, as in real qwen3 models
    spec.tied = true;
  }
  return spec;
}

std::vector<int32_t> Tokens(int n, int seed, int n_vocab = 64) {
  std::mt19937 rng(seed);
  std::vector<int32_t> out(static_cast<size_t>(n));
  for (int32_t& id : out) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(n_vocab));
  return out;
}

void ExpectClose(const std::vector<float>& got, const std::vector<float>& want, double tol,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(static_cast<double>(got[i]) - want[i]));
    max_abs = std::max(max_abs, std::abs(static_cast<double>(want[i])));
  }
  EXPECT_LE(max_diff, tol * std::max(1.0, max_abs)) << what;
  EXPECT_GT(max_abs, 1e-3) << what << ": logits are all near zero, the test would be vacuous";
}

std::vector<float> Slice(const std::vector<float>& all, int64_t first_row, int64_t n_rows,
                         int64_t row) {
  return std::vector<float>(all.begin() + first_row * row,
                            all.begin() + (first_row + n_rows) * row);
}

// --- a plain float64 re-implementation, written straight from the math ----------

// Logits (n, n_vocab) of `tokens` from position 0, recomputing everything for
// every token (no cache), in double, reading the F32 weights from the file.
std::vector<float> NaiveForward(const gguf::GgufFile& file, const TinySpec& spec,
                                const std::vector<int32_t>& tokens) {
  const int64_t E = spec.n_embd, H = spec.n_head, KV = spec.n_head_kv, F = spec.n_ff;
  const int64_t D = spec.head_dim > 0 ? spec.head_dim : E / H;
  const double theta = spec.arch == "llama" ? 1e4 : 1e6;
  const bool neox = spec.arch != "llama";
  auto tensor = [&](const std::string& name) {
    const gguf::TensorInfo* info = file.FindTensor(name);
    EXPECT_NE(info, nullptr) << name;
    std::vector<double> out(static_cast<size_t>(info->n_elements));
    for (size_t i = 0; i < out.size(); ++i) {
      float value;
      std::memcpy(&value, info->data + i * 4, 4);
      out[i] = value;
    }
    return out;
  };
  using Vec = std::vector<double>;
  auto matvec = [](const Vec& w, const Vec& x, int64_t rows) {
    const int64_t cols = static_cast<int64_t>(x.size());
    Vec y(static_cast<size_t>(rows), 0.0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) y[r] += w[r * cols + c] * x[c];
    return y;
  };
  auto rmsnorm = [](const Vec& x, const Vec& w, size_t offset, size_t n) {
    double ss = 0;
    for (size_t i = 0; i < n; ++i) ss += x[offset + i] * x[offset + i];
    Vec y(n);
    for (size_t i = 0; i < n; ++i) y[i] = x[offset + i] / std::sqrt(ss / n + 1e-6) * w[i];
    return y;
  };
  auto rope = [&](double* v, int64_t pos) {
    for (int64_t i = 0; i < D / 2; ++i) {
      const double angle = pos * std::pow(theta, -2.0 * i / D);
      const int64_t a = neox ? i : 2 * i, b = neox ? i + D / 2 : 2 * i + 1;
      const double x0 = v[a], x1 = v[b];
      v[a] = x0 * std::cos(angle) - x1 * std::sin(angle);
      v[b] = x0 * std::sin(angle) + x1 * std::cos(angle);
    }
  };

  const Vec embd = tensor("token_embd.weight");
  const Vec out_w = spec.tied ? embd : tensor("output.weight");
  const int64_t n = static_cast<int64_t>(tokens.size());
  std::vector<Vec> x(n);  // (n)(E)
  for (int64_t t = 0; t < n; ++t)
    x[t] = Vec(embd.begin() + tokens[t] * E, embd.begin() + (tokens[t] + 1) * E);
  for (int64_t layer = 0; layer < spec.n_layer; ++layer) {
    const std::string blk = "blk." + std::to_string(layer) + ".";
    const Vec wq = tensor(blk + "attn_q.weight"), wk = tensor(blk + "attn_k.weight"),
              wv = tensor(blk + "attn_v.weight"), wo = tensor(blk + "attn_output.weight");
    std::vector<Vec> q(n), k(n), v(n);
    for (int64_t t = 0; t < n; ++t) {
      const Vec xn = rmsnorm(x[t], tensor(blk + "attn_norm.weight"), 0, E);
      q[t] = matvec(wq, xn, H * D);
      k[t] = matvec(wk, xn, KV * D);
      v[t] = matvec(wv, xn, KV * D);
      if (spec.arch == "qwen2") {
        const Vec bq = tensor(blk + "attn_q.bias"), bk = tensor(blk + "attn_k.bias"),
                  bv = tensor(blk + "attn_v.bias");
        for (size_t i = 0; i < q[t].size(); ++i) q[t][i] += bq[i];
        for (size_t i = 0; i < k[t].size(); ++i) k[t][i] += bk[i];
        for (size_t i = 0; i < v[t].size(); ++i) v[t][i] += bv[i];
      }
      for (int64_t h = 0; h < H; ++h) {
        if (spec.arch == "qwen3") {
          const Vec normed = rmsnorm(q[t], tensor(blk + "attn_q_norm.weight"), h * D, D);
          std::copy(normed.begin(), normed.end(), q[t].begin() + h * D);
        }
        rope(q[t].data() + h * D, t);
      }
      for (int64_t h = 0; h < KV; ++h) {
        if (spec.arch == "qwen3") {
          const Vec normed = rmsnorm(k[t], tensor(blk + "attn_k_norm.weight"), h * D, D);
          std::copy(normed.begin(), normed.end(), k[t].begin() + h * D);
        }
        rope(k[t].data() + h * D, t);
      }
    }
    for (int64_t t = 0; t < n; ++t) {
      Vec attn(static_cast<size_t>(H * D), 0.0);
      for (int64_t h = 0; h < H; ++h) {
        const int64_t g = h / (H / KV);
        Vec scores(static_cast<size_t>(t + 1));
        double max_score = -1e300, sum = 0;
        for (int64_t p = 0; p <= t; ++p) {
          double s = 0;
          for (int64_t i = 0; i < D; ++i) s += q[t][h * D + i] * k[p][g * D + i];
          scores[p] = s / std::sqrt(static_cast<double>(D));
          max_score = std::max(max_score, scores[p]);
        }
        for (double& s : scores) sum += (s = std::exp(s - max_score));
        for (int64_t p = 0; p <= t; ++p)
          for (int64_t i = 0; i < D; ++i) attn[h * D + i] += scores[p] / sum * v[p][g * D + i];
      }
      const Vec o = matvec(wo, attn, E);
      for (int64_t i = 0; i < E; ++i) x[t][i] += o[i];
      const Vec xn = rmsnorm(x[t], tensor(blk + "ffn_norm.weight"), 0, E);
      const Vec gate = matvec(tensor(blk + "ffn_gate.weight"), xn, F);
      const Vec up = matvec(tensor(blk + "ffn_up.weight"), xn, F);
      Vec hidden(static_cast<size_t>(F));
      for (int64_t i = 0; i < F; ++i) hidden[i] = gate[i] / (1 + std::exp(-gate[i])) * up[i];
      const Vec down = matvec(tensor(blk + "ffn_down.weight"), hidden, E);
      for (int64_t i = 0; i < E; ++i) x[t][i] += down[i];
    }
  }
  std::vector<float> logits;
  for (int64_t t = 0; t < n; ++t) {
    const Vec xn = rmsnorm(x[t], tensor("output_norm.weight"), 0, E);
    for (double value : matvec(out_w, xn, spec.n_vocab))
      logits.push_back(static_cast<float>(value));
  }
  return logits;
}

// --- forward pass, per architecture ---------------------------------------------

class ModelArchTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelArchTest, HparamsFromMetadata) {
  const TinySpec spec = SpecFor(GetParam());
  auto tiny = MustLoad(spec);
  ASSERT_NE(tiny->model, nullptr);
  const ModelHparams& hp = tiny->model->hparams();
  EXPECT_EQ(hp.architecture, GetParam());
  EXPECT_EQ(hp.n_vocab, 64);
  EXPECT_EQ(hp.n_embd, 32);
  EXPECT_EQ(hp.n_layer, 2);
  EXPECT_EQ(hp.n_head, 4);
  EXPECT_EQ(hp.n_head_kv, 2);
  EXPECT_EQ(hp.head_dim, GetParam() == "qwen3" ? 16 : 8);
  EXPECT_EQ(hp.n_ff, 64);
  EXPECT_EQ(hp.n_ctx, 64);
  EXPECT_FLOAT_EQ(hp.rms_eps, 1e-6f);
  EXPECT_EQ(hp.rope_style, GetParam() == "llama" ? ops::RopeStyle::kNormal : ops::RopeStyle::kNeox);
  EXPECT_EQ(hp.qkv_bias, GetParam() == "qwen2");
  EXPECT_EQ(hp.qk_norm, GetParam() == "qwen3");
  EXPECT_EQ(hp.tied_output, spec.tied);
}

// The forward pass's math, with a float32 KV cache (the default F16 cache
// rounds keys and values; KvCacheTypesStayClose covers it).
TEST_P(ModelArchTest, MatchesPlainFloat64Implementation) {
  const TinySpec spec = SpecFor(GetParam());
  ModelOptions options;
  options.key_cache_type = TensorType::kF32;
  options.value_cache_type = TensorType::kF32;
  auto tiny = MustLoad(spec, options);
  ASSERT_NE(tiny->model, nullptr);
  const std::vector<int32_t> tokens = Tokens(12, 7);
  Sequence sequence = tiny->model->NewSequence();
  auto logits = tiny->model->Forward(sequence, tokens, /*all_logits=*/true);
  ASSERT_TRUE(logits.has_value()) << logits.error().ToString();
  ExpectClose(*logits, NaiveForward(*tiny->file, spec, tokens), 1e-4, "vs float64");
}

// The F16 and Q8_0 KV caches give the float32 cache's logits up to their
// rounding; an unsupported cache type is refused by name.
TEST_P(ModelArchTest, KvCacheTypesStayClose) {
  TinySpec spec = SpecFor(GetParam());
  spec.head_dim = 32;  // Q8_0 keys need whole blocks per head
  const std::vector<int32_t> tokens = Tokens(24, 5);
  auto logits_with = [&](TensorType key_type, TensorType value_type) {
    ModelOptions options;
    options.key_cache_type = key_type;
    options.value_cache_type = value_type;
    auto tiny = MustLoad(spec, options);
    Sequence sequence = tiny->model->NewSequence();
    return tiny->model->Forward(sequence, tokens, /*all_logits=*/true).value();
  };
  const std::vector<float> exact = logits_with(TensorType::kF32, TensorType::kF32);
  ExpectClose(logits_with(TensorType::kF16, TensorType::kF16), exact, 5e-3, "F16 cache");
  ExpectClose(logits_with(TensorType::kQ8_0, TensorType::kF16), exact, 5e-2, "Q8_0 keys");

  TinyModel tiny;
  ModelOptions bad;
  bad.key_cache_type = TensorType::kQ4_K;
  auto refused = LoadTiny(spec, tiny, bad);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("Q4_K"), std::string::npos);
  bad = ModelOptions();
  bad.value_cache_type = TensorType::kQ8_0;
  EXPECT_FALSE(LoadTiny(spec, tiny, bad));
  bad = ModelOptions();
  bad.key_cache_type = TensorType::kQ8_0;
  auto small_heads = LoadTiny(SpecFor(GetParam()), tiny, bad);  // head_dim 8 or 16
  ASSERT_FALSE(small_heads);
  EXPECT_NE(small_heads.error().message().find("multiple of 32"), std::string::npos);
}

// The requirement: decoding one token at a time after a prompt gives
// the logits of evaluating the whole sequence at once (up to float rounding:
// a batch groups its dot products in different tiles than a single token).
TEST_P(ModelArchTest, OneTokenAtATimeEqualsWholeSequence) {
  for (TensorType type : {TensorType::kF32, TensorType::kQ8_0}) {
    TinySpec spec = SpecFor(GetParam());
    spec.weight_type = type;
    auto tiny = MustLoad(spec);
    ASSERT_NE(tiny->model, nullptr);
    const Model& model = *tiny->model;
    const std::vector<int32_t> tokens = Tokens(20, 3);
    const int64_t n_prompt = 9;

    Sequence whole = model.NewSequence();
    auto all = model.Forward(whole, tokens, /*all_logits=*/true);
    ASSERT_TRUE(all.has_value()) << all.error().ToString();
    ASSERT_EQ(all->size(), tokens.size() * 64);
    EXPECT_EQ(whole.n_past(), 20);

    Sequence stepwise = model.NewSequence();
    auto prompt = model.Forward(stepwise, std::span(tokens).first(n_prompt), /*all_logits=*/true);
    ASSERT_TRUE(prompt.has_value());
    ExpectClose(*prompt, Slice(*all, 0, n_prompt, 64), 1e-4, "prompt");
    for (int64_t pos = n_prompt; pos < 20; ++pos) {
      auto step = model.Forward(stepwise, std::span(tokens).subspan(pos, 1), false);
      ASSERT_TRUE(step.has_value());
      ExpectClose(*step, Slice(*all, pos, 1, 64), 1e-4, "position " + std::to_string(pos));
    }
    EXPECT_EQ(stepwise.n_past(), 20);

    // Last-only logits are the last row of all logits.
    Sequence last_only = model.NewSequence();
    auto last = model.Forward(last_only, tokens, /*all_logits=*/false);
    ASSERT_TRUE(last.has_value());
    ExpectClose(*last, Slice(*all, 19, 1, 64), 1e-6, "last only");
  }
}

TEST_P(ModelArchTest, InterleavedSequencesAreIndependent) {
  auto tiny = MustLoad(SpecFor(GetParam()));
  ASSERT_NE(tiny->model, nullptr);
  const Model& model = *tiny->model;
  const std::vector<int32_t> a = Tokens(12, 11), b = Tokens(12, 12);
  Sequence alone_a = model.NewSequence(), alone_b = model.NewSequence();
  auto want_a = model.Forward(alone_a, a, true);
  auto want_b = model.Forward(alone_b, b, true);
  ASSERT_TRUE(want_a && want_b);

  Sequence seq_a = model.NewSequence(), seq_b = model.NewSequence();
  std::vector<float> got_a, got_b;
  for (int64_t start = 0; start < 12; start += 3) {
    auto part_b = model.Forward(seq_b, std::span(b).subspan(start, 3), true);
    auto part_a = model.Forward(seq_a, std::span(a).subspan(start, 3), true);
    ASSERT_TRUE(part_a && part_b);
    got_a.insert(got_a.end(), part_a->begin(), part_a->end());
    got_b.insert(got_b.end(), part_b->begin(), part_b->end());
  }
  ExpectClose(got_a, *want_a, 1e-5, "sequence a");
  ExpectClose(got_b, *want_b, 1e-5, "sequence b");
}

TEST_P(ModelArchTest, TruncateThenContinueEqualsFreshSequence) {
  auto tiny = MustLoad(SpecFor(GetParam()));
  ASSERT_NE(tiny->model, nullptr);
  const Model& model = *tiny->model;
  const std::vector<int32_t> first = Tokens(10, 21);
  std::vector<int32_t> fresh(first.begin(), first.begin() + 6);
  const std::vector<int32_t> tail = Tokens(4, 22);
  fresh.insert(fresh.end(), tail.begin(), tail.end());

  Sequence reused = model.NewSequence();
  ASSERT_TRUE(model.Forward(reused, first, false).has_value());
  reused.Truncate(6);
  EXPECT_EQ(reused.n_past(), 6);
  auto got = model.Forward(reused, tail, true);
  Sequence clean = model.NewSequence();
  auto want = model.Forward(clean, fresh, true);
  ASSERT_TRUE(got && want);
  ExpectClose(*got, Slice(*want, 6, 4, 64), 1e-5, "after truncate");

  reused.Truncate(100);  // clamped
  EXPECT_EQ(reused.n_past(), 10);
  reused.Truncate(-3);
  EXPECT_EQ(reused.n_past(), 0);
}

TEST_P(ModelArchTest, ThreadsGiveTheSameLogits) {
  TinySpec spec = SpecFor(GetParam());
  spec.n_vocab = 4096;  // makes the output product big enough to be split
  ModelOptions threaded;
  threaded.n_threads = 3;
  auto one = MustLoad(spec);
  auto three = MustLoad(spec, threaded);
  ASSERT_TRUE(one->model && three->model);
  const std::vector<int32_t> tokens = Tokens(8, 5, 4096);
  Sequence seq_one = one->model->NewSequence(), seq_three = three->model->NewSequence();
  auto want = one->model->Forward(seq_one, tokens, true);
  auto got = three->model->Forward(seq_three, tokens, true);
  ASSERT_TRUE(want && got);
  EXPECT_EQ(*got, *want);  // same arithmetic per row, so bit-identical
}

INSTANTIATE_TEST_SUITE_P(Architectures, ModelArchTest, ::testing::Values("llama", "qwen2", "qwen3"),
                         [](const auto& info) { return info.param; });

// --- bad input ------------------------------------------------------------------

TEST(ModelErrors, BadTokensAndEmptyInputLeaveTheSequenceUnchanged) {
  auto tiny = MustLoad(SpecFor("llama"));
  ASSERT_NE(tiny->model, nullptr);
  const Model& model = *tiny->model;
  Sequence sequence = model.NewSequence();
  ASSERT_TRUE(model.Forward(sequence, Tokens(3, 1), false).has_value());

  auto empty = model.Forward(sequence, {}, false);
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().code(), Code::kInvalidArgument);
  EXPECT_NE(empty.error().message().find("no tokens"), std::string::npos);

  for (int32_t bad : {-1, 64, 1 << 30}) {
    const std::vector<int32_t> tokens = {5, bad, 6};
    auto result = model.Forward(sequence, tokens, true);
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code(), Code::kInvalidArgument);
    EXPECT_NE(result.error().message().find("token id " + std::to_string(bad) + " at index 1"),
              std::string::npos)
        << result.error().message();
  }
  EXPECT_EQ(sequence.n_past(), 3);
}

TEST(ModelErrors, ContextLimit) {
  TinySpec spec = SpecFor("qwen3");
  spec.n_ctx = 16;
  auto tiny = MustLoad(spec);
  ASSERT_NE(tiny->model, nullptr);
  const Model& model = *tiny->model;
  Sequence sequence = model.NewSequence();
  ASSERT_TRUE(model.Forward(sequence, Tokens(12, 1), false).has_value());
  auto over = model.Forward(sequence, Tokens(5, 2), false);
  ASSERT_FALSE(over.has_value());
  EXPECT_EQ(over.error().code(), Code::kInvalidArgument);
  EXPECT_NE(over.error().message().find("exceed the context of 16"), std::string::npos)
      << over.error().message();
  EXPECT_EQ(sequence.n_past(), 12);
  EXPECT_TRUE(model.Forward(sequence, Tokens(4, 2), false).has_value());  // exactly full
  EXPECT_FALSE(model.Forward(sequence, Tokens(1, 2), false).has_value());

  // max_context caps it further.
  ModelOptions options;
  options.max_context = 8;
  auto capped = MustLoad(spec, options);
  ASSERT_NE(capped->model, nullptr);
  EXPECT_EQ(capped->model->hparams().n_ctx, 8);
  Sequence short_seq = capped->model->NewSequence();
  EXPECT_FALSE(capped->model->Forward(short_seq, Tokens(9, 1), false).has_value());
}

TEST(ModelErrors, SequenceOfAnotherModel) {
  auto first = MustLoad(SpecFor("llama"));
  auto second = MustLoad(SpecFor("llama"));
  ASSERT_TRUE(first->model && second->model);
  Sequence sequence = first->model->NewSequence();
  auto result = second->model->Forward(sequence, Tokens(2, 1), false);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code(), Code::kInvalidArgument);
}

Status LoadError(const TinySpec& spec) {
  TinyModel tiny;
  auto model = LoadTiny(spec, tiny);
  return model ? Status::Ok() : model.error();
}

TEST(ModelErrors, UnknownOrMissingArchitecture) {
  TinySpec spec = SpecFor("llama");
  spec.arch = "gpt9";
  Status status = LoadError(spec);
  EXPECT_EQ(status.code(), Code::kUnsupported);
  EXPECT_NE(status.message().find("'gpt9'"), std::string::npos) << status.message();

  spec = SpecFor("llama");
  spec.write_arch = false;
  status = LoadError(spec);
  EXPECT_EQ(status.code(), Code::kNotFound);
  EXPECT_NE(status.message().find("general.architecture"), std::string::npos);
}

TEST(ModelErrors, MissingTensorIsNamed) {
  for (std::string name : {"blk.1.ffn_up.weight", "token_embd.weight", "output_norm.weight",
                           "blk.0.attn_output.weight"}) {
    TinySpec spec = SpecFor("llama");
    spec.drop = name;
    Status status = LoadError(spec);
    EXPECT_EQ(status.code(), Code::kNotFound) << name;
    EXPECT_NE(status.message().find("'" + name + "'"), std::string::npos) << status.message();
  }
  // Without output.weight the logits use the embedding table (tied), as files
  // of models with tied embeddings are written.
  TinySpec untied = SpecFor("llama");
  untied.drop = "output.weight";
  TinyModel tied;
  auto model = LoadTiny(untied, tied);
  ASSERT_TRUE(model.has_value()) << model.error().ToString();
  EXPECT_TRUE((*model)->hparams().tied_output);
  // Architecture-specific tensors are required by their architecture.
  TinySpec qwen2 = SpecFor("qwen2");
  qwen2.drop = "blk.0.attn_k.bias";
  EXPECT_NE(LoadError(qwen2).message().find("'blk.0.attn_k.bias'"), std::string::npos);
  TinySpec qwen3 = SpecFor("qwen3");
  qwen3.drop = "blk.1.attn_q_norm.weight";
  EXPECT_NE(LoadError(qwen3).message().find("'blk.1.attn_q_norm.weight'"), std::string::npos);
}

TEST(ModelErrors, WrongShapeIsNamed) {
  TinySpec spec = SpecFor("qwen3");
  spec.misshape = "blk.0.attn_k.weight";
  Status status = LoadError(spec);
  EXPECT_EQ(status.code(), Code::kCorruption);
  EXPECT_NE(status.message().find("'blk.0.attn_k.weight' has shape [32, 33], expected [32, 32]"),
            std::string::npos)
      << status.message();
}

TEST(ModelErrors, UnsupportedTensorType) {
  TinySpec spec = SpecFor("llama");
  spec.q4_1 = "blk.0.attn_q.weight";
  Status status = LoadError(spec);
  EXPECT_EQ(status.code(), Code::kUnsupported);
  EXPECT_NE(status.message().find("blk.0.attn_q.weight"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("Q4_1"), std::string::npos) << status.message();
}

TEST(ModelErrors, ImpossibleHyperparameters) {
  TinySpec spec = SpecFor("llama");
  spec.n_head_kv = 3;  // 4 heads cannot share 3 KV heads
  Status status = LoadError(spec);
  EXPECT_EQ(status.code(), Code::kCorruption);
  EXPECT_NE(status.message().find("head_count_kv"), std::string::npos) << status.message();
}

// --- WriteLogits ----------------------------------------------------------------

TEST(WriteLogits, WritesFloat32RowsOfEveryPosition) {
  auto tiny = MustLoad(SpecFor("qwen2"));
  ASSERT_NE(tiny->model, nullptr);
  const std::vector<int32_t> tokens = Tokens(5, 9);
  const auto path = std::filesystem::temp_directory_path() /
                    ("xnai_model_test_logits_" + std::to_string(::getpid()) + ".f32");
  ASSERT_TRUE(WriteLogits(*tiny->model, tokens, path).ok());
  auto bytes = ReadFileToString(path, 1 << 20);
  std::filesystem::remove(path);
  ASSERT_TRUE(bytes.has_value());
  ASSERT_EQ(bytes->size(), 5u * 64u * sizeof(float));
  std::vector<float> written(5 * 64);
  std::memcpy(written.data(), bytes->data(), bytes->size());
  Sequence sequence = tiny->model->NewSequence();
  auto want = tiny->model->Forward(sequence, tokens, true);
  ASSERT_TRUE(want.has_value());
  EXPECT_EQ(written, *want);

  const std::vector<int32_t> bad = {1, 99};
  Status status = WriteLogits(*tiny->model, bad, path);
  EXPECT_EQ(status.code(), Code::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(path));
}

// --- ops ------------------------------------------------------------------------

TEST(Ops, RopeRotatesTheRightPairs) {
  // pos 0 is the identity; pos 1 turns pair 0 by 1 radian and pair 1 by
  // theta^(-2/4) radians.
  const float input[4] = {1, 2, 3, 4};
  float head[4];
  std::copy(input, input + 4, head);
  ops::Rope(head, 4, 0, 100.0f, ops::RopeStyle::kNormal, nullptr);
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(head[i], input[i]);

  const double c0 = std::cos(1.0), s0 = std::sin(1.0), c1 = std::cos(0.1), s1 = std::sin(0.1);
  std::copy(input, input + 4, head);
  ops::Rope(head, 4, 1, 100.0f, ops::RopeStyle::kNormal, nullptr);  // pairs (0,1), (2,3)
  EXPECT_NEAR(head[0], 1 * c0 - 2 * s0, 1e-6);
  EXPECT_NEAR(head[1], 1 * s0 + 2 * c0, 1e-6);
  EXPECT_NEAR(head[2], 3 * c1 - 4 * s1, 1e-6);
  EXPECT_NEAR(head[3], 3 * s1 + 4 * c1, 1e-6);

  std::copy(input, input + 4, head);
  ops::Rope(head, 4, 1, 100.0f, ops::RopeStyle::kNeox, nullptr);  // pairs (0,2), (1,3)
  EXPECT_NEAR(head[0], 1 * c0 - 3 * s0, 1e-6);
  EXPECT_NEAR(head[2], 1 * s0 + 3 * c0, 1e-6);
  EXPECT_NEAR(head[1], 2 * c1 - 4 * s1, 1e-6);
  EXPECT_NEAR(head[3], 2 * s1 + 4 * c1, 1e-6);

  // Frequency factors divide the angle; dimensions past n_rot stay.
  float partial[6] = {1, 2, 3, 4, 5, 6};
  const float factors[2] = {2.0f, 1.0f};
  ops::Rope(partial, 4, 1, 100.0f, ops::RopeStyle::kNormal, factors);
  EXPECT_NEAR(partial[0], 1 * std::cos(0.5) - 2 * std::sin(0.5), 1e-6);
  EXPECT_FLOAT_EQ(partial[4], 5);
  EXPECT_FLOAT_EQ(partial[5], 6);
}

TEST(Ops, RmsNormSoftmaxSilu) {
  const float x[4] = {1, -2, 3, -4};
  const float w[4] = {1, 1, 2, 0.5f};
  float out[4];
  ops::RmsNorm(x, w, out, 4, 0.0f);
  const double rms = std::sqrt((1 + 4 + 9 + 16) / 4.0);
  EXPECT_NEAR(out[0], 1 / rms, 1e-6);
  EXPECT_NEAR(out[2], 6 / rms, 1e-6);
  EXPECT_NEAR(out[3], -2 / rms, 1e-6);

  float logits[3] = {1000, 1001, 999};  // would overflow without the max shift
  ops::Softmax(logits, 3);
  const double denom = std::exp(-1.0) + 1 + std::exp(-2.0);
  EXPECT_NEAR(logits[1], 1 / denom, 1e-6);
  EXPECT_NEAR(logits[0] + logits[1] + logits[2], 1.0, 1e-6);

  EXPECT_FLOAT_EQ(ops::Silu(0), 0);
  EXPECT_NEAR(ops::Silu(2), 2 / (1 + std::exp(-2.0)), 1e-6);
}

// Every weight type on every CPU path this machine has: one thread and three
// give identical results (the same tiles), and the products match the float
// reference within what 8-bit activation quantization allows.
TEST(Ops, MatMulAllTypesPathsAndThreads) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-1, 1);
  const int64_t rows = 96, cols = 512, n_tokens = 7;  // big enough to use threads
  std::vector<float> weights(rows * cols), x(n_tokens * cols);
  for (float& value : weights) value = dist(rng);
  for (float& value : x) value = dist(rng);
  ThreadPool one(1), three(3);
  const CpuPath active = ActiveCpuPath();
  for (CpuPath path : {CpuPath::kScalar, CpuPath::kAvx2, CpuPath::kAvx512}) {
    if (!CpuSupports(path)) continue;
    SetActiveCpuPath(path);
    for (TensorType type :
         {TensorType::kF32, TensorType::kF16, TensorType::kBF16, TensorType::kQ8_0,
          TensorType::kQ4_0, TensorType::kQ4_K, TensorType::kQ5_K, TensorType::kQ6_K}) {
      const std::string label =
          std::string(CpuPathName(path)) + " " + std::string(GgmlTypeName(type));
      const int64_t row_bytes = *RowBytes(type, cols);
      std::string data(row_bytes * rows, '\0');
      std::vector<float> dequantized(rows * cols);
      for (int64_t r = 0; r < rows; ++r) {
        ASSERT_TRUE(QuantizeRow(type, &weights[r * cols], data.data() + r * row_bytes, cols).ok());
        ASSERT_TRUE(
            DequantizeRow(type, data.data() + r * row_bytes, &dequantized[r * cols], cols).ok());
      }
      const ops::MatrixView view{type, reinterpret_cast<const uint8_t*>(data.data()), rows, cols,
                                 row_bytes};
      std::vector<float> single(n_tokens * rows), threaded(n_tokens * rows);
      ASSERT_TRUE(ops::MatMul(view, x.data(), n_tokens, single.data(), &one).ok());
      ASSERT_TRUE(ops::MatMul(view, x.data(), n_tokens, threaded.data(), &three).ok());
      EXPECT_EQ(single, threaded) << label;
      const bool float_weights =
          type == TensorType::kF32 || type == TensorType::kF16 || type == TensorType::kBF16;
      for (int64_t t = 0; t < n_tokens; ++t) {
        for (int64_t r = 0; r < rows; ++r) {
          double want = 0, weight_norm2 = 0;
          for (int64_t c = 0; c < cols; ++c) {
            want += double(dequantized[r * cols + c]) * x[t * cols + c];
            weight_norm2 += double(dequantized[r * cols + c]) * dequantized[r * cols + c];
          }
          // Activations |x| < 1 quantized to 8 bits err by at most 1/254 each,
          // uniformly: the sum errs with a standard deviation of
          // |w| / (254 sqrt 3); six of them is a bound that never trips by chance.
          const double tolerance =
              float_weights ? 1e-3 : 1e-3 + 6 * std::sqrt(weight_norm2) / (254 * std::sqrt(3.0));
          ASSERT_NEAR(single[t * rows + r], want, tolerance) << label;
        }
      }
    }
  }
  SetActiveCpuPath(active);
}

// --- paged KV cache, batches of sequences, prefix reuse ---------------------------

ModelOptions SmallPages(int64_t positions = 4) {
  ModelOptions options;
  options.kv_page_positions = positions;
  return options;
}

TEST(ModelPaging, SmallPagesGiveTheSameLogits) {
  auto one_page = MustLoad(SpecFor("qwen3"));
  auto small = MustLoad(SpecFor("qwen3"), SmallPages(4));
  ASSERT_TRUE(one_page->model && small->model);
  const std::vector<int32_t> tokens = Tokens(30, 4);
  Sequence a = one_page->model->NewSequence(), b = small->model->NewSequence();
  auto want = one_page->model->Forward(a, tokens, true);
  auto got = small->model->Forward(b, tokens, true);
  ASSERT_TRUE(want && got);
  ExpectClose(*got, *want, 1e-5, "4-position pages");
  EXPECT_EQ(b.n_pages(), 8);  // ceil(30 / 4)
  EXPECT_EQ(a.n_pages(), 1);
  // Decoding across page boundaries one token at a time.
  Sequence stepwise = small->model->NewSequence();
  std::vector<float> steps;
  for (int32_t token : tokens) {
    auto row = small->model->Forward(stepwise, std::span(&token, 1), false);
    ASSERT_TRUE(row.has_value());
    steps.insert(steps.end(), row->begin(), row->end());
  }
  ExpectClose(steps, *want, 1e-4, "stepwise over pages");
  TinyModel odd;
  auto refused = LoadTiny(SpecFor("qwen3"), odd, SmallPages(6));  // not a multiple of 4
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("multiple of 4"), std::string::npos);
}

TEST(ModelPaging, BatchOfSequencesEqualsSeparateCalls) {
  auto tiny = MustLoad(SpecFor("qwen2"), SmallPages(4));
  ASSERT_NE(tiny->model, nullptr);
  const Model& model = *tiny->model;
  // Three sequences at different points: a fresh prompt, one decoding, one
  // with a second chunk of prompt.
  const std::vector<int32_t> a = Tokens(9, 1), b = Tokens(7, 2), c = Tokens(13, 3);
  Sequence alone_a = model.NewSequence(), alone_b = model.NewSequence(),
           alone_c = model.NewSequence();
  ASSERT_TRUE(model.Forward(alone_b, std::span(b).first(6), false));
  ASSERT_TRUE(model.Forward(alone_c, std::span(c).first(5), false));
  Sequence seq_a = model.NewSequence(), seq_b = model.NewSequence(), seq_c = model.NewSequence();
  ASSERT_TRUE(model.Forward(seq_b, std::span(b).first(6), false));
  ASSERT_TRUE(model.Forward(seq_c, std::span(c).first(5), false));

  auto want_a = model.Forward(alone_a, a, true);
  auto want_b = model.Forward(alone_b, std::span(b).subspan(6), false);
  auto want_c = model.Forward(alone_c, std::span(c).subspan(5), false);
  ASSERT_TRUE(want_a && want_b && want_c);
  const SequenceBatch batch[] = {{&seq_a, a, true},
                                 {&seq_b, std::span(b).subspan(6), false},
                                 {&seq_c, std::span(c).subspan(5), false}};
  auto got = model.ForwardBatch(batch);
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  std::vector<float> want = *want_a;
  want.insert(want.end(), want_b->begin(), want_b->end());
  want.insert(want.end(), want_c->begin(), want_c->end());
  ExpectClose(*got, want, 1e-5, "batched");
  EXPECT_EQ(seq_a.n_past(), 9);
  EXPECT_EQ(seq_b.n_past(), 7);
  EXPECT_EQ(seq_c.n_past(), 13);
  EXPECT_EQ(std::vector<int32_t>(seq_c.tokens().begin(), seq_c.tokens().end()), c);
}

TEST(ModelPaging, BatchErrorsNameThePartAndChangeNothing) {
  auto tiny = MustLoad(SpecFor("llama"));
  ASSERT_NE(tiny->model, nullptr);
  const Model& model = *tiny->model;
  Sequence first = model.NewSequence(), second = model.NewSequence();
  const std::vector<int32_t> good = Tokens(3, 1), bad = {1, 99};
  const SequenceBatch twice[] = {{&first, good, false}, {&first, good, false}};
  auto dup = model.ForwardBatch(twice);
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().message().find("twice"), std::string::npos);
  const SequenceBatch with_bad[] = {{&first, good, false}, {&second, bad, false}};
  auto out_of_range = model.ForwardBatch(with_bad);
  ASSERT_FALSE(out_of_range);
  EXPECT_NE(out_of_range.error().message().find("(sequence 1)"), std::string::npos)
      << out_of_range.error().message();
  EXPECT_EQ(first.n_past(), 0);
  EXPECT_EQ(first.n_pages(), 0);
  EXPECT_FALSE(model.ForwardBatch({}));
}

TEST(ModelPaging, PrefixReuseSkipsCachedPagesAndGivesTheSameLogits) {
  auto tiny = MustLoad(SpecFor("qwen3"), SmallPages(4));
  ASSERT_NE(tiny->model, nullptr);
  const Model& model = *tiny->model;
  const std::vector<int32_t> shared = Tokens(14, 7);
  std::vector<int32_t> prompt_b = shared;
  const std::vector<int32_t> tail = Tokens(6, 8);
  prompt_b.insert(prompt_b.end(), tail.begin(), tail.end());

  Sequence a = model.NewSequence();
  ASSERT_TRUE(model.Forward(a, shared, false));  // publishes 3 full pages (12 positions)
  Sequence b = model.NewSequence();
  EXPECT_EQ(model.ReusePrefix(b, prompt_b), 12);
  EXPECT_EQ(b.n_past(), 12);
  auto got = model.Forward(b, std::span(prompt_b).subspan(12), true);
  Sequence fresh = model.NewSequence();
  auto want = model.Forward(fresh, prompt_b, true);
  ASSERT_TRUE(got && want);
  ExpectClose(*got, Slice(*want, 12, 8, 64), 1e-5, "after reuse");
  EXPECT_GE(model.kv_pool().cache_stats().hits, 3);

  // A prompt that differs inside the second page reuses only the first.
  std::vector<int32_t> prompt_c = shared;
  prompt_c[5] = (prompt_c[5] + 1) % 64;
  Sequence c = model.NewSequence();
  EXPECT_EQ(model.ReusePrefix(c, prompt_c), 4);
  // The last token is always evaluated: a prompt of exactly 12 cached
  // positions reuses 8.
  Sequence d = model.NewSequence();
  EXPECT_EQ(model.ReusePrefix(d, std::span(shared).first(12)), 8);
  // Only empty sequences adopt a prefix.
  EXPECT_EQ(model.ReusePrefix(a, prompt_b), 0);
}

TEST(ModelPaging, WritingIntoASharedPageCopiesIt) {
  auto tiny = MustLoad(SpecFor("llama"), SmallPages(4));
  ASSERT_NE(tiny->model, nullptr);
  const Model& model = *tiny->model;
  const std::vector<int32_t> tokens = Tokens(12, 9);
  Sequence a = model.NewSequence();
  ASSERT_TRUE(model.Forward(a, std::span(tokens).first(8), false));
  Sequence b = model.NewSequence();
  ASSERT_EQ(model.ReusePrefix(b, tokens), 8);  // shares a's two pages
  // b rewrites position 6 onwards (inside the shared second page).
  b.Truncate(6);
  const std::vector<int32_t> other = Tokens(4, 10);
  ASSERT_TRUE(model.Forward(b, other, false));
  // a continues as if b did not exist.
  auto got = model.Forward(a, std::span(tokens).subspan(8), true);
  Sequence fresh = model.NewSequence();
  auto want = model.Forward(fresh, tokens, true);
  ASSERT_TRUE(got && want);
  ExpectClose(*got, Slice(*want, 8, 4, 64), 1e-5, "a after b's writes");
}

TEST(ModelPaging, PageLimitFailsCleanlyAndEvictsIdleCache) {
  auto tiny = MustLoad(SpecFor("qwen2"), SmallPages(4));
  ASSERT_NE(tiny->model, nullptr);
  const Model& model = *tiny->model;
  KvPagePool& pool = model.kv_pool();
  pool.SetMaxPages(5);
  EXPECT_EQ(pool.pages_available(), 5);
  {
    Sequence a = model.NewSequence();
    ASSERT_TRUE(model.Forward(a, Tokens(16, 1), false));  // 4 pages, all published
    EXPECT_EQ(pool.pages_in_use(), 4);
    EXPECT_EQ(pool.pages_available(), 1);
    Sequence b = model.NewSequence();
    auto over = model.Forward(b, Tokens(8, 2), false);  // needs 2
    ASSERT_FALSE(over);
    EXPECT_EQ(over.error().code(), Code::kResourceExhausted);
    EXPECT_NE(over.error().message().find("KV cache is full"), std::string::npos);
    EXPECT_EQ(b.n_past(), 0);
    EXPECT_EQ(b.n_pages(), 0);
    EXPECT_EQ(pool.pages_in_use(), 4);
  }
  // a is gone; its pages stay cached but are evictable.
  EXPECT_EQ(pool.pages_in_use(), 4);
  EXPECT_EQ(pool.pages_cached_idle(), 4);
  EXPECT_EQ(pool.pages_available(), 5);
  Sequence c = model.NewSequence();
  ASSERT_TRUE(model.Forward(c, Tokens(20, 3), false));  // 5 pages: evicts all four
  EXPECT_EQ(pool.pages_in_use(), 5);
  EXPECT_EQ(pool.cache_stats().evictions, 4);
  c.Truncate(0);
  EXPECT_EQ(c.n_pages(), 0);
}

}  // namespace
}  // namespace xnai::engine
