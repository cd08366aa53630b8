// EmbeddingWorker: keeps every collection's vectors up to date in the
// background while the server runs. On start it embeds whatever chunks have
// no vector yet (a previous run stopped or killed midway, documents ingested
// without an embedding model); after that, Notify(collection) — called once
// documents were ingested — queues the collection again. The Store is the
// queue: nothing is lost when the process dies, the next start resumes.
//
// A collection whose vectors came from another model is left alone (logged
// once, with the hint to run `xnai reindex`). Index files are saved after
// each pass that changed something, and on Stop.
//
// Thread safety: Notify and status may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "index/vector_index.h"

namespace xnai::index {

struct EmbeddingWorkerStatus {
  bool busy = false;
  std::string collection;   // being embedded now
  int64_t queued = 0;       // collections waiting
  int64_t embedded = 0;     // chunks embedded since start
  std::string last_error;   // empty when the last pass went well
};

class EmbeddingWorker {
 public:
  EmbeddingWorker(store::Store& store, VectorIndex& vectors, llm::Embedder& embedder);
  ~EmbeddingWorker();  // Stop()

  // Starts the thread; the first pass covers every collection.
  void Start();
  void Notify(const std::string& collection);
  // Ends the current batch, saves the index files, joins. Idempotent.
  void Stop();
  EmbeddingWorkerStatus status();

 private:
  void Run();
  store::Store& store_;
  VectorIndex& vectors_;
  llm::Embedder& embedder_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::string> queue_;
  std::set<std::string> mismatch_logged_;
  EmbeddingWorkerStatus status_;
  std::thread thread_;
};

}  // namespace xnai::index
