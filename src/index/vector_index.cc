#include "index/vector_index.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>
#include <shared_mutex>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "base/files.h"
#include "base/log.h"
#include "index/flat_storage.h"

namespace xnai::index {

namespace {

using FaissLabel = faiss::Index::idx_t;
constexpr int kPage = 4096;              // vectors or log entries per Store call
constexpr char kFileMagic[8] = {'X', 'N', 'A', 'I', 'V', 'E', 'C', '1'};
constexpr int64_t kMaxManifestBytes = 1 << 20;

Status FaissError(const std::string& what, const std::exception& e) {
  return Status::Internal(what + ": " + e.what());
}

std::string ReindexHint(const std::string& collection) {
  return "run `xnai reindex --embed-model MODEL.gguf --collection " + collection +
         "` to embed it again";
}

// Puts the engine's SIMD distances under an HNSW graph (the storage keeps
// the vectors; FAISS writes and reads it as the IndexFlat it is).
void UseFastStorage(faiss::IndexHNSW& hnsw) {
  auto* flat = dynamic_cast<faiss::IndexFlat*>(hnsw.storage);
  FAISS_THROW_IF_NOT_MSG(flat != nullptr, "HNSW storage is not flat");
  std::unique_ptr<FlatIpStorage> fast = FlatIpStorage::Adopt(*flat);
  if (hnsw.own_fields) delete hnsw.storage;
  hnsw.storage = fast.release();
  hnsw.own_fields = true;
}

}  // namespace

// One collection's in-memory index. FAISS labels are positions 0..n-1;
// label_chunk maps them to chunk ids (-1 once removed).
struct VectorIndex::Space {
  std::shared_mutex mutex;  // shared: search; exclusive: changes
  int64_t collection_id = 0;
  std::string model;
  int64_t dim = 0;
  int64_t applied_seq = 0;  // the Store log position this index reflects
  std::unique_ptr<faiss::Index> index;
  bool hnsw = false;
  std::vector<int64_t> label_chunk;                  // (n_labels)
  std::unordered_map<int64_t, int64_t> chunk_label;  // live chunks only
  int64_t dead = 0;
  bool dirty = false;  // differs from its file

  int64_t live() const { return static_cast<int64_t>(chunk_label.size()); }

  void Reset(const store::VectorSpace& row, bool use_hnsw, const VectorIndexOptions& options) {
    collection_id = row.collection_id;
    model = row.model;
    dim = row.dim;
    hnsw = use_hnsw;
    if (use_hnsw) {
      auto h = std::make_unique<faiss::IndexHNSWFlat>(static_cast<int>(dim), options.hnsw_m,
                                                      faiss::METRIC_INNER_PRODUCT);
      h->hnsw.efConstruction = options.hnsw_ef_construction;
      h->hnsw.efSearch = options.hnsw_ef_search;
      UseFastStorage(*h);
      index = std::move(h);
    } else {
      index = std::make_unique<FlatIpStorage>(dim);
    }
    label_chunk.clear();
    chunk_label.clear();
    dead = 0;
  }

  // Adds vectors; a chunk already present is replaced (old label hidden).
  void Add(const std::vector<store::ChunkVector>& vectors) {
    std::vector<float> flat;
    flat.reserve(vectors.size() * static_cast<size_t>(dim));
    for (const store::ChunkVector& v : vectors) {
      Remove(v.chunk_id);
      flat.insert(flat.end(), v.values.begin(), v.values.end());
      chunk_label[v.chunk_id] = static_cast<int64_t>(label_chunk.size());
      label_chunk.push_back(v.chunk_id);
    }
    if (!vectors.empty()) index->add(static_cast<FaissLabel>(vectors.size()), flat.data());
  }

  void Remove(int64_t chunk_id) {
    auto it = chunk_label.find(chunk_id);
    if (it == chunk_label.end()) return;
    label_chunk[static_cast<size_t>(it->second)] = -1;
    chunk_label.erase(it);
    ++dead;
  }
};

VectorIndex::VectorIndex(store::Store& store, VectorIndexOptions options)
    : store_(store), options_(std::move(options)) {}

VectorIndex::~VectorIndex() = default;

Result<std::unique_ptr<VectorIndex>> VectorIndex::Open(store::Store& store,
                                                       VectorIndexOptions options) {
  if (options.hnsw_threshold < 1 || options.hnsw_m < 2 || options.hnsw_ef_search < 1 ||
      options.hnsw_ef_construction < 1 || options.embed_batch < 1) {
    return Err(Status::InvalidArgument("vector index options out of range"));
  }
  if (!options.dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options.dir, ec);
    if (ec) {
      return Err(Status::IOError("cannot create " + options.dir.string() + ": " + ec.message()));
    }
  }
  return std::unique_ptr<VectorIndex>(new VectorIndex(store, std::move(options)));
}

std::filesystem::path VectorIndex::FileFor(int64_t collection_id) const {
  return options_.dir / ("collection-" + std::to_string(collection_id) + ".xvec");
}

// --- keeping up with the Store -----------------------------------------------

// One collection's place in the map: the index searches use, and a lock
// that lets one thread at a time build its replacement.
struct VectorIndex::Slot {
  std::mutex rebuild;
  std::shared_ptr<Space> current;  // guarded by VectorIndex::mutex_
};

bool VectorIndex::WantsRebuild(const Space& space) const {
  // Too many hidden vectors, or grown past the exact-search size.
  const bool sweep = space.dead > 1024 && space.dead * 4 > space.live() + space.dead;
  const bool grow = !space.hnsw && space.live() >= options_.hnsw_threshold;
  return sweep || grow;
}

Result<std::shared_ptr<VectorIndex::Space>> VectorIndex::Sync(const std::string& collection) {
  XNAI_ASSIGN_OR_RETURN(std::optional<store::VectorSpace> row, store_.GetVectorSpace(collection));
  std::shared_ptr<Slot> slot;
  std::shared_ptr<Space> space;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!row) {
      spaces_.erase(collection);
      return std::shared_ptr<Space>();
    }
    auto& entry = spaces_[collection];
    if (!entry) entry = std::make_shared<Slot>();
    slot = entry;
    space = slot->current;
  }
  auto same_space = [&](const Space& s) {
    return s.index && s.collection_id == row->collection_id && s.model == row->model &&
           s.dim == row->dim && s.applied_seq >= row->log_floor;
  };
  if (space) {
    {
      std::shared_lock<std::shared_mutex> read(space->mutex);
      if (same_space(*space) && space->applied_seq >= row->log_head) return space;
    }
    std::unique_lock<std::shared_mutex> write(space->mutex);
    if (same_space(*space)) {
      if (space->applied_seq < row->log_head) {
        XNAI_RETURN_IF_ERROR(Replay(*space, collection, *row));
      }
      if (!WantsRebuild(*space)) return space;
    }
  }
  // A new index is built aside while searches go on with the current one
  // (if any); one thread builds, the others keep using what there is.
  std::unique_lock<std::mutex> building(slot->rebuild, std::defer_lock);
  if (space) {
    if (!building.try_lock()) return space;
  } else {
    building.lock();
    std::lock_guard<std::mutex> lock(mutex_);
    if (slot->current) return slot->current;  // built while this thread waited
  }
  auto fresh = std::make_shared<Space>();
  if (!space && LoadFile(*fresh, *row)) {
    if (fresh->applied_seq < row->log_head) {
      XNAI_RETURN_IF_ERROR(Replay(*fresh, collection, *row));
    }
    if (WantsRebuild(*fresh)) XNAI_RETURN_IF_ERROR(Rebuild(*fresh, collection, *row));
  } else {
    XNAI_RETURN_IF_ERROR(Rebuild(*fresh, collection, *row));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  slot->current = fresh;
  return fresh;
}

Status VectorIndex::Rebuild(Space& space, const std::string& collection,
                            const store::VectorSpace& row) {
  const auto started = std::chrono::steady_clock::now();
  try {
    // Changes after row.log_head are replayed later; one that is also in the
    // listing below is applied twice, which Add and Remove allow.
    XNAI_ASSIGN_OR_RETURN(int64_t expected, store_.CountVectors(collection));
    space.Reset(row, expected >= options_.hnsw_threshold, options_);
    space.applied_seq = row.log_head;
    int64_t after = 0;
    while (true) {
      XNAI_ASSIGN_OR_RETURN(auto page, store_.ListVectors(collection, after, kPage));
      if (page.empty()) break;
      for (const auto& v : page) {
        if (static_cast<int64_t>(v.values.size()) != space.dim) {
          space.index.reset();
          return Status::Corruption("vector of chunk " + std::to_string(v.chunk_id) + " has " +
                                    std::to_string(v.values.size()) + " values, not " +
                                    std::to_string(space.dim));
        }
      }
      space.Add(page);
      after = page.back().chunk_id;
    }
  } catch (const std::exception& e) {
    space.index.reset();
    return FaissError("building the vector index of '" + collection + "'", e);
  }
  space.dirty = true;
  log::Info("vectors.rebuilt",
            {{"collection", collection},
             {"vectors", space.live()},
             {"kind", space.hnsw ? "hnsw" : "exact"},
             {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
                             .count()}});
  return Status::Ok();
}

Status VectorIndex::Replay(Space& space, const std::string& collection,
                           const store::VectorSpace& row) {
  // The last change of each chunk decides whether it is in.
  std::map<int64_t, bool> final_state;
  int64_t seq = space.applied_seq;
  while (seq < row.log_head) {
    XNAI_ASSIGN_OR_RETURN(auto changes, store_.VectorChanges(collection, seq, kPage));
    if (changes.empty()) break;
    for (const auto& change : changes) final_state[change.chunk_id] = change.added;
    seq = changes.back().seq;
  }
  std::vector<int64_t> added;
  for (const auto& [chunk_id, in] : final_state) {
    if (in) {
      added.push_back(chunk_id);
    } else {
      space.Remove(chunk_id);
    }
  }
  try {
    for (size_t begin = 0; begin < added.size(); begin += kPage) {
      const size_t end = std::min(added.size(), begin + kPage);
      XNAI_ASSIGN_OR_RETURN(auto vectors,
                            store_.GetVectors(std::vector<int64_t>(added.begin() + begin,
                                                                   added.begin() + end)));
      std::erase_if(vectors, [&](const store::ChunkVector& v) {
        return static_cast<int64_t>(v.values.size()) != space.dim;
      });
      space.Add(vectors);
    }
  } catch (const std::exception& e) {
    space.index.reset();
    return FaissError("updating the vector index of '" + collection + "'", e);
  }
  space.applied_seq = std::max(seq, row.log_head);
  if (!final_state.empty()) space.dirty = true;
  return Status::Ok();
}

// --- files ----------------------------------------------------------------------
//
// Layout: magic "XNAIVEC1", u64 manifest length, manifest JSON
// {collection_id, model, dim, applied_seq, hnsw, labels}, then `labels`
// int64 chunk ids (-1 = removed), then the FAISS index as write_index
// writes it.

bool VectorIndex::LoadFile(Space& space, const store::VectorSpace& row) {
  if (options_.dir.empty()) return false;
  const std::filesystem::path path = FileFor(row.collection_id);
  auto bytes = ReadFileToString(path);
  if (!bytes) return false;
  auto reject = [&](const std::string& why) {
    log::Warn("vectors.file_rejected", {{"path", path.string()}, {"reason", why}});
    return false;
  };
  const std::string& data = *bytes;
  uint64_t manifest_size = 0;
  if (data.size() < sizeof(kFileMagic) + 8 ||
      std::memcmp(data.data(), kFileMagic, sizeof(kFileMagic)) != 0) {
    return reject("not an xnai vector file");
  }
  std::memcpy(&manifest_size, data.data() + sizeof(kFileMagic), 8);
  size_t pos = sizeof(kFileMagic) + 8;
  if (manifest_size > kMaxManifestBytes || manifest_size > data.size() - pos) {
    return reject("truncated");
  }
  auto manifest = nlohmann::json::parse(data.substr(pos, manifest_size), nullptr, false);
  pos += manifest_size;
  if (!manifest.is_object()) return reject("manifest is not JSON");
  try {
    const auto collection_id = manifest.at("collection_id").get<int64_t>();
    const auto model = manifest.at("model").get<std::string>();
    const auto dim = manifest.at("dim").get<int64_t>();
    const auto applied_seq = manifest.at("applied_seq").get<int64_t>();
    const auto hnsw = manifest.at("hnsw").get<bool>();
    const auto labels = manifest.at("labels").get<uint64_t>();
    if (collection_id != row.collection_id || model != row.model || dim != row.dim) {
      return reject("made for another collection or model");
    }
    if (applied_seq < row.log_floor) return reject("older than the vector log");
    if (labels > (data.size() - pos) / sizeof(int64_t)) return reject("truncated");
    std::vector<int64_t> label_chunk(labels);
    std::memcpy(label_chunk.data(), data.data() + pos, labels * sizeof(int64_t));
    pos += labels * sizeof(int64_t);
    faiss::VectorIOReader reader;
    reader.data.assign(data.begin() + static_cast<std::ptrdiff_t>(pos), data.end());
    std::unique_ptr<faiss::Index> index(faiss::read_index(&reader));
    if (index->d != dim || index->ntotal != static_cast<FaissLabel>(labels) ||
        index->metric_type != faiss::METRIC_INNER_PRODUCT) {
      return reject("index does not match its manifest");
    }
    space.collection_id = collection_id;
    space.model = model;
    space.dim = dim;
    space.applied_seq = applied_seq;
    space.hnsw = hnsw;
    space.index = std::move(index);
    space.label_chunk = std::move(label_chunk);
    space.chunk_label.clear();
    space.dead = 0;
    for (size_t label = 0; label < space.label_chunk.size(); ++label) {
      if (space.label_chunk[label] < 0) {
        ++space.dead;
      } else {
        space.chunk_label[space.label_chunk[label]] = static_cast<int64_t>(label);
      }
    }
    if (auto* h = dynamic_cast<faiss::IndexHNSWFlat*>(space.index.get())) {
      h->hnsw.efSearch = options_.hnsw_ef_search;
      UseFastStorage(*h);
    } else if (auto* flat = dynamic_cast<faiss::IndexFlat*>(space.index.get())) {
      space.index = FlatIpStorage::Adopt(*flat);
    } else {
      return reject("not an index kind xnai writes");
    }
  } catch (const std::exception& e) {
    space.index.reset();
    return reject(e.what());
  }
  space.dirty = false;
  return true;
}

Status VectorIndex::SaveFile(Space& space) {
  faiss::VectorIOWriter writer;
  try {
    faiss::write_index(space.index.get(), &writer);
  } catch (const std::exception& e) {
    return FaissError("serializing a vector index", e);
  }
  const std::string manifest = nlohmann::json{{"collection_id", space.collection_id},
                                              {"model", space.model},
                                              {"dim", space.dim},
                                              {"applied_seq", space.applied_seq},
                                              {"hnsw", space.hnsw},
                                              {"labels", space.label_chunk.size()}}
                                   .dump();
  std::string data(kFileMagic, sizeof(kFileMagic));
  const uint64_t manifest_size = manifest.size();
  data.append(reinterpret_cast<const char*>(&manifest_size), 8);
  data += manifest;
  data.append(reinterpret_cast<const char*>(space.label_chunk.data()),
              space.label_chunk.size() * sizeof(int64_t));
  data.append(reinterpret_cast<const char*>(writer.data.data()), writer.data.size());
  return WriteFileAtomic(FileFor(space.collection_id), data);
}

Status VectorIndex::Save() {
  if (options_.dir.empty()) return Status::Ok();
  XNAI_ASSIGN_OR_RETURN(auto collections, store_.ListCollections());
  std::set<std::string> files_in_use;
  for (const store::Collection& c : collections) {
    files_in_use.insert(FileFor(c.id).filename().string());
    std::shared_ptr<Space> space;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = spaces_.find(c.name);
      if (it != spaces_.end()) space = it->second->current;
    }
    if (!space) continue;
    std::unique_lock<std::shared_mutex> write(space->mutex);
    if (!space->index || !space->dirty || space->collection_id != c.id) continue;
    XNAI_RETURN_IF_ERROR(SaveFile(*space));
    space->dirty = false;
    const int64_t saved_seq = space->applied_seq;
    write.unlock();
    XNAI_RETURN_IF_ERROR(store_.TrimVectorLog(c.name, saved_seq));
  }
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(options_.dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.ends_with(".xvec") && !files_in_use.count(name)) {
      std::filesystem::remove(entry.path(), ec);
    }
  }
  return Status::Ok();
}

// --- embedding -------------------------------------------------------------------

Result<EmbedSummary> VectorIndex::EmbedPending(const std::string& collection,
                                               llm::Embedder& embedder,
                                               const EmbedProgressFn& progress,
                                               const std::atomic<bool>* stop) {
  const auto started = std::chrono::steady_clock::now();
  XNAI_ASSIGN_OR_RETURN(std::optional<store::VectorSpace> space,
                        store_.GetVectorSpace(collection));
  if (!space) {
    XNAI_ASSIGN_OR_RETURN(store::VectorSpace made,
                          store_.SetVectorSpace(collection, embedder.id(), embedder.dim()));
    space = made;
  } else if (space->model != embedder.id() || space->dim != embedder.dim()) {
    return Err(Status::FailedPrecondition(
        "collection '" + collection + "' holds vectors of '" + space->model + "' (" +
        std::to_string(space->dim) + " dimensions), not of the embedding model '" +
        embedder.id() + "' (" + std::to_string(embedder.dim()) + "): " + ReindexHint(collection)));
  }
  XNAI_ASSIGN_OR_RETURN(store::Collection info, store_.GetCollection(collection));
  XNAI_ASSIGN_OR_RETURN(int64_t stored, store_.CountVectors(collection));
  const int64_t total = std::max<int64_t>(0, info.chunk_count - stored);

  EmbedSummary summary;
  int64_t after = 0;
  while (stop == nullptr || !stop->load()) {
    XNAI_ASSIGN_OR_RETURN(auto chunks,
                          store_.ChunksWithoutVectors(collection, after, options_.embed_batch));
    if (chunks.empty()) break;
    std::vector<std::string> texts;
    for (const store::Chunk& c : chunks) texts.push_back(c.text);
    int64_t tokens = 0;
    auto embedded = embedder.Embed(texts, &tokens);
    if (!embedded && embedded.error().code() == Status::Code::kInvalidArgument) {
      // One text too long (or empty): embed them one by one, each too long
      // one by a shrinking prefix (its start is what it is mostly about).
      std::vector<std::vector<float>> one_by_one;
      for (std::string& text : texts) {
        while (true) {
          int64_t t = 0;
          auto one = embedder.Embed({text.empty() ? std::string(" ") : text}, &t);
          if (one) {
            one_by_one.push_back(std::move((*one)[0]));
            tokens += t;
            break;
          }
          if (one.error().code() != Status::Code::kInvalidArgument || text.size() < 16) {
            return Err(one.error());
          }
          size_t cut = text.size() * 3 / 4;
          while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
          text.resize(cut);
        }
      }
      for (size_t i = 0; i < texts.size(); ++i) {
        if (texts[i].size() < chunks[i].text.size()) ++summary.truncated;
      }
      embedded = std::move(one_by_one);
    }
    if (!embedded) return Err(embedded.error());
    std::vector<store::ChunkVector> vectors;
    for (size_t i = 0; i < chunks.size(); ++i) {
      vectors.push_back({chunks[i].id, std::move((*embedded)[i])});
    }
    XNAI_ASSIGN_OR_RETURN(int64_t stored, store_.PutVectors(collection, embedder.id(), vectors));
    summary.chunks += stored;
    summary.tokens += tokens;
    after = chunks.back().id;
    if (progress) progress(summary.chunks, total);
  }
  // Bring the in-memory index up to date now rather than at the next search.
  if (auto synced = Sync(collection); !synced) return Err(synced.error());
  summary.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return summary;
}

Result<EmbedSummary> VectorIndex::Reindex(const std::string& collection, llm::Embedder& embedder,
                                          const EmbedProgressFn& progress,
                                          const std::atomic<bool>* stop) {
  XNAI_ASSIGN_OR_RETURN(std::optional<store::VectorSpace> space,
                        store_.GetVectorSpace(collection));
  if (space && space->model == embedder.id() && space->dim == embedder.dim()) {
    // Same model: a new space forces every vector to be made again.
    auto cleared = store_.SetVectorSpace(collection, embedder.id() + "#reindex", 1);
    if (!cleared) return Err(cleared.error());
  }
  auto reset = store_.SetVectorSpace(collection, embedder.id(), embedder.dim());
  if (!reset) return Err(reset.error());
  return EmbedPending(collection, embedder, progress, stop);
}

// --- search ----------------------------------------------------------------------

Result<std::vector<DenseHit>> VectorIndex::Search(const std::optional<std::string>& collection,
                                                  const std::vector<float>& query,
                                                  const std::string& model, int k) {
  if (k < 1) return Err(Status::InvalidArgument("k must be at least 1"));
  if (query.empty()) return Err(Status::InvalidArgument("the query vector is empty"));
  std::vector<std::string> names;
  if (collection && !collection->empty()) {
    names.push_back(*collection);
  } else {
    XNAI_ASSIGN_OR_RETURN(names, store_.CollectionsWithVectors());
  }
  // One query needs no parallel region: FAISS would wake OpenMP threads that
  // then spin-wait, burning a core for nothing (this only sets the calling
  // thread's team size; building an index elsewhere keeps every core).
  omp_set_num_threads(1);
  std::vector<DenseHit> hits;
  for (const std::string& name : names) {
    XNAI_ASSIGN_OR_RETURN(std::shared_ptr<Space> space, Sync(name));
    if (!space) continue;  // no vectors yet
    std::shared_lock<std::shared_mutex> read(space->mutex);
    if (!space->index) continue;
    if (space->model != model || space->dim != static_cast<int64_t>(query.size())) {
      return Err(Status::FailedPrecondition(
          "collection '" + name + "' holds vectors of '" + space->model + "' (" +
          std::to_string(space->dim) + " dimensions), not of the embedding model '" + model +
          "' (" + std::to_string(query.size()) + "): " + ReindexHint(name)));
    }
    const int64_t stored = static_cast<int64_t>(space->label_chunk.size());
    const int64_t want = std::min<int64_t>(stored, k + space->dead);
    if (want == 0) continue;
    std::vector<float> distances(static_cast<size_t>(want));
    std::vector<FaissLabel> labels(static_cast<size_t>(want));
    try {
      if (space->hnsw) {
        faiss::SearchParametersHNSW params;
        params.efSearch = static_cast<int>(std::max<int64_t>(options_.hnsw_ef_search, want));
        space->index->search(1, query.data(), want, distances.data(), labels.data(), &params);
      } else {
        space->index->search(1, query.data(), want, distances.data(), labels.data());
      }
    } catch (const std::exception& e) {
      return Err(FaissError("searching the vectors of '" + name + "'", e));
    }
    for (int64_t i = 0; i < want; ++i) {
      const FaissLabel label = labels[static_cast<size_t>(i)];
      if (label < 0 || label >= stored) continue;
      const int64_t chunk_id = space->label_chunk[static_cast<size_t>(label)];
      if (chunk_id < 0) continue;
      hits.push_back({chunk_id, name, distances[static_cast<size_t>(i)]});
    }
  }
  std::stable_sort(hits.begin(), hits.end(), [](const DenseHit& a, const DenseHit& b) {
    return a.similarity > b.similarity;
  });
  if (hits.size() > static_cast<size_t>(k)) hits.resize(static_cast<size_t>(k));
  return hits;
}

Result<std::vector<VectorCollectionStats>> VectorIndex::Stats() {
  XNAI_ASSIGN_OR_RETURN(auto collections, store_.ListCollections());
  std::vector<VectorCollectionStats> out;
  for (const auto& c : collections) {
    XNAI_ASSIGN_OR_RETURN(std::shared_ptr<Space> space, Sync(c.name));
    if (!space) continue;
    std::shared_lock<std::shared_mutex> read(space->mutex);
    out.push_back({c.name, space->model, space->dim, space->live(), space->hnsw});
  }
  return out;
}

}  // namespace xnai::index
