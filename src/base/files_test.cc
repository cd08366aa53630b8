#include "base/files.h"

#include <cerrno>
#include <filesystem>

#include <gtest/gtest.h>

namespace xnai {
namespace {

TEST(FilesTest, WriteAtomicThenRead) {
  auto dir = std::filesystem::temp_directory_path() / ("xnai_files_test_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto path = dir / "a.txt";
  ASSERT_TRUE(WriteFileAtomic(path, "hello").ok());
  ASSERT_TRUE(WriteFileAtomic(path, "hello, world").ok());
  auto data = ReadFileToString(path);
  ASSERT_TRUE(data.has_value());
  EXPECT_EQ(*data, "hello, world");
  // No temporary files are left behind.
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) { (void)e; ++files; }
  EXPECT_EQ(files, 1);
  auto too_big = ReadFileToString(path, 3);
  ASSERT_FALSE(too_big.has_value());
  EXPECT_EQ(too_big.error().code(), Status::Code::kTooLarge);
  EXPECT_EQ(ReadFileToString(dir / "missing").error().code(), Status::Code::kNotFound);
  EXPECT_EQ(ReadFileToString(dir).error().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(WriteFileAtomic(dir / "no" / "such" / "dir", "x").code(), Status::Code::kNotFound);
  std::filesystem::remove_all(dir);
}

TEST(FilesTest, DiskFullMapsToResourceExhausted) {
  Status s = StatusFromErrno(ENOSPC, "write blob");
  EXPECT_EQ(s.code(), Status::Code::kResourceExhausted);
  EXPECT_NE(s.message().find("disk full"), std::string::npos);
}

TEST(FilesTest, Sha256MatchesKnownVector) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

}  // namespace
}  // namespace xnai
