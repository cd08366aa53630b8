// VectorIndex: dense retrieval over the chunks' embeddings. The vectors live
// in the Store (the truth); this keeps one FAISS index per collection in
// memory, following the Store's vector log, and persists it under
// `data/vectors/` so a restart does not rebuild it. An index file that is
// missing, unreadable, from another model or older than the log remembers is
// rebuilt from the Store.
//
// Exact inner-product search (vectors are L2-normalized: cosine) for small
// collections; HNSW once a collection holds `hnsw_threshold` vectors.
// Removed vectors are hidden at search time and swept by a rebuild once they
// are a quarter of the index. A rebuild (a sweep, the switch to HNSW, a
// model change) is built aside: searches go on with the current index
// meanwhile, and only one thread builds.
//
// Embedding: EmbedPending embeds a collection's chunks that have no vector
// yet, in batches, each batch stored before the next, so a run that is
// stopped or killed resumes where it was. A collection's vectors all come
// from one model; another model is refused until Reindex.
//
// Thread safety: every method may be called from any thread concurrently.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "llm/llm.h"
#include "store/store.h"

namespace xnai::index {

struct VectorIndexOptions {
  // Where index files go; empty: memory only.
  std::filesystem::path dir;
  // Vectors at which a collection's index becomes HNSW (approximate).
  int64_t hnsw_threshold = 20000;
  int hnsw_m = 32;
  int hnsw_ef_construction = 64;
  int hnsw_ef_search = 128;
  // Chunks per Embed call.
  int embed_batch = 16;
};

struct DenseHit {
  int64_t chunk_id = 0;
  std::string collection;
  float similarity = 0;  // cosine
};

struct EmbedSummary {
  int64_t chunks = 0;     // embedded and stored
  int64_t tokens = 0;     // read by the embedding model
  int64_t truncated = 0;  // chunks too long for the model, embedded by their start
  double seconds = 0;
};

struct VectorCollectionStats {
  std::string collection;
  std::string model;
  int64_t dim = 0;
  int64_t vectors = 0;  // live vectors in the in-memory index
  bool hnsw = false;
};

// (chunks done, chunks to do) after each batch.
using EmbedProgressFn = std::function<void(int64_t, int64_t)>;

class VectorIndex {
 public:
  // Creates `options.dir` when set. IOError when it cannot.
  static Result<std::unique_ptr<VectorIndex>> Open(store::Store& store,
                                                   VectorIndexOptions options);
  ~VectorIndex();

  // Embeds the collection's chunks that have no vector yet. A collection
  // without vectors takes the embedder's model. FailedPrecondition when its
  // vectors are of another model or dimension (the message says to run
  // `xnai reindex`); NotFound for an unknown collection; embedding and Store
  // errors as they come (what was stored before stays). Stops early, with
  // what it did, once `*stop` is set.
  Result<EmbedSummary> EmbedPending(const std::string& collection, llm::Embedder& embedder,
                                    const EmbedProgressFn& progress = nullptr,
                                    const std::atomic<bool>* stop = nullptr);
  // Drops the collection's vectors and embeds every chunk with `embedder`.
  Result<EmbedSummary> Reindex(const std::string& collection, llm::Embedder& embedder,
                               const EmbedProgressFn& progress = nullptr,
                               const std::atomic<bool>* stop = nullptr);

  // The k chunks nearest to `query` (L2-normalized, from `model`), best
  // first, in `collection` or (nullopt/empty) in every collection that has
  // vectors. FailedPrecondition when a searched collection's vectors are of
  // another model or dimension; NotFound for an unknown collection;
  // InvalidArgument for k < 1 or an empty query.
  Result<std::vector<DenseHit>> Search(const std::optional<std::string>& collection,
                                       const std::vector<float>& query, const std::string& model,
                                       int k);

  // Writes the index file of every collection whose index changed since it
  // was loaded or saved, removes files of collections that are gone, and
  // trims the Store's vector log up to what the files hold.
  Status Save();

  // Per collection with vectors (brings each index up to date first).
  Result<std::vector<VectorCollectionStats>> Stats();

 private:
  struct Space;
  struct Slot;
  VectorIndex(store::Store& store, VectorIndexOptions options);
  // The collection's index, brought up to date with the Store (loaded from
  // its file or rebuilt when needed); null when the collection has no
  // vector space.
  Result<std::shared_ptr<Space>> Sync(const std::string& collection);
  Status Rebuild(Space& space, const std::string& collection, const store::VectorSpace& row);
  Status Replay(Space& space, const std::string& collection, const store::VectorSpace& row);
  bool LoadFile(Space& space, const store::VectorSpace& row);
  Status SaveFile(Space& space);
  bool WantsRebuild(const Space& space) const;
  std::filesystem::path FileFor(int64_t collection_id) const;

  store::Store& store_;
  VectorIndexOptions options_;
  std::mutex mutex_;  // guards spaces_
  std::map<std::string, std::shared_ptr<Slot>> spaces_;
};

}  // namespace xnai::index
