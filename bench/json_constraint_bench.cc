// Micro-benchmarks of JSON constrained decoding (engine/json_constraint.h)
// over a synthetic 151,936-token vocabulary (Qwen's size): the 256 single
// bytes plus random tokens of 1..12 bytes with a BPE-like mix (words with and
// without a leading space, punctuation and digits, whitespace runs, UTF-8
// characters whole and split, raw bytes) and a BPE-like length distribution.
//   mask/STATE     one AllowedTokens call in a typical state (ms per call;
//                  counter "allowed": tokens the mask lets through)
//   advance/TOKEN  one Advance of a typical token
//   index_build    TokenBytesIndex::FromPieces for the whole vocabulary
// Single-threaded. Flags are Google Benchmark's.
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "engine/json_constraint.h"

namespace xnai::engine {
namespace {

constexpr size_t kVocabSize = 151936;

std::vector<std::string> SyntheticVocab() {
  std::mt19937 rng(2024);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  // Weights of lengths 1..12, peaking at 4-5 bytes as in BPE vocabularies.
  const std::vector<double> length_weights = {2, 8, 14, 16, 15, 13, 10, 8, 6, 4, 2, 2};
  std::discrete_distribution<int> length_dist(length_weights.begin(), length_weights.end());
  const std::string punct = "{}[]():;,.\"'!?-_/\\=+*&%$#@<>|`~^";
  const char* utf8_chars[] = {"\xc3\xa9",     "\xc3\xbc",        "\xc3\xb1",     "\xd0\xb4",
                              "\xce\xbb",     "\xe4\xb8\xad",    "\xe6\x96\x87", "\xe3\x81\x82",
                              "\xe2\x80\x94", "\xf0\x9f\x98\x80"};
  std::vector<std::string> vocab;
  vocab.reserve(kVocabSize);
  for (int b = 0; b < 256; ++b) vocab.emplace_back(1, static_cast<char>(b));
  while (vocab.size() < kVocabSize) {
    const size_t len = static_cast<size_t>(length_dist(rng)) + 1;
    std::string t;
    const size_t kind = pick(100);
    if (kind < 55) {  // words
      if (pick(2)) t += ' ';
      if (pick(6) == 0) t += static_cast<char>('A' + pick(26));
      while (t.size() < len) t += "etaoinshrdlucmfwypvbgkjqxz"[std::min(pick(26), pick(26))];
    } else if (kind < 70) {  // punctuation and digits
      while (t.size() < len) {
        t += pick(3) ? punct[pick(punct.size())] : static_cast<char>('0' + pick(10));
      }
    } else if (kind < 80) {  // whitespace runs
      t = pick(3) ? "\n" : "";
      while (t.size() < len) t += pick(4) ? ' ' : '\t';
    } else if (kind < 92) {  // UTF-8 characters, the last one possibly cut
      while (t.size() < len) t += utf8_chars[pick(std::size(utf8_chars))];
      t.resize(len);
    } else {  // raw bytes
      while (t.size() < len) t += static_cast<char>(pick(256));
    }
    vocab.push_back(std::move(t));
  }
  return vocab;
}

const std::vector<std::string>& Vocab() {
  static const std::vector<std::string> vocab = SyntheticVocab();
  return vocab;
}

const TokenBytesIndex& Index() {
  static const TokenBytesIndex index = TokenBytesIndex::FromPieces(Vocab());
  return index;
}

constexpr const char* kPersonSchema = R"({
  "type": "object",
  "properties": {
    "name": {"type": "string", "maxLength": 200},
    "age": {"type": "integer", "minimum": 0, "maximum": 150},
    "email": {"type": "string"},
    "tags": {"type": "array", "items": {"type": "string", "enum": ["red", "green", "blue"]}},
    "address": {"type": "object", "properties": {"city": {"type": "string"}},
                "required": ["city"], "additionalProperties": false}
  },
  "required": ["name", "age"],
  "additionalProperties": false
})";

constexpr const char* kShapeSchema = R"({"anyOf": [
  {"type": "object", "properties": {"kind": {"type": "string"}, "r": {"type": "number"}},
   "required": ["kind", "r"], "additionalProperties": false},
  {"type": "object", "properties": {"kind": {"type": "string"}, "w": {"type": "number"}},
   "required": ["kind", "w"], "additionalProperties": false}]})";

JsonConstraint StateAfter(const char* schema, const std::string& prefix) {
  Result<JsonConstraint> c = schema ? JsonConstraint::Create(nlohmann::ordered_json::parse(schema))
                                    : JsonConstraint::Create(nullptr);
  if (!c || (!prefix.empty() && !c->Advance(prefix))) {
    std::fprintf(stderr, "bad benchmark state: %s\n", prefix.c_str());
    std::abort();
  }
  return std::move(*c);
}

void BmMask(benchmark::State& state, const char* schema, std::string prefix) {
  const TokenBytesIndex& index = Index();
  const JsonConstraint c = StateAfter(schema, prefix);
  std::vector<uint8_t> allowed;
  for (auto _ : state) {
    c.AllowedTokens(index, allowed);
    benchmark::DoNotOptimize(allowed.data());
  }
  size_t count = 0;
  for (uint8_t a : allowed) count += a;
  state.counters["allowed"] = static_cast<double>(count);
  state.counters["trie_nodes"] = static_cast<double>(index.node_count());
}

void BmAdvance(benchmark::State& state, const char* schema, std::string prefix, std::string token) {
  const JsonConstraint start = StateAfter(schema, prefix);
  for (auto _ : state) {
    JsonConstraint c = start;
    benchmark::DoNotOptimize(c.Advance(token));
  }
}

void BmIndexBuild(benchmark::State& state) {
  const std::vector<std::string>& vocab = Vocab();
  for (auto _ : state) {
    TokenBytesIndex index = TokenBytesIndex::FromPieces(vocab);
    benchmark::DoNotOptimize(index.node_count());
  }
}

void Register() {
  struct MaskCase {
    const char* name;
    const char* schema;
    const char* prefix;
  };
  const std::string long_text = "{\"text\": \"The quick brown fox jumps over the lazy dog, ";
  const MaskCase cases[] = {
      {"object/start", nullptr, ""},
      {"object/after_brace", nullptr, "{"},
      {"object/in_key", nullptr, "{\"ti"},
      {"object/after_colon", nullptr, "{\"title\":"},
      {"object/in_string", nullptr, "{\"text\": \"The quick brown fox jumps over the lazy dog, "},
      {"object/in_number", nullptr, "{\"n\": 12"},
      {"object/after_value", nullptr, "{\"a\": [1, 2"},
      {"object/nested_in_string", nullptr, "{\"a\": [{\"b\": {\"c\": [\"x y z"},
      {"schema/after_brace", kPersonSchema, "{"},
      {"schema/in_declared_key", kPersonSchema, "{\"na"},
      {"schema/in_string_maxlen", kPersonSchema, "{\"name\": \"Ada Lovel"},
      {"schema/in_bounded_int", kPersonSchema, "{\"name\": \"Ada\", \"age\": 3"},
      {"schema/in_enum", kPersonSchema, "{\"name\": \"Ada\", \"age\": 36, \"tags\": [\"gr"},
      {"union_2_stacks/in_string", kShapeSchema, "{\"kind\": \"a long description of "},
  };
  for (const MaskCase& c : cases) {
    benchmark::RegisterBenchmark((std::string("mask/") + c.name).c_str(), BmMask, c.schema,
                                 std::string(c.prefix))
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::RegisterBenchmark("advance/word_in_string", BmAdvance, nullptr, long_text,
                               std::string(" elephant"))
      ->Unit(benchmark::kNanosecond);
  benchmark::RegisterBenchmark("advance/structural", BmAdvance, kPersonSchema,
                               std::string("{\"name\": \"Ada\""), std::string(", \"age\":"))
      ->Unit(benchmark::kNanosecond);
  benchmark::RegisterBenchmark("index_build", BmIndexBuild)->Unit(benchmark::kMillisecond);
}

}  // namespace
}  // namespace xnai::engine

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  xnai::engine::Register();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
