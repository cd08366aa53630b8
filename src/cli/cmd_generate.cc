// xnai logits / generate: the decoder forward pass on the command line.
#include <chrono>
#include <cstdio>
#include <thread>

#include <CLI/CLI.hpp>

#include "cli/common.h"
#include "engine/model.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"

namespace xnai::cli {
namespace {

int DefaultThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(std::min(n, 16u));
}

// Errors from the engine about the caller's input (bad ids, empty or too long
// prompt) are runtime errors of this command (exit 1), as the engine issue asks.
int FailRuntime(const Status& status) {
  if (status.code() == Status::Code::kInvalidArgument) {
    return Fail(Status::Unprocessable(status.message()));
  }
  return Fail(status);
}

int RunLogits(const std::string& model_path, const std::string& tokens_text, const std::string& out,
              int threads, const std::string& kv_cache) {
  auto ids = ParseTokenIds(tokens_text);
  if (!ids) return Fail(ids.error());
  if (Status cpu = ActivateCpuPath(); !cpu.ok()) return Fail(cpu);
  auto file = OpenModelFile(model_path);
  if (!file) return Fail(file.error());
  engine::ModelOptions options;
  options.n_threads = threads;
  ApplyKvCacheChoice(kv_cache, options);
  auto model = engine::Model::Load(**file, options);
  if (!model) return Fail(model.error());
  Status written = engine::WriteLogits(**model, *ids, out);
  if (!written.ok()) return FailRuntime(written);
  return kExitOk;
}

struct GenerateOptions {
  std::string model;
  std::string prompt;
  int n_predict = 64;
  int threads = DefaultThreads();
  std::string kv_cache = "f16";
  engine::SamplingParams sampling;
  bool seed_given = false;
};

int RunGenerate(GenerateOptions options) {
  if (options.n_predict < 0) return Fail(Status::InvalidArgument("-n must be >= 0"));
  if (Status cpu = ActivateCpuPath(); !cpu.ok()) return Fail(cpu);
  auto file = OpenModelFile(options.model);
  if (!file) return Fail(file.error());
  auto tokenizer = engine::Tokenizer::FromGguf(**file);
  if (!tokenizer) return Fail(tokenizer.error());
  engine::ModelOptions model_options;
  model_options.n_threads = options.threads;
  ApplyKvCacheChoice(options.kv_cache, model_options);
  auto model = engine::Model::Load(**file, model_options);
  if (!model) return Fail(model.error());

  std::vector<int32_t> tokens = (*tokenizer)
                                    ->Encode(options.prompt, /*add_special=*/true,
                                             /*parse_special=*/true);
  if (tokens.empty()) return Fail(Status::Unprocessable("the prompt is empty"));
  const int64_t n_ctx = (*model)->hparams().n_ctx;
  if (static_cast<int64_t>(tokens.size()) > n_ctx) {
    return Fail(Status::Unprocessable("the prompt is " + std::to_string(tokens.size()) +
                                      " tokens, longer than the context of " +
                                      std::to_string(n_ctx)));
  }
  if (!options.seed_given) options.sampling.seed = std::random_device{}();
  engine::Sampler sampler(options.sampling);
  engine::Sequence sequence = (*model)->NewSequence();

  using Clock = std::chrono::steady_clock;
  auto prompt_start = Clock::now();
  auto logits = (*model)->Forward(sequence, tokens, /*all_logits=*/false);
  if (!logits) return FailRuntime(logits.error());
  double prompt_seconds = std::chrono::duration<double>(Clock::now() - prompt_start).count();
  const size_t n_prompt = tokens.size();

  // Streams UTF-8 safely: a character split across tokens is printed whole.
  std::string pending;
  auto gen_start = Clock::now();
  int generated = 0;
  for (; generated < options.n_predict; ++generated) {
    int32_t next = sampler.Sample(*logits, tokens);
    if (next == (*tokenizer)->eos_id() || (*tokenizer)->IsControl(next)) break;
    tokens.push_back(next);
    pending += (*tokenizer)->TokenPiece(next);
    size_t ready = engine::CompleteUtf8Prefix(pending);
    std::fwrite(pending.data(), 1, ready, stdout);
    std::fflush(stdout);
    pending.erase(0, ready);
    if (static_cast<int64_t>(tokens.size()) >= n_ctx) {
      ++generated;
      std::fprintf(stderr, "\nxnai: stopped at the context limit (%lld tokens)\n",
                   static_cast<long long>(n_ctx));
      break;
    }
    if (generated + 1 < options.n_predict) {
      logits = (*model)->Forward(sequence, std::span<const int32_t>(&next, 1), false);
      if (!logits) return FailRuntime(logits.error());
    }
  }
  std::fwrite(pending.data(), 1, pending.size(), stdout);
  std::fputc('\n', stdout);
  double gen_seconds = std::chrono::duration<double>(Clock::now() - gen_start).count();
  std::fprintf(stderr,
               "prompt: %zu tokens, %.1f tok/s; generation: %d tokens, %.1f tok/s (%d threads)\n",
               n_prompt, prompt_seconds > 0 ? n_prompt / prompt_seconds : 0.0, generated,
               gen_seconds > 0 ? generated / gen_seconds : 0.0, options.threads);
  return kExitOk;
}

}  // namespace

void AddGenerateCommands(CLI::App& app, int& exit_code) {
  struct LogitsOptions {
    std::string model, tokens, out;
    int threads = DefaultThreads();
    std::string kv_cache = "f16";
  };
  auto logits = std::make_shared<LogitsOptions>();
  CLI::App* logits_cmd = app.add_subcommand(
      "logits", "Write the logits after each position of one sequence (float32 LE [n][n_vocab])");
  logits_cmd->add_option("--model,-m", logits->model, "GGUF model")->required();
  logits_cmd->add_option("--tokens", logits->tokens, "Comma-separated token ids")->required();
  logits_cmd->add_option("--out,-o", logits->out, "Output file")->required();
  logits_cmd->add_option("--threads,-t", logits->threads, "Threads")->check(CLI::Range(1, 256));
  logits_cmd->add_option("--kv-cache", logits->kv_cache, kKvCacheHelp)
      ->check(CLI::IsMember(kKvCacheChoices));
  logits_cmd->callback([&exit_code, logits] {
    exit_code =
        RunLogits(logits->model, logits->tokens, logits->out, logits->threads, logits->kv_cache);
  });

  auto gen = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Continue a prompt with a local GGUF model");
  cmd->add_option("--model,-m", gen->model, "GGUF model")->required();
  cmd->add_option("--prompt,-p", gen->prompt, "Prompt text")->required();
  cmd->add_option("-n", gen->n_predict, "Tokens to generate (default 64)");
  cmd->add_option("--threads,-t", gen->threads, "Threads")->check(CLI::Range(1, 256));
  cmd->add_option("--kv-cache", gen->kv_cache, kKvCacheHelp)->check(CLI::IsMember(kKvCacheChoices));
  cmd->add_option("--temp", gen->sampling.temperature, "Temperature; 0 = greedy (default 0.8)");
  cmd->add_option("--top-k", gen->sampling.top_k, "Top-k, 0 = off (default 40)");
  cmd->add_option("--top-p", gen->sampling.top_p, "Top-p, 1 = off (default 0.95)");
  cmd->add_option("--min-p", gen->sampling.min_p, "Min-p, 0 = off (default 0.05)");
  cmd->add_option("--repeat-penalty", gen->sampling.repeat_penalty, "1 = off (default 1)");
  cmd->add_option("--frequency-penalty", gen->sampling.frequency_penalty, "default 0");
  cmd->add_option("--presence-penalty", gen->sampling.presence_penalty, "default 0");
  cmd->add_option("--seed", gen->sampling.seed, "Seed for reproducible sampling");
  cmd->callback([&exit_code, gen, cmd] {
    GenerateOptions options = *gen;
    options.seed_given = cmd->count("--seed") > 0;
    exit_code = RunGenerate(options);
  });
}

}  // namespace xnai::cli
