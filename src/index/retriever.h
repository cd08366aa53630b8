// Retriever: what /api/search, /api/ask and `xnai ask` call to find the
// chunks that answer a query. Lexical (BM25 through the Store), dense
// (embeddings through a VectorIndex) or hybrid: both lists fused by
// reciprocal-rank fusion. Then filters (source prefix, dates), removal of
// near-identical chunks, and optionally passages: each hit widened with its
// neighbouring chunks, hits that touch in one document merged.
//
// Thread safety: Retrieve may be called from any thread concurrently (the
// Store and VectorIndex are thread-safe).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "store/store.h"

namespace xnai::llm {
class Embedder;
}

namespace xnai::index {

class VectorIndex;

enum class RetrievalMode { kLexical, kDense, kHybrid };

// "lexical" | "dense" | "hybrid"; InvalidArgument naming the accepted values.
Result<RetrievalMode> ParseRetrievalMode(const std::string& name);
const char* RetrievalModeName(RetrievalMode mode);

struct RetrievalQuery {
  std::string text;                       // what the user typed
  std::optional<std::string> collection;  // nullopt or empty: every collection
  std::string source_prefix;              // only documents whose source starts with it
  std::optional<int64_t> updated_after;   // unix seconds, inclusive
  std::optional<int64_t> updated_before;  // unix seconds, exclusive
  int k = 10;
  // nullopt: hybrid when dense retrieval is available, else lexical.
  std::optional<RetrievalMode> mode;
  // > 0: each hit's `passage` is its text widened by this many chunks on
  // either side, and hits whose passages touch in one document are merged
  // into the first (best) of them.
  int neighbours = 0;
};

struct RetrievedChunk {
  // Ids, source, title, text; `snippet` has match markers for lexical hits
  // and is the start of the text for dense-only ones. `score` is the fused
  // score for hybrid, BM25 for lexical, cosine similarity for dense.
  store::SearchHit hit;
  int lexical_rank = 0;  // 1-based place in the lexical list, 0 if absent
  int dense_rank = 0;    // likewise in the dense list
  double dense_similarity = 0;
  // With neighbours > 0: the hit's text widened with its neighbours (and any
  // merged hit), in document order; otherwise equal to hit.text.
  std::string passage;
  std::vector<int64_t> passage_chunk_ids;  // the chunks in `passage`, in order
};

struct RetrievalResult {
  RetrievalMode mode = RetrievalMode::kLexical;  // what actually ran
  std::vector<RetrievedChunk> chunks;             // best first, at most k
  double embed_ms = 0;                            // time to embed the query
  double search_ms = 0;                           // everything else
};

struct RetrieverOptions {
  // Reciprocal-rank fusion: score = sum over lists of weight / (rrf_k + rank).
  double rrf_k = 60;
  double lexical_weight = 1.0;
  double dense_weight = 1.0;
  // Each list is asked for max(k * candidate_factor, k + 10) hits before
  // fusion and filters (4x that with a filter). Deeper lists cost BM25 time
  // (at 100k chunks: p99 12 ms for 10 hits, 22 ms for 20, 33 ms for 40).
  int candidate_factor = 2;
  // Chunks whose normalized text shingles overlap at least this much
  // (Jaccard) with a better hit are dropped as near-duplicates.
  double duplicate_jaccard = 0.9;
};

class Retriever {
 public:
  // `vectors` and `embedder` may be null (lexical only); both are owned by
  // the caller and must outlive the Retriever.
  Retriever(store::Store& store, VectorIndex* vectors, llm::Embedder* embedder,
            RetrieverOptions options = {});

  bool dense_available() const { return vectors_ != nullptr && embedder_ != nullptr; }

  // Errors: InvalidArgument for a query without searchable words (lexical)
  // or empty text, or a k outside [1, 1000]; FailedPrecondition for dense or
  // hybrid without an embedding model, or when the stored vectors came from
  // another model (the message says to run `xnai reindex`); NotFound for an
  // unknown collection; Store/VectorIndex errors as they come.
  Result<RetrievalResult> Retrieve(const RetrievalQuery& query);

 private:
  store::Store& store_;
  VectorIndex* vectors_;
  llm::Embedder* embedder_;
  RetrieverOptions options_;
};

}  // namespace xnai::index
