// The BERT encoder forward pass: embeddings (token + position + type 0) and
// LayerNorm, then per layer post-LN attention and feed-forward blocks, then
// pooling. Reads top to bottom like the math; buffers are labelled with their
// shapes.
#include "engine/encoder.h"

#include <algorithm>
#include <cmath>
#include <new>
#include <string>
#include <string_view>

#include "engine/cpu.h"
#include "engine/kernels.h"
#include "engine/quants.h"
#include "engine/tensor_types.h"
#include "engine/weights.h"

namespace xnai::engine {

namespace {

// Hyperparameters above these are not a real model but a hostile or broken
// file; refusing them keeps buffer sizes far from overflow.
constexpr int64_t kMaxDim = 1 << 20;
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxVocab = 1 << 24;
constexpr int64_t kMaxContext = 1 << 20;

// Rows [0, n_rows_out) of a (rows, cols) tensor, converted to float.
Result<std::vector<float>> LoadRows(const gguf::GgufFile& file, const std::string& name,
                                    int64_t cols, int64_t rows, int64_t n_rows_out) {
  Result<ops::MatrixView> matrix = LoadMatrix(file, name, cols, rows);
  if (!matrix) return Err(matrix.error());
  std::vector<float> out(static_cast<size_t>(cols * n_rows_out));
  for (int64_t row = 0; row < n_rows_out; ++row) {
    Status status = DequantizeRow(matrix->type, matrix->data + row * matrix->row_bytes,
                                  out.data() + row * cols, cols);
    if (!status.ok()) return Err(status.WithContext("tensor '" + name + "'"));
  }
  return out;
}

// out (n) = (x - mean) / sqrt(var + eps) * weight + bias; out may alias x.
// Mean and variance are accumulated in double.
void LayerNorm(const float* x, const float* weight, const float* bias, float* out, int64_t n,
               float eps) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const double mean = sum / static_cast<double>(n);
  double sum_squares = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double centered = x[i] - mean;
    sum_squares += centered * centered;
  }
  const double scale = 1.0 / std::sqrt(sum_squares / static_cast<double>(n) + eps);
  for (int64_t i = 0; i < n; ++i) {
    out[i] = static_cast<float>((x[i] - mean) * scale) * weight[i] + bias[i];
  }
}

// GELU, tanh approximation: the reference implementation computes this form
// for BERT (it differs from the exact erf form by a few 1e-4 absolute; on the
// reference models the tanh form lands closer).
float Gelu(float x) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + 0.044715f * x * x)));
}

}  // namespace

struct Encoder::Layer {
  ops::MatrixView wq, wk, wv;      // (n_embd, n_embd)
  std::vector<float> bq, bk, bv;   // (n_embd)
  ops::MatrixView wo;              // (n_embd, n_embd)
  std::vector<float> bo;           // (n_embd)
  std::vector<float> attn_norm_w;  // (n_embd)
  std::vector<float> attn_norm_b;  // (n_embd)
  ops::MatrixView w_up;            // (n_ff, n_embd)
  std::vector<float> b_up;         // (n_ff)
  ops::MatrixView w_down;          // (n_embd, n_ff)
  std::vector<float> b_down;       // (n_embd)
  std::vector<float> out_norm_w;   // (n_embd)
  std::vector<float> out_norm_b;   // (n_embd)
};

Encoder::Encoder() = default;
Encoder::~Encoder() = default;

Result<std::unique_ptr<Encoder>> Encoder::Load(const gguf::GgufFile& file, int n_threads) {
  Result<std::string_view> arch = file.GetString("general.architecture");
  if (!arch) return Err(arch.error());
  if (*arch != "bert") {
    return Err(Status::Unsupported("model architecture '" + std::string(*arch) +
                                   "' is not an encoder (supported: bert)"));
  }
  std::unique_ptr<Encoder> encoder(new Encoder());
  encoder->pool_ = std::make_unique<ThreadPool>(std::max(1, n_threads));
  encoder->float_kernels_ = kernels::GetKernels(TensorType::kF32, ActiveCpuPath());
  EncoderHparams& hp = encoder->hparams_;

#define XNAI_READ_DIM(field, key, limit)                        \
  do {                                                          \
    Result<int64_t> value_ = ReadDim(file, "bert." key, limit); \
    if (!value_) return Err(value_.error());                    \
    field = *value_;                                            \
  } while (0)
  XNAI_READ_DIM(hp.n_embd, "embedding_length", kMaxDim);
  XNAI_READ_DIM(hp.n_layer, "block_count", kMaxLayers);
  XNAI_READ_DIM(hp.n_head, "attention.head_count", kMaxDim);
  XNAI_READ_DIM(hp.n_ff, "feed_forward_length", kMaxDim);
#undef XNAI_READ_DIM
  if (hp.n_embd % hp.n_head != 0) {
    return Err(Status::Corruption("embedding_length " + std::to_string(hp.n_embd) +
                                  " is not a multiple of head_count " + std::to_string(hp.n_head)));
  }
  hp.head_dim = hp.n_embd / hp.n_head;

  Result<double> eps = file.GetFloat("bert.attention.layer_norm_epsilon");
  if (!eps) return Err(eps.error());
  if (!(*eps > 0 && *eps < 1)) {
    return Err(Status::Corruption("bert.attention.layer_norm_epsilon must be in (0, 1)"));
  }
  hp.norm_eps = static_cast<float>(*eps);

  Result<uint64_t> pooling = file.GetUint("bert.pooling_type");
  if (!pooling) return Err(pooling.error());
  if (*pooling == 1) {
    hp.pooling = Pooling::kMean;
  } else if (*pooling == 2) {
    hp.pooling = Pooling::kCls;
  } else {
    return Err(Status::Unsupported("bert.pooling_type " + std::to_string(*pooling) +
                                   " is not supported (supported: 1 mean, 2 cls)"));
  }

  Status status = encoder->LoadTensors(file);
  if (!status.ok()) return Err(status);
  return encoder;
}

Status Encoder::LoadTensors(const gguf::GgufFile& file) {
  EncoderHparams& hp = hparams_;
  // The vocabulary size and the context are the row counts of the embedding
  // tables.
  XNAI_ASSIGN_OR_RETURN(hp.n_vocab,
                        ReadRowCount(file, "token_embd.weight", hp.n_embd, kMaxVocab, "n_vocab"));
  XNAI_ASSIGN_OR_RETURN(
      hp.n_ctx, ReadRowCount(file, "position_embd.weight", hp.n_embd, kMaxContext, "n_ctx"));
  XNAI_ASSIGN_OR_RETURN(const int64_t n_types,
                        ReadRowCount(file, "token_types.weight", hp.n_embd, kMaxVocab, "n_types"));

  const int64_t e = hp.n_embd;
  XNAI_ASSIGN_OR_RETURN(token_embd_, LoadMatrix(file, "token_embd.weight", e, hp.n_vocab));
  XNAI_ASSIGN_OR_RETURN(position_embd_,
                        LoadRows(file, "position_embd.weight", e, hp.n_ctx, hp.n_ctx));
  XNAI_ASSIGN_OR_RETURN(token_type0_, LoadRows(file, "token_types.weight", e, n_types, 1));
  XNAI_ASSIGN_OR_RETURN(embd_norm_w_, LoadVector(file, "token_embd_norm.weight", e));
  XNAI_ASSIGN_OR_RETURN(embd_norm_b_, LoadVector(file, "token_embd_norm.bias", e));

  layers_.resize(static_cast<size_t>(hp.n_layer));
  for (int64_t layer_idx = 0; layer_idx < hp.n_layer; ++layer_idx) {
    Layer& layer = layers_[static_cast<size_t>(layer_idx)];
    const std::string blk = "blk." + std::to_string(layer_idx) + ".";
    XNAI_ASSIGN_OR_RETURN(layer.wq, LoadMatrix(file, blk + "attn_q.weight", e, e));
    XNAI_ASSIGN_OR_RETURN(layer.bq, LoadVector(file, blk + "attn_q.bias", e));
    XNAI_ASSIGN_OR_RETURN(layer.wk, LoadMatrix(file, blk + "attn_k.weight", e, e));
    XNAI_ASSIGN_OR_RETURN(layer.bk, LoadVector(file, blk + "attn_k.bias", e));
    XNAI_ASSIGN_OR_RETURN(layer.wv, LoadMatrix(file, blk + "attn_v.weight", e, e));
    XNAI_ASSIGN_OR_RETURN(layer.bv, LoadVector(file, blk + "attn_v.bias", e));
    XNAI_ASSIGN_OR_RETURN(layer.wo, LoadMatrix(file, blk + "attn_output.weight", e, e));
    XNAI_ASSIGN_OR_RETURN(layer.bo, LoadVector(file, blk + "attn_output.bias", e));
    XNAI_ASSIGN_OR_RETURN(layer.attn_norm_w, LoadVector(file, blk + "attn_output_norm.weight", e));
    XNAI_ASSIGN_OR_RETURN(layer.attn_norm_b, LoadVector(file, blk + "attn_output_norm.bias", e));
    XNAI_ASSIGN_OR_RETURN(layer.w_up, LoadMatrix(file, blk + "ffn_up.weight", e, hp.n_ff));
    XNAI_ASSIGN_OR_RETURN(layer.b_up, LoadVector(file, blk + "ffn_up.bias", hp.n_ff));
    XNAI_ASSIGN_OR_RETURN(layer.w_down, LoadMatrix(file, blk + "ffn_down.weight", hp.n_ff, e));
    XNAI_ASSIGN_OR_RETURN(layer.b_down, LoadVector(file, blk + "ffn_down.bias", e));
    XNAI_ASSIGN_OR_RETURN(layer.out_norm_w, LoadVector(file, blk + "layer_output_norm.weight", e));
    XNAI_ASSIGN_OR_RETURN(layer.out_norm_b, LoadVector(file, blk + "layer_output_norm.bias", e));
  }
  return Status::Ok();
}

Result<std::vector<float>> Encoder::Embed(std::span<const int32_t> tokens, bool normalize) const {
  const EncoderHparams& hp = hparams_;
  if (tokens.empty()) return Err(Status::InvalidArgument("no tokens to embed"));
  if (static_cast<int64_t>(tokens.size()) > hp.n_ctx) {
    return Err(Status::InvalidArgument(std::to_string(tokens.size()) +
                                       " tokens exceed the encoder's context of " +
                                       std::to_string(hp.n_ctx) + " tokens"));
  }
  for (size_t idx = 0; idx < tokens.size(); ++idx) {
    if (tokens[idx] < 0 || tokens[idx] >= hp.n_vocab) {
      return Err(Status::InvalidArgument("token id " + std::to_string(tokens[idx]) + " at index " +
                                         std::to_string(idx) + " is outside the vocabulary [0, " +
                                         std::to_string(hp.n_vocab) + ")"));
    }
  }
  try {
    return Evaluate(tokens, normalize);
  } catch (const std::bad_alloc&) {
    return Err(Status::ResourceExhausted("out of memory embedding " +
                                         std::to_string(tokens.size()) + " tokens"));
  }
}

Result<std::vector<float>> Encoder::Evaluate(std::span<const int32_t> tokens,
                                             bool normalize) const {
  const EncoderHparams& hp = hparams_;
  const int64_t n_tokens = static_cast<int64_t>(tokens.size());
  const int64_t n_embd = hp.n_embd;
  const int64_t head_dim = hp.head_dim;
  ThreadPool* pool = pool_.get();
  const float attn_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));

  auto sized = [](int64_t rows, int64_t cols) {
    return std::vector<float>(static_cast<size_t>(rows * cols));
  };
  std::vector<float> x = sized(n_tokens, n_embd);     // (n_tokens, n_embd) hidden states
  std::vector<float> q = sized(n_tokens, n_embd);     // (n_tokens, n_head, head_dim)
  std::vector<float> k = sized(n_tokens, n_embd);     // (n_tokens, n_head, head_dim)
  std::vector<float> v = sized(n_tokens, n_embd);     // (n_tokens, n_head, head_dim)
  std::vector<float> attn = sized(n_tokens, n_embd);  // (n_tokens, n_head, head_dim)
  std::vector<float> proj = sized(n_tokens, n_embd);  // (n_tokens, n_embd) block output
  std::vector<float> up = sized(n_tokens, hp.n_ff);   // (n_tokens, n_ff)
  std::vector<float> vt = sized(n_embd, n_tokens);    // (n_head, head_dim, n_tokens) values

  // Per-token work (biases, GELU, LayerNorm) is split over the pool by tokens.
  auto for_tokens = [&](auto&& fn) {
    pool->ParallelFor(n_tokens, 4, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) fn(t);
    });
  };
  auto add_bias = [](std::vector<float>& rows, const std::vector<float>& bias, int64_t n_rows) {
    const int64_t n = static_cast<int64_t>(bias.size());
    for (int64_t t = 0; t < n_rows; ++t) {
      for (int64_t i = 0; i < n; ++i) rows[static_cast<size_t>(t * n + i)] += bias[i];
    }
  };

  // x = LayerNorm(token_embd[tokens] + position_embd[t] + token_types[0])
  for (int64_t t = 0; t < n_tokens; ++t) {
    float* x_t = x.data() + t * n_embd;
    XNAI_RETURN_IF_ERROR(DequantizeRow(
        token_embd_.type, token_embd_.data + tokens[t] * token_embd_.row_bytes, x_t, n_embd));
    const float* pos_t = position_embd_.data() + t * n_embd;
    for (int64_t i = 0; i < n_embd; ++i) x_t[i] += pos_t[i] + token_type0_[i];
    LayerNorm(x_t, embd_norm_w_.data(), embd_norm_b_.data(), x_t, n_embd, hp.norm_eps);
  }

  for (const Layer& layer : layers_) {
    // --- attention block: x = LayerNorm(x + Wo Attention(Wq x, Wk x, Wv x) + bo)
    const ops::MatMulTarget qkv[] = {
        {&layer.wq, q.data()}, {&layer.wk, k.data()}, {&layer.wv, v.data()}};
    XNAI_RETURN_IF_ERROR(ops::MatMulBatch(qkv, x.data(), n_tokens, pool));
    add_bias(q, layer.bq, n_tokens);
    add_bias(k, layer.bk, n_tokens);
    add_bias(v, layer.bv, n_tokens);
    // vt (n_embd, n_tokens): the values transposed, so that each head's
    // weighted sum is rows of vt against the softmax weights.
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t i = 0; i < n_embd; ++i) vt[i * n_tokens + t] = v[t * n_embd + i];
    }
    // Bidirectional: every token sees every token. Work items are (head,
    // tile of up to kMaxTileCols queries), computed with the float kernels.
    const int64_t query_tiles = (n_tokens + kernels::kMaxTileCols - 1) / kernels::kMaxTileCols;
    pool->ParallelFor(hp.n_head * query_tiles, 1, [&](int64_t begin, int64_t end) {
      thread_local std::vector<float> scores;  // (tile queries, n_tokens)
      thread_local std::vector<float> out;     // (tile queries, head_dim)
      scores.resize(static_cast<size_t>(kernels::kMaxTileCols * n_tokens));
      out.resize(static_cast<size_t>(kernels::kMaxTileCols * head_dim));
      const int64_t row_bytes = n_embd * static_cast<int64_t>(sizeof(float));
      for (int64_t item = begin; item < end; ++item) {
        const int64_t head = item / query_tiles;
        const int64_t t0 = item % query_tiles * kernels::kMaxTileCols;
        const int n_queries =
            static_cast<int>(std::min<int64_t>(kernels::kMaxTileCols, n_tokens - t0));
        const uint8_t* queries =
            reinterpret_cast<const uint8_t*>(q.data() + t0 * n_embd + head * head_dim);
        for (int64_t s = 0; s < n_tokens; s += kernels::kMaxTileRows) {
          const int rows = static_cast<int>(std::min<int64_t>(kernels::kMaxTileRows, n_tokens - s));
          float_kernels_->dot_tile(
              head_dim, reinterpret_cast<const uint8_t*>(k.data() + s * n_embd + head * head_dim),
              row_bytes, rows, queries, row_bytes, n_queries, scores.data() + s, n_tokens);
        }
        for (int c = 0; c < n_queries; ++c) {
          float* row = scores.data() + c * n_tokens;
          for (int64_t s = 0; s < n_tokens; ++s) row[s] *= attn_scale;
          ops::Softmax(row, n_tokens);
        }
        const int64_t score_bytes = n_tokens * static_cast<int64_t>(sizeof(float));
        for (int64_t i = 0; i < head_dim; i += kernels::kMaxTileRows) {
          const int rows = static_cast<int>(std::min<int64_t>(kernels::kMaxTileRows, head_dim - i));
          float_kernels_->dot_tile(
              n_tokens,
              reinterpret_cast<const uint8_t*>(vt.data() + (head * head_dim + i) * n_tokens),
              score_bytes, rows, reinterpret_cast<const uint8_t*>(scores.data()), score_bytes,
              n_queries, out.data() + i, head_dim);
        }
        for (int c = 0; c < n_queries; ++c) {
          std::copy_n(out.data() + c * head_dim, head_dim,
                      attn.data() + (t0 + c) * n_embd + head * head_dim);
        }
      }
    });
    XNAI_RETURN_IF_ERROR(ops::MatMul(layer.wo, attn.data(), n_tokens, proj.data(), pool));
    // x = LayerNorm(x + proj + bias), token by token over the pool.
    auto add_and_norm = [&](const std::vector<float>& bias, const std::vector<float>& norm_w,
                            const std::vector<float>& norm_b) {
      for_tokens([&](int64_t t) {
        float* x_t = x.data() + t * n_embd;
        const float* p_t = proj.data() + t * n_embd;
        for (int64_t i = 0; i < n_embd; ++i) x_t[i] += p_t[i] + bias[i];
        LayerNorm(x_t, norm_w.data(), norm_b.data(), x_t, n_embd, hp.norm_eps);
      });
    };
    add_and_norm(layer.bo, layer.attn_norm_w, layer.attn_norm_b);

    // --- feed-forward block: x = LayerNorm(x + W_down gelu(W_up x + b_up) + b_down)
    XNAI_RETURN_IF_ERROR(ops::MatMul(layer.w_up, x.data(), n_tokens, up.data(), pool));
    for_tokens([&](int64_t t) {
      float* up_t = up.data() + t * hp.n_ff;
      for (int64_t i = 0; i < hp.n_ff; ++i) up_t[i] = Gelu(up_t[i] + layer.b_up[i]);
    });
    XNAI_RETURN_IF_ERROR(ops::MatMul(layer.w_down, up.data(), n_tokens, proj.data(), pool));
    add_and_norm(layer.b_down, layer.out_norm_w, layer.out_norm_b);
  }

  // Pooling, accumulated in double.
  std::vector<double> pooled(static_cast<size_t>(n_embd), 0.0);
  if (hp.pooling == Pooling::kCls) {
    for (int64_t i = 0; i < n_embd; ++i) pooled[i] = x[i];
  } else {
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t i = 0; i < n_embd; ++i) pooled[i] += x[t * n_embd + i];
    }
    for (double& value : pooled) value /= static_cast<double>(n_tokens);
  }
  double scale = 1.0;
  if (normalize) {
    double sum_squares = 0;
    for (double value : pooled) sum_squares += value * value;
    if (sum_squares > 0) scale = 1.0 / std::sqrt(sum_squares);
  }
  std::vector<float> out(static_cast<size_t>(n_embd));
  for (int64_t i = 0; i < n_embd; ++i) out[i] = static_cast<float>(pooled[i] * scale);
  return out;
}

}  // namespace xnai::engine
