// xnai model info MODEL [--json]: what a GGUF file holds, without loading weights.
#include <cstdio>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "engine/model_info.h"
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
  if (n >= 1'000'000'000) std::snprintf(buf, sizeof(buf), "%.2f B", n / 1e9);
  else if (n >= 1'000'000) std::snprintf(buf, sizeof(buf), "%.1f M", n / 1e6);
  else if (n >= 1'000) std::snprintf(buf, sizeof(buf), "%.1f K", n / 1e3);
  else std::snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(n));
  return buf;
}

int RunModelInfo(const std::string& path, bool json) {
  auto file = OpenModelFile(path);
  if (!file) return Fail(file.error());
  engine::ModelInfo info = engine::DescribeModel(**file);
  if (json) {
    nlohmann::json types = nlohmann::json::array();
    for (const auto& t : info.types) {
      types.push_back({{"type", t.type}, {"tensors", t.tensors}, {"parameters", t.elements},
                       {"bytes", t.bytes}, {"supported", t.supported},
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
  std::printf("context        %s\n",
              info.context_length ? (std::to_string(info.context_length) + " tokens").c_str()
                                  : "(not declared)");
  std::printf("vocabulary     %s\n",
              info.vocabulary.empty()
                  ? "(none)"
                  : (info.vocabulary + ", " + std::to_string(info.vocabulary_size) + " tokens")
                        .c_str());
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

}  // namespace

void AddModelCommand(CLI::App& app, int& exit_code) {
  CLI::App* cmd = app.add_subcommand("model", "Inspect GGUF model files");
  cmd->require_subcommand(1);
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  CLI::App* info = cmd->add_subcommand("info", "Architecture, parameters, tensor types, sizes");
  info->add_option("model", *path, "GGUF file")->required();
  info->add_flag("--json", *json, "Print as JSON");
  info->callback([&exit_code, path, json] { exit_code = RunModelInfo(*path, *json); });
}

}  // namespace xnai::cli
