#include "llm/local_llm.h"

#include <unistd.h>

#include <cctype>
#include <cmath>
#include <fstream>
#include <limits>

#include "base/log.h"

namespace xnai::llm {

namespace {

// ChatML, for models whose file carries no usable template.
constexpr const char* kChatMlTemplate =
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

std::string IdFromPath(const std::filesystem::path& path, const std::string& alias) {
  if (!alias.empty()) return alias;
  std::string name = path.filename().string();
  const std::string suffix = ".gguf";
  if (name.size() > suffix.size() &&
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
    name.resize(name.size() - suffix.size());
  }
  return name;
}

std::string MiB(int64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

// The scheduler's view of a JSON constraint.
class JsonTokenConstraint : public engine::TokenConstraint {
 public:
  JsonTokenConstraint(engine::JsonConstraint constraint,
                      std::shared_ptr<const engine::TokenBytesIndex> index,
                      const engine::Tokenizer& tokenizer)
      : constraint_(std::move(constraint)), index_(std::move(index)), tokenizer_(tokenizer) {}

  void Mask(std::span<float> logits) override {
    constraint_.AllowedTokens(*index_, allowed_);
    const size_t n = std::min(logits.size(), allowed_.size());
    for (size_t id = 0; id < n; ++id) {
      if (!allowed_[id]) logits[id] = -std::numeric_limits<float>::infinity();
    }
    for (size_t id = n; id < logits.size(); ++id) {
      logits[id] = -std::numeric_limits<float>::infinity();
    }
  }
  void Accept(int32_t token) override { constraint_.Advance(tokenizer_.TokenPiece(token)); }
  bool Complete() const override { return constraint_.IsComplete(); }

 private:
  engine::JsonConstraint constraint_;
  std::shared_ptr<const engine::TokenBytesIndex> index_;
  const engine::Tokenizer& tokenizer_;
  std::vector<uint8_t> allowed_;
};

}  // namespace

Result<int64_t> ParseByteSize(std::string_view text) {
  const std::string original(text);
  auto bad = [&] {
    return Err(Status::InvalidArgument("'" + original +
                                       "' is not a size: use bytes or a number with K, M, G or T "
                                       "(e.g. 6G, 512M)"));
  };
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  size_t digits = 0;
  while (digits < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[digits])) || text[digits] == '.')) {
    ++digits;
  }
  if (digits == 0) return bad();
  double value = 0;
  try {
    value = std::stod(std::string(text.substr(0, digits)));
  } catch (...) {
    return bad();
  }
  std::string unit(text.substr(digits));
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (!unit.empty() && unit.back() == 'B') unit.pop_back();
  if (unit.size() == 2 && unit[1] == 'I') unit.pop_back();
  double scale = 1;
  if (unit == "K") {
    scale = 1024.0;
  } else if (unit == "M") {
    scale = 1024.0 * 1024;
  } else if (unit == "G") {
    scale = 1024.0 * 1024 * 1024;
  } else if (unit == "T") {
    scale = 1024.0 * 1024 * 1024 * 1024;
  } else if (!unit.empty()) {
    return bad();
  }
  const double bytes = value * scale;
  if (!(bytes >= 1) || bytes > 9e18) return bad();
  return static_cast<int64_t>(bytes);
}

int64_t DefaultMemoryBudget() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return 0;
  return static_cast<int64_t>(static_cast<double>(pages) * static_cast<double>(page_size) * 0.7);
}

Result<std::unique_ptr<LocalLlm>> LocalLlm::Load(const std::filesystem::path& path,
                                                 const LocalLlmOptions& options) {
  std::unique_ptr<LocalLlm> llm(new LocalLlm());
  llm->id_ = IdFromPath(path, options.alias);
  auto file = gguf::OpenGguf(path);
  if (!file) return Err(file.error().WithContext(path.string()));
  llm->file_ = std::move(*file);

  engine::ModelOptions model_options;
  model_options.n_threads = std::max(1, options.threads);
  model_options.max_context = options.context;
  model_options.key_cache_type = options.key_cache_type;
  auto model = engine::Model::Load(*llm->file_, model_options);
  if (!model) return Err(model.error().WithContext(path.string()));
  llm->model_ = std::move(*model);
  auto tokenizer = engine::Tokenizer::FromGguf(*llm->file_);
  if (!tokenizer) return Err(tokenizer.error().WithContext(path.string()));
  llm->tokenizer_ = std::move(*tokenizer);
  const engine::Tokenizer& tok = *llm->tokenizer_;
  if (tok.bos_id() >= 0) llm->bos_text_ = std::string(tok.TokenText(tok.bos_id()));
  if (tok.eos_id() >= 0) llm->eos_text_ = std::string(tok.TokenText(tok.eos_id()));

  // The chat template: the file's, else ChatML.
  if (const gguf::MetadataValue* source = llm->file_->FindMetadata("tokenizer.chat_template")) {
    Result<std::string_view> text = source->AsString();
    if (text) {
      auto parsed = engine::ChatTemplate::Parse(*text);
      if (parsed) {
        llm->template_ = std::move(*parsed);
      } else {
        log::Warn("llm.template_unusable",
                  {{"model", llm->id_}, {"error", parsed.error().ToString()}});
      }
    }
  }
  if (!llm->template_) {
    llm->template_fallback_ = true;
    llm->template_ = engine::ChatTemplate::Parse(kChatMlTemplate).value();
    log::Warn("llm.template_fallback",
              {{"model", llm->id_}, {"reason", "no usable tokenizer.chat_template; using ChatML"}});
  }

  // Memory: weights + scratch + overhead first, the rest for KV pages.
  const engine::ModelHparams& hp = llm->model_->hparams();
  MemoryPlan& plan = llm->memory_;
  plan.budget = options.memory_budget;
  plan.weights = static_cast<int64_t>(llm->file_->file_size());
  const int64_t batch = std::max<int64_t>(options.batch_tokens, options.parallel);
  // Activations of a full batch (x, xn, q, k, v, attention, projections,
  // gate/up, RoPE tables) and the logits rows sampled per step.
  const int64_t per_token = hp.n_embd * 3 + hp.n_head * hp.head_dim * 2 +
                            hp.n_head_kv * (hp.head_dim + hp.head_dim_v) + hp.n_ff * 2 + hp.n_rot;
  plan.scratch = (batch * per_token + 2 * options.parallel * hp.n_vocab) * 4;
  plan.overhead = kFixedOverheadBytes;
  plan.kv_page_bytes = llm->model_->kv_pool().page_bytes();
  if (plan.budget > 0) {
    const int64_t left = plan.budget - plan.weights - plan.scratch - plan.overhead;
    const int64_t per_page = llm->model_->kv_pool().layout().page_positions;
    // At least one sequence of a few pages must fit.
    const int64_t min_pages = 2;
    if (left < min_pages * plan.kv_page_bytes) {
      return Err(Status::InvalidArgument(
          "the memory budget of " + MiB(plan.budget) + " is too small for " + llm->id_ +
          ": weights " + MiB(plan.weights) + " + batch scratch " + MiB(plan.scratch) +
          " + overhead " + MiB(plan.overhead) + " + a minimal KV cache " +
          MiB(min_pages * plan.kv_page_bytes) + "; raise --memory-budget"));
    }
    plan.kv_pages = left / plan.kv_page_bytes;
    llm->model_->kv_pool().SetMaxPages(plan.kv_pages);
    log::Info("llm.memory_plan", {{"model", llm->id_},
                                  {"budget_mib", plan.budget >> 20},
                                  {"weights_mib", plan.weights >> 20},
                                  {"scratch_mib", plan.scratch >> 20},
                                  {"kv_pages", plan.kv_pages},
                                  {"kv_tokens", plan.kv_pages * per_page},
                                  {"kv_page_kib", plan.kv_page_bytes >> 10}});
  }

  engine::SchedulerOptions scheduler_options;
  scheduler_options.max_parallel = std::max(1, options.parallel);
  scheduler_options.max_queue = std::max(0, options.max_queue);
  scheduler_options.max_batch_tokens = std::max<int64_t>(16, options.batch_tokens);
  llm->scheduler_ = std::make_unique<engine::Scheduler>(*llm->model_, *llm->tokenizer_,
                                                        scheduler_options, options.metrics);
  return llm;
}

LocalLlm::~LocalLlm() {
  scheduler_.reset();  // before the model it uses
}

Result<std::string> LocalLlm::RenderPrompt(const GenerateRequest& request) const {
  nlohmann::ordered_json context = nlohmann::ordered_json::object();
  // As Hugging Face's apply_chat_template passes them: tools and documents
  // always defined, null when absent.
  context["messages"] = request.messages;
  context["tools"] = request.tools;
  context["documents"] = nullptr;
  context["add_generation_prompt"] = true;
  context["bos_token"] = bos_text_;
  context["eos_token"] = eos_text_;
  for (auto it = request.template_kwargs.begin(); it != request.template_kwargs.end(); ++it) {
    context[it.key()] = it.value();
  }
  auto rendered = template_->Render(context);
  if (!rendered) {
    // raise_exception in the template: the user's message, as a 400.
    if (rendered.error().code() == Status::Code::kFailedPrecondition) {
      return Err(Status::InvalidArgument(rendered.error().message()));
    }
    return Err(Status::InvalidArgument("the chat template failed: " + rendered.error().message()));
  }
  return rendered;
}

Result<uint64_t> LocalLlm::Generate(GenerateRequest request, EventCallback on_event) {
  std::string text;
  if (request.chat) {
    XNAI_ASSIGN_OR_RETURN(text, RenderPrompt(request));
  } else {
    text = request.prompt;
  }
  // The template usually writes BOS itself; add it only when it did not.
  const bool has_bos = !bos_text_.empty() && text.rfind(bos_text_, 0) == 0;
  engine::GenerationRequest generation;
  generation.prompt = tokenizer_->Encode(text, /*add_special=*/!has_bos, /*parse_special=*/true);
  generation.sampling = request.sampling;
  generation.max_tokens = request.max_tokens;
  generation.stop = std::move(request.stop);
  generation.top_logprobs = request.top_logprobs;
  if (request.format != OutputFormat::kText) {
    Result<engine::JsonConstraint> constraint =
        request.format == OutputFormat::kJsonObject
            ? engine::JsonConstraint::Create(static_cast<const nlohmann::json*>(nullptr))
            : engine::JsonConstraint::Create(request.schema);
    if (!constraint) return Err(constraint.error());
    std::call_once(token_index_once_, [this] {
      token_index_ = std::make_shared<const engine::TokenBytesIndex>(
          engine::TokenBytesIndex::FromTokenizer(*tokenizer_));
    });
    generation.constraint =
        std::make_unique<JsonTokenConstraint>(std::move(*constraint), token_index_, *tokenizer_);
  }
  generation.on_event = std::move(on_event);
  return scheduler_->Submit(std::move(generation));
}

Result<std::unique_ptr<LocalEmbedder>> LocalEmbedder::Load(const std::filesystem::path& path,
                                                           const std::string& alias, int threads) {
  std::unique_ptr<LocalEmbedder> embedder(new LocalEmbedder());
  embedder->id_ = IdFromPath(path, alias);
  auto file = gguf::OpenGguf(path);
  if (!file) return Err(file.error().WithContext(path.string()));
  embedder->file_ = std::move(*file);
  embedder->file_bytes_ = static_cast<int64_t>(embedder->file_->file_size());
  auto encoder = engine::Encoder::Load(*embedder->file_, std::max(1, threads));
  if (!encoder) return Err(encoder.error().WithContext(path.string()));
  embedder->encoder_ = std::move(*encoder);
  auto tokenizer = engine::Tokenizer::FromGguf(*embedder->file_);
  if (!tokenizer) return Err(tokenizer.error().WithContext(path.string()));
  embedder->tokenizer_ = std::move(*tokenizer);
  return embedder;
}

Result<std::vector<std::vector<float>>> LocalEmbedder::Embed(const std::vector<std::string>& texts,
                                                             int64_t* tokens_read) {
  std::vector<std::vector<int32_t>> tokenized;
  int64_t total = 0;
  for (size_t idx = 0; idx < texts.size(); ++idx) {
    if (texts[idx].empty()) {
      return Err(Status::InvalidArgument("input " + std::to_string(idx) + " is empty"));
    }
    tokenized.push_back(tokenizer_->Encode(texts[idx], /*add_special=*/true, false));
    const auto n = static_cast<int64_t>(tokenized.back().size());
    if (n > encoder_->max_tokens()) {
      return Err(Status::InvalidArgument(
          "input " + std::to_string(idx) + " has " + std::to_string(n) +
          " tokens; the embedding model takes at most " + std::to_string(encoder_->max_tokens())));
    }
    total += n;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::vector<float>> out;
  for (const auto& tokens : tokenized) {
    auto vector = encoder_->Embed(tokens, /*normalize=*/true);
    if (!vector) return Err(vector.error());
    out.push_back(std::move(*vector));
  }
  if (tokens_read != nullptr) *tokens_read = total;
  return out;
}

}  // namespace xnai::llm
