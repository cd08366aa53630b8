// Ingester: files, folders and uploaded bytes -> parsed, chunked documents in
// the Store, originals kept in the BlobStore. Synchronous (the durable worker
// comes later): IngestPaths prepares upcoming files on a few threads of its
// own but returns only when they are all done. Safe to call from several
// threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "base/config.h"
#include "base/status.h"
#include "ingest/chunker.h"
#include "store/blob_store.h"
#include "store/store.h"

namespace xnai::ingest {

struct FileOutcome {
  enum class Kind { kAdded, kUpdated, kUnchanged, kSkipped };
  Kind kind = Kind::kSkipped;
  std::string source;  // absolute path or "upload:NAME"
  std::string reason;  // why skipped
  int64_t document_id = 0;
  int64_t chunks = 0;
  int64_t bytes = 0;
};

struct IngestSummary {
  int64_t files = 0;  // files considered
  int64_t added = 0;
  int64_t updated = 0;
  int64_t unchanged = 0;
  int64_t skipped = 0;
  int64_t chunks = 0;  // chunks written
  int64_t bytes = 0;   // bytes of files read
  std::vector<FileOutcome> skipped_files;
};

// Called after each file: (files done, files total, outcome).
using ProgressFn = std::function<void(int64_t, int64_t, const FileOutcome&)>;

struct IngestOptions {
  std::string collection = "default";
  std::vector<std::string> include;  // fnmatch globs on the path relative to the given root
  std::vector<std::string> exclude;
  ChunkOptions chunking;
  int64_t max_file_bytes = 64ll << 20;
  // A symlinked file inside a walked folder whose target lies outside that
  // folder is skipped unless this is set: a folder handed to the server must
  // not become a way to read /etc through a link planted in it.
  bool follow_symlinks_outside = false;
  // IngestPaths reads, hashes, detects, parses and chunks upcoming files and
  // writes their blobs on this many worker threads while the calling thread
  // writes documents to the Store one by one, in order. 0 picks the number of
  // hardware threads, at most 4; 1 does everything on the calling thread.
  // At most threads + 1 files are held in memory at once, and files are only
  // read ahead while their sizes add up to at most max_bytes_in_flight (one
  // file larger than that is still read, alone).
  int threads = 0;
  int64_t max_bytes_in_flight = 64ll << 20;
};

IngestOptions IngestOptionsFromConfig(const IngestConfig& config, std::string collection);

class Ingester {
 public:
  Ingester(store::Store& store, store::BlobStore& blobs) : store_(store), blobs_(blobs) {}

  // Ingests files and folders (recursively; hidden files and folders skipped).
  // Per-file problems (unsupported, too large, corrupt, vanished) are skipped
  // with a reason and do not stop the run; store failures (disk full, locked)
  // do, and are returned. A path that does not exist is NotFound (checked for
  // every path before anything is written). include/exclude apply to files
  // found inside folders (matched against the path relative to the folder and
  // against the file name; exclude wins; an excluded folder is not entered);
  // files named directly are always considered. Files are processed in sorted
  // order; a file reached twice is ingested once. Symlinked folders are not
  // entered. `source` of each document is the file's canonical absolute path.
  Result<IngestSummary> IngestPaths(const std::vector<std::filesystem::path>& paths,
                                    const IngestOptions& options,
                                    const ProgressFn& progress = nullptr);

  // Ingests bytes received over the API. `filename` drives type detection
  // (with the content); source is "upload:" + filename unless given.
  // Unsupported/Unprocessable/TooLarge are returned as errors here.
  Result<FileOutcome> IngestBytes(const IngestOptions& options, const std::string& filename,
                                  std::string_view bytes, const std::string& title = "",
                                  const std::string& source = "");

 private:
  // What Prepare learned about one file; defined in ingester.cc.
  struct Prepared;
  struct FileWork;

  // The part of ingesting a file that needs no write to the Store: hash,
  // look up the existing document, detect, parse, chunk and, when
  // `stage_blob`, write the blob (durable, but not yet referenced). Safe to
  // run on several threads at once.
  Prepared Prepare(const IngestOptions& options, const std::string& source,
                   const std::string& filename, std::string_view bytes, const std::string& title,
                   bool stage_blob);
  // Writes a prepared file to the Store (its blob first). Sets
  // *store_failure when a failure came from the Store or BlobStore (stops a
  // folder run) rather than from the file (skips it).
  Result<FileOutcome> Commit(const IngestOptions& options, const std::string& source,
                             Prepared& prepared, std::string_view bytes, bool* store_failure);
  // Reads and prepares candidate `work` of a folder run (on a worker thread).
  void PrepareFile(const IngestOptions& options, FileWork& work, bool stage_blob);
  // Removes the blob `sha256` unless a document references it (best effort).
  void DropBlobIfUnreferenced(const std::string& sha256);
  store::Store& store_;
  store::BlobStore& blobs_;
};

// Resolves `requested` (from an API caller) to a canonical path that lies
// inside one of `allowed_roots`, following symlinks, so "..", symlinks and
// absolute paths cannot escape. InvalidArgument when outside or no roots.
Result<std::filesystem::path> ResolveAllowedPath(const std::string& requested,
                                                 const std::vector<std::string>& allowed_roots);

}  // namespace xnai::ingest
