#include "ingest/ingester.h"

#include <fnmatch.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>

#include "base/files.h"
#include "base/log.h"
#include "ingest/parse.h"

namespace xnai::ingest {

namespace fs = std::filesystem;

namespace {

// Blob lifecycle: "put blob, then reference it" must not interleave with
// "count references, then delete blob" for the same content, or a blob could
// be removed just as a new document starts to reference it. One process-wide
// lock (not per Ingester: several Ingesters may share a BlobStore) around both.
std::mutex& BlobLifecycleMutex() {
  static std::mutex mu;
  return mu;
}

bool Matches(const std::vector<std::string>& globs, const std::string& rel,
             const std::string& name) {
  for (const std::string& glob : globs) {
    // No FNM_PATHNAME: "docs/*" covers everything under docs/, the way
    // users expect from tools like rsync/ripgrep.
    if (::fnmatch(glob.c_str(), rel.c_str(), 0) == 0) return true;
    if (::fnmatch(glob.c_str(), name.c_str(), 0) == 0) return true;
  }
  return false;
}

// True if `path` is `root` or lies below it, comparing whole components
// (so /data/docs2 is not inside /data/docs). Both must be canonical.
bool IsWithin(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (r->empty()) continue;  // trailing separator of a root like "/data/"
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

struct Candidate {
  fs::path path;       // as found (may be a symlink)
  fs::path canonical;  // resolved; empty when it vanished or escapes its root
  std::string skip_reason;
};

FileOutcome Skipped(std::string source, std::string reason, int64_t bytes = 0) {
  FileOutcome outcome;
  outcome.kind = FileOutcome::Kind::kSkipped;
  outcome.source = std::move(source);
  outcome.reason = std::move(reason);
  outcome.bytes = bytes;
  return outcome;
}

}  // namespace

IngestOptions IngestOptionsFromConfig(const IngestConfig& config, std::string collection) {
  IngestOptions options;
  options.collection = std::move(collection);
  options.include = config.include;
  options.exclude = config.exclude;
  options.chunking.target_chars = config.chunk_target_chars;
  options.chunking.overlap_chars = config.chunk_overlap_chars;
  options.max_file_bytes = config.max_file_bytes;
  options.threads = config.threads;
  return options;
}

struct Ingester::Prepared {
  Status file_error;   // not OK: the file is skipped (or the upload refused)
  Status store_error;  // not OK: the Store or BlobStore failed; a folder run stops
  std::string sha256;
  // An existing document already holds these bytes: nothing was parsed.
  bool unchanged = false;
  int64_t existing_id = 0;
  int64_t existing_chunks = 0;
  store::DocumentInput input;     // parsed and chunked, when not unchanged
  bool blob_staged = false;       // Prepare wrote (or found) the blob
  bool blob_was_present = false;  // ... and it was there before
};

// One candidate of a folder run, prepared by a worker and committed by the
// calling thread.
struct Ingester::FileWork {
  const Candidate* candidate = nullptr;
  std::string skip_reason;  // the file could not be read
  std::string bytes;
  bool was_read = false;
  Prepared prepared;
  int64_t size_hint = -1;  // bytes on disk when claimed (-1: not yet looked at)
  bool ready = false;      // guarded by the pipeline mutex
};

Ingester::Prepared Ingester::Prepare(const IngestOptions& options, const std::string& source,
                                     const std::string& filename, std::string_view bytes,
                                     const std::string& title, bool stage_blob) {
  Prepared p;
  if (static_cast<int64_t>(bytes.size()) > options.max_file_bytes) {
    p.file_error =
        Status::TooLarge(source + " is " + std::to_string(bytes.size()) +
                         " bytes, over the limit of " + std::to_string(options.max_file_bytes));
    return p;
  }
  p.sha256 = Sha256Hex(bytes);

  // Unchanged content is recognised before any parsing: re-ingesting a large
  // folder costs one hash per file. Within one folder run no earlier file can
  // change this document (sources are unique), so looking ahead is safe.
  auto existing = store_.FindDocument(options.collection, source);
  if (!existing) {
    p.store_error = existing.error();
    return p;
  }
  if (existing->has_value() && (*existing)->sha256 == p.sha256) {
    p.unchanged = true;
    p.existing_id = (*existing)->id;
    p.existing_chunks = (*existing)->chunk_count;
    return p;
  }

  auto media_type = DetectMediaType(filename, bytes);
  if (!media_type) {
    p.file_error = media_type.error();
    return p;
  }
  auto parsed = Parse(*media_type, bytes);
  if (!parsed) {
    p.file_error = parsed.error();
    return p;
  }
  std::vector<store::ChunkInput> chunks = ChunkDocument(*parsed, options.chunking);
  if (chunks.empty()) {
    p.file_error = Status::Unprocessable("no text to index");
    return p;
  }
  store::DocumentInput& input = p.input;
  input.collection = options.collection;
  input.source = source;
  input.title = !title.empty()           ? title
                : !parsed->title.empty() ? parsed->title
                                         : fs::path(filename).filename().string();
  input.media_type = *media_type;
  input.sha256 = p.sha256;
  input.size_bytes = static_cast<int64_t>(bytes.size());
  input.chunks = std::move(chunks);

  if (stage_blob) {
    // Written (and fsynced) here, off the thread that writes the Store, so
    // the fsync overlaps other files' work. Not referenced yet: Commit checks
    // it is still there under the lifecycle lock, and a stopped run removes
    // the staged blobs nobody references.
    p.blob_was_present = blobs_.Has(p.sha256);
    auto put_blob = blobs_.Put(bytes, p.sha256);
    if (!put_blob) {
      p.store_error = put_blob.error();
      return p;
    }
    p.blob_staged = true;
  }
  return p;
}

void Ingester::DropBlobIfUnreferenced(const std::string& sha256) {
  auto refs = store_.CountDocumentsWithSha(sha256);
  if (refs && *refs == 0) (void)blobs_.Remove(sha256);
}

Result<FileOutcome> Ingester::Commit(const IngestOptions& options, const std::string& source,
                                     Prepared& prepared, std::string_view bytes,
                                     bool* store_failure) {
  *store_failure = false;
  auto store_error = [&](const Status& status) {
    *store_failure = true;
    return Err(status);
  };
  if (!prepared.store_error.ok()) return store_error(prepared.store_error);
  if (!prepared.file_error.ok()) return Err(prepared.file_error);
  const std::string& sha256 = prepared.sha256;
  FileOutcome outcome;
  outcome.source = source;
  outcome.bytes = static_cast<int64_t>(bytes.size());

  if (prepared.unchanged) {
    std::lock_guard<std::mutex> lock(BlobLifecycleMutex());
    if (!blobs_.Has(sha256)) {  // e.g. the blobs folder was pruned by hand
      auto put = blobs_.Put(bytes, sha256);
      if (!put) return store_error(put.error());
    }
    outcome.kind = FileOutcome::Kind::kUnchanged;
    outcome.document_id = prepared.existing_id;
    outcome.chunks = prepared.existing_chunks;
    return outcome;
  }

  const store::DocumentInput& input = prepared.input;
  std::lock_guard<std::mutex> lock(BlobLifecycleMutex());
  // Look again under the lock: another thread may have replaced the document
  // since, and it is the blob being replaced now that may become garbage.
  auto existing = store_.FindDocument(options.collection, source);
  if (!existing) {
    if (prepared.blob_staged && !prepared.blob_was_present) DropBlobIfUnreferenced(sha256);
    return store_error(existing.error());
  }
  const bool blob_was_present =
      prepared.blob_staged ? prepared.blob_was_present : blobs_.Has(sha256);
  // A staged blob is normally still in place (a stat); it is put again when
  // something removed it meanwhile (another document let go of the same
  // bytes), so the document never references a missing blob.
  std::error_code ec;
  const auto staged_size = prepared.blob_staged ? fs::file_size(blobs_.PathFor(sha256), ec)
                                                : static_cast<std::uintmax_t>(0);
  if (!prepared.blob_staged || ec || staged_size != bytes.size()) {
    auto put_blob = blobs_.Put(bytes, sha256);
    if (!put_blob) return store_error(put_blob.error());
  }
  auto put = store_.PutDocument(input);
  if (!put) {
    // Best effort: do not leave a blob no document references.
    if (!blob_was_present) DropBlobIfUnreferenced(sha256);
    return store_error(put.error());
  }
  outcome.document_id = put->document.id;
  outcome.chunks = static_cast<int64_t>(input.chunks.size());
  switch (put->outcome) {
    case store::PutOutcome::kCreated:
      outcome.kind = FileOutcome::Kind::kAdded;
      break;
    case store::PutOutcome::kReplaced:
      outcome.kind = FileOutcome::Kind::kUpdated;
      break;
    case store::PutOutcome::kUnchanged:
      outcome.kind = FileOutcome::Kind::kUnchanged;
      outcome.chunks = put->document.chunk_count;
      break;
  }
  if (put->outcome == store::PutOutcome::kReplaced && existing->has_value() &&
      (*existing)->sha256 != sha256) {
    // The document is stored; failing to collect the old blob only leaves
    // garbage behind, so it is logged rather than failing the ingest.
    const std::string& old_sha = (*existing)->sha256;
    auto refs = store_.CountDocumentsWithSha(old_sha);
    Status removed = !refs ? refs.error() : *refs == 0 ? blobs_.Remove(old_sha) : Status::Ok();
    if (!removed.ok()) {
      log::Warn("ingest.blob_cleanup_failed", {{"sha256", old_sha}, {"error", removed.ToString()}});
    }
  }
  return outcome;
}

void Ingester::PrepareFile(const IngestOptions& options, FileWork& work, bool stage_blob) {
  const Candidate& candidate = *work.candidate;
  if (!candidate.skip_reason.empty()) return;
  try {
    auto bytes = ReadFileToString(candidate.path, options.max_file_bytes);
    if (!bytes) {
      const Status& st = bytes.error();
      work.skip_reason =
          st.code() == Status::Code::kNotFound ? "file vanished during ingest" : st.message();
      return;
    }
    work.bytes = std::move(*bytes);
    work.was_read = true;
    work.prepared = Prepare(options, candidate.canonical.string(),
                            candidate.path.filename().string(), work.bytes, "", stage_blob);
  } catch (const std::exception& e) {
    // Out of memory on a huge file, most likely: the file is skipped, the run
    // goes on (the worker thread must not die with an exception).
    work.prepared = Prepared();
    work.prepared.file_error = Status::Internal(std::string("cannot ingest: ") + e.what());
  }
}

Result<IngestSummary> Ingester::IngestPaths(const std::vector<fs::path>& paths,
                                            const IngestOptions& options,
                                            const ProgressFn& progress) {
  // Every path is checked before anything is written.
  std::vector<fs::path> roots;
  for (const fs::path& path : paths) {
    std::error_code ec;
    fs::file_status st = fs::status(path, ec);
    if (ec || !fs::exists(st)) {
      return Err(Status::NotFound("path '" + path.string() + "' does not exist"));
    }
    if (!fs::is_regular_file(st) && !fs::is_directory(st)) {
      return Err(Status::InvalidArgument("'" + path.string() + "' is not a file or a folder"));
    }
    fs::path canonical = fs::canonical(path, ec);
    if (ec) return Err(StatusFromErrno(ec.value(), "resolve '" + path.string() + "'"));
    roots.push_back(std::move(canonical));
  }
  auto collection = store_.EnsureCollection(options.collection);
  if (!collection) return Err(collection.error());

  std::vector<Candidate> candidates;
  for (const fs::path& root : roots) {
    if (fs::is_regular_file(root)) {
      candidates.push_back({root, root, ""});
      continue;
    }
    std::vector<Candidate> found;
    std::error_code ec;
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
    fs::recursive_directory_iterator end;
    if (ec) {
      candidates.push_back({root, {}, "cannot list folder: " + ec.message()});
      continue;
    }
    for (; it != end; it.increment(ec)) {
      if (ec) break;
      const fs::path& path = it->path();
      std::string name = path.filename().string();
      std::string rel = path.lexically_relative(root).generic_string();
      std::error_code type_ec;
      bool is_symlink = it->is_symlink(type_ec);
      bool is_dir = !is_symlink && it->is_directory(type_ec);
      if (!name.empty() && name[0] == '.') {
        if (is_dir) it.disable_recursion_pending();
        continue;
      }
      if (is_dir) {
        if (Matches(options.exclude, rel, name)) it.disable_recursion_pending();
        continue;
      }
      if (is_symlink && !fs::exists(fs::status(path, type_ec))) {
        // A broken link is reported, not silently dropped: the user asked
        // for this folder and should learn why a file in it is missing.
        if (Matches(options.exclude, rel, name)) continue;
        found.push_back({path, {}, "broken symlink (its target does not exist)"});
        continue;
      }
      if (!it->is_regular_file(type_ec)) continue;  // sockets, fifos, links to folders
      if (!options.include.empty() && !Matches(options.include, rel, name)) continue;
      if (Matches(options.exclude, rel, name)) continue;
      Candidate candidate{path, path, ""};
      if (is_symlink) {
        candidate.canonical = fs::canonical(path, type_ec);
        if (type_ec) {
          candidate.canonical.clear();
          candidate.skip_reason = "file vanished during ingest";
        } else if (!options.follow_symlinks_outside && !IsWithin(candidate.canonical, root)) {
          candidate.canonical.clear();
          candidate.skip_reason = "symlink points outside '" + root.string() + "'";
        }
      }
      found.push_back(std::move(candidate));
    }
    if (ec) {
      candidates.push_back({root, {}, "stopped listing folder: " + ec.message()});
    }
    std::sort(found.begin(), found.end(),
              [](const Candidate& a, const Candidate& b) { return a.path < b.path; });
    for (Candidate& c : found) candidates.push_back(std::move(c));
  }

  // The same file reached through two given paths is ingested once.
  std::set<std::string> seen;
  std::erase_if(candidates, [&seen](const Candidate& c) {
    return c.skip_reason.empty() && !seen.insert(c.canonical.string()).second;
  });

  IngestSummary summary;
  const auto total = static_cast<int64_t>(candidates.size());
  std::vector<FileWork> works(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) works[i].candidate = &candidates[i];

  // Workers prepare files ahead, in order, at most `window` past the next one
  // to commit and, unless nothing else is in flight, within
  // max_bytes_in_flight (so a few huge files are not all held at once); this
  // thread commits them in order, so results, progress calls
  // and the point where a store failure stops the run are exactly those of a
  // one-file-at-a-time run.
  int threads = options.threads > 0
                    ? options.threads
                    : static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 4u));
  threads = static_cast<int>(std::min<int64_t>(threads, total));
  const bool parallel = threads > 1;
  const int64_t window = threads + 1;
  std::mutex mu;
  std::condition_variable work_ready;  // a FileWork became ready
  std::condition_variable room;        // the window moved, or stop
  int64_t next_to_claim = 0;           // guarded by mu
  int64_t next_to_commit = 0;          // guarded by mu
  int64_t bytes_in_flight = 0;         // guarded by mu: size_hint of claimed, uncommitted files
  // May the next file be claimed now? Called with mu held.
  auto may_claim = [&] {
    if (next_to_claim >= next_to_commit + window) return false;
    FileWork& next = works[static_cast<size_t>(next_to_claim)];
    if (next.size_hint < 0) {
      std::error_code ec;  // skipped candidates and vanished files count as empty
      const auto size = next.candidate->skip_reason.empty()
                            ? fs::file_size(next.candidate->path, ec)
                            : std::uintmax_t{0};
      next.size_hint = ec ? 0 : static_cast<int64_t>(size);
    }
    return bytes_in_flight == 0 || bytes_in_flight + next.size_hint <= options.max_bytes_in_flight;
  };
  bool stop = false;  // guarded by mu
  std::vector<std::thread> workers;
  auto stop_workers = [&] {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    room.notify_all();
    for (std::thread& worker : workers) worker.join();
    workers.clear();
  };
  if (parallel) {
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&] {
        std::unique_lock<std::mutex> lock(mu);
        for (;;) {
          room.wait(lock, [&] { return stop || next_to_claim >= total || may_claim(); });
          if (stop || next_to_claim >= total) return;
          FileWork& work = works[static_cast<size_t>(next_to_claim++)];
          bytes_in_flight += work.size_hint;
          lock.unlock();
          PrepareFile(options, work, /*stage_blob=*/true);
          lock.lock();
          work.ready = true;
          work_ready.notify_all();
        }
      });
    }
  }
  // Whatever way this function returns, the workers are stopped and joined.
  struct JoinOnExit {
    std::function<void()> fn;
    ~JoinOnExit() { fn(); }
  } join_on_exit{stop_workers};

  for (int64_t index = 0; index < total; ++index) {
    FileWork& work = works[static_cast<size_t>(index)];
    if (parallel) {
      std::unique_lock<std::mutex> lock(mu);
      work_ready.wait(lock, [&] { return work.ready; });
    } else {
      PrepareFile(options, work, /*stage_blob=*/false);
    }
    const Candidate& candidate = *work.candidate;
    ++summary.files;
    FileOutcome outcome;
    if (!candidate.skip_reason.empty()) {
      outcome = Skipped(candidate.path.string(), candidate.skip_reason);
    } else if (!work.was_read) {
      outcome = Skipped(candidate.canonical.string(), work.skip_reason);
    } else {
      const std::string source = candidate.canonical.string();
      summary.bytes += static_cast<int64_t>(work.bytes.size());
      bool store_failure = false;
      auto result = Commit(options, source, work.prepared, work.bytes, &store_failure);
      if (!result) {
        if (store_failure) {
          // Files prepared ahead may have staged blobs no document will
          // reference now: remove them once the workers are done.
          stop_workers();
          std::lock_guard<std::mutex> lock(BlobLifecycleMutex());
          for (size_t later = static_cast<size_t>(index) + 1; later < works.size(); ++later) {
            const Prepared& p = works[later].prepared;
            if (works[later].ready && p.blob_staged && !p.blob_was_present) {
              DropBlobIfUnreferenced(p.sha256);
            }
          }
          return Err(result.error());
        }
        outcome =
            Skipped(source, result.error().message(), static_cast<int64_t>(work.bytes.size()));
      } else {
        outcome = std::move(*result);
      }
    }
    // Done with this file: free its bytes and chunks before the next.
    work.bytes = std::string();
    work.prepared = Prepared();
    if (parallel) {
      {
        std::lock_guard<std::mutex> lock(mu);
        next_to_commit = index + 1;
        bytes_in_flight -= work.size_hint;
      }
      room.notify_all();
    }
    switch (outcome.kind) {
      case FileOutcome::Kind::kAdded:
        ++summary.added;
        summary.chunks += outcome.chunks;
        break;
      case FileOutcome::Kind::kUpdated:
        ++summary.updated;
        summary.chunks += outcome.chunks;
        break;
      case FileOutcome::Kind::kUnchanged:
        ++summary.unchanged;
        break;
      case FileOutcome::Kind::kSkipped:
        ++summary.skipped;
        summary.skipped_files.push_back(outcome);
        break;
    }
    if (progress) progress(index + 1, total, outcome);
  }
  return summary;
}

Result<FileOutcome> Ingester::IngestBytes(const IngestOptions& options, const std::string& filename,
                                          std::string_view bytes, const std::string& title,
                                          const std::string& source) {
  if (filename.empty() && source.empty()) {
    return Err(Status::InvalidArgument("an upload needs a filename or a source"));
  }
  if (static_cast<int64_t>(bytes.size()) > options.max_file_bytes) {
    return Err(Status::TooLarge("upload of " + std::to_string(bytes.size()) +
                                " bytes is over the limit of " +
                                std::to_string(options.max_file_bytes)));
  }
  auto collection = store_.EnsureCollection(options.collection);
  if (!collection) return Err(collection.error());
  const std::string effective_source = source.empty() ? "upload:" + filename : source;
  Prepared prepared = Prepare(options, effective_source, filename.empty() ? source : filename,
                              bytes, title, /*stage_blob=*/false);
  bool store_failure = false;
  return Commit(options, effective_source, prepared, bytes, &store_failure);
}

Result<fs::path> ResolveAllowedPath(const std::string& requested,
                                    const std::vector<std::string>& allowed_roots) {
  if (allowed_roots.empty()) {
    return Err(Status::InvalidArgument("ingesting by path is disabled: set ingest.allowed_roots"));
  }
  if (requested.empty() || requested.find('\0') != std::string::npos) {
    return Err(Status::InvalidArgument("path is empty or invalid"));
  }
  fs::path path(requested);
  if (!path.is_absolute()) {
    return Err(Status::InvalidArgument("path '" + requested + "' must be absolute"));
  }
  std::error_code ec;
  // Resolves every symlink and ".." in the part that exists; a missing tail is
  // normalized lexically (and will be NotFound when ingested).
  fs::path resolved = fs::weakly_canonical(path, ec);
  if (ec)
    return Err(Status::InvalidArgument("cannot resolve path '" + requested + "': " + ec.message()));
  for (const std::string& root : allowed_roots) {
    fs::path canonical_root = fs::canonical(root, ec);
    if (ec) continue;  // a root that does not exist admits nothing
    if (IsWithin(resolved, canonical_root)) return resolved;
  }
  return Err(Status::InvalidArgument("path '" + requested + "' is outside the allowed roots"));
}

}  // namespace xnai::ingest
