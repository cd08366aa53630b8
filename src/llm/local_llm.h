// The native engine behind the Llm and Embedder interfaces: a GGUF model
// loaded from disk, its tokenizer and chat template, and a Scheduler.
//
// Memory budget: with a budget set, the model's weights (the whole file,
// mapped), the scratch buffers of a full batch and a fixed overhead come off
// it first; what remains caps the KV page pool. A budget too small for the
// weights is an error at load time, never an out-of-memory later.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "engine/chat_template.h"
#include "engine/encoder.h"
#include "engine/json_constraint.h"
#include "engine/model.h"
#include "engine/scheduler.h"
#include "engine/tokenizer.h"
#include "gguf/gguf_reader.h"
#include "llm/llm.h"
#include "obs/metrics.h"

namespace xnai::llm {

struct LocalLlmOptions {
  std::string alias;  // the id; empty: the file name without ".gguf"
  int threads = 2;
  int parallel = 4;        // sequences decoded together
  int max_queue = 64;      // requests waiting beyond those
  int64_t context = 4096;  // positions per sequence (capped by the model's); 0: the model's
  int64_t batch_tokens = 256;
  int64_t memory_budget = 0;  // bytes for weights + KV + scratch; 0: no cap
  engine::TensorType key_cache_type = engine::TensorType::kF16;
  obs::Registry* metrics = nullptr;
};

// What the budget was spent on (bytes).
struct MemoryPlan {
  int64_t budget = 0;  // 0: none
  int64_t weights = 0;
  int64_t scratch = 0;
  int64_t overhead = 0;
  int64_t kv_page_bytes = 0;
  int64_t kv_pages = 0;  // 0: no cap
};

// Bytes fixed outside weights, KV and batch scratch (code, tokenizer,
// allocator slack, HTTP buffers).
constexpr int64_t kFixedOverheadBytes = 96ll << 20;

class LocalLlm : public Llm {
 public:
  // Errors: those of opening the GGUF file and loading the model and
  // tokenizer (naming the path); InvalidArgument when the budget cannot hold
  // the weights plus a minimal KV cache (with the figures).
  static Result<std::unique_ptr<LocalLlm>> Load(const std::filesystem::path& path,
                                                const LocalLlmOptions& options);
  ~LocalLlm() override;

  const std::string& id() const override { return id_; }
  int64_t context_length() const override { return model_->hparams().n_ctx; }
  Result<uint64_t> Generate(GenerateRequest request, EventCallback on_event) override;
  void Cancel(uint64_t id) override { scheduler_->Cancel(id); }
  void Drain() override { scheduler_->Drain(); }

  const MemoryPlan& memory() const { return memory_; }
  engine::Scheduler::Stats stats() const { return scheduler_->stats(); }
  // True when the file had no usable chat template (ChatML is used).
  bool template_fallback() const { return template_fallback_; }
  // The prompt text the chat template renders for `request` (no tokens).
  Result<std::string> RenderPrompt(const GenerateRequest& request) const;

 private:
  LocalLlm() = default;

  std::string id_;
  std::unique_ptr<gguf::GgufFile> file_;
  std::unique_ptr<engine::Model> model_;
  std::unique_ptr<engine::Tokenizer> tokenizer_;
  std::optional<engine::ChatTemplate> template_;
  bool template_fallback_ = false;
  std::string bos_text_, eos_text_;
  // Built on the first JSON-constrained request (tens of MB for a big vocabulary).
  mutable std::once_flag token_index_once_;
  mutable std::shared_ptr<const engine::TokenBytesIndex> token_index_;
  MemoryPlan memory_;
  std::unique_ptr<engine::Scheduler> scheduler_;
};

class LocalEmbedder : public Embedder {
 public:
  static Result<std::unique_ptr<LocalEmbedder>> Load(const std::filesystem::path& path,
                                                     const std::string& alias, int threads);
  const std::string& id() const override { return id_; }
  int64_t dim() const override { return encoder_->dim(); }
  Result<std::vector<std::vector<float>>> Embed(const std::vector<std::string>& texts,
                                                int64_t* tokens_read) override;
  int64_t file_bytes() const { return file_bytes_; }

 private:
  std::string id_;
  std::unique_ptr<gguf::GgufFile> file_;
  std::unique_ptr<engine::Encoder> encoder_;
  std::unique_ptr<engine::Tokenizer> tokenizer_;
  int64_t file_bytes_ = 0;
  std::mutex mutex_;  // one embedding batch at a time (the encoder owns its threads)
};

// "4G", "512M", "1.5GiB", "800000000" -> bytes. InvalidArgument otherwise.
Result<int64_t> ParseByteSize(std::string_view text);
// The default budget: 70% of physical memory (MemTotal).
int64_t DefaultMemoryBudget();

}  // namespace xnai::llm
