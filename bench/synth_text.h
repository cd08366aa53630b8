// Deterministic synthetic English-ish text for benchmarks: a vocabulary of
// real function and content words followed by invented words, sampled with a
// Zipf law so term frequencies (and therefore index posting-list lengths)
// look like those of natural text. The same seed gives the same bytes on
// every platform (own PRNG-to-double mapping, no <random> distributions,
// whose output is implementation-defined).
//
// Not thread-safe: one SynthText per thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace xnai::bench {

// splitmix64: tiny, fast, fully specified.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [0, 1).
  double Uniform();
  // Uniform integer in [lo, hi] (inclusive); lo <= hi.
  int64_t Between(int64_t lo, int64_t hi);

 private:
  uint64_t state_;
};

class SynthText {
 public:
  // vocab_size >= 1000. zipf_exponent ~1.0-1.1 for English-like text.
  SynthText(uint64_t seed, int vocab_size = 50'000, double zipf_exponent = 1.07);

  // One word by Zipf rank (0 = most frequent).
  const std::string& WordAt(int rank) const { return vocab_[rank]; }
  int vocab_size() const { return static_cast<int>(vocab_.size()); }
  // Number of leading ranks that are function words ("the", "of", ...).
  int function_word_count() const { return function_words_; }

  // A Zipf-distributed rank in [0, vocab_size).
  int SampleRank();
  // A Zipf-distributed rank that is not a function word: what people type
  // into a search box.
  int SampleContentRank();

  // "Capitalized words, with a comma now and then, ending in a period."
  std::string Sentence();
  // 3-8 sentences, no trailing newline.
  std::string Paragraph();
  // Sentences appended until at least min_chars bytes (ASCII: bytes == chars).
  std::string TextOfAtLeast(size_t min_chars);

  // A plain-text document of about `approx_bytes`: a title line, then
  // paragraphs separated by blank lines.
  std::string PlainDocument(size_t approx_bytes);
  // A markdown document of about `approx_bytes`: headings (#, ##, ###),
  // paragraphs with emphasis, inline code and links, bullet and numbered
  // lists, fenced code blocks.
  std::string MarkdownDocument(size_t approx_bytes);

  Rng& rng() { return rng_; }

 private:
  std::string Title(int min_words, int max_words);
  std::string CodeBlock();
  std::string MarkdownParagraph();

  Rng rng_;
  std::vector<std::string> vocab_;
  std::vector<double> cdf_;  // cumulative Zipf probabilities by rank
  int function_words_ = 0;
};

}  // namespace xnai::bench
