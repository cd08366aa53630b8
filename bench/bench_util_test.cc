#include "bench/bench_util.h"

#include <gtest/gtest.h>

namespace xnai::bench {
namespace {

TEST(PercentileTest, NearestRank) {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  EXPECT_EQ(Percentile(v, 50), 50);
  EXPECT_EQ(Percentile(v, 99), 99);
  EXPECT_EQ(Percentile(v, 100), 100);
  EXPECT_EQ(Percentile(v, 0), 1);
  EXPECT_EQ(Percentile({7.5}, 99), 7.5);
  EXPECT_EQ(Percentile({}, 50), 0);
  // 3 values: p50 is the 2nd, p99 the 3rd.
  EXPECT_EQ(Percentile({1, 2, 3}, 50), 2);
  EXPECT_EQ(Percentile({1, 2, 3}, 99), 3);
}

Result<std::map<std::string, std::string>> Parse(std::vector<std::string> args) {
  std::vector<char*> argv = {const_cast<char*>("prog")};
  for (auto& a : args) argv.push_back(a.data());
  return ParseFlags(static_cast<int>(argv.size()), argv.data(), {{"mb", "40"}, {"dir", ""}});
}

TEST(ParseFlagsTest, DefaultsAndBothSpellings) {
  auto f = Parse({});
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->at("mb"), "40");
  f = Parse({"--mb", "2.5", "--dir=/x"});
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->at("mb"), "2.5");
  EXPECT_EQ(f->at("dir"), "/x");
}

TEST(ParseFlagsTest, RejectsBadInput) {
  EXPECT_EQ(Parse({"--nope", "1"}).error().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(Parse({"--mb"}).error().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(Parse({"stray"}).error().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(Parse({"--help"}).error().code(), Status::Code::kNotFound);
}

TEST(FlagNumberTest, RangeAndSyntax) {
  std::map<std::string, std::string> f = {
      {"n", "12"}, {"bad", "12x"}, {"empty", ""}, {"neg", "-1"}, {"nan", "nan"}};
  EXPECT_EQ(*FlagNumber(f, "n", 1, 100), 12);
  EXPECT_FALSE(FlagNumber(f, "n", 13, 100).has_value());
  EXPECT_FALSE(FlagNumber(f, "bad", 0, 100).has_value());
  EXPECT_FALSE(FlagNumber(f, "empty", 0, 100).has_value());
  EXPECT_FALSE(FlagNumber(f, "neg", 0, 100).has_value());
  EXPECT_FALSE(FlagNumber(f, "nan", 0, 100).has_value());
}

TEST(ScratchDirTest, OwnedTempDirIsRemovedGivenDirIsKept) {
  std::filesystem::path temp;
  {
    auto dir = ScratchDir::Make("", "xnai-bench-test");
    ASSERT_TRUE(dir.has_value());
    temp = dir->path();
    EXPECT_TRUE(std::filesystem::is_directory(temp));
    ScratchDir moved = std::move(*dir);  // the moved-from one must not delete it
    EXPECT_EQ(moved.path(), temp);
  }
  EXPECT_FALSE(std::filesystem::exists(temp));

  auto base = ScratchDir::Make("", "xnai-bench-test");
  ASSERT_TRUE(base.has_value());
  const auto given_path = base->path() / "given" / "nested";
  {
    auto given = ScratchDir::Make(given_path.string(), "unused");
    ASSERT_TRUE(given.has_value());
  }
  EXPECT_TRUE(std::filesystem::is_directory(given_path));
}

TEST(ScratchDirTest, UncreatableDirIsAnError) {
  auto dir = ScratchDir::Make("/proc/xnai-cannot-create/x", "p");
  EXPECT_FALSE(dir.has_value());
}

TEST(RssTest, ReadsProcSelf) { EXPECT_GT(CurrentRssBytes(), 0); }

}  // namespace
}  // namespace xnai::bench
