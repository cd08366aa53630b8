#include "ingest/ingester.h"

#include <fnmatch.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <system_error>

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
  return options;
}

Result<FileOutcome> Ingester::IngestOne(const IngestOptions& options, const std::string& source,
                                        const std::string& filename, std::string_view bytes,
                                        const std::string& title) {
  bool store_failure = false;
  return IngestOneClassified(options, source, filename, bytes, title, &store_failure);
}

Result<FileOutcome> Ingester::IngestOneClassified(const IngestOptions& options,
                                                  const std::string& source,
                                                  const std::string& filename,
                                                  std::string_view bytes, const std::string& title,
                                                  bool* store_failure) {
  *store_failure = false;
  auto store_error = [&](const Status& status) {
    *store_failure = true;
    return Err(status);
  };
  if (static_cast<int64_t>(bytes.size()) > options.max_file_bytes) {
    return Err(Status::TooLarge(source + " is " + std::to_string(bytes.size()) +
                                " bytes, over the limit of " +
                                std::to_string(options.max_file_bytes)));
  }
  FileOutcome outcome;
  outcome.source = source;
  outcome.bytes = static_cast<int64_t>(bytes.size());
  const std::string sha256 = Sha256Hex(bytes);

  // Unchanged content is recognised before any parsing: re-ingesting a large
  // folder costs one hash per file.
  auto existing = store_.FindDocument(options.collection, source);
  if (!existing) return store_error(existing.error());
  if (existing->has_value() && (*existing)->sha256 == sha256) {
    std::lock_guard<std::mutex> lock(BlobLifecycleMutex());
    if (!blobs_.Has(sha256)) {  // e.g. the blobs folder was pruned by hand
      auto put = blobs_.Put(bytes);
      if (!put) return store_error(put.error());
    }
    outcome.kind = FileOutcome::Kind::kUnchanged;
    outcome.document_id = (*existing)->id;
    outcome.chunks = (*existing)->chunk_count;
    return outcome;
  }

  auto media_type = DetectMediaType(filename, bytes);
  if (!media_type) return Err(media_type.error());
  auto parsed = Parse(*media_type, bytes);
  if (!parsed) return Err(parsed.error());
  std::vector<store::ChunkInput> chunks = ChunkDocument(*parsed, options.chunking);
  if (chunks.empty()) return Err(Status::Unprocessable("no text to index"));

  store::DocumentInput input;
  input.collection = options.collection;
  input.source = source;
  input.title = !title.empty()           ? title
                : !parsed->title.empty() ? parsed->title
                                         : fs::path(filename).filename().string();
  input.media_type = *media_type;
  input.sha256 = sha256;
  input.size_bytes = static_cast<int64_t>(bytes.size());
  input.chunks = std::move(chunks);

  std::lock_guard<std::mutex> lock(BlobLifecycleMutex());
  // Look again under the lock: another thread may have replaced the document
  // since, and it is the blob being replaced now that may become garbage.
  existing = store_.FindDocument(options.collection, source);
  if (!existing) return store_error(existing.error());
  bool blob_was_present = blobs_.Has(sha256);
  auto put_blob = blobs_.Put(bytes);
  if (!put_blob) return store_error(put_blob.error());
  auto put = store_.PutDocument(input);
  if (!put) {
    if (!blob_was_present) {
      // Best effort: do not leave a blob no document references.
      auto refs = store_.CountDocumentsWithSha(sha256);
      if (refs && *refs == 0) (void)blobs_.Remove(sha256);
    }
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
  int64_t done = 0;
  for (const Candidate& candidate : candidates) {
    ++done;
    ++summary.files;
    FileOutcome outcome;
    if (!candidate.skip_reason.empty()) {
      outcome = Skipped(candidate.path.string(), candidate.skip_reason);
    } else {
      const std::string source = candidate.canonical.string();
      auto bytes = ReadFileToString(candidate.path, options.max_file_bytes);
      if (!bytes) {
        const Status& st = bytes.error();
        outcome =
            Skipped(source, st.code() == Status::Code::kNotFound ? "file vanished during ingest"
                                                                 : st.message());
      } else {
        summary.bytes += static_cast<int64_t>(bytes->size());
        bool store_failure = false;
        auto result = IngestOneClassified(options, source, candidate.path.filename().string(),
                                          *bytes, "", &store_failure);
        if (!result) {
          if (store_failure) return Err(result.error());
          outcome = Skipped(source, result.error().message(), static_cast<int64_t>(bytes->size()));
        } else {
          outcome = std::move(*result);
        }
      }
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
    if (progress) progress(done, total, outcome);
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
  return IngestOne(options, effective_source, filename.empty() ? source : filename, bytes, title);
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
