// engine::Encoder: a BERT-style bidirectional transformer encoder (GGUF
// architecture "bert") that turns a token sequence into one pooled embedding
// vector, for retrieval and similarity.
//
// The weights are used in place inside the GgufFile's mapping: the file must
// outlive the Encoder. The 1-D tensors (LayerNorm weights and biases, linear
// biases) and the small position and token-type tables are converted to float
// when the encoder is loaded.
//
// Thread safety: a loaded Encoder is immutable; Embed may be called from
// several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/status.h"
#include "engine/kernels.h"
#include "engine/ops.h"
#include "engine/thread_pool.h"
#include "gguf/gguf_reader.h"

namespace xnai::engine {

// How the per-token outputs become one vector (bert.pooling_type).
enum class Pooling {
  kMean = 1,  // the average over every token
  kCls = 2,   // the first token's output ([CLS])
};

// Hyperparameters, from the file's metadata (keys "bert.…").
struct EncoderHparams {
  int64_t n_vocab = 0;   // rows of token_embd.weight
  int64_t n_embd = 0;    // embedding_length
  int64_t n_layer = 0;   // block_count
  int64_t n_head = 0;    // attention.head_count
  int64_t head_dim = 0;  // n_embd / n_head
  int64_t n_ff = 0;      // feed_forward_length
  int64_t n_ctx = 0;     // rows of position_embd.weight (the most tokens Embed takes)
  float norm_eps = 0;    // attention.layer_norm_epsilon
  Pooling pooling = Pooling::kCls;
};

class Encoder {
 public:
  // Reads the hyperparameters and finds and checks every tensor. Errors:
  // Unsupported when general.architecture is not "bert" (NotFound when the
  // key is absent), or for a pooling type other than 1 (mean) or 2 (cls);
  // NotFound naming a missing metadata key or tensor; Corruption naming a
  // tensor whose shape does not match the hyperparameters, or for impossible
  // hyperparameters (embedding_length not a multiple of head_count, a
  // layer_norm_epsilon outside (0, 1)); Unsupported (prefixed with the tensor
  // name) for a tensor type the engine cannot compute with. n_threads is the
  // number of threads for the matrix products (values below 1 mean 1).
  // `file` must outlive the encoder.
  static Result<std::unique_ptr<Encoder>> Load(const gguf::GgufFile& file, int n_threads);

  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;
  ~Encoder();

  const EncoderHparams& hparams() const { return hparams_; }
  // Length of the vectors Embed returns (embedding_length).
  int64_t dim() const { return hparams_.n_embd; }
  // The most tokens one Embed call accepts (position embeddings count).
  int64_t max_tokens() const { return hparams_.n_ctx; }

  // Evaluates `tokens` as one sequence (token type 0, positions 0..n-1, every
  // token attending to every other) and returns the pooled output, dim()
  // floats, divided by its L2 norm when `normalize` (a zero vector stays
  // zero). The tokens should already carry the vocabulary's [CLS] ... [SEP]
  // (Tokenizer::Encode with add_special). Errors: InvalidArgument for an
  // empty `tokens`, more tokens than max_tokens(), or a token id outside
  // [0, n_vocab) (naming it and its index); ResourceExhausted when the
  // buffers cannot be allocated.
  Result<std::vector<float>> Embed(std::span<const int32_t> tokens, bool normalize) const;

 private:
  struct Layer;
  Encoder();
  Status LoadTensors(const gguf::GgufFile& file);
  // Embed after its argument checks.
  Result<std::vector<float>> Evaluate(std::span<const int32_t> tokens, bool normalize) const;

  EncoderHparams hparams_;
  std::unique_ptr<ThreadPool> pool_;  // runs the matrix products and attention
  // F32 kernels (attention scores and weighted sums) on the CPU path of Load.
  const kernels::TypeKernels* float_kernels_ = nullptr;
  ops::MatrixView token_embd_;        // (n_vocab, n_embd)
  std::vector<float> position_embd_;  // (n_ctx, n_embd)
  std::vector<float> token_type0_;    // (n_embd): row 0 of token_types.weight
  std::vector<float> embd_norm_w_;    // (n_embd)
  std::vector<float> embd_norm_b_;    // (n_embd)
  std::vector<Layer> layers_;         // (n_layer)
};

}  // namespace xnai::engine
