// The Store contract: every implementation must pass these tests. Add an
// implementation by adding a factory to kStoreFactories below.
#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "store/store.h"
#include "store/store_test_util.h"

namespace xnai::store {
namespace {

using testing::MakeDocument;
using testing::TempDir;

struct StoreFactory {
  std::string name;
  // Returns a fresh, empty store keeping its files under `dir`.
  std::function<Result<std::unique_ptr<Store>>(const std::filesystem::path& dir)> make;
};

// Names the parameter in test output instead of dumping its bytes.
void PrintTo(const StoreFactory& factory, std::ostream* os) { *os << factory.name; }

const StoreFactory kStoreFactories[] = {
    {"Sqlite", [](const std::filesystem::path& dir) { return OpenSqliteStore(dir / "xnai.db"); }},
};

class StoreContractTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    auto store = GetParam().make(dir_.path());
    ASSERT_TRUE(store.has_value()) << store.error().ToString();
    store_ = std::move(*store);
  }

  // Searches with the expression form index::BuildFtsQuery produces.
  Result<std::vector<SearchHit>> Search(const std::vector<std::string>& terms,
                                        std::optional<std::string> collection = std::nullopt,
                                        int k = 10) {
    SearchQuery q;
    for (const std::string& term : terms) {
      if (!q.fts_expression.empty()) q.fts_expression += " OR ";
      q.fts_expression += "\"" + term + "\"";
    }
    q.collection = std::move(collection);
    q.k = k;
    return store_->SearchChunks(q);
  }

  std::vector<std::string> SearchSources(const std::vector<std::string>& terms,
                                         std::optional<std::string> collection = std::nullopt) {
    std::vector<std::string> out;
    auto hits = Search(terms, std::move(collection), 100);
    EXPECT_TRUE(hits.has_value()) << hits.error().ToString();
    if (hits) {
      for (const SearchHit& hit : *hits) out.push_back(hit.source);
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

// --- collections ---------------------------------------------------------------

TEST_P(StoreContractTest, CreateGetAndListCollections) {
  ASSERT_OK_AND_ASSIGN(Collection docs, store_->CreateCollection("docs", "Product documentation"));
  EXPECT_GT(docs.id, 0);
  EXPECT_EQ(docs.name, "docs");
  EXPECT_EQ(docs.description, "Product documentation");
  EXPECT_GT(docs.created_at, 1600000000);  // a plausible unix time
  EXPECT_EQ(docs.document_count, 0);
  EXPECT_EQ(docs.chunk_count, 0);
  ASSERT_OK(store_->CreateCollection("alpha", ""));

  ASSERT_OK_AND_ASSIGN(Collection got, store_->GetCollection("docs"));
  EXPECT_EQ(got.id, docs.id);
  EXPECT_EQ(got.description, "Product documentation");

  ASSERT_OK_AND_ASSIGN(std::vector<Collection> all, store_->ListCollections());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "alpha");  // by name
  EXPECT_EQ(all[1].name, "docs");
}

TEST_P(StoreContractTest, DuplicateCollectionIsAlreadyExists) {
  ASSERT_OK(store_->CreateCollection("docs", "first"));
  EXPECT_CODE(store_->CreateCollection("docs", "second"), kAlreadyExists);
  ASSERT_OK_AND_ASSIGN(Collection got, store_->GetCollection("docs"));
  EXPECT_EQ(got.description, "first");  // the failed create changed nothing
}

TEST_P(StoreContractTest, BadCollectionNamesAreRejected) {
  const std::string bad_names[] = {"",
                                   "-docs",
                                   ".docs",
                                   "_docs",
                                   "a b",
                                   "a/b",
                                   "../etc",
                                   "a\\b",
                                   "café",
                                   "a;drop",
                                   std::string(65, 'a'),
                                   std::string("a\0b", 3),
                                   "docs\n",
                                   "a'b"};
  for (const std::string& name : bad_names) {
    EXPECT_FALSE(IsValidCollectionName(name)) << name;
    EXPECT_CODE(store_->CreateCollection(name, ""), kInvalidArgument);
    EXPECT_CODE(store_->EnsureCollection(name), kInvalidArgument);
  }
  ASSERT_OK_AND_ASSIGN(auto all, store_->ListCollections());
  EXPECT_TRUE(all.empty());

  const std::string good_names[] = {"a", "9", "A-b_c.9", std::string(64, 'z'), "docs.v2"};
  for (const std::string& name : good_names) {
    EXPECT_TRUE(IsValidCollectionName(name)) << name;
    ASSERT_OK(store_->CreateCollection(name, ""));
  }
}

TEST_P(StoreContractTest, UnknownCollectionIsNotFound) {
  EXPECT_CODE(store_->GetCollection("nope"), kNotFound);
  EXPECT_CODE(store_->DeleteCollection("nope"), kNotFound);
  EXPECT_CODE(store_->PutDocument(MakeDocument("nope", "/a.txt", {"text"})), kNotFound);
  EXPECT_CODE(store_->ListDocuments(std::string("nope"), 10, 0), kNotFound);
  EXPECT_CODE(store_->FindDocument("nope", "/a.txt"), kNotFound);
  EXPECT_CODE(Search({"text"}, std::string("nope")), kNotFound);
  ASSERT_OK_AND_ASSIGN(auto all, store_->ListCollections());
  EXPECT_TRUE(all.empty());
}

TEST_P(StoreContractTest, EnsureCollectionCreatesOnceThenReturnsExisting) {
  ASSERT_OK_AND_ASSIGN(Collection first, store_->EnsureCollection("docs"));
  ASSERT_OK_AND_ASSIGN(Collection second, store_->EnsureCollection("docs"));
  EXPECT_EQ(first.id, second.id);
  ASSERT_OK(store_->PutDocument(MakeDocument("docs", "/a.txt", {"one", "two"})));
  ASSERT_OK_AND_ASSIGN(Collection third, store_->EnsureCollection("docs"));
  EXPECT_EQ(third.id, first.id);
  EXPECT_EQ(third.document_count, 1);
  EXPECT_EQ(third.chunk_count, 2);
  ASSERT_OK_AND_ASSIGN(auto all, store_->ListCollections());
  EXPECT_EQ(all.size(), 1u);
}

TEST_P(StoreContractTest, CollectionCountsFollowDocuments) {
  ASSERT_OK(store_->CreateCollection("a", ""));
  ASSERT_OK(store_->CreateCollection("b", ""));
  ASSERT_OK(store_->PutDocument(MakeDocument("a", "/1", {"x", "y", "z"})));
  ASSERT_OK(store_->PutDocument(MakeDocument("a", "/2", {"x"})));
  ASSERT_OK(store_->PutDocument(MakeDocument("b", "/1", {"x", "y"})));
  ASSERT_OK_AND_ASSIGN(Collection a, store_->GetCollection("a"));
  EXPECT_EQ(a.document_count, 2);
  EXPECT_EQ(a.chunk_count, 4);
  ASSERT_OK_AND_ASSIGN(auto all, store_->ListCollections());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].name, "b");
  EXPECT_EQ(all[1].document_count, 1);
  EXPECT_EQ(all[1].chunk_count, 2);
}

// --- documents -----------------------------------------------------------------

TEST_P(StoreContractTest, PutDocumentCreatesDocumentAndChunks) {
  ASSERT_OK(store_->CreateCollection("docs", ""));
  DocumentInput input =
      MakeDocument("docs", "/srv/guide.md", {"first chunk", "second chunk"}, "The Guide");
  input.media_type = "text/markdown";
  ASSERT_OK_AND_ASSIGN(PutResult put, store_->PutDocument(input));
  EXPECT_EQ(put.outcome, PutOutcome::kCreated);
  const Document& doc = put.document;
  EXPECT_GT(doc.id, 0);
  EXPECT_EQ(doc.collection, "docs");
  EXPECT_EQ(doc.source, "/srv/guide.md");
  EXPECT_EQ(doc.title, "The Guide");
  EXPECT_EQ(doc.media_type, "text/markdown");
  EXPECT_EQ(doc.sha256, input.sha256);
  EXPECT_EQ(doc.size_bytes, input.size_bytes);
  EXPECT_GT(doc.created_at, 0);
  EXPECT_EQ(doc.updated_at, doc.created_at);
  EXPECT_EQ(doc.chunk_count, 2);

  ASSERT_OK_AND_ASSIGN(Document got, store_->GetDocument(doc.id));
  EXPECT_EQ(got.source, doc.source);
  EXPECT_EQ(got.chunk_count, 2);
  ASSERT_OK_AND_ASSIGN(std::optional<Document> found,
                       store_->FindDocument("docs", "/srv/guide.md"));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->id, doc.id);
  ASSERT_OK_AND_ASSIGN(std::optional<Document> missing, store_->FindDocument("docs", "/other"));
  EXPECT_FALSE(missing.has_value());

  ASSERT_OK_AND_ASSIGN(std::vector<Chunk> chunks, store_->GetChunks(doc.id));
  ASSERT_EQ(chunks.size(), 2u);
  for (size_t i = 0; i < chunks.size(); ++i) {
    EXPECT_GT(chunks[i].id, 0);
    EXPECT_EQ(chunks[i].document_id, doc.id);
    EXPECT_EQ(chunks[i].ordinal, static_cast<int32_t>(i));
    EXPECT_EQ(chunks[i].text, input.chunks[i].text);
    EXPECT_EQ(chunks[i].char_begin, input.chunks[i].char_begin);
    EXPECT_EQ(chunks[i].char_end, input.chunks[i].char_end);
    EXPECT_EQ(chunks[i].token_count, input.chunks[i].token_count);
    EXPECT_EQ(chunks[i].section, input.chunks[i].section);
    EXPECT_EQ(chunks[i].page, input.chunks[i].page);
  }
  EXPECT_NE(chunks[0].id, chunks[1].id);
}

TEST_P(StoreContractTest, PutDocumentWithoutChunksIsAllowed) {
  ASSERT_OK(store_->CreateCollection("docs", ""));
  ASSERT_OK_AND_ASSIGN(PutResult put, store_->PutDocument(MakeDocument("docs", "/empty", {})));
  EXPECT_EQ(put.document.chunk_count, 0);
  ASSERT_OK_AND_ASSIGN(auto chunks, store_->GetChunks(put.document.id));
  EXPECT_TRUE(chunks.empty());
}

TEST_P(StoreContractTest, SameShaIsUnchangedAndWritesNothing) {
  ASSERT_OK(store_->CreateCollection("docs", ""));
  DocumentInput input = MakeDocument("docs", "/a.txt", {"alpha text", "beta text"}, "Old title");
  ASSERT_OK_AND_ASSIGN(PutResult first, store_->PutDocument(input));
  ASSERT_OK_AND_ASSIGN(auto chunks_before, store_->GetChunks(first.document.id));

  input.title = "New title";  // same bytes: the stored document stays as it was
  ASSERT_OK_AND_ASSIGN(PutResult second, store_->PutDocument(input));
  EXPECT_EQ(second.outcome, PutOutcome::kUnchanged);
  EXPECT_EQ(second.document.id, first.document.id);
  EXPECT_EQ(second.document.title, "Old title");
  EXPECT_EQ(second.document.updated_at, first.document.updated_at);
  EXPECT_EQ(second.document.chunk_count, 2);
  ASSERT_OK_AND_ASSIGN(auto chunks_after, store_->GetChunks(first.document.id));
  ASSERT_EQ(chunks_after.size(), chunks_before.size());
  for (size_t i = 0; i < chunks_after.size(); ++i) {
    EXPECT_EQ(chunks_after[i].id, chunks_before[i].id);
  }
}

TEST_P(StoreContractTest, DifferentShaReplacesChunksAtomically) {
  ASSERT_OK(store_->CreateCollection("docs", ""));
  ASSERT_OK_AND_ASSIGN(
      PutResult first,
      store_->PutDocument(MakeDocument("docs", "/a.txt", {"the zebra grazes", "old giraffe"})));
  ASSERT_OK_AND_ASSIGN(auto old_chunks, store_->GetChunks(first.document.id));
  EXPECT_EQ(SearchSources({"zebra"}).size(), 1u);

  DocumentInput replacement =
      MakeDocument("docs", "/a.txt", {"a new pelican", "and a walrus", "and a toucan"}, "v2");
  ASSERT_OK_AND_ASSIGN(PutResult second, store_->PutDocument(replacement));
  EXPECT_EQ(second.outcome, PutOutcome::kReplaced);
  EXPECT_EQ(second.document.id, first.document.id);
  EXPECT_EQ(second.document.sha256, replacement.sha256);
  EXPECT_EQ(second.document.title, "v2");
  EXPECT_EQ(second.document.chunk_count, 3);
  EXPECT_EQ(second.document.created_at, first.document.created_at);
  EXPECT_GE(second.document.updated_at, first.document.updated_at);

  ASSERT_OK_AND_ASSIGN(auto new_chunks, store_->GetChunks(first.document.id));
  ASSERT_EQ(new_chunks.size(), 3u);
  EXPECT_EQ(new_chunks[0].text, "a new pelican");
  for (const Chunk& old_chunk : old_chunks) {
    for (const Chunk& new_chunk : new_chunks) EXPECT_NE(old_chunk.id, new_chunk.id);
  }
  // The old text is gone from the index, the new text is in it.
  EXPECT_TRUE(SearchSources({"zebra"}).empty());
  EXPECT_TRUE(SearchSources({"giraffe"}).empty());
  EXPECT_EQ(SearchSources({"pelican"}), std::vector<std::string>{"/a.txt"});
  EXPECT_EQ(SearchSources({"walrus"}), std::vector<std::string>{"/a.txt"});
  EXPECT_EQ(*store_->CountDocumentsWithSha(first.document.sha256), 0);
  EXPECT_EQ(*store_->CountDocumentsWithSha(replacement.sha256), 1);
  ASSERT_OK_AND_ASSIGN(auto stats, store_->Stats());
  EXPECT_EQ(stats.documents, 1);
  EXPECT_EQ(stats.chunks, 3);
}

TEST_P(StoreContractTest, SameSourceInTwoCollectionsIsTwoDocuments) {
  ASSERT_OK(store_->CreateCollection("a", ""));
  ASSERT_OK(store_->CreateCollection("b", ""));
  ASSERT_OK_AND_ASSIGN(PutResult in_a, store_->PutDocument(MakeDocument("a", "/same", {"x"})));
  ASSERT_OK_AND_ASSIGN(PutResult in_b, store_->PutDocument(MakeDocument("b", "/same", {"x"})));
  EXPECT_EQ(in_b.outcome, PutOutcome::kCreated);
  EXPECT_NE(in_a.document.id, in_b.document.id);
  EXPECT_EQ(*store_->CountDocumentsWithSha(in_a.document.sha256), 2);
}

TEST_P(StoreContractTest, InvalidDocumentInputIsRejectedAndNothingWritten) {
  ASSERT_OK(store_->CreateCollection("docs", ""));
  DocumentInput no_source = MakeDocument("docs", "", {"text"});
  EXPECT_CODE(store_->PutDocument(no_source), kInvalidArgument);
  DocumentInput no_sha = MakeDocument("docs", "/a", {"text"});
  no_sha.sha256.clear();
  EXPECT_CODE(store_->PutDocument(no_sha), kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(auto stats, store_->Stats());
  EXPECT_EQ(stats.documents, 0);
  EXPECT_EQ(stats.chunks, 0);
}

TEST_P(StoreContractTest, ArbitraryTextRoundTrips) {
  ASSERT_OK(store_->CreateCollection("docs", ""));
  const std::vector<std::string> texts = {
      "naïve café — ünïcödé",           "東京都 日本語のテキスト",        "emoji 😀🎉 end",
      std::string("embedded\0nul", 12), "quotes \" ' ` and \\ backslash", std::string(100000, 'x')};
  DocumentInput input =
      MakeDocument("docs", "upload:weird name \"quoted\".txt", texts, "Tïtle with 'quotes'");
  ASSERT_OK_AND_ASSIGN(PutResult put, store_->PutDocument(input));
  ASSERT_OK_AND_ASSIGN(auto chunks, store_->GetChunks(put.document.id));
  ASSERT_EQ(chunks.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(chunks[i].text, texts[i]);
  EXPECT_EQ(put.document.source, input.source);
  EXPECT_EQ(put.document.title, input.title);
}

TEST_P(StoreContractTest, DeleteDocumentRemovesChunksAndIndex) {
  ASSERT_OK(store_->CreateCollection("docs", ""));
  ASSERT_OK_AND_ASSIGN(PutResult keep,
                       store_->PutDocument(MakeDocument("docs", "/keep", {"shared kangaroo"})));
  ASSERT_OK_AND_ASSIGN(PutResult gone, store_->PutDocument(MakeDocument(
                                           "docs", "/gone", {"shared platypus", "more platypus"})));
  ASSERT_OK_AND_ASSIGN(Document deleted, store_->DeleteDocument(gone.document.id));
  EXPECT_EQ(deleted.id, gone.document.id);
  EXPECT_EQ(deleted.sha256, gone.document.sha256);
  EXPECT_EQ(deleted.source, "/gone");

  EXPECT_CODE(store_->GetDocument(gone.document.id), kNotFound);
  EXPECT_CODE(store_->GetChunks(gone.document.id), kNotFound);
  EXPECT_CODE(store_->DeleteDocument(gone.document.id), kNotFound);
  ASSERT_OK_AND_ASSIGN(auto found, store_->FindDocument("docs", "/gone"));
  EXPECT_FALSE(found.has_value());
  EXPECT_TRUE(SearchSources({"platypus"}).empty());
  EXPECT_EQ(SearchSources({"shared"}), std::vector<std::string>{"/keep"});
  EXPECT_EQ(*store_->CountDocumentsWithSha(gone.document.sha256), 0);
  ASSERT_OK_AND_ASSIGN(auto stats, store_->Stats());
  EXPECT_EQ(stats.documents, 1);
  EXPECT_EQ(stats.chunks, 1);
  ASSERT_OK(store_->GetDocument(keep.document.id));
}

TEST_P(StoreContractTest, DeleteCollectionCascades) {
  ASSERT_OK(store_->CreateCollection("gone", ""));
  ASSERT_OK(store_->CreateCollection("kept", ""));
  ASSERT_OK_AND_ASSIGN(PutResult d1,
                       store_->PutDocument(MakeDocument("gone", "/1", {"ocelot one", "x"})));
  ASSERT_OK_AND_ASSIGN(PutResult d2,
                       store_->PutDocument(MakeDocument("gone", "/2", {"ocelot two"})));
  ASSERT_OK_AND_ASSIGN(PutResult d3,
                       store_->PutDocument(MakeDocument("kept", "/3", {"ocelot three"})));

  ASSERT_OK_AND_ASSIGN(std::vector<std::string> shas, store_->DeleteCollection("gone"));
  std::multiset<std::string> expected = {d1.document.sha256, d2.document.sha256};
  EXPECT_EQ(std::multiset<std::string>(shas.begin(), shas.end()), expected);

  EXPECT_CODE(store_->GetCollection("gone"), kNotFound);
  EXPECT_CODE(store_->GetDocument(d1.document.id), kNotFound);
  EXPECT_CODE(store_->GetDocument(d2.document.id), kNotFound);
  EXPECT_CODE(store_->GetChunks(d1.document.id), kNotFound);
  EXPECT_EQ(SearchSources({"ocelot"}), std::vector<std::string>{"/3"});
  ASSERT_OK_AND_ASSIGN(auto stats, store_->Stats());
  EXPECT_EQ(stats.collections, 1);
  EXPECT_EQ(stats.documents, 1);
  EXPECT_EQ(stats.chunks, 1);
  ASSERT_OK(store_->GetDocument(d3.document.id));

  // The name can be reused and starts empty.
  ASSERT_OK_AND_ASSIGN(Collection again, store_->CreateCollection("gone", ""));
  EXPECT_EQ(again.document_count, 0);
  EXPECT_TRUE(SearchSources({"ocelot"}, std::string("gone")).empty());
}

TEST_P(StoreContractTest, ListDocumentsNewestFirstWithFilterAndPaging) {
  ASSERT_OK(store_->CreateCollection("a", ""));
  ASSERT_OK(store_->CreateCollection("b", ""));
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK(store_->PutDocument(MakeDocument("a", "/a" + std::to_string(i), {"text"})));
    ASSERT_OK(store_->PutDocument(MakeDocument("b", "/b" + std::to_string(i), {"text", "more"})));
  }
  ASSERT_OK_AND_ASSIGN(auto all, store_->ListDocuments(std::nullopt, 100, 0));
  ASSERT_EQ(all.size(), 10u);
  EXPECT_EQ(all[0].source, "/b4");
  EXPECT_EQ(all[1].source, "/a4");
  EXPECT_EQ(all[9].source, "/a0");
  ASSERT_OK_AND_ASSIGN(auto empty_name_means_all, store_->ListDocuments(std::string(), 100, 0));
  EXPECT_EQ(empty_name_means_all.size(), 10u);

  ASSERT_OK_AND_ASSIGN(auto only_a, store_->ListDocuments(std::string("a"), 100, 0));
  ASSERT_EQ(only_a.size(), 5u);
  for (size_t i = 0; i < only_a.size(); ++i) {
    EXPECT_EQ(only_a[i].collection, "a");
    EXPECT_EQ(only_a[i].source, "/a" + std::to_string(4 - i));
    EXPECT_EQ(only_a[i].chunk_count, 1);
  }
  ASSERT_OK_AND_ASSIGN(auto page, store_->ListDocuments(std::string("b"), 2, 1));
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].source, "/b3");
  EXPECT_EQ(page[1].source, "/b2");
  EXPECT_EQ(page[0].chunk_count, 2);
  ASSERT_OK_AND_ASSIGN(auto past_end, store_->ListDocuments(std::string("b"), 10, 5));
  EXPECT_TRUE(past_end.empty());

  EXPECT_CODE(store_->ListDocuments(std::nullopt, 0, 0), kInvalidArgument);
  EXPECT_CODE(store_->ListDocuments(std::nullopt, 10, -1), kInvalidArgument);
}

TEST_P(StoreContractTest, GetOfUnknownIdsIsNotFound) {
  EXPECT_CODE(store_->GetDocument(424242), kNotFound);
  EXPECT_CODE(store_->GetChunks(424242), kNotFound);
  EXPECT_CODE(store_->DeleteDocument(424242), kNotFound);
  EXPECT_CODE(store_->GetDocument(-1), kNotFound);
  EXPECT_EQ(*store_->CountDocumentsWithSha("no-such-sha"), 0);
}

// --- search --------------------------------------------------------------------

TEST_P(StoreContractTest, MoreMatchingTermsRankFirst) {
  ASSERT_OK(store_->CreateCollection("docs", ""));
  ASSERT_OK(store_->PutDocument(
      MakeDocument("docs", "/one", {"the alpha release shipped on a tuesday with several fixes"})));
  ASSERT_OK(store_->PutDocument(MakeDocument(
      "docs", "/three", {"alpha beta gamma are the three stages of the release train"})));
  ASSERT_OK(store_->PutDocument(MakeDocument(
      "docs", "/two", {"after alpha came beta, then a long pause in the release notes"})));
  ASSERT_OK(store_->PutDocument(MakeDocument("docs", "/none", {"nothing relevant here at all"})));

  ASSERT_OK_AND_ASSIGN(auto hits, Search({"alpha", "beta", "gamma"}));
  ASSERT_EQ(hits.size(), 3u);
  EXPECT_EQ(hits[0].source, "/three");
  EXPECT_EQ(hits[1].source, "/two");
  EXPECT_EQ(hits[2].source, "/one");
  EXPECT_GT(hits[0].score, hits[1].score);
  EXPECT_GT(hits[1].score, hits[2].score);
  EXPECT_GT(hits[2].score, 0);  // negated bm25: higher is better, and positive
}

TEST_P(StoreContractTest, HitsCarryDocumentAndChunkFields) {
  ASSERT_OK(store_->CreateCollection("docs", ""));
  DocumentInput input =
      MakeDocument("docs", "/srv/manual.pdf", {"intro page", "the capybara chapter"}, "Manual");
  input.chunks[1].section = "Animals > Rodents";
  input.chunks[1].page = 7;
  ASSERT_OK_AND_ASSIGN(PutResult put, store_->PutDocument(input));
  ASSERT_OK_AND_ASSIGN(auto chunks, store_->GetChunks(put.document.id));
  ASSERT_OK_AND_ASSIGN(auto hits, Search({"capybara"}));
  ASSERT_EQ(hits.size(), 1u);
  const SearchHit& hit = hits[0];
  EXPECT_EQ(hit.chunk_id, chunks[1].id);
  EXPECT_EQ(hit.document_id, put.document.id);
  EXPECT_EQ(hit.collection, "docs");
  EXPECT_EQ(hit.source, "/srv/manual.pdf");
  EXPECT_EQ(hit.title, "Manual");
  EXPECT_EQ(hit.section, "Animals > Rodents");
  EXPECT_EQ(hit.page, 7);
  EXPECT_EQ(hit.text, "the capybara chapter");
}

TEST_P(StoreContractTest, SearchFiltersByCollection) {
  ASSERT_OK(store_->CreateCollection("a", ""));
  ASSERT_OK(store_->CreateCollection("b", ""));
  ASSERT_OK(store_->PutDocument(MakeDocument("a", "/in-a", {"common lemur"})));
  ASSERT_OK(store_->PutDocument(MakeDocument("b", "/in-b", {"common lemur too"})));
  EXPECT_EQ(SearchSources({"lemur"}, std::string("a")), std::vector<std::string>{"/in-a"});
  EXPECT_EQ(SearchSources({"lemur"}, std::string("b")), std::vector<std::string>{"/in-b"});
  EXPECT_EQ(SearchSources({"lemur"}).size(), 2u);
  EXPECT_EQ(SearchSources({"lemur"}, std::string()).size(), 2u);  // empty = all
}

TEST_P(StoreContractTest, SearchReturnsAtMostK) {
  ASSERT_OK(store_->CreateCollection("docs", ""));
  for (int i = 0; i < 20; ++i) {
    ASSERT_OK(store_->PutDocument(
        MakeDocument("docs", "/" + std::to_string(i), {"marmot number " + std::to_string(i)})));
  }
  ASSERT_OK_AND_ASSIGN(auto three, Search({"marmot"}, std::nullopt, 3));
  EXPECT_EQ(three.size(), 3u);
  ASSERT_OK_AND_ASSIGN(auto all, Search({"marmot"}, std::nullopt, 100));
  EXPECT_EQ(all.size(), 20u);
  ASSERT_OK_AND_ASSIGN(auto none, Search({"nonexistentword"}));
  EXPECT_TRUE(none.empty());
  EXPECT_CODE(Search({"marmot"}, std::nullopt, 0), kInvalidArgument);
  EXPECT_CODE(Search({"marmot"}, std::nullopt, -5), kInvalidArgument);
}

TEST_P(StoreContractTest, SnippetMarksTheMatchedTerm) {
  ASSERT_OK(store_->CreateCollection("docs", ""));
  std::string long_text;
  for (int i = 0; i < 60; ++i) long_text += "filler" + std::to_string(i) + " ";
  long_text += "the armadillo appears here ";
  for (int i = 60; i < 120; ++i) long_text += "filler" + std::to_string(i) + " ";
  ASSERT_OK(store_->PutDocument(MakeDocument("docs", "/long", {long_text})));
  ASSERT_OK_AND_ASSIGN(auto hits, Search({"armadillo"}));
  ASSERT_EQ(hits.size(), 1u);
  const std::string& snippet = hits[0].snippet;
  std::string marked = std::string(1, kMarkBegin) + "armadillo" + std::string(1, kMarkEnd);
  EXPECT_NE(snippet.find(marked), std::string::npos) << snippet;
  EXPECT_LT(snippet.size(), long_text.size() / 2);  // a window, not the whole chunk
  EXPECT_NE(snippet.find("…"), std::string::npos) << snippet;
  EXPECT_EQ(std::count(snippet.begin(), snippet.end(), kMarkBegin), 1);
  EXPECT_EQ(std::count(snippet.begin(), snippet.end(), kMarkEnd), 1);
}

TEST_P(StoreContractTest, DiacriticsAreFolded) {
  ASSERT_OK(store_->CreateCollection("docs", ""));
  ASSERT_OK(store_->PutDocument(MakeDocument("docs", "/accent", {"un café crème à Paris"})));
  ASSERT_OK(store_->PutDocument(MakeDocument("docs", "/plain", {"the naive resume"})));
  EXPECT_EQ(SearchSources({"cafe"}), std::vector<std::string>{"/accent"});
  EXPECT_EQ(SearchSources({"CAFÉ"}), std::vector<std::string>{"/accent"});
  EXPECT_EQ(SearchSources({"creme"}), std::vector<std::string>{"/accent"});
  EXPECT_EQ(SearchSources({"naïve"}), std::vector<std::string>{"/plain"});
  EXPECT_EQ(SearchSources({"résumé"}), std::vector<std::string>{"/plain"});
}

TEST_P(StoreContractTest, WordsAreStemmed) {
  ASSERT_OK(store_->CreateCollection("docs", ""));
  ASSERT_OK(store_->PutDocument(MakeDocument("docs", "/runs", {"she runs every morning"})));
  ASSERT_OK(store_->PutDocument(MakeDocument("docs", "/run", {"a long run in the park"})));
  ASSERT_OK(store_->PutDocument(MakeDocument("docs", "/walk", {"a walk in the park"})));
  std::vector<std::string> sources = SearchSources({"running"});
  std::sort(sources.begin(), sources.end());
  EXPECT_EQ(sources, (std::vector<std::string>{"/run", "/runs"}));
}

TEST_P(StoreContractTest, MalformedExpressionIsInvalidArgument) {
  ASSERT_OK(store_->CreateCollection("docs", ""));
  ASSERT_OK(store_->PutDocument(MakeDocument("docs", "/a", {"some text"})));
  const std::string bad[] = {"\"unterminated", "AND", "(",        "some AND", "nosuchcolumn:text",
                             "NEAR(",          "*",   "\"a\" OR", ")"};
  for (const std::string& expression : bad) {
    SearchQuery q;
    q.fts_expression = expression;
    EXPECT_CODE(store_->SearchChunks(q), kInvalidArgument);
  }
  SearchQuery empty;
  EXPECT_CODE(store_->SearchChunks(empty), kInvalidArgument);
  // The store is still fine afterwards.
  EXPECT_EQ(SearchSources({"text"}).size(), 1u);
}

TEST_P(StoreContractTest, StatsCountEverything) {
  ASSERT_OK_AND_ASSIGN(auto empty, store_->Stats());
  EXPECT_EQ(empty.collections, 0);
  EXPECT_EQ(empty.documents, 0);
  EXPECT_EQ(empty.chunks, 0);
  EXPECT_GT(empty.db_bytes, 0);
  ASSERT_OK(store_->CreateCollection("a", ""));
  ASSERT_OK(store_->CreateCollection("b", ""));
  ASSERT_OK(store_->PutDocument(MakeDocument("a", "/1", {"x", "y"})));
  ASSERT_OK(store_->PutDocument(MakeDocument("b", "/1", {std::string(200000, 'w')})));
  ASSERT_OK_AND_ASSIGN(auto stats, store_->Stats());
  EXPECT_EQ(stats.collections, 2);
  EXPECT_EQ(stats.documents, 2);
  EXPECT_EQ(stats.chunks, 3);
  EXPECT_GT(stats.db_bytes, 200000);
}

// --- concurrency ---------------------------------------------------------------

TEST_P(StoreContractTest, ReadersRunWhileOneThreadWrites) {
  ASSERT_OK(store_->CreateCollection("docs", ""));
  ASSERT_OK(store_->PutDocument(MakeDocument("docs", "/seed", {"seed chunk about hedgehogs"})));
  constexpr int kDocuments = 40;
  std::atomic<bool> writer_done{false};
  std::atomic<int> read_errors{0};
  std::atomic<int> searches{0};
  std::string first_error;
  std::mutex error_mu;
  auto note_error = [&](const Status& s) {
    read_errors.fetch_add(1);
    std::lock_guard<std::mutex> lock(error_mu);
    if (first_error.empty()) first_error = s.ToString();
  };

  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      while (!writer_done.load()) {
        auto hits = Search({"hedgehogs"}, std::string("docs"), 1000);
        if (!hits) {
          note_error(hits.error());
          continue;
        }
        // The seed document is never touched: every read must see it.
        bool seed_seen = std::any_of(hits->begin(), hits->end(),
                                     [](const SearchHit& h) { return h.source == "/seed"; });
        if (!seed_seen) note_error(Status::Internal("seed document missing from a search"));
        ++searches;
        auto list = store_->ListDocuments(std::string("docs"), 5, 0);
        if (!list) note_error(list.error());
        auto stats = store_->Stats();
        if (!stats) note_error(stats.error());
      }
    });
  }
  // Start writing only once every reader is searching, so reads and writes
  // really overlap.
  while (searches.load() < 4 && read_errors.load() == 0) std::this_thread::yield();
  Status write_status;
  for (int i = 0; i < kDocuments && write_status.ok(); ++i) {
    auto put = store_->PutDocument(MakeDocument(
        "docs", "/doc" + std::to_string(i),
        {"hedgehogs chunk " + std::to_string(i), "second chunk " + std::to_string(i)}));
    if (!put) write_status = put.error();
    if (i % 10 == 9) {
      auto del = store_->DeleteDocument(put->document.id);
      if (!del) write_status = del.error();
    }
  }
  writer_done = true;
  for (auto& t : readers) t.join();
  ASSERT_TRUE(write_status.ok()) << write_status.ToString();
  EXPECT_EQ(read_errors.load(), 0) << first_error;
  EXPECT_GT(searches.load(), 0);
  ASSERT_OK_AND_ASSIGN(auto hits, Search({"hedgehogs"}, std::nullopt, 1000));
  EXPECT_EQ(hits.size(), 1u + kDocuments - kDocuments / 10);
}

TEST_P(StoreContractTest, ConcurrentWritersAreSerialized) {
  ASSERT_OK(store_->CreateCollection("docs", ""));
  std::atomic<int> errors{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 3; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 15; ++i) {
        std::string source = "/t" + std::to_string(t) + "/" + std::to_string(i);
        if (!store_->PutDocument(MakeDocument("docs", source, {"text " + source}))) ++errors;
        if (!store_->EnsureCollection("extra" + std::to_string(t))) ++errors;
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(errors.load(), 0);
  ASSERT_OK_AND_ASSIGN(auto stats, store_->Stats());
  EXPECT_EQ(stats.documents, 45);
  EXPECT_EQ(stats.chunks, 45);
  EXPECT_EQ(stats.collections, 4);
}

INSTANTIATE_TEST_SUITE_P(AllStores, StoreContractTest, ::testing::ValuesIn(kStoreFactories),
                         [](const ::testing::TestParamInfo<StoreFactory>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace xnai::store
