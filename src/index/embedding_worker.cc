#include "index/embedding_worker.h"

#include <algorithm>

#include "base/log.h"

namespace xnai::index {

EmbeddingWorker::EmbeddingWorker(store::Store& store, VectorIndex& vectors,
                                 llm::Embedder& embedder)
    : store_(store), vectors_(vectors), embedder_(embedder) {}

EmbeddingWorker::~EmbeddingWorker() { Stop(); }

void EmbeddingWorker::Start() {
  if (thread_.joinable()) return;
  auto collections = store_.ListCollections();
  if (collections) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& c : *collections) queue_.push_back(c.name);
    status_.queued = static_cast<int64_t>(queue_.size());
  } else {
    log::Warn("vectors.worker_start", {{"error", collections.error().ToString()}});
  }
  thread_ = std::thread([this] { Run(); });
}

void EmbeddingWorker::Notify(const std::string& collection) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (std::find(queue_.begin(), queue_.end(), collection) == queue_.end()) {
      queue_.push_back(collection);
    }
    mismatch_logged_.erase(collection);
    status_.queued = static_cast<int64_t>(queue_.size());
  }
  wake_.notify_one();
}

void EmbeddingWorker::Stop() {
  stop_ = true;
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

EmbeddingWorkerStatus EmbeddingWorker::status() {
  std::lock_guard<std::mutex> lock(mutex_);
  return status_;
}

void EmbeddingWorker::Run() {
  while (true) {
    std::string collection;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) break;
      collection = queue_.front();
      queue_.pop_front();
      status_.queued = static_cast<int64_t>(queue_.size());
      status_.busy = true;
      status_.collection = collection;
    }
    auto summary = vectors_.EmbedPending(collection, embedder_, nullptr, &stop_);
    std::string error;
    if (summary) {
      if (summary->chunks > 0) {
        log::Info("vectors.embedded", {{"collection", collection},
                                       {"chunks", summary->chunks},
                                       {"tokens", summary->tokens},
                                       {"truncated", summary->truncated},
                                       {"seconds", summary->seconds}});
        if (Status saved = vectors_.Save(); !saved.ok()) {
          log::Warn("vectors.save_failed", {{"error", saved.ToString()}});
        }
      }
    } else if (summary.error().code() == Status::Code::kNotFound) {
      // The collection was deleted meanwhile: nothing to do.
    } else {
      error = summary.error().ToString();
      bool first = true;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        first = mismatch_logged_.insert(collection).second;
      }
      if (first) log::Warn("vectors.embed_failed", {{"collection", collection}, {"error", error}});
    }
    std::lock_guard<std::mutex> lock(mutex_);
    status_.busy = false;
    status_.collection.clear();
    if (summary) status_.embedded += summary->chunks;
    status_.last_error = error;
  }
  if (Status saved = vectors_.Save(); !saved.ok()) {
    log::Warn("vectors.save_failed", {{"error", saved.ToString()}});
  }
}

}  // namespace xnai::index
