// xnai embed: pooled sentence embeddings from an encoder (BERT) model, one
// JSON array per text, one line each, in the order the texts were given.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include "cli/common.h"
#include "engine/encoder.h"
#include "engine/tokenizer.h"
#include "gguf/gguf_reader.h"

namespace xnai::cli {
namespace {

int DefaultEmbedThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(std::min(n, 16u));
}

struct EmbedOptions {
  std::string model;
  std::vector<std::string> texts;
  bool normalize = false;
  int threads = DefaultEmbedThreads();
};

// Problems with the caller's text (empty, too long for the model) are runtime
// errors of this command (exit 1), like the other engine commands.
Status AsRuntimeError(const Status& status) {
  if (status.code() != Status::Code::kInvalidArgument) return status;
  return Status::Unprocessable(status.message());
}

// A JSON array of the values, each in the shortest form that reads back as the
// same float (nlohmann would widen them to double and print 17 digits).
std::string FloatArrayJson(const std::vector<float>& values) {
  std::string out = "[";
  char buffer[32];
  for (size_t idx = 0; idx < values.size(); ++idx) {
    if (idx > 0) out += ',';
    if (!std::isfinite(values[idx])) {
      out += "null";  // JSON has no NaN/inf; the engine does not produce them
      continue;
    }
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), values[idx]);
    out.append(buffer, ec == std::errc() ? end : buffer);
  }
  return out + "]";
}

int RunEmbed(const EmbedOptions& options) {
  // Check every text before the (slow) model load so a bad call fails fast.
  for (size_t idx = 0; idx < options.texts.size(); ++idx) {
    if (options.texts[idx].empty()) {
      return Fail(Status::Unprocessable("text " + std::to_string(idx + 1) +
                                        " is empty; there is nothing to embed"));
    }
  }
  if (Status cpu = ActivateCpuPath(); !cpu.ok()) return Fail(cpu);
  auto file = OpenModelFile(options.model);
  if (!file) return Fail(file.error());
  auto tokenizer = engine::Tokenizer::FromGguf(**file);
  if (!tokenizer) return Fail(tokenizer.error());
  auto encoder = engine::Encoder::Load(**file, options.threads);
  if (!encoder) return Fail(encoder.error());

  // Everything is computed before anything is printed, so a failure on a
  // later text leaves no partial output.
  std::vector<std::string> lines;
  lines.reserve(options.texts.size());
  for (size_t idx = 0; idx < options.texts.size(); ++idx) {
    const std::vector<int32_t> tokens =
        (*tokenizer)->Encode(options.texts[idx], /*add_special=*/true, /*parse_special=*/false);
    auto embedding = (*encoder)->Embed(tokens, options.normalize);
    if (!embedding) {
      return Fail(AsRuntimeError(embedding.error()).WithContext("text " + std::to_string(idx + 1)));
    }
    lines.push_back(FloatArrayJson(*embedding));
  }
  for (const std::string& line : lines) std::printf("%s\n", line.c_str());
  return kExitOk;
}

}  // namespace

void AddEmbedCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<EmbedOptions>();
  CLI::App* embed = app.add_subcommand(
      "embed", "Print the embedding of each TEXT (a JSON array per line) with a BERT model");
  embed->add_option("--model,-m", options->model, "GGUF file of an encoder (bert) model")
      ->required();
  embed->add_flag("--normalize", options->normalize, "Scale each embedding to unit length");
  embed->add_option("--threads,-t", options->threads, "Threads")->check(CLI::Range(1, 256));
  embed->add_option("text", options->texts, "Texts (use -- before text starting with '-')")
      ->required();
  embed->callback([&exit_code, options] { exit_code = RunEmbed(*options); });
}

}  // namespace xnai::cli
