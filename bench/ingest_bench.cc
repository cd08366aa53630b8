// ingest_bench: ingestion throughput of plain text and markdown, end to end
// through ingest::Ingester (read, detect, parse, chunk, blob, SQLite store
// with FTS5), and parse+chunk alone to show where the time goes.
//
//   ingest_bench [--mb 40] [--work-dir DIR] [--seed 42] [--keep 0]
//
// Writes a deterministic synthetic corpus (half .txt, half .md, files of
// 16-192 KiB) into the work dir, ingests it into a fresh data dir there,
// and prints one JSON object on stdout. Exit 1 if any file fails to ingest:
// a benchmark over failures would measure nothing.
#include <sys/resource.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/files.h"
#include "base/log.h"
#include "bench/bench_util.h"
#include "bench/synth_text.h"
#include "ingest/chunker.h"
#include "ingest/ingester.h"
#include "ingest/parse.h"
#include "store/blob_store.h"
#include "store/store.h"

namespace xnai::bench {
namespace {

constexpr const char* kName = "ingest_bench";
constexpr double kMiB = 1024.0 * 1024.0;

struct CorpusFile {
  std::filesystem::path path;
  std::string bytes;
};

// Generates about `total_bytes` of one format into `dir`.
Result<std::vector<CorpusFile>> WriteCorpus(SynthText& gen, const std::filesystem::path& dir,
                                            bool markdown, int64_t total_bytes) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Err(Status::IOError("cannot create " + dir.string() + ": " + ec.message()));
  std::vector<CorpusFile> files;
  int64_t written = 0;
  while (written < total_bytes) {
    // Real document folders mix short notes and long manuals.
    size_t size = static_cast<size_t>(gen.rng().Between(16 << 10, 192 << 10));
    if (static_cast<int64_t>(size) > total_bytes - written) {
      size = static_cast<size_t>(std::max<int64_t>(total_bytes - written, 512));
    }
    CorpusFile f;
    char name[32];
    std::snprintf(name, sizeof(name), "doc-%05zu.%s", files.size(), markdown ? "md" : "txt");
    f.path = dir / name;
    f.bytes = markdown ? gen.MarkdownDocument(size) : gen.PlainDocument(size);
    std::ofstream out(f.path, std::ios::binary | std::ios::trunc);
    out.write(f.bytes.data(), static_cast<std::streamsize>(f.bytes.size()));
    if (!out) return Err(Status::IOError("cannot write " + f.path.string()));
    written += static_cast<int64_t>(f.bytes.size());
    files.push_back(std::move(f));
  }
  return files;
}

struct ParseChunkTiming {
  double detect_seconds = 0;
  double parse_seconds = 0;
  double chunk_seconds = 0;
  int64_t chunks = 0;
};

// Detect + parse + chunk from memory: the CPU part of ingestion, without
// file reads, hashing, blobs or SQLite.
Result<ParseChunkTiming> ParseAndChunk(const std::vector<CorpusFile>& files,
                                       const ingest::ChunkOptions& options) {
  ParseChunkTiming t;
  for (const auto& f : files) {
    Stopwatch sw;
    auto type = ingest::DetectMediaType(f.path.filename().string(), f.bytes);
    if (!type) return Err(type.error().WithContext(f.path.string()));
    t.detect_seconds += sw.Seconds();
    sw.Restart();
    auto doc = ingest::Parse(*type, f.bytes);
    if (!doc) return Err(doc.error().WithContext(f.path.string()));
    t.parse_seconds += sw.Seconds();
    sw.Restart();
    auto chunks = ingest::ChunkDocument(*doc, options);
    t.chunk_seconds += sw.Seconds();
    t.chunks += static_cast<int64_t>(chunks.size());
  }
  return t;
}

int64_t TotalBytes(const std::vector<CorpusFile>& files) {
  int64_t total = 0;
  for (const auto& f : files) total += static_cast<int64_t>(f.bytes.size());
  return total;
}

// CPU seconds of the calling thread alone: IngestPaths writes the Store on
// it while worker threads prepare files, so this is the serial part.
double ThreadCpuSeconds() {
  rusage usage{};
  if (getrusage(RUSAGE_THREAD, &usage) != 0) return 0;
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec * 1e-6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

double MBps(int64_t bytes, double seconds) { return seconds > 0 ? bytes / kMiB / seconds : 0; }

int Run(int argc, char** argv) {
  auto flags =
      ParseFlags(argc, argv, {{"mb", "40"}, {"work-dir", ""}, {"seed", "42"}, {"keep", "0"}});
  if (!flags) {
    if (flags.error().code() == Status::Code::kNotFound) {
      std::printf("usage: %s [--mb 40] [--work-dir DIR] [--seed 42] [--keep 0|1]\n", kName);
      return 0;
    }
    return FailWith(kName, flags.error());
  }
  auto mb = FlagNumber(*flags, "mb", 0.01, 4096);
  if (!mb) return FailWith(kName, mb.error());
  auto seed = FlagNumber(*flags, "seed", 0, 1e15);
  if (!seed) return FailWith(kName, seed.error());
  auto work = ScratchDir::Make(flags->at("work-dir"), "xnai-ingest-bench");
  if (!work) return FailWith(kName, work.error());
  work->set_keep(flags->at("keep") == "1");
  // Ingestion logs nothing per file at warn level; keep stderr for errors.
  log::Configure(log::Level::kWarn, log::Format::kText);

  // A fresh corpus and data dir every run: the ingester skips unchanged files.
  std::error_code ec;
  std::filesystem::remove_all(work->path() / "corpus", ec);
  std::filesystem::remove_all(work->path() / "data", ec);

  const int64_t total_bytes = static_cast<int64_t>(*mb * kMiB);
  SynthText gen(static_cast<uint64_t>(*seed));
  Stopwatch gen_sw;
  auto txt = WriteCorpus(gen, work->path() / "corpus" / "txt", false, total_bytes / 2);
  if (!txt) return FailWith(kName, txt.error());
  auto md = WriteCorpus(gen, work->path() / "corpus" / "md", true, total_bytes - total_bytes / 2);
  if (!md) return FailWith(kName, md.error());
  const double gen_seconds = gen_sw.Seconds();
  std::fprintf(stderr, "%s: corpus %.1f MiB (%zu txt + %zu md files) in %.1fs\n", kName,
               (TotalBytes(*txt) + TotalBytes(*md)) / kMiB, txt->size(), md->size(), gen_seconds);

  auto store = store::OpenSqliteStore(work->path() / "data" / "xnai.db");
  if (!store) return FailWith(kName, store.error());
  auto blobs = store::BlobStore::Open(work->path() / "data" / "blobs");
  if (!blobs) return FailWith(kName, blobs.error());
  ingest::Ingester ingester(**store, *blobs);

  nlohmann::ordered_json formats = nlohmann::ordered_json::object();
  int64_t all_bytes = 0;
  double all_seconds = 0;
  double all_cpu_seconds = 0;
  double all_parse_chunk_seconds = 0;
  int64_t all_chunks = 0;
  for (const auto& [label, files] :
       {std::pair<std::string, const std::vector<CorpusFile>*>{"txt", &*txt},
        std::pair<std::string, const std::vector<CorpusFile>*>{"md", &*md}}) {
    ingest::IngestOptions options;
    options.collection = label;
    Stopwatch sw;
    const double cpu_before = ProcessCpuSeconds();
    const double thread_cpu_before = ThreadCpuSeconds();
    auto summary = ingester.IngestPaths({work->path() / "corpus" / label}, options);
    const double seconds = sw.Seconds();
    const double cpu_seconds = ProcessCpuSeconds() - cpu_before;
    const double thread_cpu_seconds = ThreadCpuSeconds() - thread_cpu_before;
    if (!summary) return FailWith(kName, summary.error());
    if (summary->added != static_cast<int64_t>(files->size()) || summary->skipped != 0) {
      std::string why = summary->skipped_files.empty() ? std::string("unexpected outcome")
                                                       : summary->skipped_files[0].source + ": " +
                                                             summary->skipped_files[0].reason;
      return FailWith(
          kName, Status::Internal(label + ": " + std::to_string(summary->added) + " of " +
                                  std::to_string(files->size()) + " files added, " +
                                  std::to_string(summary->skipped) + " skipped (" + why + ")"));
    }
    auto pc = ParseAndChunk(*files, options.chunking);
    if (!pc) return FailWith(kName, pc.error());
    const int64_t bytes = TotalBytes(*files);
    const double pc_seconds = pc->detect_seconds + pc->parse_seconds + pc->chunk_seconds;
    formats[label] = {
        {"files", files->size()},
        {"bytes", bytes},
        {"chunks", summary->chunks},
        {"end_to_end_seconds", seconds},
        {"end_to_end_mb_per_s", MBps(bytes, seconds)},
        // Wall time well above CPU time means waiting: fsync, locks, a busy machine.
        {"end_to_end_cpu_seconds", cpu_seconds},
        {"end_to_end_cpu_mb_per_s", MBps(bytes, cpu_seconds)},
        // The calling thread's share (the Store writes): the bound on wall
        // throughput however many cores prepare files.
        {"end_to_end_calling_thread_cpu_seconds", thread_cpu_seconds},
        {"end_to_end_calling_thread_cpu_mb_per_s", MBps(bytes, thread_cpu_seconds)},
        {"detect_seconds", pc->detect_seconds},
        {"parse_seconds", pc->parse_seconds},
        {"chunk_seconds", pc->chunk_seconds},
        {"parse_chunk_mb_per_s", MBps(bytes, pc_seconds)},
        {"detect_mb_per_s", MBps(bytes, pc->detect_seconds)},
        {"parse_mb_per_s", MBps(bytes, pc->parse_seconds)},
        {"chunk_mb_per_s", MBps(bytes, pc->chunk_seconds)},
        // What is left of end to end: reading, hashing, blobs, SQLite + FTS5.
        {"store_and_io_seconds", std::max(0.0, seconds - pc_seconds)},
    };
    std::fprintf(stderr, "%s: %s %.1f MiB end-to-end %.1f MB/s, parse+chunk %.1f MB/s\n", kName,
                 label.c_str(), bytes / kMiB, MBps(bytes, seconds), MBps(bytes, pc_seconds));
    all_bytes += bytes;
    all_seconds += seconds;
    all_cpu_seconds += cpu_seconds;
    all_parse_chunk_seconds += pc_seconds;
    all_chunks += summary->chunks;
  }

  auto stats = (*store)->Stats();
  nlohmann::ordered_json out = {
      {"benchmark", "ingest"},
      {"unit_note", "MB = MiB (2^20 bytes) of input file bytes"},
      {"seed", static_cast<uint64_t>(*seed)},
      {"corpus_generation_seconds", gen_seconds},
      {"bytes", all_bytes},
      {"chunks", all_chunks},
      {"end_to_end_seconds", all_seconds},
      {"end_to_end_mb_per_s", MBps(all_bytes, all_seconds)},
      {"end_to_end_cpu_seconds", all_cpu_seconds},
      {"end_to_end_cpu_mb_per_s", MBps(all_bytes, all_cpu_seconds)},
      {"parse_chunk_mb_per_s", MBps(all_bytes, all_parse_chunk_seconds)},
      {"db_bytes", stats ? stats->db_bytes : -1},
      {"peak_rss_note", "RSS of the benchmark process, corpus held in memory"},
      {"rss_bytes", CurrentRssBytes()},
      {"formats", formats},
  };
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace
}  // namespace xnai::bench

int main(int argc, char** argv) { return xnai::bench::Run(argc, argv); }
