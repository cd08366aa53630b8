#include "bench/synth_text.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <string_view>
#include <unordered_set>

namespace xnai::bench {
namespace {

// The most frequent English words, roughly in frequency order; they take the
// top Zipf ranks so generated text has the shape of real prose.
constexpr std::string_view kFunctionWords[] = {
    "the",   "of",    "and",    "to",    "a",     "in",     "is",   "that",    "for",   "it",
    "as",    "was",   "with",   "be",    "by",    "on",     "not",  "he",      "this",  "are",
    "or",    "his",   "from",   "at",    "which", "but",    "have", "an",      "had",   "they",
    "you",   "were",  "their",  "one",   "all",   "we",     "can",  "her",     "has",   "there",
    "been",  "if",    "more",   "when",  "will",  "would",  "who",  "so",      "no",    "she",
    "other", "its",   "may",    "these", "what",  "them",   "than", "some",    "him",   "time",
    "into",  "only",  "do",     "could", "new",   "about",  "two",  "then",    "first", "also",
    "any",   "my",    "such",   "like",  "our",   "over",   "man",  "me",      "even",  "most",
    "made",  "after", "should", "did",   "many",  "before", "must", "through", "back",  "years",
    "where", "much",  "your",   "way",   "well",  "down",   "used", "because", "each",  "just",
};

// Common content words: ranks right after the function words.
constexpr std::string_view kContentWords[] = {
    "system",     "data",       "file",     "server",    "process",   "memory",   "network",
    "user",       "value",      "model",    "question",  "answer",    "document", "search",
    "index",      "query",      "result",   "river",     "mountain",  "city",     "history",
    "language",   "music",      "science",  "energy",    "water",     "light",    "power",
    "government", "company",    "market",   "school",    "student",   "teacher",  "family",
    "country",    "world",      "library",  "computer",  "program",   "function", "method",
    "table",      "record",     "number",   "machine",   "engine",    "window",   "garden",
    "forest",     "ocean",      "island",   "bridge",    "castle",    "kingdom",  "empire",
    "battle",     "treaty",     "council",  "church",    "village",   "harbor",   "railway",
    "station",    "airport",    "hospital", "doctor",    "patient",   "disease",  "medicine",
    "protein",    "cell",       "gene",     "species",   "plant",     "animal",   "climate",
    "weather",    "storm",      "season",   "winter",    "summer",    "festival", "theatre",
    "painting",   "novel",      "poem",     "author",    "film",      "album",    "song",
    "team",       "player",     "season",   "league",    "match",     "goal",     "record",
    "election",   "party",      "minister", "president", "law",       "court",    "judge",
    "trade",      "industry",   "factory",  "product",   "price",     "bank",     "money",
    "building",   "tower",      "street",   "road",      "car",       "train",    "ship",
    "aircraft",   "satellite",  "planet",   "star",      "galaxy",    "orbit",    "particle",
    "theory",     "experiment", "measure",  "signal",    "circuit",   "voltage",  "battery",
    "design",     "structure",  "material", "metal",     "stone",     "glass",    "paper",
    "describe",   "explain",    "build",    "create",    "develop",   "produce",  "include",
    "consider",   "provide",    "require",  "remain",    "become",    "follow",   "change",
    "large",      "small",      "early",    "late",      "important", "common",   "local",
    "national",   "public",     "private",  "ancient",   "modern",    "northern", "southern",
};

// Syllable parts for invented words ("brantol", "meastix", ...).
constexpr std::string_view kOnsets[] = {
    "b", "c",  "d",  "f",  "g",  "h",  "j",  "k",  "l",  "m",  "n",  "p",  "r",  "s",  "t",  "v",
    "w", "br", "cl", "cr", "dr", "fl", "gr", "pl", "pr", "sh", "st", "th", "tr", "ch", "sl", "sp"};
constexpr std::string_view kVowels[] = {"a", "e", "i", "o", "u", "ai", "ea", "ou", "io", "y"};
constexpr std::string_view kCodas[] = {"",  "",   "n",  "r",  "s", "t",  "l",
                                       "m", "nd", "st", "ng", "x", "ck", "rt"};

template <typename T, size_t N>
constexpr int Count(const T (&)[N]) {
  return static_cast<int>(N);
}

}  // namespace

uint64_t Rng::Next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double Rng::Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

int64_t Rng::Between(int64_t lo, int64_t hi) {
  const uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
  return lo + static_cast<int64_t>(Next() % span);
}

SynthText::SynthText(uint64_t seed, int vocab_size, double zipf_exponent) : rng_(seed) {
  vocab_size = std::max(vocab_size, 1000);
  std::unordered_set<std::string> seen;
  auto add = [&](std::string word) {
    if (seen.insert(word).second) vocab_.push_back(std::move(word));
  };
  for (auto w : kFunctionWords) add(std::string(w));
  function_words_ = static_cast<int>(vocab_.size());
  for (auto w : kContentWords) add(std::string(w));
  // Invented words come from their own generator so the vocabulary does not
  // depend on how much text was drawn before.
  Rng word_rng(seed ^ 0x5DEECE66Dull);
  while (static_cast<int>(vocab_.size()) < vocab_size) {
    const int syllables = static_cast<int>(word_rng.Between(1, 4));
    std::string word;
    for (int s = 0; s < syllables; ++s) {
      word += kOnsets[word_rng.Between(0, Count(kOnsets) - 1)];
      word += kVowels[word_rng.Between(0, Count(kVowels) - 1)];
      if (s == syllables - 1 || word_rng.Uniform() < 0.3) {
        word += kCodas[word_rng.Between(0, Count(kCodas) - 1)];
      }
    }
    if (word.size() >= 3) add(std::move(word));
  }
  cdf_.resize(vocab_.size());
  double total = 0;
  for (size_t rank = 0; rank < vocab_.size(); ++rank) {
    total += 1.0 / std::pow(static_cast<double>(rank + 1), zipf_exponent);
    cdf_[rank] = total;
  }
  for (double& c : cdf_) c /= total;
}

int SynthText::SampleRank() {
  const double u = rng_.Uniform();
  auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
  if (it == cdf_.end()) --it;
  return static_cast<int>(it - cdf_.begin());
}

int SynthText::SampleContentRank() {
  for (;;) {
    int rank = SampleRank();
    if (rank >= function_words_) return rank;
  }
}

std::string SynthText::Sentence() {
  const int words = static_cast<int>(rng_.Between(6, 24));
  std::string out;
  for (int i = 0; i < words; ++i) {
    std::string w = vocab_[SampleRank()];
    if (i == 0) {
      w[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
    } else {
      out += ' ';
    }
    out += w;
    if (i > 2 && i < words - 2 && rng_.Uniform() < 0.08) out += ',';
  }
  out += rng_.Uniform() < 0.06 ? '?' : '.';
  return out;
}

std::string SynthText::Paragraph() {
  const int sentences = static_cast<int>(rng_.Between(3, 8));
  std::string out;
  for (int i = 0; i < sentences; ++i) {
    if (i > 0) out += ' ';
    out += Sentence();
  }
  return out;
}

std::string SynthText::TextOfAtLeast(size_t min_chars) {
  std::string out;
  while (out.size() < min_chars) {
    if (!out.empty()) out += ' ';
    out += Sentence();
  }
  return out;
}

std::string SynthText::Title(int min_words, int max_words) {
  const int words = static_cast<int>(rng_.Between(min_words, max_words));
  std::string out;
  for (int i = 0; i < words; ++i) {
    std::string w = vocab_[SampleContentRank()];
    w[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
    if (i > 0) out += ' ';
    out += w;
  }
  return out;
}

std::string SynthText::PlainDocument(size_t approx_bytes) {
  std::string out = Title(2, 6) + "\n\n";
  while (out.size() < approx_bytes) {
    out += Paragraph();
    out += "\n\n";
  }
  return out;
}

std::string SynthText::CodeBlock() {
  const int lines = static_cast<int>(rng_.Between(2, 10));
  std::string out = rng_.Uniform() < 0.5 ? "```sh\n" : "```cpp\n";
  for (int i = 0; i < lines; ++i) {
    const std::string& a = vocab_[SampleContentRank()];
    const std::string& b = vocab_[SampleContentRank()];
    switch (rng_.Between(0, 2)) {
      case 0:
        out += "xnai " + a + " --" + b + " " + std::to_string(rng_.Between(1, 999)) + "\n";
        break;
      case 1:
        out += "int " + a + "_" + b + " = " + std::to_string(rng_.Between(0, 65535)) + ";\n";
        break;
      default:
        out += "  " + a + "(" + b + ", \"" + vocab_[SampleRank()] + "\");\n";
    }
  }
  out += "```";
  return out;
}

std::string SynthText::MarkdownParagraph() {
  std::string para = Paragraph();
  // Decorate a few words in place: emphasis, inline code, a link.
  auto decorate = [&](std::string_view open, std::string_view close) {
    size_t pos = para.find(' ', static_cast<size_t>(rng_.Between(0, para.size() - 1)));
    if (pos == std::string::npos) return;
    size_t end = para.find_first_of(" ,.?", pos + 1);
    if (end == std::string::npos || end == pos + 1) return;
    para.insert(end, close);
    para.insert(pos + 1, open);
  };
  if (rng_.Uniform() < 0.4) decorate("**", "**");
  if (rng_.Uniform() < 0.3) decorate("*", "*");
  if (rng_.Uniform() < 0.3) decorate("`", "`");
  if (rng_.Uniform() < 0.2) {
    decorate("[", "](https://example.org/" + vocab_[SampleContentRank()] + ")");
  }
  return para;
}

std::string SynthText::MarkdownDocument(size_t approx_bytes) {
  std::string out = "# " + Title(2, 6) + "\n\n";
  out += MarkdownParagraph() + "\n\n";
  while (out.size() < approx_bytes) {
    out += (rng_.Uniform() < 0.7 ? "## " : "### ") + Title(1, 5) + "\n\n";
    const int blocks = static_cast<int>(rng_.Between(2, 6));
    for (int b = 0; b < blocks; ++b) {
      const double kind = rng_.Uniform();
      if (kind < 0.65) {
        out += MarkdownParagraph();
      } else if (kind < 0.8) {
        const int items = static_cast<int>(rng_.Between(2, 7));
        const bool numbered = rng_.Uniform() < 0.4;
        for (int i = 0; i < items; ++i) {
          out += numbered ? std::to_string(i + 1) + ". " : "- ";
          out += Sentence();
          if (i + 1 < items) out += '\n';
        }
      } else if (kind < 0.92) {
        out += CodeBlock();
      } else {
        out += "> " + Sentence();
      }
      out += "\n\n";
    }
  }
  return out;
}

}  // namespace xnai::bench
