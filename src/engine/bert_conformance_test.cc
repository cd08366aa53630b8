// Conformance of engine::Encoder with the reference embeddings in
// <testdata>/reference (see ../shared/testdata/README.md): for every encoder
// model (bert-*.json) and every case,
//   - `text` must tokenize (with [CLS] ... [SEP]) to exactly `tokens`;
//   - the pooled embedding (not normalized) must have cosine similarity
//     >= 0.9999 with the reference `embedding`;
//   - the normalized embedding must have unit length and the same direction.
// A table of every case is printed.
//
// Exit codes: 0 every case within tolerance; 1 a case outside it (or a model
// that does not load); 77 the testdata directory is absent (ctest SKIP).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/conformance_setup.h"
#include "engine/encoder.h"
#include "engine/tokenizer.h"
#include "gguf/gguf_reader.h"
#include "gguf/testdata.h"

namespace {

namespace fs = std::filesystem;
using xnai::engine::Encoder;
using xnai::engine::Tokenizer;

constexpr double kMinCosine = 0.9999;

double Cosine(const std::vector<float>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return -2;
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += a[i] * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += b[i] * b[i];
  }
  if (na == 0 || nb == 0) return -2;
  return dot / std::sqrt(na * nb);
}

// Runs every case of one reference; prints a row per case and returns the
// number of failures.
int RunModel(const fs::path& testdata, const std::string& name, const nlohmann::json& reference) {
  auto file = xnai::gguf::OpenGguf(testdata / reference.at("model").get<std::string>());
  if (!file) {
    std::printf("%-20s FAIL: %s\n", name.c_str(), file.error().ToString().c_str());
    return 1;
  }
  auto tokenizer = Tokenizer::FromGguf(**file);
  if (!tokenizer) {
    std::printf("%-20s FAIL: %s\n", name.c_str(), tokenizer.error().ToString().c_str());
    return 1;
  }
  auto encoder = Encoder::Load(**file, 2);
  if (!encoder) {
    std::printf("%-20s FAIL: %s\n", name.c_str(), encoder.error().ToString().c_str());
    return 1;
  }
  int failures = 0;
  int case_idx = 0;
  for (const nlohmann::json& c : reference.at("cases")) {
    const std::string text = c.at("text").get<std::string>();
    const auto want_tokens = c.at("tokens").get<std::vector<int32_t>>();
    const auto want = c.at("embedding").get<std::vector<double>>();
    const std::vector<int32_t> tokens =
        (*tokenizer)->Encode(text, /*add_special=*/true, /*parse_special=*/false);
    const bool tokens_ok = tokens == want_tokens;
    std::string verdict;
    double cosine = -2, norm = 0;
    bool pass = tokens_ok;
    auto embedding = (*encoder)->Embed(want_tokens, /*normalize=*/false);
    auto unit = (*encoder)->Embed(want_tokens, /*normalize=*/true);
    if (!embedding || !unit) {
      verdict = "FAIL: " + (embedding ? unit.error() : embedding.error()).ToString();
      pass = false;
    } else {
      cosine = Cosine(*embedding, want);
      double sum_squares = 0;
      for (float value : *unit) sum_squares += static_cast<double>(value) * value;
      norm = std::sqrt(sum_squares);
      pass = pass && cosine >= kMinCosine && std::abs(norm - 1.0) < 1e-5 &&
             Cosine(*unit, want) >= kMinCosine;
      verdict = pass ? "ok" : (tokens_ok ? "FAIL" : "FAIL (tokens differ)");
    }
    if (!pass) ++failures;
    std::string shown = text.size() > 36 ? text.substr(0, 33) + "..." : text;
    std::replace(shown.begin(), shown.end(), '\n', ' ');
    std::printf("%-20s %2d %-38s %4zu %-5s %.8f %.6f  %s\n", name.c_str(), case_idx++,
                ("\"" + shown + "\"").c_str(), want_tokens.size(), tokens_ok ? "same" : "DIFF",
                cosine, norm, verdict.c_str());
  }
  return failures;
}

}  // namespace

int main() {
  const std::optional<xnai::engine::ConformanceData> found =
      xnai::engine::PrepareConformance("BERT embedding conformance");
  if (!found) return 77;
  const fs::path& testdata = found->testdata;
  const std::vector<fs::path>& references = found->references;

  std::printf("%-20s %2s %-38s %4s %-5s %-10s %-8s  %s\n", "model", "#", "text", "ntok", "ids",
              "cosine", "unitnorm", "result");
  int failures = 0, models = 0;
  for (const fs::path& path : references) {
    std::string text;
    if (!xnai::gguf::ReadTestFile(path, text)) {
      std::cerr << "cannot read " << path << "\n";
      return 1;
    }
    try {
      const nlohmann::json reference = nlohmann::json::parse(text);
      // Encoder references have cases with embeddings; decoder ones do not.
      if (!reference.contains("cases")) continue;
      ++models;
      failures += RunModel(testdata, path.stem().string(), reference);
    } catch (const std::exception& e) {  // a malformed reference file
      std::printf("%-20s FAIL: bad reference: %s\n", path.stem().string().c_str(), e.what());
      ++failures;
    }
  }
  if (models == 0) {
    std::cerr << "no encoder references found in " << testdata / "reference"
              << "\n";
    return 1;
  }
  std::printf("%d encoder models, %d failing cases (cosine must be >= %.4f)\n", models, failures,
              kMinCosine);
  return failures == 0 ? 0 : 1;
}
