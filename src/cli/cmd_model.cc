// xnai model info MODEL [--json]: what a GGUF file holds, without loading weights.
// xnai model synth --preset NAME --type TYPE --out FILE [--seed N]: a
// random-weight model of a real shape, for benchmarks (engine/synth.h).
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "engine/model_info.h"
#include "engine/synth.h"
#include "gguf/gguf_reader.h"

namespace xnai::cli {
namespace {

std::string Mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

std::string Count(int64_t n) {
  char buf[32];
  if (n >= 1'000'000'000)
    std::snprintf(buf, sizeof(buf), "%.2f B", n / 1e9);
  else if (n >= 1'000'000)
    std::snprintf(buf, sizeof(buf), "%.1f M", n / 1e6);
  else if (n >= 1'000)
    std::snprintf(buf, sizeof(buf), "%.1f K", n / 1e3);
  else
    std::snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(n));
  return buf;
}

int RunModelInfo(const std::string& path, bool json) {
  auto file = OpenModelFile(path);
  if (!file) return Fail(file.error());
  engine::ModelInfo info = engine::DescribeModel(**file);
  if (json) {
    nlohmann::json types = nlohmann::json::array();
    for (const auto& t : info.types) {
      types.push_back({{"type", t.type},
                       {"tensors", t.tensors},
                       {"parameters", t.elements},
                       {"bytes", t.bytes},
                       {"supported", t.supported},
                       {"share", info.tensor_bytes ? double(t.bytes) / info.tensor_bytes : 0.0}});
    }
    nlohmann::json out = {{"path", path},
                          {"name", info.name},
                          {"architecture", info.architecture},
                          {"parameters", info.parameters},
                          {"tensor_types", types},
                          {"context_length", info.context_length},
                          {"vocabulary", info.vocabulary},
                          {"vocabulary_size", info.vocabulary_size},
                          {"chat_template", info.has_chat_template},
                          {"gguf_version", info.gguf_version},
                          {"file_bytes", info.file_bytes},
                          {"mapped_bytes", info.file_bytes},
                          {"tensor_bytes", info.tensor_bytes}};
    std::printf("%s\n", out.dump(2).c_str());
    return kExitOk;
  }
  std::printf("model          %s\n", info.name.empty() ? "(unnamed)" : info.name.c_str());
  std::printf("architecture   %s\n",
              info.architecture.empty() ? "(none: vocabulary only)" : info.architecture.c_str());
  std::printf("parameters     %s\n", Count(info.parameters).c_str());
  std::printf("context        %s\n", info.context_length
                                         ? (std::to_string(info.context_length) + " tokens").c_str()
                                         : "(not declared)");
  std::printf(
      "vocabulary     %s\n",
      info.vocabulary.empty()
          ? "(none)"
          : (info.vocabulary + ", " + std::to_string(info.vocabulary_size) + " tokens").c_str());
  std::printf("chat template  %s\n", info.has_chat_template ? "yes" : "no");
  std::printf("file           %s (GGUF v%u), mapped read-only: %s, tensor data %s\n",
              Mib(info.file_bytes).c_str(), info.gguf_version, Mib(info.file_bytes).c_str(),
              Mib(info.tensor_bytes).c_str());
  if (!info.types.empty()) std::printf("tensor types\n");
  for (const auto& t : info.types) {
    double share = info.tensor_bytes ? 100.0 * t.bytes / info.tensor_bytes : 0.0;
    std::printf("  %-6s %5lld tensors %10s params %10s  %5.1f%%%s\n", t.type.c_str(),
                static_cast<long long>(t.tensors), Count(t.elements).c_str(), Mib(t.bytes).c_str(),
                share, t.supported ? "" : "  (not supported yet)");
  }
  return kExitOk;
}

struct SynthArgs {
  std::string preset;
  std::string type;
  std::string out;
  uint64_t seed = 42;
};

int RunModelSynth(const SynthArgs& args) {
  std::optional<engine::SynthShape> shape = engine::FindSynthPreset(args.preset);
  if (!shape) {
    return Fail(Status::InvalidArgument("unknown preset '" + args.preset +
                                        "' (presets: " + engine::SynthPresetNames() + ")"));
  }
  std::optional<engine::SynthType> type = engine::ParseSynthType(args.type);
  if (!type) {
    return Fail(Status::InvalidArgument("unknown type '" + args.type +
                                        "' (types: " + engine::SynthTypeNames() + ")"));
  }
  engine::SynthOptions options;
  options.shape = *shape;
  options.type = *type;
  options.seed = args.seed;
  // Progress only for a person watching: a percentage on stderr, rewritten in
  // place, when stderr is a terminal.
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  int last_percent = -1;
  if (tty) {
    options.progress = [&](uint64_t done, uint64_t total) {
      const int percent = total > 0 ? static_cast<int>(100 * done / total) : 100;
      if (percent == last_percent) return;
      last_percent = percent;
      std::fprintf(stderr, "\rxnai: writing %s %s: %3d%% of %s", args.preset.c_str(),
                   std::string(engine::SynthTypeName(*type)).c_str(), percent, Mib(total).c_str());
      std::fflush(stderr);
    };
  }
  const auto start = std::chrono::steady_clock::now();
  auto result = engine::WriteSynthModel(options, args.out);
  if (tty && last_percent >= 0) std::fprintf(stderr, "\n");
  if (!result) {
    Status status = result.error();
    // A path that cannot be written is a runtime error (exit 1), not a usage error.
    if (status.code() == Status::Code::kInvalidArgument) {
      status = Status::IOError(status.message());
    }
    return Fail(status);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("wrote %s: %s %s, %s parameters, %lld tensors, %s (%.1f s)\n", args.out.c_str(),
              args.preset.c_str(), std::string(engine::SynthTypeName(*type)).c_str(),
              Count(result->parameters).c_str(), static_cast<long long>(result->n_tensors),
              Mib(result->file_bytes).c_str(), seconds);
  return kExitOk;
}

}  // namespace

void AddModelCommand(CLI::App& app, int& exit_code) {
  CLI::App* cmd = app.add_subcommand("model", "Inspect and synthesize GGUF model files");
  cmd->require_subcommand(1);
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  CLI::App* info = cmd->add_subcommand("info", "Architecture, parameters, tensor types, sizes");
  info->add_option("model", *path, "GGUF file")->required();
  info->add_flag("--json", *json, "Print as JSON");
  info->callback([&exit_code, path, json] { exit_code = RunModelInfo(*path, *json); });

  auto synth_args = std::make_shared<SynthArgs>();
  CLI::App* synth =
      cmd->add_subcommand("synth", "Write a random-weight model of a real shape, for benchmarks");
  synth->add_option("--preset", synth_args->preset, "Shape: " + engine::SynthPresetNames())
      ->required();
  synth->add_option("--type", synth_args->type, "Weight type: " + engine::SynthTypeNames())
      ->required();
  synth->add_option("--out,-o", synth_args->out, "Output GGUF file")->required();
  synth->add_option("--seed", synth_args->seed, "Seed of the random weights (default 42)");
  synth->callback([&exit_code, synth_args] { exit_code = RunModelSynth(*synth_args); });
}

}  // namespace xnai::cli
