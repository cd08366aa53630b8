#include "index/flat_storage.h"

#include <faiss/impl/DistanceComputer.h>
#include <faiss/impl/FaissAssert.h>

#include <algorithm>
#include <limits>
#include <queue>
#include <vector>

#include "engine/cpu.h"
#include "engine/kernels.h"

namespace xnai::index {

namespace {

const engine::kernels::TypeKernels& F32Kernels() {
  static const engine::kernels::TypeKernels* kernels =
      engine::kernels::GetKernels(engine::TensorType::kF32, engine::ActiveCpuPath());
  return *kernels;
}

class DotComputer : public faiss::FlatCodesDistanceComputer {
 public:
  explicit DotComputer(const FlatIpStorage& storage)
      : faiss::FlatCodesDistanceComputer(storage.codes.data(), storage.code_size),
        storage_(storage) {}
  void set_query(const float* x) override { query_ = x; }
  float distance_to_code(const uint8_t* code) override {
    float out = 0;
    F32Kernels().dot_tile(storage_.d, code, 0, 1, reinterpret_cast<const uint8_t*>(query_), 0, 1,
                          &out, 1);
    return out;
  }
  float symmetric_dis(idx_t i, idx_t j) override {
    float out = 0;
    const size_t row = storage_.code_size;
    F32Kernels().dot_tile(storage_.d, storage_.codes.data() + i * row, 0, 1,
                          storage_.codes.data() + j * row, 0, 1, &out, 1);
    return out;
  }

 private:
  const FlatIpStorage& storage_;
  const float* query_ = nullptr;
};

}  // namespace

FlatIpStorage::FlatIpStorage(idx_t d) : faiss::IndexFlatIP(d) {}

std::unique_ptr<FlatIpStorage> FlatIpStorage::Adopt(faiss::IndexFlat& flat) {
  FAISS_THROW_IF_NOT(flat.metric_type == faiss::METRIC_INNER_PRODUCT);
  auto storage = std::make_unique<FlatIpStorage>(flat.d);
  storage->codes.swap(flat.codes);
  storage->ntotal = flat.ntotal;
  flat.ntotal = 0;
  return storage;
}

faiss::FlatCodesDistanceComputer* FlatIpStorage::get_FlatCodesDistanceComputer() const {
  return new DotComputer(*this);
}

void FlatIpStorage::Dots(const float* query, idx_t begin, idx_t end, float* out) const {
  const auto& kernels = F32Kernels();
  const int64_t row_bytes = static_cast<int64_t>(code_size);
  const auto* act = reinterpret_cast<const uint8_t*>(query);
  for (idx_t i = begin; i < end; i += engine::kernels::kMaxTileRows) {
    const int rows = static_cast<int>(std::min<idx_t>(engine::kernels::kMaxTileRows, end - i));
    kernels.dot_tile(d, codes.data() + i * row_bytes, row_bytes, rows, act, 0, 1,
                     out + (i - begin), 1);
  }
}

void FlatIpStorage::search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
                           const faiss::SearchParameters* params) const {
  FAISS_THROW_IF_NOT_MSG(params == nullptr, "FlatIpStorage: search parameters not supported");
  FAISS_THROW_IF_NOT(k > 0);
  constexpr idx_t kBlock = 4096;
  std::vector<float> scores(static_cast<size_t>(std::min(ntotal, kBlock)));
  using Entry = std::pair<float, idx_t>;  // min-heap of the best k by score
  auto worse = [](const Entry& a, const Entry& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  for (idx_t q = 0; q < n; ++q) {
    std::priority_queue<Entry, std::vector<Entry>, decltype(worse)> best(worse);
    for (idx_t begin = 0; begin < ntotal; begin += kBlock) {
      const idx_t end = std::min(ntotal, begin + kBlock);
      Dots(x + q * d, begin, end, scores.data());
      for (idx_t i = begin; i < end; ++i) {
        const float s = scores[static_cast<size_t>(i - begin)];
        if (static_cast<idx_t>(best.size()) < k) {
          best.emplace(s, i);
        } else if (s > best.top().first) {
          best.pop();
          best.emplace(s, i);
        }
      }
    }
    // Best first; -1 / -inf for the places beyond ntotal, as FAISS does.
    const idx_t found = static_cast<idx_t>(best.size());
    for (idx_t j = found; j < k; ++j) {
      distances[q * k + j] = -std::numeric_limits<float>::infinity();
      labels[q * k + j] = -1;
    }
    for (idx_t j = found - 1; j >= 0; --j) {
      distances[q * k + j] = best.top().first;
      labels[q * k + j] = best.top().second;
      best.pop();
    }
  }
}

}  // namespace xnai::index
