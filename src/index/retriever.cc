#include "index/retriever.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <future>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "index/lexical.h"
#include "index/vector_index.h"
#include "llm/llm.h"

namespace xnai::index {

namespace {

constexpr int kMaxK = 1000;
constexpr int kMaxCandidates = 4000;
constexpr size_t kDenseSnippetBytes = 240;

double MillisSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

// Byte offset of code point `n` in `text` (its size when shorter).
size_t CodePointOffset(const std::string& text, int64_t n) {
  size_t pos = 0;
  for (int64_t seen = 0; pos < text.size(); ++pos) {
    if ((static_cast<unsigned char>(text[pos]) & 0xC0) != 0x80) {
      if (seen == n) return pos;
      ++seen;
    }
  }
  return text.size();
}

// The start of a text, cut at a space, for hits that have no lexical snippet.
std::string LeadingSnippet(const std::string& text) {
  if (text.size() <= kDenseSnippetBytes) return text;
  size_t cut = text.rfind(' ', kDenseSnippetBytes);
  if (cut == std::string::npos || cut < kDenseSnippetBytes / 2) cut = kDenseSnippetBytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "…";
}

// Word 3-shingles of the lowercased alphanumeric words (hashes), for
// near-duplicate detection.
std::unordered_set<uint64_t> Shingles(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c >= 0x80) {
      word.push_back(static_cast<char>(std::tolower(c)));
    } else if (!word.empty()) {
      words.push_back(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  std::unordered_set<uint64_t> out;
  const std::hash<std::string> hash;
  if (words.size() < 3) {
    std::string all;
    for (const auto& w : words) all += w + " ";
    out.insert(hash(all));
    return out;
  }
  for (size_t i = 0; i + 2 < words.size(); ++i) {
    out.insert(hash(words[i] + " " + words[i + 1] + " " + words[i + 2]));
  }
  return out;
}

double Jaccard(const std::unordered_set<uint64_t>& a, const std::unordered_set<uint64_t>& b) {
  if (a.empty() && b.empty()) return 1;
  const auto& small = a.size() <= b.size() ? a : b;
  const auto& large = a.size() <= b.size() ? b : a;
  size_t shared = 0;
  for (uint64_t h : small) shared += large.count(h);
  return static_cast<double>(shared) / static_cast<double>(a.size() + b.size() - shared);
}

}  // namespace

Result<RetrievalMode> ParseRetrievalMode(const std::string& name) {
  if (name == "lexical") return RetrievalMode::kLexical;
  if (name == "dense") return RetrievalMode::kDense;
  if (name == "hybrid") return RetrievalMode::kHybrid;
  return Err(Status::InvalidArgument("unknown retrieval mode '" + name +
                                     "': use lexical, dense or hybrid"));
}

const char* RetrievalModeName(RetrievalMode mode) {
  switch (mode) {
    case RetrievalMode::kLexical:
      return "lexical";
    case RetrievalMode::kDense:
      return "dense";
    case RetrievalMode::kHybrid:
      return "hybrid";
  }
  return "lexical";
}

Retriever::Retriever(store::Store& store, VectorIndex* vectors, llm::Embedder* embedder,
                     RetrieverOptions options)
    : store_(store), vectors_(vectors), embedder_(embedder), options_(options) {}

Result<RetrievalResult> Retriever::Retrieve(const RetrievalQuery& query) {
  const auto started = std::chrono::steady_clock::now();
  if (query.text.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Err(Status::InvalidArgument("the query is empty"));
  }
  if (query.k < 1 || query.k > kMaxK) {
    return Err(Status::InvalidArgument("k must be between 1 and " + std::to_string(kMaxK)));
  }
  RetrievalResult result;
  result.mode = query.mode.value_or(dense_available() ? RetrievalMode::kHybrid
                                                      : RetrievalMode::kLexical);
  if (result.mode != RetrievalMode::kLexical && !dense_available()) {
    return Err(Status::FailedPrecondition(std::string(RetrievalModeName(result.mode)) +
                                          " retrieval needs an embedding model (--embed-model)"));
  }
  const bool filtered =
      !query.source_prefix.empty() || query.updated_after || query.updated_before;
  const int candidates =
      std::min(kMaxCandidates, std::max(query.k * std::max(1, options_.candidate_factor),
                                        query.k + 10) *
                                   (filtered ? 4 : 1));

  // Both lists, best first.
  // The dense list: the query embedded, the nearest vectors, their chunks.
  struct DenseList {
    std::vector<DenseHit> nearest;
    std::vector<store::SearchHit> hits;  // in `nearest` order, deleted ones left out
    double embed_ms = 0;
  };
  auto dense_list = [&]() -> Result<DenseList> {
    DenseList list;
    const auto embed_started = std::chrono::steady_clock::now();
    int64_t tokens = 0;
    XNAI_ASSIGN_OR_RETURN(auto embedded, embedder_->Embed({query.text}, &tokens));
    list.embed_ms = MillisSince(embed_started);
    XNAI_ASSIGN_OR_RETURN(list.nearest, vectors_->Search(query.collection, embedded[0],
                                                         embedder_->id(), candidates));
    std::vector<int64_t> ids;
    for (const DenseHit& d : list.nearest) ids.push_back(d.chunk_id);
    XNAI_ASSIGN_OR_RETURN(list.hits, store_.GetHits(ids));
    return list;
  };
  // Hybrid: the dense list (mostly embedding the query) is made on another
  // thread while BM25 runs here.
  std::future<Result<DenseList>> dense_pending;
  if (result.mode == RetrievalMode::kHybrid) {
    dense_pending = std::async(std::launch::async, dense_list);
  }

  std::vector<store::SearchHit> lexical;
  if (result.mode != RetrievalMode::kDense) {
    LexicalQuery lq{query.text, query.collection, std::min(candidates, 10000)};
    auto hits = LexicalSearch(store_, lq);
    if (hits) {
      lexical = std::move(*hits);
    } else if (result.mode == RetrievalMode::kLexical ||
               hits.error().code() != Status::Code::kInvalidArgument) {
      return Err(hits.error());  // hybrid goes on without words to match
    }
  }
  std::vector<DenseHit> dense;
  std::vector<store::SearchHit> dense_hits;
  if (result.mode != RetrievalMode::kLexical) {
    Result<DenseList> list = dense_pending.valid() ? dense_pending.get() : dense_list();
    if (!list) return Err(list.error());
    dense = std::move(list->nearest);
    dense_hits = std::move(list->hits);
    result.embed_ms = list->embed_ms;
  }

  // Fusion.
  std::vector<RetrievedChunk> fused;
  std::unordered_map<int64_t, size_t> position;  // chunk id -> index in fused
  for (size_t i = 0; i < lexical.size(); ++i) {
    RetrievedChunk r;
    r.lexical_rank = static_cast<int>(i) + 1;
    r.hit = std::move(lexical[i]);
    position[r.hit.chunk_id] = fused.size();
    fused.push_back(std::move(r));
  }
  std::unordered_map<int64_t, float> similarity;
  for (const DenseHit& d : dense) similarity[d.chunk_id] = d.similarity;
  int dense_rank = 0;
  for (store::SearchHit& hit : dense_hits) {  // in dense order; deleted ones left out
    ++dense_rank;
    auto it = position.find(hit.chunk_id);
    RetrievedChunk* r;
    if (it == position.end()) {
      position[hit.chunk_id] = fused.size();
      fused.emplace_back();
      r = &fused.back();
      hit.snippet = LeadingSnippet(hit.text);
      r->hit = std::move(hit);
    } else {
      r = &fused[it->second];
    }
    r->dense_rank = dense_rank;
    r->dense_similarity = similarity[r->hit.chunk_id];
  }
  for (RetrievedChunk& r : fused) {
    if (result.mode == RetrievalMode::kHybrid) {
      double score = 0;
      if (r.lexical_rank > 0) score += options_.lexical_weight / (options_.rrf_k + r.lexical_rank);
      if (r.dense_rank > 0) score += options_.dense_weight / (options_.rrf_k + r.dense_rank);
      r.hit.score = score;
    } else if (result.mode == RetrievalMode::kDense) {
      r.hit.score = r.dense_similarity;
    }
  }
  std::stable_sort(fused.begin(), fused.end(), [](const RetrievedChunk& a, const RetrievedChunk& b) {
    return a.hit.score > b.hit.score;
  });

  // Filters, near-duplicates, k.
  std::unordered_map<int64_t, int64_t> updated_at;  // document id -> updated_at
  std::vector<std::unordered_set<uint64_t>> kept_shingles;
  std::vector<RetrievedChunk> kept;
  for (RetrievedChunk& r : fused) {
    if (static_cast<int>(kept.size()) == query.k) break;
    if (!query.source_prefix.empty() && !r.hit.source.starts_with(query.source_prefix)) continue;
    if (query.updated_after || query.updated_before) {
      auto it = updated_at.find(r.hit.document_id);
      if (it == updated_at.end()) {
        auto doc = store_.GetDocument(r.hit.document_id);
        if (!doc) continue;  // deleted meanwhile
        it = updated_at.emplace(r.hit.document_id, doc->updated_at).first;
      }
      if (query.updated_after && it->second < *query.updated_after) continue;
      if (query.updated_before && it->second >= *query.updated_before) continue;
    }
    auto shingles = Shingles(r.hit.text);
    bool duplicate = false;
    for (const auto& other : kept_shingles) {
      if (Jaccard(shingles, other) >= options_.duplicate_jaccard) {
        duplicate = true;
        break;
      }
    }
    if (duplicate) continue;
    kept_shingles.push_back(std::move(shingles));
    kept.push_back(std::move(r));
  }

  // Passages: each hit widened by its neighbours; hits that touch merge
  // into the better one.
  if (query.neighbours > 0) {
    std::unordered_map<int64_t, std::vector<store::Chunk>> chunks_of;  // document id -> chunks
    struct Span {
      int64_t document_id;
      int first, last;  // ordinals
      size_t owner;     // index in `merged`
    };
    std::vector<Span> spans;
    std::vector<RetrievedChunk> merged;
    for (RetrievedChunk& r : kept) {
      auto it = chunks_of.find(r.hit.document_id);
      if (it == chunks_of.end()) {
        auto chunks = store_.GetChunks(r.hit.document_id);
        if (!chunks) continue;  // deleted meanwhile
        it = chunks_of.emplace(r.hit.document_id, std::move(*chunks)).first;
      }
      const auto& chunks = it->second;
      int ordinal = -1;
      for (const auto& c : chunks) {
        if (c.id == r.hit.chunk_id) ordinal = c.ordinal;
      }
      if (ordinal < 0) continue;
      const int first = std::max(0, ordinal - query.neighbours);
      const int last = std::min(static_cast<int>(chunks.size()) - 1, ordinal + query.neighbours);
      Span* joined = nullptr;
      for (Span& s : spans) {
        if (s.document_id == r.hit.document_id && first <= s.last + 1 && last >= s.first - 1) {
          joined = &s;
          break;
        }
      }
      if (joined) {
        joined->first = std::min(joined->first, first);
        joined->last = std::max(joined->last, last);
      } else {
        spans.push_back({r.hit.document_id, first, last, merged.size()});
        merged.push_back(std::move(r));
      }
    }
    for (const Span& s : spans) {
      RetrievedChunk& r = merged[s.owner];
      const auto& chunks = chunks_of[s.document_id];
      r.passage.clear();
      r.passage_chunk_ids.clear();
      int64_t end = -1;  // char_end of what the passage holds
      for (int o = s.first; o <= s.last; ++o) {
        const store::Chunk& c = chunks[static_cast<size_t>(o)];
        r.passage_chunk_ids.push_back(c.id);
        if (end < 0) {
          r.passage = c.text;
        } else if (c.char_begin >= end) {
          r.passage += "\n\n" + c.text;
        } else if (c.char_end > end) {
          // Overlapping chunks: only what this one adds.
          r.passage += c.text.substr(CodePointOffset(c.text, end - c.char_begin));
        }
        end = std::max(end, c.char_end);
      }
    }
    kept = std::move(merged);
  } else {
    for (RetrievedChunk& r : kept) {
      r.passage = r.hit.text;
      r.passage_chunk_ids = {r.hit.chunk_id};
    }
  }
  result.chunks = std::move(kept);
  result.search_ms = MillisSince(started) - result.embed_ms;
  return result;
}

}  // namespace xnai::index
