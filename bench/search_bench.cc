// search_bench: retrieval latency over a store of synthetic chunks:
// lexical (BM25) through index::LexicalSearch, and with --dim > 0 dense and
// hybrid through index::Retriever over random unit vectors of that size
// (speed does not depend on the values; 384 is the bge-small shape).
//
//   search_bench [--chunks 100000] [--queries 2000] [--k 10] [--cache DIR]
//                [--seed 7] [--warmup 100] [--dim 0] [--hnsw-threshold 20000]
//                [--embed-model PATH]
//
// Dense and hybrid times exclude embedding the query (a stand-in embedder
// returns a ready vector); --embed-model times embedding the queries with a
// real model separately. The vectors and their index (HNSW past
// search.hnsw_threshold, as in the server) are cached with the store.
//
// The store (about 1000 characters per chunk, Zipf vocabulary so terms have
// realistic document frequencies, 20 chunks per document) is built under
// --cache and reused while its parameters match (params.json), because
// building 100k chunks takes far longer than searching them. Without
// --cache a temp dir is used and removed. Queries are 2-6 content words
// drawn from the same Zipf law, as a user would type them; each is timed
// alone, after `warmup` untimed queries. Prints one JSON object on stdout.
#include <algorithm>
#include <cmath>
#include <functional>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/files.h"
#include "base/log.h"
#include "bench/bench_util.h"
#include "bench/synth_text.h"
#include "index/lexical.h"
#include "index/retriever.h"
#include "index/vector_index.h"
#include "llm/local_llm.h"
#include "store/store.h"

namespace xnai::bench {
namespace {

constexpr const char* kName = "search_bench";
constexpr int kChunksPerDocument = 20;
constexpr size_t kChunkChars = 950;  // sentences are added until at least this long
// Bump when the generated content changes, so stale caches are rebuilt.
constexpr int kGeneratorVersion = 1;
constexpr const char* kCollection = "bench";

nlohmann::json CacheParams(int64_t chunks, uint64_t seed) {
  return {{"chunks", chunks},
          {"seed", seed},
          {"chunk_chars", kChunkChars},
          {"chunks_per_document", kChunksPerDocument},
          {"generator_version", kGeneratorVersion}};
}

// Unit vectors from a hash of the text: a stand-in embedding model whose
// cost is negligible, so dense timings are the index's alone.
class RandomEmbedder : public llm::Embedder {
 public:
  explicit RandomEmbedder(int64_t dim) : dim_(dim) {}
  const std::string& id() const override { return id_; }
  int64_t dim() const override { return dim_; }
  Result<std::vector<std::vector<float>>> Embed(const std::vector<std::string>& texts,
                                                int64_t* tokens_read) override {
    std::vector<std::vector<float>> out;
    for (const std::string& text : texts) {
      Rng rng(std::hash<std::string>()(text));
      std::vector<float> v(static_cast<size_t>(dim_));
      double norm = 0;
      for (float& x : v) {
        x = static_cast<float>(rng.Uniform() * 2 - 1);
        norm += x * x;
      }
      for (float& x : v) x = static_cast<float>(x / std::sqrt(norm));
      out.push_back(std::move(v));
      if (tokens_read) ++*tokens_read;
    }
    return out;
  }

 private:
  std::string id_ = "bench-random";
  int64_t dim_;
};

bool CacheMatches(const std::filesystem::path& dir, const nlohmann::json& params) {
  if (!std::filesystem::exists(dir / "xnai.db")) return false;
  auto text = ReadFileToString(dir / "params.json", 1 << 20);
  if (!text) return false;
  auto stored = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  return stored == params;
}

// Fills a fresh store with `chunks` chunks. Returns the seconds it took.
Result<double> BuildStore(const std::filesystem::path& dir, int64_t chunks, uint64_t seed) {
  std::error_code ec;
  for (const char* name : {"xnai.db", "xnai.db-wal", "xnai.db-shm", "params.json"}) {
    std::filesystem::remove(dir / name, ec);
  }
  auto store = store::OpenSqliteStore(dir / "xnai.db");
  if (!store) return Err(store.error());
  auto collection = (*store)->EnsureCollection(kCollection);
  if (!collection) return Err(collection.error());

  SynthText gen(seed);
  Stopwatch sw;
  int64_t written = 0;
  int64_t doc_index = 0;
  while (written < chunks) {
    store::DocumentInput doc;
    doc.collection = kCollection;
    doc.source = "bench:doc-" + std::to_string(doc_index++);
    doc.media_type = "text/plain";
    std::string all_text;
    int64_t offset = 0;
    const int64_t n = std::min<int64_t>(kChunksPerDocument, chunks - written);
    for (int64_t i = 0; i < n; ++i) {
      store::ChunkInput chunk;
      chunk.text = gen.TextOfAtLeast(kChunkChars);
      chunk.char_begin = offset;
      chunk.char_end = offset + static_cast<int64_t>(chunk.text.size());  // ASCII
      chunk.token_count =
          static_cast<int32_t>(std::count(chunk.text.begin(), chunk.text.end(), ' ') + 1);
      offset = chunk.char_end + 2;  // "\n\n" between chunks
      all_text += chunk.text;
      all_text += "\n\n";
      doc.chunks.push_back(std::move(chunk));
    }
    doc.title = doc.chunks.front().text.substr(0, doc.chunks.front().text.find(' ', 30));
    doc.sha256 = Sha256Hex(all_text);
    doc.size_bytes = static_cast<int64_t>(all_text.size());
    auto put = (*store)->PutDocument(doc);
    if (!put) return Err(put.error().WithContext(doc.source));
    written += n;
    if (doc_index % 500 == 0) {
      std::fprintf(stderr, "\r%s: building store %lld/%lld chunks", kName,
                   static_cast<long long>(written), static_cast<long long>(chunks));
    }
  }
  std::fprintf(stderr, "\n");
  const double seconds = sw.Seconds();
  if (Status s = WriteFileAtomic(dir / "params.json", CacheParams(chunks, seed).dump()); !s.ok()) {
    return Err(s);
  }
  return seconds;
}

int Run(int argc, char** argv) {
  auto flags = ParseFlags(argc, argv,
                          {{"chunks", "100000"},
                           {"queries", "2000"},
                           {"k", "10"},
                           {"cache", ""},
                           {"seed", "7"},
                           {"warmup", "100"},
                           {"dim", "0"},
                           {"hnsw-threshold", "20000"},
                           {"embed-model", ""}});
  if (!flags) {
    if (flags.error().code() == Status::Code::kNotFound) {
      std::printf(
          "usage: %s [--chunks 100000] [--queries 2000] [--k 10] [--cache DIR] "
          "[--seed 7] [--warmup 100] [--dim 0] [--hnsw-threshold 20000] "
          "[--embed-model PATH]\n",
          kName);
      return 0;
    }
    return FailWith(kName, flags.error());
  }
  auto chunks = FlagNumber(*flags, "chunks", 1, 1e8);
  auto queries = FlagNumber(*flags, "queries", 1, 1e7);
  auto k = FlagNumber(*flags, "k", 1, 1000);
  auto seed = FlagNumber(*flags, "seed", 0, 1e15);
  auto warmup = FlagNumber(*flags, "warmup", 0, 1e6);
  auto dim_flag = FlagNumber(*flags, "dim", 0, 8192);
  auto hnsw_threshold = FlagNumber(*flags, "hnsw-threshold", 1, 1e12);
  for (const auto* r : {&chunks, &queries, &k, &seed, &warmup, &dim_flag, &hnsw_threshold}) {
    if (!*r) return FailWith(kName, r->error());
  }
  auto dir = ScratchDir::Make(flags->at("cache"), "xnai-search-bench");
  if (!dir) return FailWith(kName, dir.error());
  log::Configure(log::Level::kWarn, log::Format::kText);

  const int64_t n_chunks = static_cast<int64_t>(*chunks);
  const uint64_t data_seed = static_cast<uint64_t>(*seed);
  bool cache_hit = CacheMatches(dir->path(), CacheParams(n_chunks, data_seed));
  double build_seconds = 0;
  if (!cache_hit) {
    auto built = BuildStore(dir->path(), n_chunks, data_seed);
    if (!built) return FailWith(kName, built.error());
    build_seconds = *built;
  }

  auto store = store::OpenSqliteStore(dir->path() / "xnai.db");
  if (!store) return FailWith(kName, store.error());
  auto stats = (*store)->Stats();
  if (!stats) return FailWith(kName, stats.error());
  if (stats->chunks != n_chunks) {
    return FailWith(kName, Status::Corruption("store holds " + std::to_string(stats->chunks) +
                                              " chunks, expected " + std::to_string(n_chunks) +
                                              "; delete " + dir->path().string()));
  }

  // Queries come from a generator seeded apart from the corpus so the same
  // queries are asked whatever the corpus size.
  SynthText gen(data_seed);
  Rng query_rng(data_seed * 31 + 17);
  const int n_queries = static_cast<int>(*queries);
  const int n_warmup = static_cast<int>(*warmup);
  std::vector<std::string> texts;
  texts.reserve(n_queries + n_warmup);
  for (int q = 0; q < n_queries + n_warmup; ++q) {
    const int words = static_cast<int>(query_rng.Between(2, 6));
    std::string text;
    for (int w = 0; w < words; ++w) {
      if (w > 0) text += ' ';
      text += gen.WordAt(gen.SampleContentRank());
    }
    texts.push_back(std::move(text));
  }

  // Times `search` over the queries: warmup first, then each timed alone.
  // `search` returns the number of hits.
  struct Timing {
    double first_ms = 0;
    std::vector<double> ms, cpu_ms;
    int64_t hits = 0;
    int zero_hit = 0;
    std::string slowest_query;
    double slowest_ms = -1;
  };
  auto time_queries = [&](const std::function<Result<size_t>(const std::string&)>& search)
      -> Result<Timing> {
    Timing t;
    for (int q = 0; q < n_queries + n_warmup; ++q) {
      const double cpu_before = ThreadCpuSeconds();
      Stopwatch sw;
      auto hits = search(texts[q]);
      const double ms = sw.Millis();
      const double cpu_ms = (ThreadCpuSeconds() - cpu_before) * 1e3;
      if (!hits) return Err(hits.error().WithContext("query '" + texts[q] + "'"));
      if (q == 0) t.first_ms = ms;
      if (q < n_warmup) continue;
      t.ms.push_back(ms);
      t.cpu_ms.push_back(cpu_ms);
      t.hits += static_cast<int64_t>(*hits);
      if (*hits == 0) ++t.zero_hit;
      if (ms > t.slowest_ms) {
        t.slowest_ms = ms;
        t.slowest_query = texts[q];
      }
    }
    std::sort(t.ms.begin(), t.ms.end());
    std::sort(t.cpu_ms.begin(), t.cpu_ms.end());
    return t;
  };

  const int k_hits = static_cast<int>(*k);
  index::LexicalQuery query;
  query.k = k_hits;
  auto lexical = time_queries([&](const std::string& text) -> Result<size_t> {
    query.text = text;
    XNAI_ASSIGN_OR_RETURN(auto hits, index::LexicalSearch(**store, query));
    return hits.size();
  });
  if (!lexical) return FailWith(kName, lexical.error());
  const Timing& lex = *lexical;
  double sum = 0;
  for (double v : lex.ms) sum += v;

  nlohmann::ordered_json out = {
      {"benchmark", "search"},
      {"chunks", n_chunks},
      {"db_bytes", stats->db_bytes},
      {"k", k_hits},
      {"queries", n_queries},
      {"warmup_queries", n_warmup},
      {"query_words", "2-6 content words, Zipf-distributed (exponent 1.07, 50k vocabulary)"},
      {"store_cached", cache_hit},
      {"store_build_seconds", build_seconds},
      {"first_query_ms", lex.first_ms},
      {"mean_ms", sum / static_cast<double>(lex.ms.size())},
      {"p50_ms", Percentile(lex.ms, 50)},
      {"p90_ms", Percentile(lex.ms, 90)},
      {"p99_ms", Percentile(lex.ms, 99)},
      {"max_ms", lex.ms.back()},
      {"slowest_query", lex.slowest_query},
      // The same queries in thread CPU time: what they cost on an idle machine.
      {"cpu_p50_ms", Percentile(lex.cpu_ms, 50)},
      {"cpu_p90_ms", Percentile(lex.cpu_ms, 90)},
      {"cpu_p99_ms", Percentile(lex.cpu_ms, 99)},
      {"mean_hits", static_cast<double>(lex.hits) / static_cast<double>(lex.ms.size())},
      {"zero_hit_queries", lex.zero_hit},
  };

  const int64_t dim = static_cast<int64_t>(*dim_flag);
  if (dim > 0) {
    // Vectors for every chunk (cached in the store and data/vectors/).
    RandomEmbedder embedder(dim);
    index::VectorIndexOptions vector_options;
    // One index file cache per threshold: an exact and an HNSW index differ.
    vector_options.dir =
        dir->path() / ("vectors-" + std::to_string(static_cast<int64_t>(*hnsw_threshold)));
    vector_options.embed_batch = 512;
    vector_options.hnsw_threshold = static_cast<int64_t>(*hnsw_threshold);
    auto vectors = index::VectorIndex::Open(**store, vector_options);
    if (!vectors) return FailWith(kName, vectors.error());
    Stopwatch embed_sw;
    auto space = (*store)->GetVectorSpace(kCollection);
    if (!space) return FailWith(kName, space.error());
    if (*space && ((*space)->model != embedder.id() || (*space)->dim != dim)) {
      auto reset = (*store)->SetVectorSpace(kCollection, embedder.id(), dim);
      if (!reset) return FailWith(kName, reset.error());
    }
    auto embedded = (*vectors)->EmbedPending(kCollection, embedder, [](int64_t done, int64_t total) {
      if (done % 8192 < 512) {
        std::fprintf(stderr, "\r%s: vectors %lld/%lld", kName, static_cast<long long>(done),
                     static_cast<long long>(total));
      }
    });
    if (!embedded) return FailWith(kName, embedded.error());
    const double vectors_seconds = embed_sw.Seconds();
    if (embedded->chunks > 0) std::fprintf(stderr, "\n");
    if (Status saved = (*vectors)->Save(); !saved.ok()) return FailWith(kName, saved);
    auto vstats = (*vectors)->Stats();
    if (!vstats || vstats->empty()) return FailWith(kName, Status::Internal("no vector stats"));
    out["vectors"] = {{"dim", dim},
                    {"index", vstats->front().hnsw ? "hnsw" : "exact"},
                    {"vectors", vstats->front().vectors},
                    {"vectors_made", embedded->chunks},
                    {"vectors_and_index_seconds", vectors_seconds},
                    {"note", "query embedding excluded (a stand-in returns a ready vector)"}};
    // The vector index alone (no store lookups, no fusion).
    {
      auto timing = time_queries([&](const std::string& text) -> Result<size_t> {
        int64_t tokens = 0;
        XNAI_ASSIGN_OR_RETURN(auto v, embedder.Embed({text}, &tokens));
        XNAI_ASSIGN_OR_RETURN(auto hits, (*vectors)->Search(kCollection, v[0], embedder.id(),
                                                            k_hits));
        return hits.size();
      });
      if (!timing) return FailWith(kName, timing.error());
      out["vectors"]["search_p50_ms"] = Percentile(timing->ms, 50);
      out["vectors"]["search_p99_ms"] = Percentile(timing->ms, 99);
    }
    index::Retriever retriever(**store, vectors->get(), &embedder);
    for (auto mode : {index::RetrievalMode::kDense, index::RetrievalMode::kHybrid}) {
      index::RetrievalQuery rq;
      rq.k = k_hits;
      rq.mode = mode;
      auto timing = time_queries([&](const std::string& text) -> Result<size_t> {
        rq.text = text;
        XNAI_ASSIGN_OR_RETURN(auto result, retriever.Retrieve(rq));
        return result.chunks.size();
      });
      if (!timing) return FailWith(kName, timing.error());
      out[index::RetrievalModeName(mode)] = {
          {"p50_ms", Percentile(timing->ms, 50)},
          {"p90_ms", Percentile(timing->ms, 90)},
          {"p99_ms", Percentile(timing->ms, 99)},
          {"max_ms", timing->ms.back()},
          {"cpu_p50_ms", Percentile(timing->cpu_ms, 50)},
          {"cpu_p99_ms", Percentile(timing->cpu_ms, 99)},
          {"mean_hits", static_cast<double>(timing->hits) / static_cast<double>(timing->ms.size())}};
    }
  }
  if (!flags->at("embed-model").empty()) {
    // Embedding the queries with a real model: the part of a dense or
    // hybrid search the numbers above leave out.
    auto model = llm::LocalEmbedder::Load(flags->at("embed-model"), "", 2);
    if (!model) return FailWith(kName, model.error());
    const int n = std::min(n_queries, 200);
    std::vector<double> ms;
    for (int q = 0; q < n; ++q) {
      Stopwatch sw;
      int64_t tokens = 0;
      auto v = (*model)->Embed({texts[q]}, &tokens);
      if (!v) return FailWith(kName, v.error());
      ms.push_back(sw.Millis());
    }
    std::sort(ms.begin(), ms.end());
    out["query_embedding"] = {{"model", (*model)->id()},
                              {"queries", n},
                              {"threads", 2},
                              {"p50_ms", Percentile(ms, 50)},
                              {"p99_ms", Percentile(ms, 99)}};
  }
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace
}  // namespace xnai::bench

int main(int argc, char** argv) { return xnai::bench::Run(argc, argv); }
