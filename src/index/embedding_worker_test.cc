#include "index/embedding_worker.h"

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "index/test_embedder.h"
#include "store/store_test_util.h"

namespace xnai::index {
namespace {

using store::testing::MakeDocument;
using store::testing::TempDir;
using testing::WordEmbedder;

// Polls `done` for up to 10 s.
template <typename F>
bool Eventually(F done) {
  for (int i = 0; i < 1000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

TEST(EmbeddingWorkerTest, CatchesUpOnStartThenFollowsNotifications) {
  TempDir dir;
  auto store = store::OpenSqliteStore(dir.path() / "xnai.db").value();
  ASSERT_TRUE(store->CreateCollection("docs", "").has_value());
  ASSERT_TRUE(store->CreateCollection("mismatch", "").has_value());
  ASSERT_TRUE(store->PutDocument(MakeDocument("docs", "a", {"one", "two"})).has_value());
  ASSERT_TRUE(store->PutDocument(MakeDocument("mismatch", "b", {"three"})).has_value());
  ASSERT_TRUE(store->SetVectorSpace("mismatch", "another-model", 8).has_value());
  VectorIndexOptions options;
  options.dir = dir.path() / "vectors";
  auto vectors = VectorIndex::Open(*store, options).value();
  WordEmbedder embedder;
  EmbeddingWorker worker(*store, *vectors, embedder);
  worker.Start();
  ASSERT_TRUE(Eventually([&] { return worker.status().embedded == 2 && !worker.status().busy; }));
  ASSERT_TRUE(Eventually([&] { return worker.status().queued == 0 && !worker.status().busy; }));
  EXPECT_NE(worker.status().last_error.find("xnai reindex"), std::string::npos)
      << worker.status().last_error;

  ASSERT_TRUE(store->PutDocument(MakeDocument("docs", "c", {"four"})).has_value());
  worker.Notify("docs");
  ASSERT_TRUE(Eventually([&] { return worker.status().embedded == 3; }));
  EXPECT_EQ(store->Stats().value().vectors, 3);
  worker.Stop();
  worker.Stop();
  EXPECT_FALSE(std::filesystem::is_empty(options.dir));  // saved
}

}  // namespace
}  // namespace xnai::index
