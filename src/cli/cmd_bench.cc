// xnai bench engine --model M: the engine's speed on one model file.
//
// Decoders: load time, then r repetitions of one fresh sequence: a prompt of
// p random token ids in one Forward call (last logits only), then n
// generation steps of one token each (greedy argmax fed back). Encoders
// (bert): r repetitions of a batch of texts of random token ids, embedded one
// text at a time. One untimed warm-up pass first touches every weight page
// of the mapping, so the timed runs do not measure page faults.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "engine/cpu.h"
#include "engine/encoder.h"
#include "engine/model.h"
#include "engine/model_info.h"
#include "engine/thread_pool.h"
#include "engine/tokenizer.h"

namespace xnai::cli {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct BenchOptions {
  std::string model;
  int prompt_tokens = 256;  // -p
  int gen_tokens = 64;      // -n
  int threads = 2;          // -t
  int repetitions = 3;      // -r
  int batch = 32;           // encoders: texts per batch
  int text_tokens = 128;    // encoders: tokens per text
  bool json = false;
};

// Median, min and max of the per-repetition rates.
struct Stats {
  double median = 0, min = 0, max = 0;
};

Stats Summarize(std::vector<double> values) {
  Stats stats;
  if (values.empty()) return stats;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  stats.median = n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  stats.min = values.front();
  stats.max = values.back();
  return stats;
}

// Peak resident set size of this process in MiB (the weights' mapped pages
// that were touched count too).
double PeakRssMb() {
  struct rusage usage {};
  if (::getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

int32_t Argmax(const std::vector<float>& logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

std::string TypeSummary(const engine::ModelInfo& info) {
  std::string out;
  char buf[64];
  for (const auto& t : info.types) {
    const double share = info.tensor_bytes ? 100.0 * t.bytes / info.tensor_bytes : 0.0;
    if (share < 0.05) continue;
    std::snprintf(buf, sizeof(buf), "%s%s %.1f%%", out.empty() ? "" : ", ", t.type.c_str(), share);
    out += buf;
  }
  return out;
}

// The caller's input to the engine (ids, lengths) was checked; anything the
// engine still rejects is a runtime error of the benchmark.
int FailRuntime(const Status& status) {
  if (status.code() == Status::Code::kInvalidArgument) {
    return Fail(Status::Unprocessable(status.message()));
  }
  return Fail(status);
}

std::vector<int32_t> RandomIds(std::mt19937& rng, int64_t n, int64_t n_vocab) {
  std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(n_vocab - 1));
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int32_t& id : ids) id = dist(rng);
  return ids;
}

void PrintRow(const char* label, const std::string& value) {
  std::printf("%-16s %s\n", label, value.c_str());
}

// Writes s as `key` (median), `key`_min and `key`_max.
void PutStats(nlohmann::json& out, const std::string& key, const Stats& s) {
  out[key] = s.median;
  out[key + "_min"] = s.min;
  out[key + "_max"] = s.max;
}

// The median, min and max a bench wrote under `key`, `key`_min, `key`_max.
Stats StatsOf(const nlohmann::json& out, const std::string& key) {
  Stats s;
  s.median = out[key].get<double>();
  s.min = out[key + "_min"].get<double>();
  s.max = out[key + "_max"].get<double>();
  return s;
}

std::string Rate(const Stats& s, const char* unit) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), "%.2f %s (min %.2f, max %.2f)", s.median, unit, s.min, s.max);
  return buf;
}

// Bytes one generation step reads: every tensor, except that an untied
// token_embd.weight is only looked up (one row per token).
uint64_t BytesPerToken(const gguf::GgufFile& file) {
  const bool tied = file.FindTensor("output.weight") == nullptr;
  uint64_t bytes = 0;
  for (const gguf::TensorInfo& tensor : file.tensors()) {
    if (!tied && tensor.name == "token_embd.weight") continue;
    bytes += tensor.n_bytes;
  }
  return bytes;
}

// The machine's streaming read bandwidth over the model's own mapped tensor
// data with `threads` threads, each summing a contiguous share (best of
// `repetitions`, GB/s): the ceiling generation is held to, measured in the
// same run so that results compare across machines and noisy neighbours.
double ReadBandwidthGbs(const gguf::GgufFile& file, int threads, int repetitions) {
  const uint8_t* begin = nullptr;
  const uint8_t* end = nullptr;
  for (const gguf::TensorInfo& tensor : file.tensors()) {
    if (tensor.n_bytes == 0) continue;
    if (begin == nullptr || tensor.data < begin) begin = tensor.data;
    if (end == nullptr || tensor.data + tensor.n_bytes > end) end = tensor.data + tensor.n_bytes;
  }
  if (begin == nullptr) return 0;
  const size_t words = static_cast<size_t>(end - begin) / sizeof(uint64_t);
  engine::ThreadPool pool(threads);
  std::atomic<uint64_t> sink{0};
  double best = 0;
  for (int rep = 0; rep < std::max(1, repetitions); ++rep) {
    const auto start = Clock::now();
    pool.Run([&](int index, int n_threads) {
      const size_t share = words / static_cast<size_t>(n_threads);
      const uint8_t* p = begin + static_cast<size_t>(index) * share * sizeof(uint64_t);
      uint64_t acc[4] = {0, 0, 0, 0};
      for (size_t i = 0; i + 4 <= share; i += 4) {
        for (int lane = 0; lane < 4; ++lane) {
          uint64_t word;
          std::memcpy(&word, p + (i + lane) * sizeof(uint64_t), sizeof(word));
          acc[lane] += word;
        }
      }
      sink += acc[0] ^ acc[1] ^ acc[2] ^ acc[3];
    });
    const double seconds = SecondsSince(start);
    best = std::max(best, static_cast<double>(words * sizeof(uint64_t)) / seconds / 1e9);
  }
  return best;
}

int BenchDecoder(const BenchOptions& options, const gguf::GgufFile& file, nlohmann::json& out,
                 Clock::time_point load_start) {
  engine::ModelOptions model_options;
  model_options.n_threads = options.threads;
  auto model = engine::Model::Load(file, model_options);
  if (!model) return Fail(model.error());
  const double load_ms = SecondsSince(load_start) * 1e3;
  const engine::Model& m = **model;
  const int64_t n_ctx = m.hparams().n_ctx;
  if (options.prompt_tokens + options.gen_tokens > n_ctx) {
    return Fail(Status::InvalidArgument(
        "-p + -n = " + std::to_string(options.prompt_tokens + options.gen_tokens) +
        " positions exceed the model's context of " + std::to_string(n_ctx)));
  }
  std::mt19937 rng(1234);
  const std::vector<int32_t> prompt = RandomIds(rng, options.prompt_tokens, m.n_vocab());

  // Warm-up (untimed): a short prompt and one generation step touch every
  // weight once (the output projection covers the whole vocabulary).
  {
    engine::Sequence warm = m.NewSequence();
    const size_t n_warm = std::min<size_t>(prompt.size(), 16);
    auto logits = m.Forward(warm, std::span<const int32_t>(prompt.data(), n_warm), false);
    if (!logits) return FailRuntime(logits.error());
    const int32_t next = Argmax(*logits);
    logits = m.Forward(warm, std::span<const int32_t>(&next, 1), false);
    if (!logits) return FailRuntime(logits.error());
  }

  std::vector<double> prompt_rates, gen_rates;
  nlohmann::json runs = nlohmann::json::array();
  for (int rep = 0; rep < options.repetitions; ++rep) {
    engine::Sequence sequence = m.NewSequence();
    const auto prompt_start = Clock::now();
    auto logits = m.Forward(sequence, prompt, /*all_logits=*/false);
    if (!logits) return FailRuntime(logits.error());
    const double prompt_s = SecondsSince(prompt_start);
    const auto gen_start = Clock::now();
    for (int step = 0; step < options.gen_tokens; ++step) {
      const int32_t next = Argmax(*logits);
      logits = m.Forward(sequence, std::span<const int32_t>(&next, 1), false);
      if (!logits) return FailRuntime(logits.error());
    }
    const double gen_s = SecondsSince(gen_start);
    prompt_rates.push_back(options.prompt_tokens / prompt_s);
    if (options.gen_tokens > 0) gen_rates.push_back(options.gen_tokens / gen_s);
    runs.push_back({{"prompt_ms", prompt_s * 1e3}, {"gen_ms", gen_s * 1e3}});
    if (!options.json) {
      std::fprintf(stderr, "run %d/%d: prompt %.2f tok/s, generation %.2f tok/s\n", rep + 1,
                   options.repetitions, options.prompt_tokens / prompt_s,
                   options.gen_tokens > 0 ? options.gen_tokens / gen_s : 0.0);
    }
  }
  const Stats prompt_stats = Summarize(prompt_rates);
  const Stats gen_stats = Summarize(gen_rates);
  out["kind"] = "decoder";
  out["load_ms"] = load_ms;
  out["p"] = options.prompt_tokens;
  out["n"] = options.gen_tokens;
  out["r"] = options.repetitions;
  PutStats(out, "prompt_tok_s", prompt_stats);
  PutStats(out, "gen_tok_s", gen_stats);
  out["runs"] = runs;
  out["warmup"] = "one untimed sequence of min(p, 16) prompt tokens and 1 generation step";
  // The memory ceiling of generation on this machine, now.
  const uint64_t bytes_per_token = BytesPerToken(file);
  const double read_gb_s = ReadBandwidthGbs(file, options.threads, 3);
  out["bytes_per_token"] = bytes_per_token;
  out["read_gb_s"] = read_gb_s;
  if (read_gb_s > 0 && bytes_per_token > 0) {
    const double limit = read_gb_s * 1e9 / static_cast<double>(bytes_per_token);
    out["gen_limit_tok_s"] = limit;
    out["gen_of_limit"] = gen_stats.median / limit;
  }
  return kExitOk;
}

int BenchEncoder(const BenchOptions& options, const gguf::GgufFile& file, nlohmann::json& out,
                 Clock::time_point load_start) {
  auto encoder = engine::Encoder::Load(file, options.threads);
  if (!encoder) return Fail(encoder.error());
  const double load_ms = SecondsSince(load_start) * 1e3;
  const engine::Encoder& e = **encoder;
  if (options.text_tokens > e.max_tokens()) {
    return Fail(Status::InvalidArgument("--text-tokens " + std::to_string(options.text_tokens) +
                                        " exceeds the encoder's " + std::to_string(e.max_tokens()) +
                                        " positions"));
  }
  // Texts as the tokenizer would bracket them: [CLS] random ids [SEP].
  int32_t cls = -1, sep = -1;
  if (auto tokenizer = engine::Tokenizer::FromGguf(file)) {
    cls = (*tokenizer)->cls_id();
    sep = (*tokenizer)->sep_id();
  }
  std::mt19937 rng(1234);
  std::vector<std::vector<int32_t>> texts;
  for (int idx = 0; idx < options.batch; ++idx) {
    std::vector<int32_t> ids = RandomIds(rng, options.text_tokens, e.hparams().n_vocab);
    if (cls >= 0 && ids.size() >= 2) ids.front() = cls;
    if (sep >= 0 && ids.size() >= 2) ids.back() = sep;
    texts.push_back(std::move(ids));
  }

  // Warm-up (untimed): one text touches every weight.
  if (auto warm = e.Embed(texts.front(), true); !warm) return FailRuntime(warm.error());

  std::vector<double> text_rates;
  nlohmann::json runs = nlohmann::json::array();
  for (int rep = 0; rep < options.repetitions; ++rep) {
    const auto start = Clock::now();
    for (const std::vector<int32_t>& ids : texts) {
      auto embedding = e.Embed(ids, /*normalize=*/true);
      if (!embedding) return FailRuntime(embedding.error());
    }
    const double seconds = SecondsSince(start);
    text_rates.push_back(options.batch / seconds);
    runs.push_back({{"batch_ms", seconds * 1e3}});
    if (!options.json) {
      std::fprintf(stderr, "run %d/%d: %.2f texts/s\n", rep + 1, options.repetitions,
                   options.batch / seconds);
    }
  }
  const Stats text_stats = Summarize(text_rates);
  out["kind"] = "encoder";
  out["load_ms"] = load_ms;
  out["batch"] = options.batch;
  out["text_tokens"] = options.text_tokens;
  out["r"] = options.repetitions;
  PutStats(out, "texts_per_s", text_stats);
  out["tokens_per_s"] = text_stats.median * options.text_tokens;
  out["runs"] = runs;
  out["warmup"] = "one untimed text";
  return kExitOk;
}

int RunBenchEngine(const BenchOptions& options) {
  if (Status cpu = ActivateCpuPath(); !cpu.ok()) return Fail(cpu);

  const auto load_start = Clock::now();
  auto file = OpenModelFile(options.model);
  if (!file) return Fail(file.error());
  const engine::ModelInfo info = engine::DescribeModel(**file);

  nlohmann::json out = {
      {"model", std::filesystem::path(options.model).filename().string()},
      {"path", options.model},
      {"name", info.name},
      {"architecture", info.architecture},
      {"parameters", info.parameters},
      {"file_mb", static_cast<double>(info.file_bytes) / (1 << 20)},
      {"types", TypeSummary(info)},
      {"cpu_path", std::string(engine::CpuPathName(engine::ActiveCpuPath()))},
      {"threads", options.threads},
  };
  int code = info.architecture == "bert" ? BenchEncoder(options, **file, out, load_start)
                                         : BenchDecoder(options, **file, out, load_start);
  if (code != kExitOk) return code;
  out["peak_rss_mb"] = PeakRssMb();

  if (options.json) {
    std::printf("%s\n", out.dump().c_str());
    return kExitOk;
  }
  char buf[160];
  PrintRow("model", out["model"].get<std::string>() + " (" + info.architecture + ", " +
                        std::to_string(info.parameters / 1000000) + " M parameters)");
  PrintRow("types", out["types"].get<std::string>());
  std::snprintf(buf, sizeof(buf), "%s, %d thread%s", out["cpu_path"].get<std::string>().c_str(),
                options.threads, options.threads == 1 ? "" : "s");
  PrintRow("cpu path", buf);
  std::snprintf(buf, sizeof(buf), "%.1f ms", out["load_ms"].get<double>());
  PrintRow("load", buf);
  if (out["kind"] == "decoder") {
    std::snprintf(buf, sizeof(buf), "p=%d, n=%d, r=%d (after 1 untimed warm-up)",
                  options.prompt_tokens, options.gen_tokens, options.repetitions);
    PrintRow("runs", buf);
    PrintRow("prompt", Rate(StatsOf(out, "prompt_tok_s"), "tok/s"));
    PrintRow("generation", Rate(StatsOf(out, "gen_tok_s"), "tok/s"));
    if (out.contains("gen_limit_tok_s")) {
      std::snprintf(buf, sizeof(buf),
                    "%.1f GB/s read -> at most %.1f tok/s; generation reaches %.0f%%",
                    out["read_gb_s"].get<double>(), out["gen_limit_tok_s"].get<double>(),
                    100 * out["gen_of_limit"].get<double>());
      PrintRow("memory bound", buf);
    }
  } else {
    std::snprintf(buf, sizeof(buf), "%d texts of %d tokens, r=%d (after 1 untimed warm-up)",
                  options.batch, options.text_tokens, options.repetitions);
    PrintRow("runs", buf);
    PrintRow("embedding", Rate(StatsOf(out, "texts_per_s"), "texts/s"));
    std::snprintf(buf, sizeof(buf), "%.1f tok/s", out["tokens_per_s"].get<double>());
    PrintRow("tokens", buf);
  }
  std::snprintf(buf, sizeof(buf), "%.1f MiB", out["peak_rss_mb"].get<double>());
  PrintRow("peak RSS", buf);
  return kExitOk;
}

}  // namespace

void AddBenchCommand(CLI::App& app, int& exit_code) {
  CLI::App* bench = app.add_subcommand("bench", "Measure the speed of xnai's parts");
  bench->require_subcommand(1);
  auto options = std::make_shared<BenchOptions>();
  CLI::App* engine_cmd = bench->add_subcommand(
      "engine", "Prompt and generation speed of a decoder, or embedding speed of an encoder");
  engine_cmd->add_option("--model,-m", options->model, "GGUF model")->required();
  engine_cmd->add_option("-p", options->prompt_tokens, "Prompt tokens (default 256)")
      ->check(CLI::Range(1, 1 << 20));
  engine_cmd->add_option("-n", options->gen_tokens, "Generated tokens (default 64)")
      ->check(CLI::Range(0, 1 << 20));
  engine_cmd->add_option("--threads,-t", options->threads, "Threads (default 2)")
      ->check(CLI::Range(1, 256));
  engine_cmd->add_option("-r", options->repetitions, "Timed repetitions (default 3)")
      ->check(CLI::Range(1, 1000));
  engine_cmd->add_option("--batch", options->batch, "Encoders: texts per batch (default 32)")
      ->check(CLI::Range(1, 100000));
  engine_cmd
      ->add_option("--text-tokens", options->text_tokens, "Encoders: tokens per text (default 128)")
      ->check(CLI::Range(1, 1 << 20));
  engine_cmd->add_flag("--json", options->json, "Print one JSON object");
  engine_cmd->callback([&exit_code, options] { exit_code = RunBenchEngine(*options); });
}

}  // namespace xnai::cli
