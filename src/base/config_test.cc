#include "base/config.h"

#include <fstream>
#include <filesystem>

#include <gtest/gtest.h>

namespace xnai {
namespace {

TEST(ConfigTest, DefaultsAreValid) {
  Config c;
  EXPECT_TRUE(c.Validate().ok()) << c.Validate().ToString();
  EXPECT_EQ(c.server.listen, "127.0.0.1:8000");
}

TEST(ConfigTest, LayersOverrideInOrder) {
  Config c;
  ASSERT_TRUE(c.MergeToml("[server]\nlisten = \"127.0.0.1:9000\"\nthreads = 3\n"
                          "max_body_bytes = \"2MiB\"\n[ingest]\nexclude = [\"*.log\"]\n",
                          "test.toml")
                  .ok());
  EXPECT_EQ(c.server.listen, "127.0.0.1:9000");
  EXPECT_EQ(c.server.max_body_bytes, 2 << 20);
  ASSERT_TRUE(c.MergeEnv({{"XNAI_SERVER_THREADS", "7"}, {"UNRELATED", "x"}}).ok());
  EXPECT_EQ(c.server.threads, 7);
  ASSERT_TRUE(c.Set("server.threads", "2").ok());
  EXPECT_EQ(c.server.threads, 2);
  ASSERT_TRUE(c.Set("ingest.exclude", "a, b").ok());
  EXPECT_EQ(c.ingest.exclude, (std::vector<std::string>{"a", "b"}));
}

TEST(ConfigTest, RejectsUnknownKeysAndWrongTypes) {
  Config c;
  Status s = c.MergeToml("[server]\nlisten_typo = \"x\"\n", "t.toml");
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("server.listen_typo"), std::string::npos);
  s = c.MergeToml("[server]\nthreads = \"four\"\n", "t.toml");
  EXPECT_NE(s.message().find("server.threads"), std::string::npos);
  s = c.MergeToml("[server\n", "t.toml");
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(c.MergeEnv({{"XNAI_SERVER_THREADS", "many"}}).ok());
  EXPECT_FALSE(c.Set("nope.key", "1").ok());
}

TEST(ConfigTest, SecretsComeFromFilesAndAreMasked) {
  auto path = std::filesystem::temp_directory_path() / "xnai_config_test_secret";
  { std::ofstream(path) << "s3cret-value\n"; }
  Config c;
  ASSERT_TRUE(c.MergeToml("[server]\napi_key_file = \"" + path.string() + "\"\n", "t").ok());
  EXPECT_EQ(c.server.api_key, "s3cret-value");
  std::string shown = c.Show();
  EXPECT_EQ(shown.find("s3cret"), std::string::npos);
  EXPECT_NE(shown.find("api_key = \"********\""), std::string::npos);
  Config from_env;
  ASSERT_TRUE(from_env.MergeEnv({{"XNAI_SERVER_API_KEY_FILE", path.string()}}).ok());
  EXPECT_EQ(from_env.server.api_key, "s3cret-value");
  EXPECT_FALSE(c.Set("server.api_key_file", "/nonexistent/secret").ok());
  std::filesystem::remove(path);
}

TEST(ConfigTest, NonLoopbackListenNeedsAuth) {
  Config c;
  c.server.listen = "0.0.0.0:8000";
  EXPECT_EQ(c.Validate().code(), Status::Code::kFailedPrecondition);
  c.server.api_key = "k";
  EXPECT_TRUE(c.Validate().ok());
}

TEST(ConfigTest, ValidateChecksRanges) {
  Config c;
  c.ingest.chunk_overlap_chars = c.ingest.chunk_target_chars;
  EXPECT_FALSE(c.Validate().ok());
  c = Config();
  c.server.listen = "127.0.0.1:99999";
  EXPECT_FALSE(c.Validate().ok());
  c = Config();
  c.log.level = "loud";
  EXPECT_FALSE(c.Validate().ok());
}

TEST(ConfigTest, ParsesSizesAndHostPorts) {
  EXPECT_EQ(*ParseByteSize("64MiB"), 64ll << 20);
  EXPECT_EQ(*ParseByteSize("512k"), 512ll << 10);
  EXPECT_EQ(*ParseByteSize("100"), 100);
  EXPECT_FALSE(ParseByteSize("lots").has_value());
  EXPECT_FALSE(ParseByteSize("5 parsecs").has_value());
  EXPECT_FALSE(ParseByteSize("99999999999999999999G").has_value());
  auto hp = ParseHostPort("[::1]:8080");
  ASSERT_TRUE(hp.has_value());
  EXPECT_EQ(hp->host, "::1");
  EXPECT_EQ(hp->port, 8080);
  EXPECT_FALSE(ParseHostPort("nohost").has_value());
  EXPECT_TRUE(IsLoopbackHost("127.0.0.5"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.1"));
}

}  // namespace
}  // namespace xnai
