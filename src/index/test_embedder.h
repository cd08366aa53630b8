// A deterministic embedder for index tests: each word (lowercased, a few
// synonyms folded together) adds 1 to a hashed dimension; the sum is
// L2-normalized. Texts sharing words are near; a synonym makes a text near
// without sharing the word, which lexical search cannot see.
#pragma once

#include <atomic>
#include <cctype>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "llm/llm.h"

namespace xnai::index::testing {

class WordEmbedder : public llm::Embedder {
 public:
  explicit WordEmbedder(std::string id = "words", int64_t dim = 1024, size_t max_bytes = 100000)
      : id_(std::move(id)), dim_(dim), max_bytes_(max_bytes) {}
  const std::string& id() const override { return id_; }
  int64_t dim() const override { return dim_; }
  Result<std::vector<std::vector<float>>> Embed(const std::vector<std::string>& texts,
                                                int64_t* tokens_read) override {
    ++calls;
    std::vector<std::vector<float>> out;
    for (size_t i = 0; i < texts.size(); ++i) {
      if (texts[i].size() > max_bytes_) {
        return Err(Status::InvalidArgument("text " + std::to_string(i) + " is too long"));
      }
      std::vector<float> v(static_cast<size_t>(dim_), 0.0f);
      std::string word;
      auto flush = [&] {
        if (word.empty()) return;
        auto syn = synonyms.find(word);
        const std::string& w = syn == synonyms.end() ? word : syn->second;
        v[std::hash<std::string>()(w) % static_cast<size_t>(dim_)] += 1;
        if (tokens_read) ++*tokens_read;
        word.clear();
      };
      for (char c : texts[i]) {
        if (std::isalnum(static_cast<unsigned char>(c))) {
          word.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
        } else {
          flush();
        }
      }
      flush();
      double norm = 0;
      for (float x : v) norm += x * x;
      if (norm == 0) v[0] = 1, norm = 1;
      for (float& x : v) x = static_cast<float>(x / std::sqrt(norm));
      out.push_back(std::move(v));
    }
    return out;
  }

  std::map<std::string, std::string> synonyms{{"automobile", "car"}, {"vehicle", "car"}};
  std::atomic<int> calls{0};

 private:
  std::string id_;
  int64_t dim_;
  size_t max_bytes_;
};

}  // namespace xnai::index::testing
