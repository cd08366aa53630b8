// FlatIpStorage: FAISS's exact inner-product index (IndexFlatIP) with its
// distances computed by the engine's F32 dot kernels (AVX-512, AVX2 or
// portable, picked at run time like the rest of the engine). Debian's
// libfaiss is built for a generic x86-64, so its own distance loops are
// scalar; the vectors, the file format and every other behaviour are FAISS's.
//
// Used as the exact index itself and as the storage under HNSW (whose graph
// search asks it for distances). Only float vectors and the inner product.
#pragma once

#include <memory>

#include <faiss/IndexFlat.h>

namespace xnai::index {

class FlatIpStorage : public faiss::IndexFlatIP {
 public:
  explicit FlatIpStorage(idx_t d);

  // Takes over the vectors of `flat` (an IndexFlat with the inner product,
  // e.g. what faiss::read_index gave), leaving it empty.
  static std::unique_ptr<FlatIpStorage> Adopt(faiss::IndexFlat& flat);

  faiss::FlatCodesDistanceComputer* get_FlatCodesDistanceComputer() const override;

  // Exact top-k by inner product, best first; params (selectors) are not
  // supported and must be null.
  void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
              const faiss::SearchParameters* params = nullptr) const override;

  // The inner products of `query` with vectors [begin, end) into out[0..).
  void Dots(const float* query, idx_t begin, idx_t end, float* out) const;
};

}  // namespace xnai::index
