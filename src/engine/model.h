// engine::Model: a decoder-only transformer (llama, qwen2, qwen3 families)
// loaded from a GGUF file, and its forward pass over one sequence at a time
// with a per-sequence KV cache.
//
// The weights are used in place inside the GgufFile's mapping: the file must
// outlive the Model and every Sequence made from it. Only the small 1-D
// tensors (norm weights, biases, RoPE frequency factors) are converted to
// float when the model is loaded.
//
// Thread safety: a loaded Model is immutable; Forward may be called from
// several threads at once on different Sequences (they take turns on the
// model's thread pool, one parallel region at a time). One Sequence must not
// be used by two threads at the same time.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/kernels.h"
#include "engine/kv_cache.h"
#include "engine/ops.h"
#include "engine/thread_pool.h"
#include "gguf/gguf_reader.h"

namespace xnai::engine {

// Hyperparameters, from the file's metadata (keys "<arch>.…").
struct ModelHparams {
  std::string architecture;  // general.architecture: "llama", "qwen2", "qwen3"
  int64_t n_vocab = 0;       // rows of token_embd.weight
  int64_t n_embd = 0;        // embedding_length
  int64_t n_layer = 0;       // block_count
  int64_t n_head = 0;        // attention.head_count
  int64_t n_head_kv = 0;     // attention.head_count_kv (default n_head)
  int64_t head_dim = 0;      // attention.key_length (default n_embd / n_head)
  int64_t head_dim_v = 0;    // attention.value_length (default head_dim)
  int64_t n_rot = 0;         // rope.dimension_count (default head_dim)
  int64_t n_ff = 0;          // feed_forward_length
  int64_t n_ctx = 0;         // context_length, or ModelOptions::max_context if smaller
  float rms_eps = 0;         // attention.layer_norm_rms_epsilon
  float rope_theta = 0;      // rope.freq_base (default 10000)
  ops::RopeStyle rope_style = ops::RopeStyle::kNormal;
  bool qkv_bias = false;     // attn_q/k/v.bias (qwen2)
  bool qk_norm = false;      // attn_q_norm/attn_k_norm per head before RoPE (qwen3)
  bool tied_output = false;  // no output.weight: logits use token_embd.weight
};

struct ModelOptions {
  // Threads of the model's pool, which runs every matrix product and the
  // attention (1 = the calling thread only).
  int n_threads = 1;
  // Caps the context (positions per sequence) below the model's
  // context_length; 0 = the model's.
  int64_t max_context = 0;
  // Element types of the KV cache: keys F16 (default), Q8_0 (half the
  // memory again; needs a head dimension that is a multiple of 32) or F32;
  // values F16 (default) or F32.
  TensorType key_cache_type = TensorType::kF16;
  TensorType value_cache_type = TensorType::kF16;
  // Positions per KV page (a multiple of 4): the unit of cache growth and of
  // prefix reuse.
  int64_t kv_page_positions = 64;
};

class Model;

// One sequence's state: the tokens it has evaluated and their keys and
// values (pages of the model's KvPagePool). Made by Model::NewSequence;
// movable, not copyable.
class Sequence {
 public:
  Sequence(Sequence&&) = default;
  Sequence& operator=(Sequence&&) = default;

  // Positions evaluated so far (the next token goes at this position).
  int64_t n_past() const { return static_cast<int64_t>(tokens_.size()); }
  // The tokens evaluated so far, in order.
  std::span<const int32_t> tokens() const { return tokens_; }
  // KV pages this sequence holds (shared ones included).
  int64_t n_pages() const { return cache_.n_pages(); }
  // Forgets every position after the first n_keep (all of them for 0), so the
  // sequence can continue differently from there; the kept prefix stays
  // cached. n_keep beyond n_past() is clamped. Pages past the kept prefix go
  // back to the pool.
  void Truncate(int64_t n_keep);

 private:
  friend class Model;
  Sequence(const Model* owner, KvCache cache) : owner_(owner), cache_(std::move(cache)) {}

  const Model* owner_;
  std::vector<int32_t> tokens_;
  // Prefix-cache keys of the leading full pages already published (or
  // adopted): page_keys_[i] names tokens [0, (i + 1) * page_positions).
  std::vector<uint64_t> page_keys_;
  KvCache cache_;
};

// One sequence's part of a batched forward pass.
struct SequenceBatch {
  Sequence* sequence = nullptr;
  std::span<const int32_t> tokens;  // evaluated at positions n_past() ..
  bool all_logits = false;          // logits after every token, else after the last only
};

class Model {
 public:
  // Reads the hyperparameters and finds and checks every tensor. Errors:
  // Unsupported naming the architecture when general.architecture is not one
  // of llama/qwen2/qwen3 (NotFound when the key is absent); NotFound naming a
  // missing metadata key or tensor; Corruption naming a tensor whose shape
  // does not match the hyperparameters, or for impossible hyperparameters;
  // Unsupported (from CheckSupportedType, prefixed with the tensor name) for a
  // tensor type the engine cannot compute with, or for a RoPE scaling type
  // other than "none" (not implemented yet). A missing output.weight means
  // tied embeddings (token_embd.weight). InvalidArgument for KV cache types
  // outside those ModelOptions lists. `file` must outlive the model.
  static Result<std::unique_ptr<Model>> Load(const gguf::GgufFile& file, ModelOptions options = {});

  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  ~Model();

  const ModelHparams& hparams() const { return hparams_; }
  int64_t n_vocab() const { return hparams_.n_vocab; }

  // A new, empty sequence for this model (its cache grows as it is used).
  Sequence NewSequence() const;

  // The pool every sequence's KV pages come from: cap it (SetMaxPages) to
  // bound the cache's memory; its prefix cache serves ReusePrefix.
  KvPagePool& kv_pool() const { return *kv_pool_; }

  // Prefix reuse for an empty `sequence` that is about to evaluate `prompt`:
  // adopts the cached pages of the longest run of leading full pages of
  // `prompt` that earlier sequences published, leaving at least the last
  // token to evaluate (its logits are needed). Returns the positions reused
  // (a multiple of the page size); the caller then evaluates
  // prompt[returned..]. 0 for a sequence that is not empty.
  int64_t ReusePrefix(Sequence& sequence, std::span<const int32_t> prompt) const;

  // Evaluates `tokens` at positions n_past() .. n_past() + n - 1 of `sequence`
  // (causal attention over everything the sequence has seen), appends them to
  // its cache and returns the logits: (n, n_vocab) row-major when all_logits,
  // else (1, n_vocab) for the last token only.
  // Errors (the sequence is left unchanged): InvalidArgument for an empty
  // `tokens`, a token id outside [0, n_vocab) (naming it and its index), more
  // positions than the context holds, or a sequence made by another model;
  // ResourceExhausted when the batch's buffers cannot be allocated.
  //
  // Each full page of the sequence is published to the pool's prefix cache
  // (see kv_cache.h) once evaluated.
  Result<std::vector<float>> Forward(Sequence& sequence, std::span<const int32_t> tokens,
                                     bool all_logits) const;

  // Several sequences in one pass (continuous batching): every matrix
  // product runs once over all their tokens; attention stays within each
  // sequence. The logits are the rows Forward would return for each part,
  // concatenated in `batch` order. Results equal separate Forward calls up
  // to float rounding (tiles group dot products differently).
  // Errors: those of Forward, naming the part (the sequences are all left
  // unchanged), InvalidArgument for a sequence given twice, and
  // ResourceExhausted when the KV pool cannot supply the pages.
  Result<std::vector<float>> ForwardBatch(std::span<const SequenceBatch> batch) const;

 private:
  struct Layer;
  Model();
  Status LoadTensors(const gguf::GgufFile& file);
  // The attention output of one tile of queries that share KV head
  // `kv_head` (see Evaluate) into attn (n_tokens, n_head * head_dim_v).
  void AttendTile(int64_t layer_idx, int64_t kv_head, int64_t tile, int64_t pos0, int64_t n_tokens,
                  const float* q, const KvCache& cache, float* attn) const;
  // ForwardBatch after its argument checks, with every part's pages ready.
  Result<std::vector<float>> Evaluate(std::span<const SequenceBatch> batch) const;
  // Publishes the sequence's full pages not yet in the prefix cache.
  void PublishPages(Sequence& sequence) const;

  ModelHparams hparams_;
  ModelOptions options_;
  ops::MatrixView token_embd_;        // (n_vocab, n_embd)
  ops::MatrixView output_;            // (n_vocab, n_embd); token_embd_ when tied
  std::vector<float> output_norm_;    // (n_embd)
  std::vector<float> rope_freqs_;     // (n_rot / 2), empty when the file has none
  std::vector<Layer> layers_;         // (n_layer)
  std::unique_ptr<ThreadPool> pool_;  // options_.n_threads threads
  std::unique_ptr<KvPagePool> kv_pool_;
  // Kernels of the KV cache's key and value types on the CPU path of Load.
  const kernels::TypeKernels* key_kernels_ = nullptr;
  const kernels::TypeKernels* value_kernels_ = nullptr;
};

// Evaluates `tokens` as one fresh sequence and writes the logits after every
// position to `path` as float32 little-endian, row-major (n_tokens, n_vocab),
// atomically. Errors: those of Model::Forward, and of writing the file.
Status WriteLogits(const Model& model, std::span<const int32_t> tokens,
                   const std::filesystem::path& path);

}  // namespace xnai::engine
