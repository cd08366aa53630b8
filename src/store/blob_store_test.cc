#include "store/blob_store.h"

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/files.h"
#include "store/store_test_util.h"

namespace xnai::store {
namespace {

using testing::TempDir;

TEST(BlobStoreTest, PutHasReadRemove) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(BlobStore blobs, BlobStore::Open(dir.path() / "blobs"));
  EXPECT_TRUE(std::filesystem::is_directory(dir.path() / "blobs"));
  const std::string bytes("some original\0bytes", 19);
  ASSERT_OK_AND_ASSIGN(std::string sha, blobs.Put(bytes));
  EXPECT_EQ(sha, Sha256Hex(bytes));
  EXPECT_TRUE(blobs.Has(sha));
  ASSERT_OK_AND_ASSIGN(std::string read, blobs.Read(sha));
  EXPECT_EQ(read, bytes);

  ASSERT_OK(blobs.Remove(sha));
  EXPECT_FALSE(blobs.Has(sha));
  EXPECT_CODE(blobs.Read(sha), kNotFound);
  ASSERT_OK(blobs.Remove(sha));  // missing is fine
}

TEST(BlobStoreTest, PathIsTwoLevelContentAddressed) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(BlobStore blobs, BlobStore::Open(dir.path()));
  ASSERT_OK_AND_ASSIGN(std::string sha, blobs.Put("abc"));
  EXPECT_EQ(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  auto expected = dir.path() / "ba" / sha;
  EXPECT_EQ(blobs.PathFor(sha), expected);
  EXPECT_TRUE(std::filesystem::is_regular_file(expected));
  EXPECT_EQ(blobs.dir(), dir.path());
  // Nothing but the blob in its directory: no temporary files left behind.
  int entries = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 2);  // ba/ and ba/<sha>
}

TEST(BlobStoreTest, PutIsIdempotent) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(BlobStore blobs, BlobStore::Open(dir.path()));
  ASSERT_OK_AND_ASSIGN(std::string first, blobs.Put("same bytes"));
  auto mtime = std::filesystem::last_write_time(blobs.PathFor(first));
  ASSERT_OK_AND_ASSIGN(std::string second, blobs.Put("same bytes"));
  EXPECT_EQ(first, second);
  EXPECT_EQ(std::filesystem::last_write_time(blobs.PathFor(first)), mtime);  // not rewritten
  ASSERT_OK_AND_ASSIGN(std::string empty, blobs.Put(""));
  EXPECT_EQ(empty, Sha256Hex(""));
  ASSERT_OK_AND_ASSIGN(std::string read_empty, blobs.Read(empty));
  EXPECT_TRUE(read_empty.empty());
}

TEST(BlobStoreTest, TruncatedBlobIsRewrittenByPutAndDetectedByRead) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(BlobStore blobs, BlobStore::Open(dir.path()));
  ASSERT_OK_AND_ASSIGN(std::string sha, blobs.Put("0123456789"));
  { std::ofstream(blobs.PathFor(sha), std::ios::trunc) << "01234"; }
  EXPECT_CODE(blobs.Read(sha), kCorruption);
  ASSERT_OK(blobs.Put("0123456789"));
  ASSERT_OK_AND_ASSIGN(std::string read, blobs.Read(sha));
  EXPECT_EQ(read, "0123456789");
  // Same size, different content: Read notices.
  { std::ofstream(blobs.PathFor(sha), std::ios::trunc) << "9876543210"; }
  EXPECT_CODE(blobs.Read(sha), kCorruption);
}

TEST(BlobStoreTest, HostileNamesNeverEscapeTheDirectory) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(BlobStore blobs, BlobStore::Open(dir.path() / "blobs"));
  { std::ofstream(dir.path() / "secret") << "secret"; }
  const std::string bad[] = {"",
                             "../secret",
                             "../../etc/passwd",
                             std::string(64, 'g'),
                             std::string(63, 'a'),
                             std::string(65, 'a'),
                             "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"};
  for (const std::string& name : bad) {
    EXPECT_TRUE(blobs.PathFor(name).empty()) << name;
    EXPECT_FALSE(blobs.Has(name)) << name;
    EXPECT_CODE(blobs.Read(name), kInvalidArgument);
    EXPECT_CODE(blobs.Remove(name), kInvalidArgument);
  }
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "secret"));
}

TEST(BlobStoreTest, ConcurrentPutsOfTheSameBytesAllSucceed) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(BlobStore blobs, BlobStore::Open(dir.path()));
  const std::string bytes(1 << 20, 'q');
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        if (!blobs.Put(bytes)) ++failures;
        blobs.Remove(Sha256Hex(bytes));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_OK(blobs.Put(bytes));
  ASSERT_OK_AND_ASSIGN(std::string read, blobs.Read(Sha256Hex(bytes)));
  EXPECT_EQ(read, bytes);
}

TEST(BlobStoreTest, OpenOnAFileIsAnError) {
  TempDir dir;
  { std::ofstream(dir.path() / "file") << "x"; }
  auto blobs = BlobStore::Open(dir.path() / "file");
  ASSERT_FALSE(blobs.has_value());
  EXPECT_NE(blobs.error().code(), Status::Code::kInternal);
  EXPECT_CODE(BlobStore::Open(""), kInvalidArgument);
}

}  // namespace
}  // namespace xnai::store
