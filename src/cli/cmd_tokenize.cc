// xnai tokenize / detokenize: the engine's tokenizers on the command line.
#include <cstdio>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "engine/tokenizer.h"
#include "gguf/gguf_reader.h"

namespace xnai::cli {
namespace {

Result<std::unique_ptr<engine::Tokenizer>> LoadTokenizer(const std::string& path) {
  auto file = OpenModelFile(path);
  if (!file) return Err(file.error());
  return engine::Tokenizer::FromGguf(**file);
}

int RunTokenize(const std::string& model, const std::string& text, bool json, bool special) {
  auto tokenizer = LoadTokenizer(model);
  if (!tokenizer) return Fail(tokenizer.error());
  std::vector<int32_t> ids = (*tokenizer)->Encode(text, special, special);
  if (json) {
    std::printf("%s\n", nlohmann::json(ids).dump().c_str());
    return kExitOk;
  }
  std::string line;
  for (size_t idx = 0; idx < ids.size(); ++idx) {
    if (idx) line += ' ';
    line += std::to_string(ids[idx]);
  }
  std::printf("%s\n", line.c_str());
  return kExitOk;
}

int RunDetokenize(const std::string& model, const std::string& ids_text) {
  auto ids = ParseTokenIds(ids_text);
  if (!ids) return Fail(ids.error());
  auto tokenizer = LoadTokenizer(model);
  if (!tokenizer) return Fail(tokenizer.error());
  for (int32_t id : *ids) {
    if (id >= (*tokenizer)->vocab_size()) {
      return Fail(Status::Unprocessable("token id " + std::to_string(id) +
                                         " is out of range (vocabulary has " +
                                         std::to_string((*tokenizer)->vocab_size()) + " tokens)"));
    }
  }
  std::string text = (*tokenizer)->Decode(*ids, /*render_special=*/true);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  return kExitOk;
}

}  // namespace

void AddTokenizeCommands(CLI::App& app, int& exit_code) {
  struct Options {
    std::string model;
    std::string text;
    std::string ids;
    bool json = false;
    bool special = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* tokenize = app.add_subcommand("tokenize", "Print the token ids of TEXT");
  tokenize->add_option("--model,-m", options->model, "GGUF file (a vocabulary-only file works)")
      ->required();
  tokenize->add_flag("--json", options->json, "Print a JSON array");
  tokenize->add_flag("--special", options->special,
                     "Add BOS/EOS as the model declares and parse special-token text");
  tokenize->add_option("text", options->text, "Text (use -- before text starting with '-')")
      ->required();
  tokenize->callback([&exit_code, options] {
    exit_code = RunTokenize(options->model, options->text, options->json, options->special);
  });

  CLI::App* detokenize = app.add_subcommand("detokenize", "Print the text of comma-separated ids");
  detokenize->add_option("--model,-m", options->model, "GGUF file")->required();
  detokenize->add_option("ids", options->ids, "Token ids, e.g. 15496,995")->required();
  detokenize->callback(
      [&exit_code, options] { exit_code = RunDetokenize(options->model, options->ids); });
}

}  // namespace xnai::cli
