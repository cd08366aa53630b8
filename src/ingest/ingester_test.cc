#include "ingest/ingester.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "base/files.h"
#include "ingest/test_pdf.h"

namespace xnai::ingest {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "xnai-ingest-XXXXXX").string();
    char* made = ::mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    path_ = fs::canonical(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void WriteFile(const fs::path& path, std::string_view data) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

// An in-memory Store with fault injection, so the Ingester's own logic is
// tested independently of SQLite (the SQLite tests below cover the real one).
class FakeStore : public store::Store {
 public:
  Status fail_put;        // returned by PutDocument when not OK
  int succeed_first = 0;  // ... except by the first this many calls
  int put_calls = 0;

  Result<store::Collection> CreateCollection(const std::string& name,
                                             const std::string& description) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (collections_.count(name)) return Err(Status::AlreadyExists(name));
    store::Collection c;
    c.id = static_cast<int64_t>(collections_.size()) + 1;
    c.name = name;
    c.description = description;
    collections_[name] = c;
    return c;
  }
  Result<store::Collection> EnsureCollection(const std::string& name) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (collections_.count(name)) return collections_[name];
    }
    return CreateCollection(name, "");
  }
  Result<store::Collection> GetCollection(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!collections_.count(name)) return Err(Status::NotFound(name));
    return collections_[name];
  }
  Result<std::vector<store::Collection>> ListCollections() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<store::Collection> out;
    for (auto& [name, c] : collections_) out.push_back(c);
    return out;
  }
  Result<std::vector<std::string>> DeleteCollection(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> shas;
    for (auto it = docs_.begin(); it != docs_.end();) {
      if (it->second.collection == name) {
        shas.push_back(it->second.sha256);
        chunks_.erase(it->first);
        it = docs_.erase(it);
      } else {
        ++it;
      }
    }
    collections_.erase(name);
    return shas;
  }
  Result<store::PutResult> PutDocument(const store::DocumentInput& input) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++put_calls;
    if (!fail_put.ok() && put_calls > succeed_first) return Err(fail_put);
    if (!collections_.count(input.collection)) return Err(Status::NotFound(input.collection));
    store::PutResult result;
    for (auto& [id, doc] : docs_) {
      if (doc.collection == input.collection && doc.source == input.source) {
        if (doc.sha256 == input.sha256) {
          result.document = doc;
          result.outcome = store::PutOutcome::kUnchanged;
          return result;
        }
        Fill(doc, input);
        result.document = doc;
        result.outcome = store::PutOutcome::kReplaced;
        return result;
      }
    }
    store::Document doc;
    doc.id = ++next_id_;
    Fill(doc, input);
    docs_[doc.id] = doc;
    result.document = doc;
    result.outcome = store::PutOutcome::kCreated;
    return result;
  }
  Result<std::optional<store::Document>> FindDocument(const std::string& collection,
                                                      const std::string& source) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, doc] : docs_) {
      if (doc.collection == collection && doc.source == source) return std::optional(doc);
    }
    return std::optional<store::Document>();
  }
  Result<store::Document> GetDocument(int64_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!docs_.count(id)) return Err(Status::NotFound("document"));
    return docs_[id];
  }
  Result<std::vector<store::Document>> ListDocuments(const std::optional<std::string>& collection,
                                                     int limit, int offset) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<store::Document> out;
    for (auto& [id, doc] : docs_) {
      if (!collection || doc.collection == *collection) out.push_back(doc);
    }
    return out;
  }
  Result<std::vector<store::Chunk>> GetChunks(int64_t document_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    return chunks_[document_id];
  }
  Result<store::Document> DeleteDocument(int64_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!docs_.count(id)) return Err(Status::NotFound("document"));
    store::Document doc = docs_[id];
    docs_.erase(id);
    chunks_.erase(id);
    return doc;
  }
  Result<int64_t> CountDocumentsWithSha(const std::string& sha256) override {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t n = 0;
    for (auto& [id, doc] : docs_) n += doc.sha256 == sha256;
    return n;
  }
  Result<std::vector<store::SearchHit>> SearchChunks(const store::SearchQuery&) override {
    return Err(Status::Unsupported("the fake store does not search"));
  }
  // Vectors are not the Ingester's business.
  Result<std::vector<store::SearchHit>> GetHits(const std::vector<int64_t>&) override {
    return Err(NoVectors());
  }
  Result<std::optional<store::VectorSpace>> GetVectorSpace(const std::string&) override {
    return Err(NoVectors());
  }
  Result<store::VectorSpace> SetVectorSpace(const std::string&, const std::string&,
                                            int64_t) override {
    return Err(NoVectors());
  }
  Result<int64_t> CountVectors(const std::string&) override { return Err(NoVectors()); }
  Result<std::vector<std::string>> CollectionsWithVectors() override { return Err(NoVectors()); }
  Result<std::vector<store::Chunk>> ChunksWithoutVectors(const std::string&, int64_t,
                                                         int) override {
    return Err(NoVectors());
  }
  Result<int64_t> PutVectors(const std::string&, const std::string&,
                             const std::vector<store::ChunkVector>&) override {
    return Err(NoVectors());
  }
  Result<std::vector<store::ChunkVector>> ListVectors(const std::string&, int64_t,
                                                      int) override {
    return Err(NoVectors());
  }
  Result<std::vector<store::ChunkVector>> GetVectors(const std::vector<int64_t>&) override {
    return Err(NoVectors());
  }
  Result<std::vector<store::VectorChange>> VectorChanges(const std::string&, int64_t,
                                                         int) override {
    return Err(NoVectors());
  }
  Status TrimVectorLog(const std::string&, int64_t) override { return NoVectors(); }
  static Status NoVectors() { return Status::Unsupported("the fake store has no vectors"); }
  // Nor are conversations.
  Result<store::Conversation> CreateConversation(const std::string&) override {
    return Err(NoVectors());
  }
  Result<store::Conversation> GetConversation(int64_t) override { return Err(NoVectors()); }
  Result<std::vector<store::Conversation>> ListConversations(int, int) override {
    return Err(NoVectors());
  }
  Result<store::Conversation> RenameConversation(int64_t, const std::string&) override {
    return Err(NoVectors());
  }
  Result<store::Conversation> DeleteConversation(int64_t) override { return Err(NoVectors()); }
  Result<store::Message> AddMessage(const store::Message&) override { return Err(NoVectors()); }
  Result<std::vector<store::Message>> GetMessages(int64_t) override { return Err(NoVectors()); }

  Result<store::StoreStats> Stats() override {
    std::lock_guard<std::mutex> lock(mu_);
    store::StoreStats s;
    s.collections = static_cast<int64_t>(collections_.size());
    s.documents = static_cast<int64_t>(docs_.size());
    for (auto& [id, c] : chunks_) s.chunks += static_cast<int64_t>(c.size());
    return s;
  }

 private:
  void Fill(store::Document& doc, const store::DocumentInput& input) {
    doc.collection = input.collection;
    doc.source = input.source;
    doc.title = input.title;
    doc.media_type = input.media_type;
    doc.sha256 = input.sha256;
    doc.size_bytes = input.size_bytes;
    doc.chunk_count = static_cast<int64_t>(input.chunks.size());
    std::vector<store::Chunk> chunks;
    for (size_t i = 0; i < input.chunks.size(); ++i) {
      store::Chunk c;
      static_cast<store::ChunkInput&>(c) = input.chunks[i];
      c.document_id = doc.id;
      c.ordinal = static_cast<int32_t>(i);
      chunks.push_back(c);
    }
    chunks_[doc.id] = std::move(chunks);
  }

  std::mutex mu_;
  std::map<std::string, store::Collection> collections_;
  std::map<int64_t, store::Document> docs_;
  std::map<int64_t, std::vector<store::Chunk>> chunks_;
  int64_t next_id_ = 0;
};

// A corpus with one file of every kind the ingester meets.
void WriteCorpus(const fs::path& root) {
  WriteFile(root / "a.txt", "Alpha notes\n\nThe alpha file talks about apples.\n");
  WriteFile(root / "guide.md", "# Guide\n\nRead the guide.\n\n## Part\n\nMore text.\n");
  WriteFile(root / "sub" / "page.html",
            "<html><head><title>Page</title></head><body><p>Web page text.</p></body></html>");
  WriteFile(root / "sub" / "doc.pdf",
            testing::MakePdf({testing::PdfPage{{"PDF page one text."}}}, "A PDF"));
  WriteFile(root / "image.png", std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01", 20));
  WriteFile(root / "empty.txt", "");
  WriteFile(root / "broken.pdf", "%PDF-1.4\nthis is not really a pdf");
  WriteFile(root / ".hidden.txt", "hidden file text");
  WriteFile(root / ".git" / "config.txt", "hidden folder text");
}

class IngesterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto blobs = store::BlobStore::Open(blob_dir_.path());
    ASSERT_TRUE(blobs) << blobs.error().ToString();
    blobs_.emplace(std::move(*blobs));
    ingester_.emplace(store_, *blobs_);
  }

  std::map<std::string, FileOutcome> BySource(const IngestSummary& summary) {
    std::map<std::string, FileOutcome> out;
    for (const auto& f : summary.skipped_files) out[fs::path(f.source).filename().string()] = f;
    return out;
  }

  TempDir data_;
  TempDir blob_dir_;
  FakeStore store_;
  std::optional<store::BlobStore> blobs_;
  std::optional<Ingester> ingester_;
};

TEST_F(IngesterTest, IngestsFolderAndSkipsWithReasons) {
  WriteCorpus(data_.path());
  std::vector<std::pair<int64_t, int64_t>> progress_calls;
  IngestOptions options;
  options.collection = "docs";
  auto summary = ingester_->IngestPaths({data_.path()}, options,
                                        [&](int64_t done, int64_t total, const FileOutcome&) {
                                          progress_calls.push_back({done, total});
                                        });
  ASSERT_TRUE(summary) << summary.error().ToString();
  EXPECT_EQ(summary->files, 7);  // hidden file and folder not even considered
  EXPECT_EQ(summary->added, 4);
  EXPECT_EQ(summary->updated, 0);
  EXPECT_EQ(summary->unchanged, 0);
  EXPECT_EQ(summary->skipped, 3);
  EXPECT_GE(summary->chunks, 4);
  EXPECT_GT(summary->bytes, 0);
  ASSERT_EQ(progress_calls.size(), 7u);
  EXPECT_EQ(progress_calls.back(), std::make_pair(int64_t{7}, int64_t{7}));

  auto skipped = BySource(*summary);
  ASSERT_EQ(skipped.size(), 3u);
  EXPECT_NE(skipped["image.png"].reason.find("binary content (image/png)"), std::string::npos);
  EXPECT_NE(skipped["empty.txt"].reason.find("empty file"), std::string::npos);
  EXPECT_NE(skipped["broken.pdf"].reason.find("PDF"), std::string::npos);

  auto docs = store_.ListDocuments(std::string("docs"), 100, 0);
  ASSERT_TRUE(docs);
  ASSERT_EQ(docs->size(), 4u);
  std::map<std::string, store::Document> by_name;
  for (const auto& d : *docs) by_name[fs::path(d.source).filename().string()] = d;
  EXPECT_EQ(by_name["a.txt"].title, "Alpha notes");
  EXPECT_EQ(by_name["a.txt"].source, (data_.path() / "a.txt").string());
  EXPECT_EQ(by_name["guide.md"].title, "Guide");
  EXPECT_EQ(by_name["guide.md"].media_type, "text/markdown");
  EXPECT_EQ(by_name["page.html"].title, "Page");
  EXPECT_EQ(by_name["doc.pdf"].title, "A PDF");
  auto pdf_chunks = store_.GetChunks(by_name["doc.pdf"].id);
  ASSERT_TRUE(pdf_chunks);
  ASSERT_FALSE(pdf_chunks->empty());
  EXPECT_EQ((*pdf_chunks)[0].page, 1);
  for (const auto& d : *docs) {
    EXPECT_TRUE(blobs_->Has(d.sha256)) << d.source;
    auto original = ReadFileToString(d.source);
    ASSERT_TRUE(original);
    EXPECT_EQ(d.sha256, Sha256Hex(*original));
  }
}

TEST_F(IngesterTest, ReingestUnchangedDoesNotParseOrWrite) {
  WriteCorpus(data_.path());
  IngestOptions options;
  ASSERT_TRUE(ingester_->IngestPaths({data_.path()}, options));
  int puts = store_.put_calls;
  auto again = ingester_->IngestPaths({data_.path()}, options);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->unchanged, 4);
  EXPECT_EQ(again->added, 0);
  EXPECT_EQ(again->chunks, 0);
  EXPECT_EQ(store_.put_calls, puts);
}

TEST_F(IngesterTest, ModifiedFileIsUpdatedAndOldBlobRemoved) {
  WriteFile(data_.path() / "a.txt", "version one of the file");
  WriteFile(data_.path() / "copy.txt", "shared content");
  IngestOptions options;
  ASSERT_TRUE(ingester_->IngestPaths({data_.path()}, options));
  auto doc = store_.FindDocument("default", (data_.path() / "a.txt").string());
  ASSERT_TRUE(doc && doc->has_value());
  std::string old_sha = (*doc)->sha256;
  ASSERT_TRUE(blobs_->Has(old_sha));

  WriteFile(data_.path() / "a.txt", "version two of the file, longer");
  auto summary = ingester_->IngestPaths({data_.path()}, options);
  ASSERT_TRUE(summary);
  EXPECT_EQ(summary->updated, 1);
  EXPECT_EQ(summary->unchanged, 1);
  EXPECT_FALSE(blobs_->Has(old_sha)) << "no document references the old bytes any more";
  auto updated = store_.FindDocument("default", (data_.path() / "a.txt").string());
  ASSERT_TRUE(updated && updated->has_value());
  auto chunks = store_.GetChunks((*updated)->id);
  ASSERT_TRUE(chunks);
  ASSERT_EQ(chunks->size(), 1u);
  EXPECT_EQ((*chunks)[0].text, "version two of the file, longer");

  // The old content lives on in another document: its blob must stay.
  WriteFile(data_.path() / "b.txt", "shared content");
  ASSERT_TRUE(ingester_->IngestPaths({data_.path()}, options));
  std::string shared_sha = Sha256Hex("shared content");
  WriteFile(data_.path() / "copy.txt", "no longer shared");
  ASSERT_TRUE(ingester_->IngestPaths({data_.path()}, options));
  EXPECT_TRUE(blobs_->Has(shared_sha));
}

TEST_F(IngesterTest, IncludeExcludeGlobs) {
  WriteCorpus(data_.path());
  WriteFile(data_.path() / "drafts" / "wip.md", "# WIP\n\nwork in progress\n");
  WriteFile(data_.path() / "node_modules" / "pkg" / "readme.md", "# Pkg\n\ntext\n");
  IngestOptions options;
  options.include = {"*.md", "*.txt"};
  options.exclude = {"drafts/*", "node_modules", "empty.txt"};
  auto summary = ingester_->IngestPaths({data_.path()}, options);
  ASSERT_TRUE(summary) << summary.error().ToString();
  EXPECT_EQ(summary->files, 2);  // a.txt, guide.md
  EXPECT_EQ(summary->added, 2);
  auto docs = store_.ListDocuments(std::nullopt, 100, 0);
  ASSERT_TRUE(docs);
  for (const auto& d : *docs) {
    std::string name = fs::path(d.source).filename().string();
    EXPECT_TRUE(name == "a.txt" || name == "guide.md") << name;
  }
}

TEST_F(IngesterTest, MissingPathIsNotFoundAndNothingIsWritten) {
  WriteFile(data_.path() / "a.txt", "text");
  auto result = ingester_->IngestPaths({data_.path() / "a.txt", data_.path() / "missing"}, {});
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), Status::Code::kNotFound);
  EXPECT_NE(result.error().message().find("missing"), std::string::npos);
  EXPECT_EQ(store_.put_calls, 0);
}

TEST_F(IngesterTest, StoreFailureStopsTheRun) {
  WriteCorpus(data_.path());
  store_.fail_put = Status::ResourceExhausted("disk full");
  auto result = ingester_->IngestPaths({data_.path()}, {});
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), Status::Code::kResourceExhausted);
  EXPECT_EQ(store_.put_calls, 1) << "stopped at the first failure";
  // The blob written for the failed document was cleaned up.
  EXPECT_FALSE(blobs_->Has(Sha256Hex(*ReadFileToString(data_.path() / "a.txt"))));
}

// ---------------------------------------------------------------- parallel

// Every file name in the blob store (blobs are DIR/ab/abcdef...).
std::vector<std::string> BlobFiles(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) out.push_back(entry.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Many files of every kind, so worker threads run ahead of the store writes.
void WriteBigCorpus(const fs::path& root) {
  WriteCorpus(root);
  for (int i = 0; i < 40; ++i) {
    std::string text = "File number " + std::to_string(i) + "\n\n";
    for (int k = 0; k <= i; ++k) text += "Paragraph " + std::to_string(k) + " of some words.\n\n";
    WriteFile(root / "many" / ("f" + std::to_string(100 + i) + (i % 2 ? ".md" : ".txt")), text);
    if (i % 10 == 3)
      WriteFile(root / "many" / ("bin" + std::to_string(i) + ".txt"),
                std::string("binary\0bytes", 12));
  }
  WriteFile(root / "many" / "big.txt", std::string(5000, 'x'));
}

struct Recorded {
  std::vector<std::string> progress;  // "done/total kind source reason chunks bytes"
};

std::string Describe(int64_t done, int64_t total, const FileOutcome& o) {
  return std::to_string(done) + "/" + std::to_string(total) + " " +
         std::to_string(static_cast<int>(o.kind)) + " " + o.source + " [" + o.reason + "] " +
         std::to_string(o.chunks) + " " + std::to_string(o.bytes);
}

TEST_F(IngesterTest, ParallelRunMatchesSequentialRun) {
  WriteBigCorpus(data_.path());
  auto run = [&](int threads, FakeStore& store, const fs::path& blob_dir) {
    auto blobs = store::BlobStore::Open(blob_dir);
    EXPECT_TRUE(blobs);
    Ingester ingester(store, *blobs);
    IngestOptions options;
    options.threads = threads;
    options.max_file_bytes = 4096;  // big.txt is skipped as too large
    std::vector<std::string> calls;
    auto summary = ingester.IngestPaths({data_.path()}, options,
                                        [&](int64_t done, int64_t total, const FileOutcome& o) {
                                          calls.push_back(Describe(done, total, o));
                                        });
    EXPECT_TRUE(summary) << summary.error().ToString();
    std::vector<std::string> skipped;
    for (const auto& f : summary->skipped_files) skipped.push_back(f.source + " " + f.reason);
    calls.push_back("added " + std::to_string(summary->added) + " skipped " +
                    std::to_string(summary->skipped) + " chunks " +
                    std::to_string(summary->chunks) + " bytes " + std::to_string(summary->bytes));
    calls.insert(calls.end(), skipped.begin(), skipped.end());
    return calls;
  };
  FakeStore sequential_store;
  TempDir sequential_blobs;
  const std::vector<std::string> expected = run(1, sequential_store, sequential_blobs.path());
  ASSERT_GT(expected.size(), 50u);
  EXPECT_NE(std::find_if(expected.begin(), expected.end(),
                         [](const std::string& s) { return s.find("binary content") != s.npos; }),
            expected.end());
  EXPECT_NE(std::find_if(expected.begin(), expected.end(),
                         [](const std::string& s) { return s.find("over the limit") != s.npos; }),
            expected.end());
  for (int threads : {2, 5}) {
    SCOPED_TRACE(threads);
    for (int repeat = 0; repeat < 2; ++repeat) {
      FakeStore store;
      TempDir blob_dir;
      EXPECT_EQ(run(threads, store, blob_dir.path()), expected);
      EXPECT_EQ(BlobFiles(blob_dir.path()), BlobFiles(sequential_blobs.path()));
      // Document ids follow the order of commits, so they match too.
      auto docs = store.ListDocuments(std::nullopt, 1000, 0);
      auto sequential_docs = sequential_store.ListDocuments(std::nullopt, 1000, 0);
      ASSERT_TRUE(docs && sequential_docs);
      ASSERT_EQ(docs->size(), sequential_docs->size());
      for (size_t i = 0; i < docs->size(); ++i) {
        EXPECT_EQ((*docs)[i].id, (*sequential_docs)[i].id);
        EXPECT_EQ((*docs)[i].source, (*sequential_docs)[i].source);
        EXPECT_EQ((*docs)[i].sha256, (*sequential_docs)[i].sha256);
      }
    }
  }
}

TEST_F(IngesterTest, ParallelReingestIsUnchangedWithoutPuts) {
  WriteBigCorpus(data_.path());
  IngestOptions options;
  options.threads = 3;
  auto first = ingester_->IngestPaths({data_.path()}, options);
  ASSERT_TRUE(first) << first.error().ToString();
  const int puts = store_.put_calls;
  const auto blobs_before = BlobFiles(blob_dir_.path());
  // A pruned blob is put back even though the document is unchanged.
  auto docs = store_.ListDocuments(std::nullopt, 1000, 0);
  ASSERT_TRUE(docs && !docs->empty());
  ASSERT_TRUE(blobs_->Remove((*docs)[0].sha256).ok());
  auto again = ingester_->IngestPaths({data_.path()}, options);
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(again->unchanged, first->added);
  EXPECT_EQ(again->added, 0);
  EXPECT_EQ(store_.put_calls, puts);
  EXPECT_EQ(BlobFiles(blob_dir_.path()), blobs_before);
}

TEST_F(IngesterTest, ParallelStoreFailureMidRunStopsAndLeavesNoOrphanBlob) {
  WriteBigCorpus(data_.path());
  for (int threads : {1, 2, 4}) {
    SCOPED_TRACE(threads);
    FakeStore store;
    TempDir blob_dir;
    auto blobs = store::BlobStore::Open(blob_dir.path());
    ASSERT_TRUE(blobs);
    Ingester ingester(store, *blobs);
    store.fail_put = Status::ResourceExhausted("disk full");
    store.succeed_first = 6;
    IngestOptions options;
    options.threads = threads;
    std::vector<FileOutcome::Kind> kinds;
    auto result = ingester.IngestPaths(
        {data_.path()}, options,
        [&](int64_t, int64_t, const FileOutcome& o) { kinds.push_back(o.kind); });
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code(), Status::Code::kResourceExhausted);
    EXPECT_EQ(store.put_calls, 7) << "stopped at the first failure";
    // Progress was reported for every file before the failing one, not after.
    EXPECT_EQ(std::count(kinds.begin(), kinds.end(), FileOutcome::Kind::kAdded), 6);
    EXPECT_EQ(std::count(kinds.begin(), kinds.end(), FileOutcome::Kind::kSkipped),
              static_cast<int64_t>(kinds.size()) - 6);
    // Exactly the blobs of the stored documents remain: neither the failed
    // file's nor those that workers had written ahead for later files.
    auto docs = store.ListDocuments(std::nullopt, 1000, 0);
    ASSERT_TRUE(docs);
    ASSERT_EQ(docs->size(), 6u);
    std::vector<std::string> expected_blobs;
    for (const auto& d : *docs) expected_blobs.push_back(d.sha256);
    std::sort(expected_blobs.begin(), expected_blobs.end());
    EXPECT_EQ(BlobFiles(blob_dir.path()), expected_blobs);
  }
}

TEST_F(IngesterTest, ParallelRunHoldsAFewFilesAtOnce) {
  WriteBigCorpus(data_.path());
  IngestOptions options;
  options.threads = 2;
  // Blobs are written by the workers as they prepare files, so the blob
  // count when file N is reported bounds how far they ran ahead.
  int64_t most_ahead = 0;
  int64_t stored = 0;
  auto summary =
      ingester_->IngestPaths({data_.path()}, options, [&](int64_t, int64_t, const FileOutcome& o) {
        if (o.kind == FileOutcome::Kind::kAdded) ++stored;
        auto blobs = static_cast<int64_t>(BlobFiles(blob_dir_.path()).size());
        most_ahead = std::max(most_ahead, blobs - stored);
      });
  ASSERT_TRUE(summary) << summary.error().ToString();
  EXPECT_EQ(summary->added, stored);
  EXPECT_LE(most_ahead, 3) << "threads + 1 files in flight at most";
}

TEST_F(IngesterTest, ParallelRunReadsBigFilesAheadOneAtATime) {
  for (int i = 0; i < 12; ++i) {
    WriteFile(data_.path() / ("big" + std::to_string(10 + i) + ".txt"),
              "Big file " + std::to_string(i) + "\n\n" + std::string(20000, 'a' + i % 26));
  }
  IngestOptions options;
  options.threads = 4;
  options.max_bytes_in_flight = 30000;  // room for one of these files, not two
  int64_t most_ahead = 0;
  int64_t stored = 0;
  auto summary =
      ingester_->IngestPaths({data_.path()}, options, [&](int64_t, int64_t, const FileOutcome& o) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        if (o.kind == FileOutcome::Kind::kAdded) ++stored;
        auto blobs = static_cast<int64_t>(BlobFiles(blob_dir_.path()).size());
        most_ahead = std::max(most_ahead, blobs - stored);
      });
  ASSERT_TRUE(summary) << summary.error().ToString();
  EXPECT_EQ(summary->added, 12);
  EXPECT_LE(most_ahead, 1) << "one big file in flight at a time";
}

TEST_F(IngesterTest, TooLargeFileIsSkipped) {
  WriteFile(data_.path() / "big.txt", std::string(5000, 'a'));
  WriteFile(data_.path() / "small.txt", "small");
  IngestOptions options;
  options.max_file_bytes = 1000;
  auto summary = ingester_->IngestPaths({data_.path()}, options);
  ASSERT_TRUE(summary);
  EXPECT_EQ(summary->added, 1);
  ASSERT_EQ(summary->skipped_files.size(), 1u);
  EXPECT_NE(summary->skipped_files[0].reason.find("over the limit"), std::string::npos);
}

TEST_F(IngesterTest, SymlinksOutsideTheFolderAndLoopsAreNotFollowed) {
  TempDir outside;
  WriteFile(outside.path() / "secret.txt", "secret outside text");
  WriteFile(data_.path() / "inside.txt", "inside text");
  fs::create_symlink(outside.path() / "secret.txt", data_.path() / "link.txt");
  fs::create_symlink(data_.path() / "inside.txt", data_.path() / "alias.txt");
  fs::create_directories(data_.path() / "dir");
  fs::create_directory_symlink(data_.path(), data_.path() / "dir" / "loop");
  fs::create_directory_symlink(outside.path(), data_.path() / "outdir");
  auto summary = ingester_->IngestPaths({data_.path()}, {});
  ASSERT_TRUE(summary) << summary.error().ToString();
  EXPECT_EQ(summary->added, 1) << "inside.txt once (alias.txt resolves to the same file)";
  ASSERT_EQ(summary->skipped_files.size(), 1u);
  EXPECT_NE(summary->skipped_files[0].reason.find("outside"), std::string::npos);

  IngestOptions follow;
  follow.follow_symlinks_outside = true;
  summary = ingester_->IngestPaths({data_.path()}, follow);
  ASSERT_TRUE(summary);
  EXPECT_EQ(summary->added, 1);
  EXPECT_EQ(summary->unchanged, 1);
}

TEST_F(IngesterTest, FileVanishingDuringTheRunIsSkipped) {
  WriteFile(data_.path() / "1.txt", "first");
  WriteFile(data_.path() / "2.txt", "second");
  WriteFile(data_.path() / "3.txt", "third");
  // One file at a time: worker threads would have read 2.txt ahead, before
  // it vanishes (see ParallelRunMatchesSequentialRun for the parallel path).
  IngestOptions options;
  options.threads = 1;
  auto summary = ingester_->IngestPaths({data_.path()}, options,
                                        [&](int64_t done, int64_t, const FileOutcome&) {
                                          if (done == 1) fs::remove(data_.path() / "2.txt");
                                        });
  ASSERT_TRUE(summary);
  EXPECT_EQ(summary->files, 3);
  EXPECT_EQ(summary->added, 2);
  ASSERT_EQ(summary->skipped_files.size(), 1u);
  EXPECT_EQ(summary->skipped_files[0].reason, "file vanished during ingest");
  EXPECT_EQ(summary->skipped_files[0].source, (data_.path() / "2.txt").string());
}

TEST_F(IngesterTest, SingleFileAndOverlappingPathsAreIngestedOnce) {
  WriteFile(data_.path() / "a.txt", "alpha");
  WriteFile(data_.path() / "b.txt", "beta");
  auto summary = ingester_->IngestPaths({data_.path() / "a.txt", data_.path()}, {});
  ASSERT_TRUE(summary);
  EXPECT_EQ(summary->files, 2);
  EXPECT_EQ(summary->added, 2);
}

TEST_F(IngesterTest, UnreadableFileIsSkipped) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads everything";
  WriteFile(data_.path() / "locked.txt", "text");
  fs::permissions(data_.path() / "locked.txt", fs::perms::none);
  auto summary = ingester_->IngestPaths({data_.path()}, {});
  ASSERT_TRUE(summary);
  EXPECT_EQ(summary->skipped, 1);
}

TEST_F(IngesterTest, IngestBytesReturnsErrors) {
  IngestOptions options;
  options.collection = "uploads";
  auto added = ingester_->IngestBytes(options, "notes.md", "# Notes\n\nUploaded text.\n");
  ASSERT_TRUE(added) << added.error().ToString();
  EXPECT_EQ(added->kind, FileOutcome::Kind::kAdded);
  EXPECT_EQ(added->source, "upload:notes.md");
  EXPECT_EQ(added->chunks, 1);
  auto doc = store_.GetDocument(added->document_id);
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc->title, "Notes");

  auto same = ingester_->IngestBytes(options, "notes.md", "# Notes\n\nUploaded text.\n");
  ASSERT_TRUE(same);
  EXPECT_EQ(same->kind, FileOutcome::Kind::kUnchanged);

  auto titled = ingester_->IngestBytes(options, "x.txt", "body", "Given Title", "https://e.x/y");
  ASSERT_TRUE(titled);
  EXPECT_EQ(titled->source, "https://e.x/y");
  EXPECT_EQ(store_.GetDocument(titled->document_id)->title, "Given Title");

  auto untitled = ingester_->IngestBytes(options, "plain.txt", std::string(300, 'w'));
  ASSERT_TRUE(untitled);
  EXPECT_EQ(store_.GetDocument(untitled->document_id)->title, "plain.txt");

  auto binary = ingester_->IngestBytes(options, "x.bin", std::string("\0\1\2\3", 4));
  ASSERT_FALSE(binary);
  EXPECT_EQ(binary.error().code(), Status::Code::kUnsupported);
  auto corrupt = ingester_->IngestBytes(options, "x.pdf", "%PDF-1.4 nope");
  ASSERT_FALSE(corrupt);
  EXPECT_EQ(corrupt.error().code(), Status::Code::kUnprocessable);
  auto empty = ingester_->IngestBytes(options, "x.txt", "");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), Status::Code::kInvalidArgument);
  auto no_text = ingester_->IngestBytes(options, "x.html", "<script>only()</script>");
  ASSERT_FALSE(no_text);
  EXPECT_EQ(no_text.error().code(), Status::Code::kUnprocessable);
  options.max_file_bytes = 10;
  auto big = ingester_->IngestBytes(options, "x.txt", std::string(11, 'a'));
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code(), Status::Code::kTooLarge);
  auto nameless = ingester_->IngestBytes(options, "", "a");
  ASSERT_FALSE(nameless);
  EXPECT_EQ(nameless.error().code(), Status::Code::kInvalidArgument);

  store_.fail_put = Status::Unavailable("database is locked");
  options.max_file_bytes = 1000;
  auto locked = ingester_->IngestBytes(options, "new.txt", "fresh text");
  ASSERT_FALSE(locked);
  EXPECT_EQ(locked.error().code(), Status::Code::kUnavailable);
}

TEST(IngestOptionsTest, FromConfig) {
  IngestConfig config;
  config.chunk_target_chars = 500;
  config.chunk_overlap_chars = 50;
  config.max_file_bytes = 1234;
  config.include = {"*.md"};
  config.exclude = {"tmp/*"};
  IngestOptions options = IngestOptionsFromConfig(config, "kb");
  EXPECT_EQ(options.collection, "kb");
  EXPECT_EQ(options.chunking.target_chars, 500);
  EXPECT_EQ(options.chunking.overlap_chars, 50);
  EXPECT_EQ(options.max_file_bytes, 1234);
  EXPECT_EQ(options.include, config.include);
  EXPECT_EQ(options.exclude, config.exclude);
  EXPECT_FALSE(options.follow_symlinks_outside);
}

// ---------------------------------------------------------------- paths

TEST(ResolveAllowedPathTest, ConfinesToRoots) {
  TempDir tmp;
  const fs::path docs = tmp.path() / "docs";
  const fs::path docs2 = tmp.path() / "docs2";
  fs::create_directories(docs / "sub");
  fs::create_directories(docs2);
  WriteFile(docs / "sub" / "a.txt", "a");
  WriteFile(tmp.path() / "secret.txt", "s");
  fs::create_symlink(tmp.path() / "secret.txt", docs / "escape.txt");
  fs::create_directory_symlink(docs2, docs / "to_docs2");
  const std::vector<std::string> roots = {docs.string()};

  auto ok = ResolveAllowedPath((docs / "sub" / "a.txt").string(), roots);
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ(*ok, docs / "sub" / "a.txt");
  auto root_itself = ResolveAllowedPath(docs.string() + "/", roots);
  ASSERT_TRUE(root_itself) << root_itself.error().ToString();
  auto dotted = ResolveAllowedPath((docs / "sub" / ".." / "sub" / "a.txt").string(), roots);
  ASSERT_TRUE(dotted);
  EXPECT_EQ(*dotted, docs / "sub" / "a.txt");
  auto not_yet = ResolveAllowedPath((docs / "new.txt").string(), roots);
  ASSERT_TRUE(not_yet) << "inside, even if it does not exist (yet)";

  for (const fs::path& bad :
       {docs / ".." / "secret.txt", docs / "escape.txt", docs / "to_docs2", docs2, tmp.path(),
        fs::path("/etc/passwd"), docs / "sub" / ".." / ".." / "docs2"}) {
    auto r = ResolveAllowedPath(bad.string(), roots);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(r.error().message().find("outside the allowed roots"), std::string::npos);
  }
  auto relative = ResolveAllowedPath("docs/sub/a.txt", roots);
  ASSERT_FALSE(relative);
  EXPECT_EQ(relative.error().code(), Status::Code::kInvalidArgument);
  auto no_roots = ResolveAllowedPath((docs / "sub").string(), {});
  ASSERT_FALSE(no_roots);
  EXPECT_NE(no_roots.error().message().find("ingest.allowed_roots"), std::string::npos);
  auto empty = ResolveAllowedPath("", roots);
  ASSERT_FALSE(empty);

  // A root given through a symlink, or with "..", still works.
  fs::create_directory_symlink(docs, tmp.path() / "docs_link");
  auto via_link =
      ResolveAllowedPath((docs / "sub").string(), {(tmp.path() / "docs_link").string()});
  ASSERT_TRUE(via_link);
  auto missing_root = ResolveAllowedPath((docs / "sub").string(), {"/nonexistent/root"});
  ASSERT_FALSE(missing_root);
}

}  // namespace
}  // namespace xnai::ingest
