#include "base/log.h"

#include <gtest/gtest.h>

namespace xnai::log {
namespace {

TEST(LogTest, JsonLinesCarryRequestId) {
  std::string out;
  TEST_CaptureTo(&out);
  Configure(Level::kInfo, Format::kJson);
  {
    ScopedRequestId rid("abc123");
    Info("http.request", {{"path", "/health"}, {"status", 200}});
  }
  Debug("hidden");
  Info("after");
  TEST_CaptureTo(nullptr);
  auto first_end = out.find('\n');
  ASSERT_NE(first_end, std::string::npos);
  auto first = nlohmann::json::parse(out.substr(0, first_end));
  EXPECT_EQ(first["event"], "http.request");
  EXPECT_EQ(first["request_id"], "abc123");
  EXPECT_EQ(first["status"], 200);
  auto second = nlohmann::json::parse(out.substr(first_end + 1));
  EXPECT_EQ(second["event"], "after");
  EXPECT_FALSE(second.contains("request_id"));
  EXPECT_EQ(out.find("hidden"), std::string::npos);
}

TEST(LogTest, TextFormatIsOneLine) {
  std::string out;
  TEST_CaptureTo(&out);
  Configure(Level::kDebug, Format::kText);
  Warn("disk.low", {{"free_mb", 12}});
  TEST_CaptureTo(nullptr);
  Configure(Level::kInfo, Format::kJson);
  EXPECT_NE(out.find("warn disk.low free_mb=12"), std::string::npos);
  EXPECT_EQ(out.back(), '\n');
}

TEST(LogTest, RequestIdsAreDistinctHex) {
  std::string a = NewRequestId(), b = NewRequestId();
  EXPECT_EQ(a.size(), 16u);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace xnai::log
