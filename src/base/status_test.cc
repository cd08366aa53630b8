#include "base/status.h"

#include <gtest/gtest.h>

namespace xnai {
namespace {

Result<int> Half(int v) {
  if (v % 2) return Err(Status::InvalidArgument("odd: " + std::to_string(v)));
  return v / 2;
}

Status Chain(int v) {
  XNAI_RETURN_IF_ERROR(Half(v).has_value() ? Status::Ok() : Half(v).error());
  return Status::Ok();
}

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "ok");
}

TEST(StatusTest, CarriesCodeAndMessage) {
  Status s = Status::NotFound("collection 'x' does not exist");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_EQ(s.ToString(), "not found: collection 'x' does not exist");
  EXPECT_EQ(s.WithContext("search").message(), "search: collection 'x' does not exist");
}

TEST(StatusTest, ResultHoldsValueOrError) {
  EXPECT_EQ(*Half(4), 2);
  ASSERT_FALSE(Half(3).has_value());
  EXPECT_EQ(Half(3).error().code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(Chain(2).ok());
  EXPECT_EQ(Chain(5).message(), "odd: 5");
}

}  // namespace
}  // namespace xnai
