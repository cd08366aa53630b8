#include "server/multipart.h"

#include <gtest/gtest.h>

namespace xnai::server {
namespace {

std::string Body(const std::string& boundary) {
  return "preamble\r\n--" + boundary +
         "\r\nContent-Disposition: form-data; name=\"collection\"\r\n\r\nnotes\r\n--" + boundary +
         "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a \\\"b\\\".md\"\r\n"
         "Content-Type: text/markdown\r\n\r\n# Title\r\n\r\nbody\r\n--" +
         boundary + "--\r\n";
}

TEST(MultipartTest, ExtractsBoundary) {
  EXPECT_EQ(*MultipartBoundary("multipart/form-data; boundary=abc123"), "abc123");
  EXPECT_EQ(*MultipartBoundary("Multipart/Form-Data; charset=utf-8; boundary=\"q r\""), "q r");
  EXPECT_FALSE(MultipartBoundary("application/json").has_value());
  EXPECT_FALSE(MultipartBoundary("multipart/form-data").has_value());
}

TEST(MultipartTest, ParsesFieldsAndFiles) {
  std::string body = Body("XyZ");
  auto parts = ParseMultipart(body, "XyZ");
  ASSERT_TRUE(parts.has_value()) << parts.error().ToString();
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].name, "collection");
  EXPECT_EQ((*parts)[0].data, "notes");
  EXPECT_EQ((*parts)[1].name, "file");
  EXPECT_EQ((*parts)[1].filename, "a \"b\".md");
  EXPECT_EQ((*parts)[1].content_type, "text/markdown");
  EXPECT_EQ((*parts)[1].data, "# Title\r\n\r\nbody");
}

TEST(MultipartTest, BinaryDataContainingCrlfSurvives) {
  std::string data("\0\r\n--Xy\r\n\xff", 10);
  std::string body = "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"b\"\r\n\r\n" +
                     data + "\r\n--XyZ--";
  auto parts = ParseMultipart(body, "XyZ");
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ((*parts)[0].data, data);
}

TEST(MultipartTest, RejectsMalformedBodies) {
  std::string body = Body("XyZ");
  EXPECT_FALSE(ParseMultipart(body, "Other").has_value());
  EXPECT_FALSE(ParseMultipart(body.substr(0, body.size() - 12), "XyZ").has_value());
  EXPECT_FALSE(ParseMultipart("--XyZ\r\nX: y\r\n\r\ndata\r\n--XyZ--", "XyZ").has_value());
  EXPECT_FALSE(ParseMultipart("--XyZ garbage", "XyZ").has_value());
  EXPECT_FALSE(ParseMultipart("--XyZ\r\nContent-Disposition: form-data; name=a", "XyZ").has_value());
  std::string many;
  for (int idx = 0; idx < 5; ++idx) many += "--B\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv\r\n";
  many += "--B--";
  EXPECT_TRUE(ParseMultipart(many, "B", 5).has_value());
  EXPECT_FALSE(ParseMultipart(many, "B", 4).has_value());
}

TEST(MultipartTest, EmptyPartListIsAllowed) {
  auto parts = ParseMultipart("--B--\r\n", "B");
  ASSERT_TRUE(parts.has_value());
  EXPECT_TRUE(parts->empty());
}

}  // namespace
}  // namespace xnai::server
