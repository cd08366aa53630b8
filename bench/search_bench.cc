// search_bench: lexical (BM25) search latency through index::LexicalSearch
// over a store of synthetic chunks.
//
//   search_bench [--chunks 100000] [--queries 2000] [--k 10] [--cache DIR]
//                [--seed 7] [--warmup 100]
//
// The store (about 1000 characters per chunk, Zipf vocabulary so terms have
// realistic document frequencies, 20 chunks per document) is built under
// --cache and reused while its parameters match (params.json), because
// building 100k chunks takes far longer than searching them. Without
// --cache a temp dir is used and removed. Queries are 2-6 content words
// drawn from the same Zipf law, as a user would type them; each is timed
// alone, after `warmup` untimed queries. Prints one JSON object on stdout.
#include <algorithm>
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
                           {"warmup", "100"}});
  if (!flags) {
    if (flags.error().code() == Status::Code::kNotFound) {
      std::printf(
          "usage: %s [--chunks 100000] [--queries 2000] [--k 10] [--cache DIR] "
          "[--seed 7] [--warmup 100]\n",
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
  for (const auto* r : {&chunks, &queries, &k, &seed, &warmup}) {
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

  index::LexicalQuery query;
  query.k = static_cast<int>(*k);
  double first_query_ms = 0;
  std::vector<double> latencies_ms;
  latencies_ms.reserve(n_queries);
  std::vector<double> cpu_ms_all;  // thread CPU time of each timed query
  cpu_ms_all.reserve(n_queries);
  int64_t total_hits = 0;
  int zero_hit_queries = 0;
  std::string slowest_query;
  double slowest_ms = -1;
  for (int q = 0; q < n_queries + n_warmup; ++q) {
    query.text = texts[q];
    const double cpu_before = ThreadCpuSeconds();
    Stopwatch sw;
    auto hits = index::LexicalSearch(**store, query);
    const double ms = sw.Millis();
    const double cpu_ms = (ThreadCpuSeconds() - cpu_before) * 1e3;
    if (!hits) return FailWith(kName, hits.error().WithContext("query '" + texts[q] + "'"));
    if (q == 0) first_query_ms = ms;
    if (q < n_warmup) continue;
    latencies_ms.push_back(ms);
    cpu_ms_all.push_back(cpu_ms);
    total_hits += static_cast<int64_t>(hits->size());
    if (hits->empty()) ++zero_hit_queries;
    if (ms > slowest_ms) {
      slowest_ms = ms;
      slowest_query = texts[q];
    }
  }
  std::vector<double> sorted = latencies_ms;
  std::sort(sorted.begin(), sorted.end());
  std::sort(cpu_ms_all.begin(), cpu_ms_all.end());
  double sum = 0;
  for (double v : sorted) sum += v;

  nlohmann::ordered_json out = {
      {"benchmark", "search"},
      {"chunks", n_chunks},
      {"db_bytes", stats->db_bytes},
      {"k", query.k},
      {"queries", n_queries},
      {"warmup_queries", n_warmup},
      {"query_words", "2-6 content words, Zipf-distributed (exponent 1.07, 50k vocabulary)"},
      {"store_cached", cache_hit},
      {"store_build_seconds", build_seconds},
      {"first_query_ms", first_query_ms},
      {"mean_ms", sum / static_cast<double>(sorted.size())},
      {"p50_ms", Percentile(sorted, 50)},
      {"p90_ms", Percentile(sorted, 90)},
      {"p99_ms", Percentile(sorted, 99)},
      {"max_ms", sorted.back()},
      {"slowest_query", slowest_query},
      // The same queries in thread CPU time: what they cost on an idle machine.
      {"cpu_p50_ms", Percentile(cpu_ms_all, 50)},
      {"cpu_p90_ms", Percentile(cpu_ms_all, 90)},
      {"cpu_p99_ms", Percentile(cpu_ms_all, 99)},
      {"mean_hits", static_cast<double>(total_hits) / static_cast<double>(sorted.size())},
      {"zero_hit_queries", zero_hit_queries},
  };
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace
}  // namespace xnai::bench

int main(int argc, char** argv) { return xnai::bench::Run(argc, argv); }
