#include "index/retriever.h"

// Designated initializers name only the fields a test sets.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <gtest/gtest.h>

#include "index/test_embedder.h"
#include "index/vector_index.h"
#include "store/sqlite_store.h"
#include "store/store_test_util.h"

namespace xnai::index {
namespace {

using store::testing::MakeDocument;
using store::testing::TempDir;
using testing::WordEmbedder;

class RetrieverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = store::SqliteStore::Open(dir_.path() / "xnai.db", {});
    ASSERT_TRUE(opened.has_value());
    sqlite_ = opened->get();
    sqlite_->TEST_SetClock([this] { return now_; });
    store_ = std::move(*opened);
    ASSERT_TRUE(store_->CreateCollection("docs", "").has_value());
    vectors_ = VectorIndex::Open(*store_, {}).value();
  }
  void Put(const std::string& source, const std::vector<std::string>& texts) {
    ASSERT_TRUE(store_->PutDocument(MakeDocument("docs", source, texts)).has_value());
  }
  void Embed() { ASSERT_TRUE(vectors_->EmbedPending("docs", embedder_).has_value()); }
  static std::vector<std::string> Texts(const RetrievalResult& r) {
    std::vector<std::string> out;
    for (const auto& c : r.chunks) out.push_back(c.hit.text);
    return out;
  }

  TempDir dir_;
  int64_t now_ = 1000;
  store::SqliteStore* sqlite_ = nullptr;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<VectorIndex> vectors_;
  WordEmbedder embedder_;
};

TEST_F(RetrieverTest, ModesNamesAndWithoutAnEmbedderLexicalOnly) {
  EXPECT_EQ(ParseRetrievalMode("dense").value(), RetrievalMode::kDense);
  EXPECT_EQ(ParseRetrievalMode("Hybrid").error().code(), Status::Code::kInvalidArgument);
  EXPECT_STREQ(RetrievalModeName(RetrievalMode::kHybrid), "hybrid");
  Put("a", {"green tea leaves", "a car on the road"});
  Retriever lexical_only(*store_, nullptr, nullptr);
  EXPECT_FALSE(lexical_only.dense_available());
  auto r = lexical_only.Retrieve({.text = "tea"});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->mode, RetrievalMode::kLexical);
  EXPECT_EQ(Texts(*r), std::vector<std::string>{"green tea leaves"});
  EXPECT_EQ(r->chunks[0].lexical_rank, 1);
  EXPECT_EQ(r->chunks[0].passage, "green tea leaves");
  auto dense = lexical_only.Retrieve({.text = "tea", .mode = RetrievalMode::kDense});
  ASSERT_FALSE(dense.has_value());
  EXPECT_EQ(dense.error().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(dense.error().message().find("--embed-model"), std::string::npos);
  EXPECT_EQ(lexical_only.Retrieve({.text = "  "}).error().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(lexical_only.Retrieve({.text = "tea", .k = 0}).error().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(lexical_only.Retrieve({.text = "tea", .collection = "nope"}).error().code(),
            Status::Code::kNotFound);
}

TEST_F(RetrieverTest, HybridFindsWhatOnlyOneListSeesAndRanksAgreementFirst) {
  Put("a", {"the automobile museum", "a car on the road", "green tea leaves"});
  Embed();
  Retriever retriever(*store_, vectors_.get(), &embedder_);
  EXPECT_TRUE(retriever.dense_available());
  // "automobile": lexical finds the museum only; dense also finds the car
  // (a synonym); the museum is in both lists, so it comes first.
  auto r = retriever.Retrieve({.text = "automobile", .k = 3});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->mode, RetrievalMode::kHybrid);
  ASSERT_GE(r->chunks.size(), 2u);
  EXPECT_EQ(r->chunks[0].hit.text, "the automobile museum");
  EXPECT_GT(r->chunks[0].lexical_rank, 0);
  EXPECT_GT(r->chunks[0].dense_rank, 0);
  EXPECT_EQ(r->chunks[1].hit.text, "a car on the road");
  EXPECT_EQ(r->chunks[1].lexical_rank, 0);
  EXPECT_EQ(r->chunks[1].dense_rank, 2);
  EXPECT_GT(r->chunks[1].dense_similarity, 0.3);
  EXPECT_NEAR(r->chunks[0].hit.score, 1.0 / 61 + 1.0 / 61, 1e-9);

  auto lexical = retriever.Retrieve({.text = "automobile", .mode = RetrievalMode::kLexical});
  EXPECT_EQ(Texts(lexical.value()), std::vector<std::string>{"the automobile museum"});
  auto dense =
      retriever.Retrieve({.text = "road vehicle", .k = 1, .mode = RetrievalMode::kDense});
  ASSERT_TRUE(dense.has_value());
  EXPECT_EQ(Texts(*dense), std::vector<std::string>{"a car on the road"});
  EXPECT_NEAR(dense->chunks[0].hit.score, dense->chunks[0].dense_similarity, 1e-6);
  EXPECT_FALSE(dense->chunks[0].hit.snippet.empty());
  // Hybrid with no searchable words for BM25 still has the dense list.
  auto symbols = retriever.Retrieve({.text = "…", .k = 1});
  ASSERT_TRUE(symbols.has_value()) << symbols.error().ToString();
}

TEST_F(RetrieverTest, TheWeightsDecideBetweenTheLists) {
  Put("a", {"alpha beta gamma delta", "alpha beta", "beta"});
  Embed();
  RetrieverOptions dense_only;
  dense_only.lexical_weight = 0;
  Retriever retriever(*store_, vectors_.get(), &embedder_, dense_only);
  auto fused = retriever.Retrieve({.text = "beta", .k = 3}).value();
  auto dense = retriever.Retrieve({.text = "beta", .k = 3, .mode = RetrievalMode::kDense}).value();
  EXPECT_EQ(Texts(fused), Texts(dense));
}

TEST_F(RetrieverTest, FiltersBySourcePrefixAndDate) {
  now_ = 1000;
  Put("/notes/old.md", {"tea notes from last year"});
  now_ = 2000;
  Put("/notes/new.md", {"tea notes from this year"});
  Put("/mail/x.eml", {"tea in the mail"});
  Retriever retriever(*store_, nullptr, nullptr);
  EXPECT_EQ(Texts(retriever.Retrieve({.text = "tea", .source_prefix = "/notes/"}).value()).size(),
            2u);
  EXPECT_EQ(Texts(retriever.Retrieve({.text = "tea", .updated_after = 1500}).value()).size(), 2u);
  EXPECT_EQ(Texts(retriever
                      .Retrieve({.text = "tea", .source_prefix = "/notes/",
                                 .updated_before = 1500})
                      .value()),
            std::vector<std::string>{"tea notes from last year"});
}

TEST_F(RetrieverTest, NearDuplicatesAreDropped) {
  Put("a", {"the quick brown fox jumps over the lazy dog today"});
  Put("b", {"The quick brown fox jumps over the lazy dog, today!"});
  Put("c", {"a quick note about a brown dog"});
  Retriever retriever(*store_, nullptr, nullptr);
  auto r = retriever.Retrieve({.text = "quick brown dog", .k = 5}).value();
  EXPECT_EQ(r.chunks.size(), 2u);
}

TEST_F(RetrieverTest, PassagesTakeNeighboursAndMergeTouchingHits) {
  // Overlapping chunks as the chunker makes them: text between offsets.
  store::DocumentInput doc = MakeDocument("docs", "a", {});
  const std::string text = "Zero one. Two three. Four five. Six seven. Eight nine.";
  auto chunk = [&](int64_t begin, int64_t end) {
    store::ChunkInput c;
    c.text = text.substr(begin, end - begin);
    c.char_begin = begin;
    c.char_end = end;
    return c;
  };
  doc.chunks = {chunk(0, 20), chunk(10, 31), chunk(21, 42), chunk(32, 54)};
  ASSERT_TRUE(store_->PutDocument(doc).has_value());
  Put("b", {"elsewhere three"});
  Retriever retriever(*store_, nullptr, nullptr);
  auto r = retriever.Retrieve({.text = "eight", .neighbours = 1}).value();
  ASSERT_EQ(r.chunks.size(), 1u);
  EXPECT_EQ(r.chunks[0].passage, text.substr(21));  // chunks 2 and 3, overlap once
  EXPECT_EQ(r.chunks[0].passage_chunk_ids.size(), 2u);
  // "three" hits chunks 0 and 1 of a (touching: merged into the better) and b.
  auto merged = retriever.Retrieve({.text = "three", .k = 5, .neighbours = 1}).value();
  ASSERT_EQ(merged.chunks.size(), 2u);
  for (const auto& c : merged.chunks) {
    if (c.hit.source == "a") {
      EXPECT_EQ(c.passage, text.substr(0, 42));
    } else {
      EXPECT_EQ(c.passage, "elsewhere three");
    }
  }
}

}  // namespace
}  // namespace xnai::index
