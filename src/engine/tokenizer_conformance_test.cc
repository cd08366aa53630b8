// Conformance of engine::Tokenizer with the reference tokenizations in
// <testdata>/vocab (see ../shared/testdata/README.md): for every
// ggml-vocab-NAME.gguf with .inp/.out files, every test string is tokenized
// with no BOS/EOS and special-token text as plain text, and the ids must equal
// the expected ones.
//
// Exit codes: 0 all supported vocabularies match; 1 a mismatch (or a file that
// does not load); 77 the testdata directory is absent (ctest SKIP).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/tokenizer.h"
#include "gguf/gguf_reader.h"
#include "gguf/testdata.h"

namespace {

namespace fs = std::filesystem;
using xnai::engine::Tokenizer;

// Vocabularies whose mismatches are reported but do not fail the test. Empty:
// every vocabulary in the testdata is expected to match exactly.
const std::set<std::string> kKnownFailing = {};

// Test strings: each is followed by "\n__ggml_vocab_test__\n".
std::vector<std::string> SplitInputs(const std::string& all) {
  static const std::string kSep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < all.size()) {
    size_t hit = all.find(kSep, pos);
    if (hit == std::string::npos) {
      out.push_back(all.substr(pos));
      break;
    }
    out.push_back(all.substr(pos, hit - pos));
    pos = hit + kSep.size();
  }
  return out;
}

std::vector<std::vector<int32_t>> ParseOutputs(const std::string& all) {
  std::vector<std::vector<int32_t>> out;
  std::istringstream lines(all);
  std::string line;
  while (std::getline(lines, line)) {
    std::vector<int32_t> ids;
    std::istringstream nums(line);
    long v;
    while (nums >> v) ids.push_back(static_cast<int32_t>(v));
    out.push_back(std::move(ids));
  }
  return out;
}

std::string Join(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += " " + std::to_string(id);
  return s;
}

// The model files' reference JSONs carry text and its ids as the model uses
// it (BOS/EOS per the vocabulary's flags; [CLS]/[SEP] for bert) and, for the
// GPT-2-vocabulary model, generated ids with their text. Returns false on a
// mismatch; prints one line per model.
bool CheckModelReference(const fs::path& dir, const std::string& model, int& checked) {
  fs::path gguf_path = dir / "models" / (model + ".gguf");
  std::string json_text;
  if (!fs::exists(gguf_path) ||
      !xnai::gguf::ReadTestFile(dir / "reference" / (model + ".json"), json_text)) {
    return true;  // not part of this testdata
  }
  auto file = xnai::gguf::OpenGguf(gguf_path);
  if (!file) {
    std::cout << "FAIL " << model << ": " << file.error().ToString() << "\n";
    return false;
  }
  auto tok = Tokenizer::FromGguf(**file);
  if (!tok) {
    std::cout << "FAIL " << model << ": " << tok.error().ToString() << "\n";
    return false;
  }
  nlohmann::json ref = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (ref.is_discarded()) {
    std::cout << "FAIL " << model << ": reference JSON does not parse\n";
    return false;
  }
  int total = 0, pass = 0;
  auto check = [&](const std::string& what, bool ok) {
    ++total;
    if (ok) {
      ++pass;
    } else {
      std::cout << "  mismatch " << model << ": " << what << "\n";
    }
  };
  const nlohmann::json& cases = ref.contains("text") ? ref["text"] : ref["cases"];
  for (const auto& c : cases) {
    std::string text =
        c.contains("prompt") ? c["prompt"].get<std::string>() : c["text"].get<std::string>();
    std::vector<int32_t> want = c.contains("prompt_tokens")
                                    ? c["prompt_tokens"].get<std::vector<int32_t>>()
                                    : c["tokens"].get<std::vector<int32_t>>();
    std::vector<int32_t> got = (*tok)->Encode(text, /*add_special=*/true, /*parse_special=*/false);
    check("encode '" + text + "': want" + Join(want) + " got" + Join(got), got == want);
    if (c.contains("greedy_tokens") && c.contains("greedy_text")) {
      auto ids = c["greedy_tokens"].get<std::vector<int32_t>>();
      std::string decoded = (*tok)->Decode(ids);
      check("decode of the greedy tokens: '" + decoded + "'",
            decoded == c["greedy_text"].get<std::string>());
    }
  }
  ++checked;
  std::cout << (pass == total ? "PASS " : "FAIL ") << model << " (reference JSON): " << pass << "/"
            << total << " checks\n";
  return pass == total;
}

}  // namespace

int main() {
  fs::path dir = xnai::gguf::FindTestdataDir();
  if (dir.empty() || !fs::is_directory(dir / "vocab")) {
    std::cout << "SKIP: tokenizer conformance: testdata directory not found "
                 "(set XNAI_TESTDATA or place it at <repo>/../shared/testdata)\n";
    return 77;
  }
  std::vector<fs::path> vocabs;
  for (const auto& e : fs::directory_iterator(dir / "vocab")) {
    std::string name = e.path().filename().string();
    if (name.starts_with("ggml-vocab-") && name.ends_with(".gguf")) vocabs.push_back(e.path());
  }
  std::sort(vocabs.begin(), vocabs.end());
  bool failed = false;
  int checked = 0;
  for (const fs::path& path : vocabs) {
    std::string name = path.filename().string();
    std::string inp, outp;
    if (!xnai::gguf::ReadTestFile(path.string() + ".inp", inp) ||
        !xnai::gguf::ReadTestFile(path.string() + ".out", outp)) {
      continue;  // no test strings for this vocabulary
    }
    const bool known = kKnownFailing.count(name) > 0;
    auto file = xnai::gguf::OpenGguf(path);
    if (!file) {
      std::cout << "FAIL " << name << ": " << file.error().ToString() << "\n";
      failed = true;
      continue;
    }
    auto tok = Tokenizer::FromGguf(**file);
    if (!tok) {
      std::cout << (known ? "KNOWN-FAILING " : "FAIL ") << name << ": " << tok.error().ToString()
                << "\n";
      failed = failed || !known;
      continue;
    }
    std::vector<std::string> inputs = SplitInputs(inp);
    std::vector<std::vector<int32_t>> expected = ParseOutputs(outp);
    if (inputs.size() != expected.size()) {
      std::cout << "FAIL " << name << ": " << inputs.size() << " strings but " << expected.size()
                << " expected lines\n";
      failed = true;
      continue;
    }
    int pass = 0;
    int round_trips = 0;
    // BPE and SentencePiece are lossless: decoding the ids gives the bytes back.
    const bool lossless = (*tok)->kind() != xnai::engine::TokenizerKind::kWordPiece;
    for (size_t i = 0; i < inputs.size(); ++i) {
      std::vector<int32_t> got = (*tok)->Encode(inputs[i], /*add_special=*/false,
                                                /*parse_special=*/false);
      if (lossless) {
        std::string back = (*tok)->Decode(got);
        if (back == inputs[i]) {
          ++round_trips;
        } else {
          std::cout << "  decode mismatch " << name << " #" << i << "\n";
        }
      }
      if (got == expected[i]) {
        ++pass;
      } else {
        std::string shown = inputs[i].substr(0, 60);
        std::replace(shown.begin(), shown.end(), '\n', '|');
        std::cout << "  mismatch " << name << " #" << i << " '" << shown << "'\n    want"
                  << Join(expected[i]) << "\n    got " << Join(got) << "\n";
      }
    }
    ++checked;
    const bool all = pass == static_cast<int>(inputs.size()) &&
                     (!lossless || round_trips == static_cast<int>(inputs.size()));
    std::cout << (all ? "PASS " : (known ? "KNOWN-FAILING " : "FAIL ")) << name << ": " << pass
              << "/" << inputs.size() << " strings match";
    if (lossless) std::cout << ", " << round_trips << "/" << inputs.size() << " decode exactly";
    std::cout << "\n";
    if (!all && !known) failed = true;
  }
  for (const char* model : {"qwen3-gpt2vocab-q8_0", "bert-s-cls-f16", "bert-s-mean-q8_0"}) {
    if (!CheckModelReference(dir, model, checked)) failed = true;
  }
  if (checked == 0) {
    std::cout << "FAIL: no vocabulary with test strings found under " << (dir / "vocab") << "\n";
    return 1;
  }
  return failed ? 1 : 0;
}
