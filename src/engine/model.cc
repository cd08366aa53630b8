// The decoder forward pass shared by the llama family of architectures. The
// three supported architectures differ only in a few switches (the
// architecture table below); the pass reads top to bottom like the math, and
// every buffer is labelled with its shape.
#include "engine/model.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <new>
#include <optional>
#include <string_view>

#include "base/files.h"
#include "engine/cpu.h"
#include "engine/kernels.h"
#include "engine/quants.h"
#include "engine/tensor_types.h"
#include "engine/weights.h"

namespace xnai::engine {

namespace {

// What distinguishes one architecture of the family from another.
struct ArchSpec {
  std::string_view name;
  ops::RopeStyle rope_style;
  bool qkv_bias;  // attn_q/k/v.bias present
  bool qk_norm;   // attn_q_norm / attn_k_norm present
};

constexpr ArchSpec kArchitectures[] = {
    {"llama", ops::RopeStyle::kNormal, false, false},
    {"qwen2", ops::RopeStyle::kNeox, true, false},
    {"qwen3", ops::RopeStyle::kNeox, false, true},
};

// Hyperparameters above these are not a real model but a hostile or broken
// file; refusing them keeps buffer sizes far from overflow.
constexpr int64_t kMaxDim = 1 << 20;
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxVocab = 1 << 24;
constexpr int64_t kMaxContext = 1 << 24;

}  // namespace

struct Model::Layer {
  std::vector<float> attn_norm;       // (n_embd)
  ops::MatrixView wq;                 // (n_head * head_dim, n_embd)
  ops::MatrixView wk;                 // (n_head_kv * head_dim, n_embd)
  ops::MatrixView wv;                 // (n_head_kv * head_dim_v, n_embd)
  ops::MatrixView wo;                 // (n_embd, n_head * head_dim_v)
  std::vector<float> bq, bk, bv;      // biases as the rows above; empty when absent
  std::vector<float> q_norm, k_norm;  // (head_dim); empty when absent
  std::vector<float> ffn_norm;        // (n_embd)
  ops::MatrixView w_gate;             // (n_ff, n_embd)
  ops::MatrixView w_up;               // (n_ff, n_embd)
  ops::MatrixView w_down;             // (n_embd, n_ff)
};

Model::Model() = default;
Model::~Model() = default;

Result<std::unique_ptr<Model>> Model::Load(const gguf::GgufFile& file, ModelOptions options) {
  Result<std::string_view> arch_name = file.GetString("general.architecture");
  if (!arch_name) return Err(arch_name.error());
  const ArchSpec* spec = nullptr;
  for (const ArchSpec& candidate : kArchitectures) {
    if (candidate.name == *arch_name) spec = &candidate;
  }
  if (spec == nullptr) {
    return Err(Status::Unsupported("model architecture '" + std::string(*arch_name) +
                                   "' is not supported (supported: llama, qwen2, qwen3)"));
  }

  std::unique_ptr<Model> model(new Model());
  model->options_ = options;
  ModelHparams& hp = model->hparams_;
  hp.architecture = std::string(spec->name);
  hp.rope_style = spec->rope_style;
  hp.qkv_bias = spec->qkv_bias;
  hp.qk_norm = spec->qk_norm;
  const std::string prefix = hp.architecture + ".";

  // Reads a dimension into `field`, returning its error from Load.
#define XNAI_READ_DIM(field, key, limit, fallback)                           \
  do {                                                                       \
    Result<int64_t> value_ = ReadDim(file, prefix + (key), limit, fallback); \
    if (!value_) return Err(value_.error());                                 \
    field = *value_;                                                         \
  } while (0)
  XNAI_READ_DIM(hp.n_embd, "embedding_length", kMaxDim, std::nullopt);
  XNAI_READ_DIM(hp.n_layer, "block_count", kMaxLayers, std::nullopt);
  XNAI_READ_DIM(hp.n_head, "attention.head_count", kMaxDim, std::nullopt);
  XNAI_READ_DIM(hp.n_head_kv, "attention.head_count_kv", kMaxDim, hp.n_head);
  XNAI_READ_DIM(hp.n_ff, "feed_forward_length", kMaxDim, std::nullopt);
  XNAI_READ_DIM(hp.n_ctx, "context_length", kMaxContext, std::nullopt);
  if (!file.HasMetadata(prefix + "attention.key_length") && hp.n_embd % hp.n_head != 0) {
    return Err(Status::Corruption("embedding_length " + std::to_string(hp.n_embd) +
                                  " is not a multiple of head_count " + std::to_string(hp.n_head)));
  }
  XNAI_READ_DIM(hp.head_dim, "attention.key_length", kMaxDim, hp.n_embd / hp.n_head);
  XNAI_READ_DIM(hp.head_dim_v, "attention.value_length", kMaxDim, hp.head_dim);
  XNAI_READ_DIM(hp.n_rot, "rope.dimension_count", kMaxDim, hp.head_dim);
#undef XNAI_READ_DIM
  if (hp.n_head % hp.n_head_kv != 0) {
    return Err(Status::Corruption("attention.head_count " + std::to_string(hp.n_head) +
                                  " is not a multiple of attention.head_count_kv " +
                                  std::to_string(hp.n_head_kv)));
  }
  if (hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0) {
    return Err(Status::Corruption("rope.dimension_count " + std::to_string(hp.n_rot) +
                                  " must be even and at most the head dimension " +
                                  std::to_string(hp.head_dim)));
  }
  if (hp.n_head * std::max(hp.head_dim, hp.head_dim_v) > kMaxDim) {
    return Err(Status::Corruption("attention width head_count * head dimension is too large"));
  }
  if (options.max_context > 0) hp.n_ctx = std::min(hp.n_ctx, options.max_context);
  const TensorType key_type = options.key_cache_type;
  if (key_type != TensorType::kF16 && key_type != TensorType::kF32 &&
      key_type != TensorType::kQ8_0) {
    return Err(Status::InvalidArgument("the key cache type must be F16, Q8_0 or F32, not " +
                                       std::string(GetTypeTraits(key_type).name)));
  }
  if (key_type == TensorType::kQ8_0 && hp.head_dim % 32 != 0) {
    return Err(
        Status::InvalidArgument("a Q8_0 key cache needs a head dimension that is a "
                                "multiple of 32; this model's is " +
                                std::to_string(hp.head_dim)));
  }
  if (options.value_cache_type != TensorType::kF16 &&
      options.value_cache_type != TensorType::kF32) {
    return Err(Status::InvalidArgument("the value cache type must be F16 or F32, not " +
                                       std::string(GetTypeTraits(options.value_cache_type).name)));
  }

  Result<double> eps = file.GetFloat(prefix + "attention.layer_norm_rms_epsilon");
  if (!eps) return Err(eps.error());
  if (!(*eps > 0 && *eps < 1)) {
    return Err(Status::Corruption("attention.layer_norm_rms_epsilon must be in (0, 1)"));
  }
  hp.rms_eps = static_cast<float>(*eps);
  hp.rope_theta = 10000.0f;
  if (file.HasMetadata(prefix + "rope.freq_base")) {
    Result<double> theta = file.GetFloat(prefix + "rope.freq_base");
    if (!theta) return Err(theta.error());
    if (!(*theta > 1)) return Err(Status::Corruption("rope.freq_base must be above 1"));
    hp.rope_theta = static_cast<float>(*theta);
  }
  // Position-scaling schemes change the rotation angles; computing without
  // them would give wrong numbers silently, so they are refused until
  // implemented.
  if (const gguf::MetadataValue* scaling = file.FindMetadata(prefix + "rope.scaling.type")) {
    Result<std::string_view> type = scaling->AsString();
    if (!type || *type != "none") {
      return Err(Status::Unsupported("RoPE scaling '" +
                                     std::string(type ? *type : std::string_view("?")) +
                                     "' is not supported"));
    }
  }

  if (options.kv_page_positions < 4 || options.kv_page_positions > 4096 ||
      options.kv_page_positions % 4 != 0) {
    return Err(Status::InvalidArgument("KV page size must be a multiple of 4 in [4, 4096], not " +
                                       std::to_string(options.kv_page_positions)));
  }

  Status status = model->LoadTensors(file);
  if (!status.ok()) return Err(status);
  model->pool_ = std::make_unique<ThreadPool>(std::max(1, options.n_threads));
  KvLayout layout;
  layout.n_layer = hp.n_layer;
  layout.k_dim = hp.n_head_kv * hp.head_dim;
  layout.v_dim = hp.n_head_kv * hp.head_dim_v;
  layout.key_type = options.key_cache_type;
  layout.value_type = options.value_cache_type;
  layout.page_positions = options.kv_page_positions;
  model->kv_pool_ = std::make_unique<KvPagePool>(layout);
  // The cache types' kernels for the attention (both types are supported).
  const CpuPath cpu_path = ActiveCpuPath();
  model->key_kernels_ = kernels::GetKernels(options.key_cache_type, cpu_path);
  model->value_kernels_ = kernels::GetKernels(options.value_cache_type, cpu_path);
  return model;
}

Status Model::LoadTensors(const gguf::GgufFile& file) {
  ModelHparams& hp = hparams_;
  // The vocabulary size is the embedding table's row count.
  XNAI_ASSIGN_OR_RETURN(hp.n_vocab,
                        ReadRowCount(file, "token_embd.weight", hp.n_embd, kMaxVocab, "n_vocab"));

  XNAI_ASSIGN_OR_RETURN(token_embd_, LoadMatrix(file, "token_embd.weight", hp.n_embd, hp.n_vocab));
  XNAI_ASSIGN_OR_RETURN(output_norm_, LoadVector(file, "output_norm.weight", hp.n_embd));
  hp.tied_output = file.FindTensor("output.weight") == nullptr;
  if (hp.tied_output) {
    output_ = token_embd_;
  } else {
    XNAI_ASSIGN_OR_RETURN(output_, LoadMatrix(file, "output.weight", hp.n_embd, hp.n_vocab));
  }
  if (file.FindTensor("rope_freqs.weight") != nullptr) {
    XNAI_ASSIGN_OR_RETURN(rope_freqs_, LoadVector(file, "rope_freqs.weight", hp.n_rot / 2));
  }

  const int64_t q_dim = hp.n_head * hp.head_dim;
  const int64_t k_dim = hp.n_head_kv * hp.head_dim;
  const int64_t v_dim = hp.n_head_kv * hp.head_dim_v;
  const int64_t attn_dim = hp.n_head * hp.head_dim_v;
  layers_.resize(static_cast<size_t>(hp.n_layer));
  for (int64_t layer_idx = 0; layer_idx < hp.n_layer; ++layer_idx) {
    Layer& layer = layers_[static_cast<size_t>(layer_idx)];
    const std::string blk = "blk." + std::to_string(layer_idx) + ".";
    XNAI_ASSIGN_OR_RETURN(layer.attn_norm, LoadVector(file, blk + "attn_norm.weight", hp.n_embd));
    XNAI_ASSIGN_OR_RETURN(layer.wq, LoadMatrix(file, blk + "attn_q.weight", hp.n_embd, q_dim));
    XNAI_ASSIGN_OR_RETURN(layer.wk, LoadMatrix(file, blk + "attn_k.weight", hp.n_embd, k_dim));
    XNAI_ASSIGN_OR_RETURN(layer.wv, LoadMatrix(file, blk + "attn_v.weight", hp.n_embd, v_dim));
    XNAI_ASSIGN_OR_RETURN(layer.wo,
                          LoadMatrix(file, blk + "attn_output.weight", attn_dim, hp.n_embd));
    if (hp.qkv_bias) {
      XNAI_ASSIGN_OR_RETURN(layer.bq, LoadVector(file, blk + "attn_q.bias", q_dim));
      XNAI_ASSIGN_OR_RETURN(layer.bk, LoadVector(file, blk + "attn_k.bias", k_dim));
      XNAI_ASSIGN_OR_RETURN(layer.bv, LoadVector(file, blk + "attn_v.bias", v_dim));
    }
    if (hp.qk_norm) {
      XNAI_ASSIGN_OR_RETURN(layer.q_norm,
                            LoadVector(file, blk + "attn_q_norm.weight", hp.head_dim));
      XNAI_ASSIGN_OR_RETURN(layer.k_norm,
                            LoadVector(file, blk + "attn_k_norm.weight", hp.head_dim));
    }
    XNAI_ASSIGN_OR_RETURN(layer.ffn_norm, LoadVector(file, blk + "ffn_norm.weight", hp.n_embd));
    XNAI_ASSIGN_OR_RETURN(layer.w_gate,
                          LoadMatrix(file, blk + "ffn_gate.weight", hp.n_embd, hp.n_ff));
    XNAI_ASSIGN_OR_RETURN(layer.w_up, LoadMatrix(file, blk + "ffn_up.weight", hp.n_embd, hp.n_ff));
    XNAI_ASSIGN_OR_RETURN(layer.w_down,
                          LoadMatrix(file, blk + "ffn_down.weight", hp.n_ff, hp.n_embd));
  }
  return Status::Ok();
}

void Sequence::Truncate(int64_t n_keep) {
  const int64_t keep = std::clamp<int64_t>(n_keep, 0, n_past());
  tokens_.resize(static_cast<size_t>(keep));
  cache_.Truncate(keep);
  const auto full_pages = static_cast<size_t>(keep / cache_.page_positions());
  if (page_keys_.size() > full_pages) page_keys_.resize(full_pages);
}

Sequence Model::NewSequence() const { return Sequence(this, KvCache(kv_pool_.get())); }

int64_t Model::ReusePrefix(Sequence& sequence, std::span<const int32_t> prompt) const {
  if (sequence.owner_ != this || sequence.n_past() != 0 || prompt.empty()) return 0;
  const int64_t per_page = options_.kv_page_positions;
  // The last prompt token is always evaluated: its logits pick the next one.
  const int64_t max_pages = (static_cast<int64_t>(prompt.size()) - 1) / per_page;
  uint64_t prev_key = 0;
  for (int64_t index = 0; index < max_pages; ++index) {
    std::span<const int32_t> page_tokens = prompt.subspan(index * per_page, per_page);
    const uint64_t key = KvPagePool::ChainKey(prev_key, page_tokens);
    std::shared_ptr<KvPage> page = kv_pool_->Lookup(key, prev_key, page_tokens);
    if (!page) break;
    sequence.cache_.AppendShared(std::move(page));
    sequence.page_keys_.push_back(key);
    sequence.tokens_.insert(sequence.tokens_.end(), page_tokens.begin(), page_tokens.end());
    prev_key = key;
  }
  return sequence.n_past();
}

void Model::PublishPages(Sequence& sequence) const {
  const int64_t per_page = options_.kv_page_positions;
  const int64_t full_pages = sequence.n_past() / per_page;
  for (auto index = static_cast<int64_t>(sequence.page_keys_.size()); index < full_pages; ++index) {
    const uint64_t prev_key = index == 0 ? 0 : sequence.page_keys_.back();
    std::span<const int32_t> page_tokens =
        std::span<const int32_t>(sequence.tokens_).subspan(index * per_page, per_page);
    const uint64_t key = KvPagePool::ChainKey(prev_key, page_tokens);
    kv_pool_->Publish(key, prev_key, page_tokens, sequence.cache_.page(index));
    sequence.page_keys_.push_back(key);
  }
}

Result<std::vector<float>> Model::Forward(Sequence& sequence, std::span<const int32_t> tokens,
                                          bool all_logits) const {
  const SequenceBatch part{&sequence, tokens, all_logits};
  return ForwardBatch(std::span<const SequenceBatch>(&part, 1));
}

Result<std::vector<float>> Model::ForwardBatch(std::span<const SequenceBatch> batch) const {
  const ModelHparams& hp = hparams_;
  if (batch.empty()) return Err(Status::InvalidArgument("no sequences to evaluate"));
  for (size_t part_idx = 0; part_idx < batch.size(); ++part_idx) {
    const SequenceBatch& part = batch[part_idx];
    // Messages name the part only when there are several.
    const std::string where =
        batch.size() == 1 ? std::string() : " (sequence " + std::to_string(part_idx) + ")";
    if (part.sequence == nullptr || part.sequence->owner_ != this) {
      return Err(Status::InvalidArgument("the sequence belongs to a different model" + where));
    }
    for (size_t other = 0; other < part_idx; ++other) {
      if (batch[other].sequence == part.sequence) {
        return Err(Status::InvalidArgument("the same sequence appears twice in a batch" + where));
      }
    }
    const std::span<const int32_t> tokens = part.tokens;
    if (tokens.empty()) return Err(Status::InvalidArgument("no tokens to evaluate" + where));
    for (size_t idx = 0; idx < tokens.size(); ++idx) {
      if (tokens[idx] < 0 || tokens[idx] >= hp.n_vocab) {
        return Err(Status::InvalidArgument(
            "token id " + std::to_string(tokens[idx]) + " at index " + std::to_string(idx) +
            " is outside the vocabulary [0, " + std::to_string(hp.n_vocab) + ")" + where));
      }
    }
    const int64_t n_tokens = static_cast<int64_t>(tokens.size());
    const int64_t pos0 = part.sequence->n_past();
    if (n_tokens > hp.n_ctx - pos0) {
      return Err(Status::InvalidArgument(std::to_string(n_tokens) + " tokens after " +
                                         std::to_string(pos0) + " would exceed the context of " +
                                         std::to_string(hp.n_ctx) + " tokens" + where));
    }
  }

  // Pages for every part, all or nothing.
  for (size_t part_idx = 0; part_idx < batch.size(); ++part_idx) {
    Sequence& sequence = *batch[part_idx].sequence;
    const int64_t pos0 = sequence.n_past();
    Status status = sequence.cache_.PrepareWrite(
        pos0, pos0 + static_cast<int64_t>(batch[part_idx].tokens.size()));
    if (!status.ok()) {
      for (size_t done = 0; done < part_idx; ++done) {
        Sequence& prepared = *batch[done].sequence;
        prepared.cache_.Truncate(prepared.n_past());
      }
      return Err(status);
    }
  }

  // Buffers are sized by the batch; a batch too large for memory is the
  // caller's limit to enforce, but it must fail cleanly, not abort.
  Result<std::vector<float>> logits = Err(Status::Internal("not evaluated"));
  try {
    logits = Evaluate(batch);
  } catch (const std::bad_alloc&) {
    int64_t n_tokens = 0;
    for (const SequenceBatch& part : batch) n_tokens += static_cast<int64_t>(part.tokens.size());
    logits = Err(Status::ResourceExhausted("out of memory evaluating " + std::to_string(n_tokens) +
                                           " tokens"));
  }
  if (!logits) {
    for (const SequenceBatch& part : batch) part.sequence->cache_.Truncate(part.sequence->n_past());
    return logits;
  }
  for (const SequenceBatch& part : batch) {
    Sequence& sequence = *part.sequence;
    sequence.tokens_.insert(sequence.tokens_.end(), part.tokens.begin(), part.tokens.end());
    PublishPages(sequence);
  }
  return logits;
}

void Model::AttendTile(int64_t layer_idx, int64_t kv_head, int64_t tile, int64_t pos0,
                       int64_t n_tokens, const float* q, const KvCache& cache, float* attn) const {
  const ModelHparams& hp = hparams_;
  const int64_t head_dim = hp.head_dim;
  const int64_t head_dim_v = hp.head_dim_v;
  const int64_t heads_per_kv = hp.n_head / hp.n_head_kv;
  const int64_t q_dim = hp.n_head * head_dim;
  const int64_t attn_dim = hp.n_head * head_dim_v;
  const float attn_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
  const kernels::TypeKernels* key_kernels = key_kernels_;
  const kernels::TypeKernels* value_kernels = value_kernels_;

  // The tile's queries: query j of this KV head is token j / heads_per_kv,
  // head kv_head * heads_per_kv + j % heads_per_kv.
  const int64_t first = tile * kernels::kMaxTileCols;
  const int n_queries =
      static_cast<int>(std::min<int64_t>(kernels::kMaxTileCols, n_tokens * heads_per_kv - first));
  int64_t token_of[kernels::kMaxTileCols], head_of[kernels::kMaxTileCols];
  for (int c = 0; c < n_queries; ++c) {
    token_of[c] = (first + c) / heads_per_kv;
    head_of[c] = kv_head * heads_per_kv + (first + c) % heads_per_kv;
  }
  // Positions the last (latest) query sees; earlier ones see fewer.
  const int64_t n_max = pos0 + token_of[n_queries - 1] + 1;

  // Per-thread scratch: prepared queries, scores (= softmax weights), output.
  thread_local std::vector<uint8_t> prepared;
  thread_local std::vector<float> scores;
  thread_local std::vector<float> out;
  thread_local std::vector<float> part;  // one page's share of out
  const int64_t act_bytes = kernels::ActRowBytes(key_kernels->act_format, head_dim);
  prepared.resize(static_cast<size_t>(act_bytes * n_queries));
  scores.resize(static_cast<size_t>(n_max * n_queries));
  out.resize(static_cast<size_t>(head_dim_v * n_queries));
  for (int c = 0; c < n_queries; ++c) {
    key_kernels->prepare_act(q + token_of[c] * q_dim + head_of[c] * head_dim,
                             prepared.data() + c * act_bytes, head_dim);
  }

  // scores[c][pos] = K[pos] . q_c
  const int64_t key_offset = cache.KeyBytes(kv_head * head_dim);
  const int64_t key_row_bytes = cache.layout().key_row_bytes();
  for (int64_t pos = 0; pos < n_max; pos += kernels::kMaxTileRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kernels::kMaxTileRows, n_max - pos));
    // pos is a multiple of the tile rows, and so of nothing that crosses a
    // page (pages hold a multiple of 4 positions).
    key_kernels->dot_tile(head_dim, cache.KeyRow(layer_idx, pos) + key_offset, key_row_bytes, rows,
                          prepared.data(), act_bytes, n_queries, scores.data() + pos, n_max);
  }
  // Scale, mask the positions a query may not see, softmax.
  for (int c = 0; c < n_queries; ++c) {
    float* row = scores.data() + c * n_max;
    const int64_t n_visible = pos0 + token_of[c] + 1;
    for (int64_t pos = 0; pos < n_visible; ++pos) row[pos] *= attn_scale;
    ops::Softmax(row, n_visible);
    std::fill(row + n_visible, row + n_max, 0.0f);
  }
  // out[c][i] = sum_pos V[pos][i] * p_c[pos]: row i of the transposed values
  // against each query's weights, page by page (the first page writes out,
  // later ones add their part).
  const int64_t first_dim = kv_head * head_dim_v;
  const int64_t score_bytes = n_max * static_cast<int64_t>(sizeof(float));
  const int64_t per_page = cache.page_positions();
  const int64_t value_row_bytes = cache.layout().value_row_bytes();
  for (int64_t page_start = 0; page_start < n_max; page_start += per_page) {
    const int64_t page_index = page_start / per_page;
    const int64_t n_in_page = std::min(per_page, n_max - page_start);
    if (page_start != 0) part.resize(out.size());
    float* target = page_start == 0 ? out.data() : part.data();
    for (int64_t dim = 0; dim < head_dim_v; dim += kernels::kMaxTileRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kernels::kMaxTileRows, head_dim_v - dim));
      value_kernels->dot_tile(n_in_page, cache.ValueRow(layer_idx, page_index, first_dim + dim),
                              value_row_bytes, rows,
                              reinterpret_cast<const uint8_t*>(scores.data() + page_start),
                              score_bytes, n_queries, target + dim, head_dim_v);
    }
    if (page_start != 0) {
      for (size_t idx = 0; idx < out.size(); ++idx) out[idx] += part[idx];
    }
  }
  for (int c = 0; c < n_queries; ++c) {
    std::memcpy(attn + token_of[c] * attn_dim + head_of[c] * head_dim_v,
                out.data() + c * head_dim_v, static_cast<size_t>(head_dim_v) * sizeof(float));
  }
}

Result<std::vector<float>> Model::Evaluate(std::span<const SequenceBatch> batch) const {
  const ModelHparams& hp = hparams_;
  ThreadPool* pool = pool_.get();
  const int64_t n_embd = hp.n_embd;
  const int64_t n_ff = hp.n_ff;
  const int64_t head_dim = hp.head_dim;
  const int64_t q_dim = hp.n_head * head_dim;
  const int64_t k_dim = hp.n_head_kv * head_dim;
  const int64_t v_dim = hp.n_head_kv * hp.head_dim_v;
  const int64_t attn_dim = hp.n_head * hp.head_dim_v;
  const int64_t heads_per_kv = hp.n_head / hp.n_head_kv;
  const int64_t half_rot = hp.n_rot / 2;

  // The batch's tokens, part after part: where each part starts in the
  // token rows, and each token's part and position.
  const auto n_parts = static_cast<int64_t>(batch.size());
  std::vector<int64_t> part_first(static_cast<size_t>(n_parts) + 1, 0);  // (n_parts + 1)
  for (int64_t part = 0; part < n_parts; ++part) {
    part_first[part + 1] = part_first[part] + static_cast<int64_t>(batch[part].tokens.size());
  }
  const int64_t n_tokens = part_first[n_parts];
  std::vector<int64_t> token_part(static_cast<size_t>(n_tokens));  // (n_tokens)
  std::vector<int64_t> token_pos(static_cast<size_t>(n_tokens));   // (n_tokens)
  for (int64_t part = 0; part < n_parts; ++part) {
    const int64_t pos0 = batch[part].sequence->n_past();
    for (int64_t t = part_first[part]; t < part_first[part + 1]; ++t) {
      token_part[t] = part;
      token_pos[t] = pos0 + (t - part_first[part]);
    }
  }

  auto sized = [](int64_t rows, int64_t cols) {
    return std::vector<float>(static_cast<size_t>(rows * cols));
  };
  std::vector<float> x = sized(n_tokens, n_embd);           // (n_tokens, n_embd) residual stream
  std::vector<float> xn = sized(n_tokens, n_embd);          // (n_tokens, n_embd) normalized
  std::vector<float> q = sized(n_tokens, q_dim);            // (n_tokens, n_head, head_dim)
  std::vector<float> k = sized(n_tokens, k_dim);            // (n_tokens, n_head_kv, head_dim)
  std::vector<float> v = sized(n_tokens, v_dim);            // (n_tokens, n_head_kv, head_dim_v)
  std::vector<float> attn = sized(n_tokens, attn_dim);      // (n_tokens, n_head, head_dim_v)
  std::vector<float> proj = sized(n_tokens, n_embd);        // (n_tokens, n_embd) block output
  std::vector<float> gate = sized(n_tokens, n_ff);          // (n_tokens, n_ff)
  std::vector<float> up = sized(n_tokens, n_ff);            // (n_tokens, n_ff)
  std::vector<float> rope_cos = sized(n_tokens, half_rot);  // (n_tokens, n_rot / 2)
  std::vector<float> rope_sin = sized(n_tokens, half_rot);  // (n_tokens, n_rot / 2)

  // Per-token work (norms, RoPE, element-wise ops) is split over the pool by
  // tokens; a single token runs on the calling thread.
  auto for_tokens = [&](auto&& fn) {
    pool->ParallelFor(n_tokens, 4, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) fn(t);
    });
  };

  // x = token_embd[tokens]; the rotations of each token's position.
  for (int64_t t = 0; t < n_tokens; ++t) {
    const int32_t token = batch[token_part[t]].tokens[t - part_first[token_part[t]]];
    XNAI_RETURN_IF_ERROR(DequantizeRow(token_embd_.type,
                                       token_embd_.data + token * token_embd_.row_bytes,
                                       x.data() + t * n_embd, n_embd));
  }
  const float* rope_freqs = rope_freqs_.empty() ? nullptr : rope_freqs_.data();
  for_tokens([&](int64_t t) {
    ops::RopeAngles(hp.n_rot, token_pos[t], hp.rope_theta, rope_freqs,
                    rope_cos.data() + t * half_rot, rope_sin.data() + t * half_rot);
  });

  // Attention work items: tiles of queries that share a KV head, within one
  // part (see below); item_part_first[p] is part p's first item.
  std::vector<int64_t> part_tiles(static_cast<size_t>(n_parts));         // tiles per KV head
  std::vector<int64_t> item_first(static_cast<size_t>(n_parts) + 1, 0);  // (n_parts + 1)
  for (int64_t part = 0; part < n_parts; ++part) {
    const int64_t queries_per_kv = (part_first[part + 1] - part_first[part]) * heads_per_kv;
    part_tiles[part] = (queries_per_kv + kernels::kMaxTileCols - 1) / kernels::kMaxTileCols;
    item_first[part + 1] = item_first[part] + hp.n_head_kv * part_tiles[part];
  }
  const int64_t n_items = item_first[n_parts];

  for (const Layer& layer : layers_) {
    const int64_t layer_idx = &layer - layers_.data();

    // --- attention block: x += Wo * Attention(RoPE(Wq xn), RoPE(Wk xn), Wv xn)
    for_tokens([&](int64_t t) {
      ops::RmsNorm(x.data() + t * n_embd, layer.attn_norm.data(), xn.data() + t * n_embd, n_embd,
                   hp.rms_eps);
    });
    const ops::MatMulTarget qkv[] = {
        {&layer.wq, q.data()}, {&layer.wk, k.data()}, {&layer.wv, v.data()}};
    XNAI_RETURN_IF_ERROR(ops::MatMulBatch(qkv, xn.data(), n_tokens, pool));
    for_tokens([&](int64_t t) {
      float* q_t = q.data() + t * q_dim;
      float* k_t = k.data() + t * k_dim;
      float* v_t = v.data() + t * v_dim;
      if (hp.qkv_bias) {
        for (int64_t i = 0; i < q_dim; ++i) q_t[i] += layer.bq[i];
        for (int64_t i = 0; i < k_dim; ++i) k_t[i] += layer.bk[i];
        for (int64_t i = 0; i < v_dim; ++i) v_t[i] += layer.bv[i];
      }
      const float* cos_t = rope_cos.data() + t * half_rot;
      const float* sin_t = rope_sin.data() + t * half_rot;
      for (int64_t head = 0; head < hp.n_head; ++head) {
        float* q_head = q_t + head * head_dim;
        if (hp.qk_norm) {
          ops::RmsNorm(q_head, layer.q_norm.data(), q_head, head_dim, hp.rms_eps);
        }
        ops::RopeApply(q_head, hp.n_rot, hp.rope_style, cos_t, sin_t);
      }
      for (int64_t head = 0; head < hp.n_head_kv; ++head) {
        float* k_head = k_t + head * head_dim;
        if (hp.qk_norm) {
          ops::RmsNorm(k_head, layer.k_norm.data(), k_head, head_dim, hp.rms_eps);
        }
        ops::RopeApply(k_head, hp.n_rot, hp.rope_style, cos_t, sin_t);
      }
      batch[token_part[t]].sequence->cache_.Store(layer_idx, token_pos[t], k_t, v_t);
    });

    // Causal attention within each part: its token t (at pos0 + t) sees
    // positions 0 .. pos0 + t of its own sequence. Queries that share a KV
    // head (the heads of one group at consecutive tokens) go in tiles of up
    // to kMaxTileCols, so each cached key and value is read once per tile:
    // scores = K q (rows of K against the tile's queries), softmax per
    // query, out = V^T p (rows of the transposed values against the tile's
    // weights), both with the cache types' kernels.
    pool->ParallelFor(n_items, 1, [&](int64_t begin, int64_t end) {
      int64_t part = 0;
      for (int64_t item = begin; item < end; ++item) {
        while (item >= item_first[part + 1]) ++part;
        const int64_t local = item - item_first[part];
        const int64_t first_token = part_first[part];
        AttendTile(layer_idx, local / part_tiles[part], local % part_tiles[part],
                   token_pos[first_token], part_first[part + 1] - first_token,
                   q.data() + first_token * q_dim, batch[part].sequence->cache_,
                   attn.data() + first_token * attn_dim);
      }
    });
    XNAI_RETURN_IF_ERROR(ops::MatMul(layer.wo, attn.data(), n_tokens, proj.data(), pool));

    // --- feed-forward block: x += W_down (silu(W_gate xn) * (W_up xn))
    for_tokens([&](int64_t t) {
      float* x_t = x.data() + t * n_embd;
      const float* p_t = proj.data() + t * n_embd;
      for (int64_t i = 0; i < n_embd; ++i) x_t[i] += p_t[i];
      ops::RmsNorm(x_t, layer.ffn_norm.data(), xn.data() + t * n_embd, n_embd, hp.rms_eps);
    });
    const ops::MatMulTarget gate_up[] = {{&layer.w_gate, gate.data()}, {&layer.w_up, up.data()}};
    XNAI_RETURN_IF_ERROR(ops::MatMulBatch(gate_up, xn.data(), n_tokens, pool));
    for_tokens([&](int64_t t) {
      float* g_t = gate.data() + t * n_ff;
      const float* u_t = up.data() + t * n_ff;
      for (int64_t i = 0; i < n_ff; ++i) g_t[i] = ops::Silu(g_t[i]) * u_t[i];
    });
    XNAI_RETURN_IF_ERROR(ops::MatMul(layer.w_down, gate.data(), n_tokens, proj.data(), pool));
    for_tokens([&](int64_t t) {
      float* x_t = x.data() + t * n_embd;
      const float* p_t = proj.data() + t * n_embd;
      for (int64_t i = 0; i < n_embd; ++i) x_t[i] += p_t[i];
    });
  }

  // logits = W_out * RmsNorm(x), for every token of the parts that asked,
  // else the last token of the part.
  std::vector<int64_t> out_rows;  // token rows whose logits are returned, in order
  for (int64_t part = 0; part < n_parts; ++part) {
    const int64_t first = batch[part].all_logits ? part_first[part] : part_first[part + 1] - 1;
    for (int64_t t = first; t < part_first[part + 1]; ++t) out_rows.push_back(t);
  }
  const auto n_out = static_cast<int64_t>(out_rows.size());
  for (int64_t row = 0; row < n_out; ++row) {
    ops::RmsNorm(x.data() + out_rows[row] * n_embd, output_norm_.data(), xn.data() + row * n_embd,
                 n_embd, hp.rms_eps);
  }
  std::vector<float> logits = sized(n_out, hp.n_vocab);  // (n_out, n_vocab)
  XNAI_RETURN_IF_ERROR(ops::MatMul(output_, xn.data(), n_out, logits.data(), pool));
  return logits;
}

Status WriteLogits(const Model& model, std::span<const int32_t> tokens,
                   const std::filesystem::path& path) {
  Sequence sequence = model.NewSequence();
  Result<std::vector<float>> logits = model.Forward(sequence, tokens, /*all_logits=*/true);
  if (!logits) return logits.error();
  static_assert(std::endian::native == std::endian::little,
                "WriteLogits writes the in-memory floats as little-endian");
  return WriteFileAtomic(path, std::string_view(reinterpret_cast<const char*>(logits->data()),
                                                logits->size() * sizeof(float)));
}

}  // namespace xnai::engine
