#include "index/vector_index.h"

#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "base/log.h"
#include "index/test_embedder.h"
#include "store/store_test_util.h"

namespace xnai::index {
namespace {

using store::testing::MakeDocument;
using store::testing::TempDir;
using testing::WordEmbedder;

class VectorIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = store::OpenSqliteStore(dir_.path() / "xnai.db").value();
    ASSERT_TRUE(store_->CreateCollection("docs", "").has_value());
    options_.dir = dir_.path() / "vectors";
  }
  std::unique_ptr<VectorIndex> Open() { return VectorIndex::Open(*store_, options_).value(); }
  int64_t Put(const std::string& collection, const std::string& source,
              const std::vector<std::string>& texts) {
    return store_->PutDocument(MakeDocument(collection, source, texts)).value().document.id;
  }
  // The chunk texts of the top hits.
  std::vector<std::string> Top(VectorIndex& index, const std::string& query, int k,
                               WordEmbedder& embedder, std::optional<std::string> collection = {}) {
    auto q = embedder.Embed({query}, nullptr).value()[0];
    auto hits = index.Search(collection, q, embedder.id(), k);
    EXPECT_TRUE(hits.has_value()) << hits.error().ToString();
    std::vector<std::string> texts;
    if (!hits) return texts;
    std::vector<int64_t> ids;
    for (const auto& h : *hits) ids.push_back(h.chunk_id);
    auto resolved = store_->GetHits(ids);
    EXPECT_TRUE(resolved.has_value());
    for (const auto& h : *resolved) texts.push_back(h.text);
    return texts;
  }

  TempDir dir_;
  std::unique_ptr<store::Store> store_;
  VectorIndexOptions options_;
  WordEmbedder embedder_;
};

TEST_F(VectorIndexTest, EmbedsPendingChunksInBatchesAndFindsTheNearest) {
  Put("docs", "a", {"the red fox jumps", "green tea leaves", "blue ocean waves"});
  Put("docs", "b", {"a car on the road", "fresh bread and butter"});
  options_.embed_batch = 2;
  auto index = Open();
  std::vector<std::pair<int64_t, int64_t>> progress;
  auto summary = index->EmbedPending(
      "docs", embedder_, [&](int64_t done, int64_t total) { progress.emplace_back(done, total); });
  ASSERT_TRUE(summary.has_value()) << summary.error().ToString();
  EXPECT_EQ(summary->chunks, 5);
  EXPECT_GT(summary->tokens, 10);
  EXPECT_EQ(embedder_.calls.load(), 3);  // batches of 2, 2, 1
  ASSERT_EQ(progress.size(), 3u);
  EXPECT_EQ(progress.back(), std::make_pair(int64_t{5}, int64_t{5}));
  EXPECT_EQ(store_->GetVectorSpace("docs").value()->model, "words");

  EXPECT_EQ(Top(*index, "green tea", 1, embedder_), std::vector<std::string>{"green tea leaves"});
  // Dense search sees through the synonym where words do not match.
  EXPECT_EQ(Top(*index, "automobile", 1, embedder_),
            std::vector<std::string>{"a car on the road"});
  // Nothing left to do.
  auto again = index->EmbedPending("docs", embedder_);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->chunks, 0);
}

TEST_F(VectorIndexTest, FollowsDeletedAndReplacedDocuments) {
  const int64_t a = Put("docs", "a", {"green tea leaves", "black coffee beans"});
  Put("docs", "b", {"green tea ceremony"});
  auto index = Open();
  ASSERT_TRUE(index->EmbedPending("docs", embedder_).has_value());
  EXPECT_EQ(Top(*index, "green tea", 5, embedder_).size(), 3u);

  ASSERT_TRUE(store_->DeleteDocument(a).has_value());
  EXPECT_EQ(Top(*index, "green tea", 5, embedder_),
            std::vector<std::string>{"green tea ceremony"});

  Put("docs", "b", {"white rice"});  // replaced: the old vector goes, the new chunk waits
  EXPECT_TRUE(Top(*index, "green tea", 5, embedder_).empty());
  ASSERT_TRUE(index->EmbedPending("docs", embedder_).has_value());
  EXPECT_EQ(Top(*index, "rice", 5, embedder_), std::vector<std::string>{"white rice"});
}

TEST_F(VectorIndexTest, AnotherModelIsRefusedUntilReindex) {
  Put("docs", "a", {"green tea leaves", "black coffee beans"});
  auto index = Open();
  ASSERT_TRUE(index->EmbedPending("docs", embedder_).has_value());
  WordEmbedder other("bigger", 128);
  auto refused = index->EmbedPending("docs", other);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(refused.error().message().find("--collection docs"), std::string::npos)
      << refused.error().message();
  auto q = other.Embed({"tea"}, nullptr).value()[0];
  auto search = index->Search(std::nullopt, q, other.id(), 3);
  ASSERT_FALSE(search.has_value());
  EXPECT_EQ(search.error().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(search.error().message().find("128"), std::string::npos);

  auto redone = index->Reindex("docs", other);
  ASSERT_TRUE(redone.has_value()) << redone.error().ToString();
  EXPECT_EQ(redone->chunks, 2);
  EXPECT_EQ(Top(*index, "coffee", 1, other), std::vector<std::string>{"black coffee beans"});
  // Reindexing with the same model makes every vector again.
  auto same = index->Reindex("docs", other);
  ASSERT_TRUE(same.has_value());
  EXPECT_EQ(same->chunks, 2);
  EXPECT_EQ(store_->Stats().value().vectors, 2);
}

TEST_F(VectorIndexTest, AFileSavedIsLoadedAndFollowsLaterChanges) {
  Put("docs", "a", {"green tea leaves", "black coffee beans"});
  {
    auto index = Open();
    ASSERT_TRUE(index->EmbedPending("docs", embedder_).has_value());
    ASSERT_TRUE(index->Save().ok());
  }
  EXPECT_TRUE(store_->VectorChanges("docs", 0, 100).value().empty());  // trimmed
  ASSERT_FALSE(std::filesystem::is_empty(options_.dir));
  // Another writer adds a document meanwhile.
  Put("docs", "b", {"fresh bread"});
  {
    auto writer = Open();
    ASSERT_TRUE(writer->EmbedPending("docs", embedder_).has_value());
  }
  std::string log;
  log::TEST_CaptureTo(&log);
  auto index = Open();
  EXPECT_EQ(Top(*index, "bread", 1, embedder_), std::vector<std::string>{"fresh bread"});
  EXPECT_EQ(Top(*index, "coffee", 1, embedder_), std::vector<std::string>{"black coffee beans"});
  log::TEST_CaptureTo(nullptr);
  EXPECT_EQ(log.find("vectors.rebuilt"), std::string::npos) << log;  // loaded, then replayed
}

TEST_F(VectorIndexTest, ABrokenOrStaleFileIsRebuiltFromTheStore) {
  Put("docs", "a", {"green tea leaves", "black coffee beans"});
  {
    auto index = Open();
    ASSERT_TRUE(index->EmbedPending("docs", embedder_).has_value());
    ASSERT_TRUE(index->Save().ok());
  }
  for (const auto& entry : std::filesystem::directory_iterator(options_.dir)) {
    // Truncated in the middle of the FAISS data.
    std::filesystem::resize_file(entry.path(), std::filesystem::file_size(entry.path()) - 40);
  }
  std::string log;
  log::TEST_CaptureTo(&log);
  auto index = Open();
  EXPECT_EQ(Top(*index, "coffee", 1, embedder_), std::vector<std::string>{"black coffee beans"});
  log::TEST_CaptureTo(nullptr);
  EXPECT_NE(log.find("vectors.file_rejected"), std::string::npos) << log;
  EXPECT_NE(log.find("vectors.rebuilt"), std::string::npos) << log;
  // Garbage of any length.
  for (const auto& entry : std::filesystem::directory_iterator(options_.dir)) {
    std::ofstream(entry.path(), std::ios::trunc) << "XNAIVEC1garbage";
  }
  EXPECT_EQ(Top(*Open(), "tea", 1, embedder_), std::vector<std::string>{"green tea leaves"});
}

TEST_F(VectorIndexTest, LargeCollectionsUseHnswAndStillFindTheNearest) {
  options_.hnsw_threshold = 50;
  std::vector<std::string> texts;
  for (int i = 0; i < 80; ++i) {
    texts.push_back("item" + std::to_string(i) + " word" + std::to_string(i % 7) + " thing" +
                    std::to_string(i % 11));
  }
  Put("docs", "a", texts);
  auto index = Open();
  ASSERT_TRUE(index->EmbedPending("docs", embedder_).has_value());
  auto stats = index->Stats().value();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_TRUE(stats[0].hnsw);
  EXPECT_EQ(stats[0].vectors, 80);
  EXPECT_EQ(Top(*index, "item42 word0 thing9", 1, embedder_),
            std::vector<std::string>{"item42 word0 thing9"});
  ASSERT_TRUE(index->Save().ok());
  EXPECT_EQ(Top(*Open(), "item17 word3 thing6", 1, embedder_),
            std::vector<std::string>{"item17 word3 thing6"});
}

TEST_F(VectorIndexTest, AnExactIndexThatGrowsPastTheThresholdBecomesHnsw) {
  options_.hnsw_threshold = 50;
  auto texts = [](int from, int to) {
    std::vector<std::string> out;
    for (int i = from; i < to; ++i) out.push_back("entry" + std::to_string(i) + " common");
    return out;
  };
  Put("docs", "a", texts(0, 40));
  auto index = Open();
  ASSERT_TRUE(index->EmbedPending("docs", embedder_).has_value());
  EXPECT_FALSE(index->Stats().value()[0].hnsw);
  EXPECT_EQ(Top(*index, "entry7 common", 1, embedder_),
            std::vector<std::string>{"entry7 common"});
  Put("docs", "b", texts(40, 70));
  ASSERT_TRUE(index->EmbedPending("docs", embedder_).has_value());
  auto stats = index->Stats().value();
  EXPECT_TRUE(stats[0].hnsw);
  EXPECT_EQ(stats[0].vectors, 70);
  EXPECT_EQ(Top(*index, "entry63 common", 1, embedder_),
            std::vector<std::string>{"entry63 common"});
  // Deleting most of it sweeps the hidden vectors away (dead > 1024 is the
  // floor for a sweep, so at this size they stay hidden, never returned).
  ASSERT_TRUE(store_->DeleteDocument(store_->FindDocument("docs", "b").value()->id).has_value());
  for (const auto& text : Top(*index, "entry63 common", 70, embedder_)) {
    EXPECT_NE(text, "entry63 common");
  }
}

TEST_F(VectorIndexTest, TextsTooLongForTheModelAreEmbeddedByTheirStart) {
  WordEmbedder small("small", 64, 60);
  Put("docs", "a", {"short one", std::string(200, 'x') + " tail words here", "another short"});
  auto index = Open();
  auto summary = index->EmbedPending("docs", small);
  ASSERT_TRUE(summary.has_value()) << summary.error().ToString();
  EXPECT_EQ(summary->chunks, 3);
  EXPECT_EQ(summary->truncated, 1);
}

TEST_F(VectorIndexTest, AStoppedRunResumesWhereItWas) {
  std::vector<std::string> texts;
  for (int i = 0; i < 10; ++i) texts.push_back("chunk number " + std::to_string(i));
  Put("docs", "a", texts);
  options_.embed_batch = 3;
  auto index = Open();
  std::atomic<bool> stop{false};
  auto first = index->EmbedPending(
      "docs", embedder_, [&](int64_t done, int64_t) { stop = done >= 3; }, &stop);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->chunks, 3);
  auto rest = index->EmbedPending("docs", embedder_);
  ASSERT_TRUE(rest.has_value());
  EXPECT_EQ(rest->chunks, 7);
}

TEST_F(VectorIndexTest, SearchesEveryCollectionOrOne) {
  ASSERT_TRUE(store_->CreateCollection("other", "").has_value());
  ASSERT_TRUE(store_->CreateCollection("empty", "").has_value());
  Put("docs", "a", {"green tea leaves"});
  Put("other", "b", {"green tea ceremony"});
  auto index = Open();
  ASSERT_TRUE(index->EmbedPending("docs", embedder_).has_value());
  ASSERT_TRUE(index->EmbedPending("other", embedder_).has_value());
  EXPECT_EQ(Top(*index, "green tea", 5, embedder_).size(), 2u);
  EXPECT_EQ(Top(*index, "green tea", 5, embedder_, "other"),
            std::vector<std::string>{"green tea ceremony"});
  EXPECT_TRUE(Top(*index, "green tea", 5, embedder_, "empty").empty());
  auto q = embedder_.Embed({"tea"}, nullptr).value()[0];
  EXPECT_EQ(index->Search("nope", q, embedder_.id(), 3).error().code(), Status::Code::kNotFound);
  EXPECT_EQ(index->Search({}, q, embedder_.id(), 0).error().code(),
            Status::Code::kInvalidArgument);
  // A deleted collection's file goes at the next save.
  ASSERT_TRUE(index->Save().ok());
  ASSERT_TRUE(store_->DeleteCollection("other").has_value());
  ASSERT_TRUE(index->Save().ok());
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(options_.dir),
                          std::filesystem::directory_iterator()),
            1);
}

TEST_F(VectorIndexTest, SearchWhileEmbedding) {
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) texts.push_back("topic" + std::to_string(i % 13) + " text");
  Put("docs", "a", texts);
  options_.embed_batch = 4;
  auto index = Open();
  std::atomic<bool> done{false};
  std::thread searcher([&] {
    WordEmbedder local;
    auto q = local.Embed({"topic3"}, nullptr).value()[0];
    while (!done) {
      auto hits = index->Search("docs", q, local.id(), 5);
      ASSERT_TRUE(hits.has_value()) << hits.error().ToString();
    }
  });
  ASSERT_TRUE(index->EmbedPending("docs", embedder_).has_value());
  done = true;
  searcher.join();
  const auto top = Top(*index, "topic3", 20, embedder_);
  ASSERT_EQ(top.size(), 20u);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(top[i], "topic3 text");  // all 16 found, first
}

}  // namespace
}  // namespace xnai::index
