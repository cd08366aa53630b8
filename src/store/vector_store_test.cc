// The vector part of the Store contract (SQLite): vector spaces, vectors
// following their chunks, and the change log the vector indexes replay.
#include <gtest/gtest.h>

#include "store/sqlite_store.h"
#include "store/store_test_util.h"

namespace xnai::store {
namespace {

using testing::MakeDocument;
using testing::TempDir;

class VectorStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = OpenSqliteStore(dir_.path() / "xnai.db");
    ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
    store_ = std::move(*opened);
    ASSERT_TRUE(store_->CreateCollection("docs", "").has_value());
  }
  // Puts a document of `texts` and returns its chunk ids.
  std::vector<int64_t> Put(const std::string& source, const std::vector<std::string>& texts) {
    auto put = store_->PutDocument(MakeDocument("docs", source, texts));
    EXPECT_TRUE(put.has_value());
    std::vector<int64_t> ids;
    for (const Chunk& c : store_->GetChunks(put->document.id).value()) ids.push_back(c.id);
    return ids;
  }
  static ChunkVector Vec(int64_t id, float a, float b) { return {id, {a, b}}; }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(VectorStoreTest, ASpaceIsNeededAndMustMatchTheModel) {
  const auto ids = Put("a", {"one", "two"});
  ASSERT_OK_AND_ASSIGN(auto none, store_->GetVectorSpace("docs"));
  EXPECT_FALSE(none.has_value());
  EXPECT_CODE(store_->PutVectors("docs", "m", {Vec(ids[0], 1, 0)}), kFailedPrecondition);
  EXPECT_CODE(store_->GetVectorSpace("nope"), kNotFound);
  EXPECT_CODE(store_->SetVectorSpace("docs", "", 2), kInvalidArgument);
  EXPECT_CODE(store_->SetVectorSpace("docs", "m", 0), kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(VectorSpace space, store_->SetVectorSpace("docs", "m", 2));
  EXPECT_EQ(space.model, "m");
  EXPECT_EQ(space.dim, 2);
  EXPECT_EQ(store_->CountVectors("docs").value(), 0);
  EXPECT_CODE(store_->PutVectors("docs", "other", {Vec(ids[0], 1, 0)}), kFailedPrecondition);
  EXPECT_CODE(store_->PutVectors("docs", "m", {{ids[0], {1, 0, 0}}}), kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(int64_t stored, store_->PutVectors("docs", "m", {Vec(ids[0], 1, 0)}));
  EXPECT_EQ(stored, 1);
  EXPECT_EQ(store_->Stats().value().vectors, 1);
  ASSERT_TRUE(store_->CreateCollection("other", "").has_value());
  EXPECT_EQ(store_->CollectionsWithVectors().value(), std::vector<std::string>{"docs"});
}

TEST_F(VectorStoreTest, PendingChunksVectorsAndTheLog) {
  const auto ids = Put("a", {"one", "two", "three"});
  ASSERT_OK(store_->SetVectorSpace("docs", "m", 2));
  ASSERT_OK_AND_ASSIGN(auto pending, store_->ChunksWithoutVectors("docs", 0, 10));
  ASSERT_EQ(pending.size(), 3u);
  EXPECT_EQ(pending[1].text, "two");
  ASSERT_OK(store_->PutVectors("docs", "m", {Vec(ids[0], 1, 0), Vec(ids[2], 0, 1)}));
  ASSERT_OK_AND_ASSIGN(pending, store_->ChunksWithoutVectors("docs", 0, 10));
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].id, ids[1]);
  ASSERT_OK_AND_ASSIGN(pending, store_->ChunksWithoutVectors("docs", ids[1], 10));
  EXPECT_TRUE(pending.empty());

  ASSERT_OK_AND_ASSIGN(auto vectors, store_->ListVectors("docs", 0, 10));
  ASSERT_EQ(vectors.size(), 2u);
  EXPECT_EQ(vectors[1].chunk_id, ids[2]);
  EXPECT_EQ(vectors[1].values, (std::vector<float>{0, 1}));
  ASSERT_OK_AND_ASSIGN(auto by_id, store_->GetVectors({ids[2], ids[1], ids[0]}));
  ASSERT_EQ(by_id.size(), 2u);  // ids[1] has none
  EXPECT_EQ(by_id[0].chunk_id, ids[2]);
  EXPECT_EQ(by_id[1].values, (std::vector<float>{1, 0}));
  ASSERT_OK_AND_ASSIGN(vectors, store_->ListVectors("docs", ids[0], 1));
  ASSERT_EQ(vectors.size(), 1u);
  EXPECT_EQ(vectors[0].chunk_id, ids[2]);

  // Replacing a vector logs its removal then its addition.
  ASSERT_OK(store_->PutVectors("docs", "m", {Vec(ids[0], 0.5f, 0.5f)}));
  ASSERT_OK_AND_ASSIGN(auto log, store_->VectorChanges("docs", 0, 100));
  ASSERT_EQ(log.size(), 4u);
  EXPECT_TRUE(log[0].added && log[1].added);
  EXPECT_EQ(log[2].chunk_id, ids[0]);
  EXPECT_FALSE(log[2].added);
  EXPECT_TRUE(log[3].added);
  EXPECT_LT(log[2].seq, log[3].seq);
  const VectorSpace space = store_->GetVectorSpace("docs").value().value();
  EXPECT_EQ(store_->CountVectors("docs").value(), 2);
  EXPECT_EQ(space.log_head, log[3].seq);
}

TEST_F(VectorStoreTest, DeletingOrReplacingADocumentRemovesItsVectors) {
  const auto a = Put("a", {"one", "two"});
  const auto b = Put("b", {"three"});
  ASSERT_OK(store_->SetVectorSpace("docs", "m", 2));
  ASSERT_OK(store_->PutVectors("docs", "m", {Vec(a[0], 1, 0), Vec(a[1], 0, 1), Vec(b[0], 1, 1)}));
  ASSERT_OK_AND_ASSIGN(auto head, store_->GetVectorSpace("docs"));
  const int64_t seq = head->log_head;

  ASSERT_OK(store_->DeleteDocument(store_->FindDocument("docs", "a").value()->id));
  ASSERT_OK_AND_ASSIGN(auto log, store_->VectorChanges("docs", seq, 100));
  ASSERT_EQ(log.size(), 2u);
  EXPECT_FALSE(log[0].added);
  EXPECT_FALSE(log[1].added);
  EXPECT_EQ(store_->Stats().value().vectors, 1);

  // New text for b: its old chunk (and vector) go, the new chunk waits.
  Put("b", {"three, changed"});
  EXPECT_EQ(store_->Stats().value().vectors, 0);
  ASSERT_OK_AND_ASSIGN(auto pending, store_->ChunksWithoutVectors("docs", 0, 10));
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].text, "three, changed");
  // A vector for a chunk that is gone is skipped, not an error.
  ASSERT_OK_AND_ASSIGN(int64_t stored, store_->PutVectors("docs", "m", {Vec(a[0], 1, 0)}));
  EXPECT_EQ(stored, 0);
}

TEST_F(VectorStoreTest, AnotherModelClearsTheSpaceAndTrimRaisesTheFloor) {
  const auto ids = Put("a", {"one", "two"});
  ASSERT_OK(store_->SetVectorSpace("docs", "m", 2));
  ASSERT_OK(store_->PutVectors("docs", "m", {Vec(ids[0], 1, 0), Vec(ids[1], 0, 1)}));
  // Same model again: nothing changes.
  ASSERT_OK_AND_ASSIGN(VectorSpace same, store_->SetVectorSpace("docs", "m", 2));
  EXPECT_EQ(same.model, "m");
  EXPECT_EQ(store_->CountVectors("docs").value(), 2);
  ASSERT_OK_AND_ASSIGN(VectorSpace other, store_->SetVectorSpace("docs", "m2", 3));
  EXPECT_EQ(other.model, "m2");
  EXPECT_EQ(store_->CountVectors("docs").value(), 0);
  EXPECT_CODE(store_->CountVectors("nope"), kNotFound);
  EXPECT_EQ(store_->ChunksWithoutVectors("docs", 0, 10).value().size(), 2u);

  ASSERT_OK(store_->TrimVectorLog("docs", other.log_head));
  ASSERT_OK_AND_ASSIGN(auto after, store_->GetVectorSpace("docs"));
  EXPECT_EQ(after->log_floor, other.log_head);
  EXPECT_EQ(after->log_head, other.log_head);  // never below the floor
  EXPECT_TRUE(store_->VectorChanges("docs", 0, 100).value().empty());
}

TEST_F(VectorStoreTest, HitsByIdKeepTheOrderAskedAndSkipMissingIds) {
  const auto ids = Put("a", {"one", "two"});
  ASSERT_OK_AND_ASSIGN(auto hits, store_->GetHits({ids[1], 999999, ids[0]}));
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].chunk_id, ids[1]);
  EXPECT_EQ(hits[0].text, "two");
  EXPECT_EQ(hits[0].source, "a");
  EXPECT_EQ(hits[0].collection, "docs");
  EXPECT_EQ(hits[1].chunk_id, ids[0]);
}

TEST_F(VectorStoreTest, DeletingTheCollectionTakesItsSpaceAndVectors) {
  const auto ids = Put("a", {"one"});
  ASSERT_OK(store_->SetVectorSpace("docs", "m", 2));
  ASSERT_OK(store_->PutVectors("docs", "m", {Vec(ids[0], 1, 0)}));
  ASSERT_OK(store_->DeleteCollection("docs"));
  EXPECT_EQ(store_->Stats().value().vectors, 0);
  ASSERT_OK(store_->CreateCollection("docs", ""));
  ASSERT_OK_AND_ASSIGN(auto space, store_->GetVectorSpace("docs"));
  EXPECT_FALSE(space.has_value());
}

}  // namespace
}  // namespace xnai::store
