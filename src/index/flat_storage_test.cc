#include "index/flat_storage.h"

#include <faiss/IndexHNSW.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>

#include <random>

#include <gtest/gtest.h>

namespace xnai::index {
namespace {

std::vector<float> RandomVectors(int64_t n, int64_t d, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(static_cast<size_t>(n * d));
  for (float& x : v) x = normal(rng);
  return v;
}

// The engine's kernels against FAISS's own exact search, for several sizes
// (including dimensions that are not a multiple of any SIMD width and k
// larger than the index).
TEST(FlatIpStorageTest, ExactSearchMatchesFaiss) {
  for (int64_t d : {1, 3, 17, 384}) {
    for (int64_t n : {1, 5, 4099}) {
      const auto data = RandomVectors(n, d, static_cast<uint32_t>(d * 7 + n));
      const auto queries = RandomVectors(3, d, 99);
      faiss::IndexFlatIP reference(d);
      FlatIpStorage fast(d);
      reference.add(n, data.data());
      fast.add(n, data.data());
      for (int64_t k : {1, 10, 5000}) {
        std::vector<float> want_d(3 * k), got_d(3 * k);
        std::vector<faiss::Index::idx_t> want_l(3 * k), got_l(3 * k);
        reference.search(3, queries.data(), k, want_d.data(), want_l.data());
        fast.search(3, queries.data(), k, got_d.data(), got_l.data());
        for (int64_t i = 0; i < 3 * k; ++i) {
          SCOPED_TRACE("d=" + std::to_string(d) + " n=" + std::to_string(n) +
                       " k=" + std::to_string(k) + " i=" + std::to_string(i));
          if (want_l[i] < 0) {
            EXPECT_EQ(got_l[i], -1);
            continue;
          }
          EXPECT_NEAR(got_d[i], want_d[i], 1e-3f * (1 + std::abs(want_d[i])));
          // Ties aside, the same vector in the same place.
          if (got_l[i] != want_l[i]) EXPECT_NEAR(got_d[i], want_d[i], 1e-4f);
        }
      }
    }
  }
}

TEST(FlatIpStorageTest, HnswOverItFindsWhatExactSearchFindsAndRoundTrips) {
  const int64_t d = 32, n = 2000;
  const auto data = RandomVectors(n, d, 5);
  faiss::IndexHNSWFlat hnsw(d, 16, faiss::METRIC_INNER_PRODUCT);
  auto* flat = dynamic_cast<faiss::IndexFlat*>(hnsw.storage);
  ASSERT_NE(flat, nullptr);
  auto fast = FlatIpStorage::Adopt(*flat);
  delete hnsw.storage;
  hnsw.storage = fast.release();
  hnsw.hnsw.efSearch = 256;
  hnsw.add(n, data.data());
  // Every stored vector is its own best match among vectors of similar norm
  // often enough; compare with exact search instead of assuming it.
  FlatIpStorage exact(d);
  exact.add(n, data.data());
  const auto queries = RandomVectors(50, d, 7);
  int agree = 0;
  for (int q = 0; q < 50; ++q) {
    float dh, de;
    faiss::Index::idx_t lh, le;
    hnsw.search(1, queries.data() + q * d, 1, &dh, &lh);
    exact.search(1, queries.data() + q * d, 1, &de, &le);
    agree += lh == le;
  }
  EXPECT_GE(agree, 45);  // HNSW is approximate; with ef 256 on 2,000 vectors nearly exact

  // Written as FAISS's own HNSW-over-flat; read back, the vectors adopt.
  faiss::VectorIOWriter writer;
  faiss::write_index(&hnsw, &writer);
  faiss::VectorIOReader reader;
  reader.data = writer.data;
  std::unique_ptr<faiss::Index> loaded(faiss::read_index(&reader));
  auto* loaded_hnsw = dynamic_cast<faiss::IndexHNSWFlat*>(loaded.get());
  ASSERT_NE(loaded_hnsw, nullptr);
  ASSERT_EQ(loaded_hnsw->ntotal, n);
  auto adopted = FlatIpStorage::Adopt(*dynamic_cast<faiss::IndexFlat*>(loaded_hnsw->storage));
  EXPECT_EQ(adopted->ntotal, n);
  std::vector<float> one(d);
  adopted->reconstruct(1234, one.data());
  EXPECT_EQ(std::vector<float>(data.begin() + 1234 * d, data.begin() + 1235 * d), one);
}

}  // namespace
}  // namespace xnai::index
