// Test helpers shared by the store tests (and the index tests): a private
// temporary directory and small builders.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/files.h"
#include "store/store.h"

// ASSERT_OK_AND_ASSIGN(auto x, F()): fails the test (with the Status) when
// F() returns an error, else moves the value into x.
#define XNAI_TEST_CONCAT_INNER_(a, b) a##b
#define XNAI_TEST_CONCAT_(a, b) XNAI_TEST_CONCAT_INNER_(a, b)
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(XNAI_TEST_CONCAT_(xnai_test_result_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr)                         \
  auto tmp = (expr);                                                       \
  ASSERT_TRUE(tmp.has_value()) << #expr << ": " << tmp.error().ToString(); \
  lhs = std::move(*tmp)
// The expression (a Result or a Status) failed with exactly this code.
#define EXPECT_CODE(expr, expected_code)                                     \
  do {                                                                       \
    auto xnai_test_status_ = ::xnai::store::testing::StatusOf(expr);         \
    EXPECT_EQ(xnai_test_status_.code(), ::xnai::Status::Code::expected_code) \
        << #expr << " returned " << xnai_test_status_.ToString();            \
  } while (0)
#define ASSERT_OK(expr)                                                                   \
  do {                                                                                    \
    auto xnai_test_status_ = ::xnai::store::testing::StatusOf(expr);                      \
    ASSERT_TRUE(xnai_test_status_.ok()) << #expr << ": " << xnai_test_status_.ToString(); \
  } while (0)

namespace xnai::store::testing {

inline Status StatusOf(const Status& s) { return s; }
template <typename T>
Status StatusOf(const Result<T>& r) {
  return r.has_value() ? Status::Ok() : r.error();
}

// A fresh directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ =
        std::filesystem::temp_directory_path() / ("xnai_store_test_" + std::to_string(::getpid()) +
                                                  "_" + std::to_string(counter.fetch_add(1)));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A document whose sha256 is derived from its chunk texts (so different text
// means a different sha, as in real ingestion).
inline DocumentInput MakeDocument(const std::string& collection, const std::string& source,
                                  const std::vector<std::string>& texts,
                                  const std::string& title = "A title") {
  DocumentInput doc;
  doc.collection = collection;
  doc.source = source;
  doc.title = title;
  doc.media_type = "text/plain";
  std::string all;
  int64_t offset = 0;
  int32_t page = 1;
  for (const std::string& text : texts) {
    ChunkInput chunk;
    chunk.text = text;
    chunk.char_begin = offset;
    chunk.char_end = offset + static_cast<int64_t>(text.size());
    chunk.token_count = static_cast<int32_t>(text.size() / 4 + 1);
    chunk.section = "Section " + std::to_string(page);
    chunk.page = page++;
    offset = chunk.char_end;
    all += text;
    all += '\n';
    doc.chunks.push_back(std::move(chunk));
  }
  doc.sha256 = Sha256Hex(all);
  doc.size_bytes = static_cast<int64_t>(all.size());
  return doc;
}

}  // namespace xnai::store::testing
