// Conversations and messages in the SQLite store.
#include <gtest/gtest.h>

#include "store/sqlite_store.h"
#include "store/store_test_util.h"

namespace xnai::store {
namespace {

using testing::TempDir;

class ConversationStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = SqliteStore::Open(dir_.path() / "xnai.db", {});
    ASSERT_TRUE(opened.has_value());
    (*opened)->TEST_SetClock([this] { return now_; });
    store_ = std::move(*opened);
  }
  Message Msg(int64_t conversation, const std::string& role, const std::string& content) {
    Message m;
    m.conversation_id = conversation;
    m.role = role;
    m.content = content;
    return m;
  }
  TempDir dir_;
  int64_t now_ = 100;
  std::unique_ptr<Store> store_;
};

TEST_F(ConversationStoreTest, CreateAddListRenameDelete) {
  ASSERT_OK_AND_ASSIGN(Conversation a, store_->CreateConversation("What is tea?"));
  EXPECT_EQ(a.title, "What is tea?");
  EXPECT_EQ(a.created_at, 100);
  EXPECT_EQ(a.message_count, 0);
  now_ = 200;
  ASSERT_OK_AND_ASSIGN(Conversation b, store_->CreateConversation("Second"));
  now_ = 300;
  ASSERT_OK_AND_ASSIGN(Message q, store_->AddMessage(Msg(a.id, "user", "What is tea?")));
  EXPECT_EQ(q.status, "complete");
  EXPECT_EQ(q.sources, "[]");
  Message answer = Msg(a.id, "assistant", "A drink [1].");
  answer.sources = R"([{"n":1}])";
  answer.status = "interrupted";
  ASSERT_OK(store_->AddMessage(answer));
  // a was updated last: listed first.
  ASSERT_OK_AND_ASSIGN(auto list, store_->ListConversations(10, 0));
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, a.id);
  EXPECT_EQ(list[0].message_count, 2);
  EXPECT_EQ(list[0].updated_at, 300);
  EXPECT_EQ(list[1].id, b.id);
  ASSERT_OK_AND_ASSIGN(list, store_->ListConversations(1, 1));
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].id, b.id);
  ASSERT_OK_AND_ASSIGN(auto messages, store_->GetMessages(a.id));
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].role, "user");
  EXPECT_EQ(messages[1].content, "A drink [1].");
  EXPECT_EQ(messages[1].sources, R"([{"n":1}])");
  EXPECT_EQ(messages[1].status, "interrupted");

  ASSERT_OK_AND_ASSIGN(Conversation renamed, store_->RenameConversation(b.id, "Renamed"));
  EXPECT_EQ(renamed.title, "Renamed");
  ASSERT_OK_AND_ASSIGN(Conversation gone, store_->DeleteConversation(a.id));
  EXPECT_EQ(gone.title, "What is tea?");
  EXPECT_CODE(store_->GetConversation(a.id), kNotFound);
  EXPECT_CODE(store_->GetMessages(a.id), kNotFound);
  EXPECT_CODE(store_->DeleteConversation(a.id), kNotFound);
}

TEST_F(ConversationStoreTest, BadInput) {
  EXPECT_CODE(store_->CreateConversation("  "), kInvalidArgument);
  EXPECT_CODE(store_->AddMessage(Msg(999, "user", "x")), kNotFound);
  ASSERT_OK_AND_ASSIGN(Conversation c, store_->CreateConversation(std::string(300, 'x')));
  EXPECT_EQ(c.title.size(), 200u);
  // A long title is cut on a character boundary.
  ASSERT_OK_AND_ASSIGN(Conversation e,
                       store_->CreateConversation(std::string(199, 'x') + "\xC3\xA9"));
  EXPECT_EQ(e.title, std::string(199, 'x'));
  EXPECT_CODE(store_->AddMessage(Msg(c.id, "system", "x")), kInvalidArgument);
  Message bad = Msg(c.id, "user", "x");
  bad.status = "weird";
  EXPECT_CODE(store_->AddMessage(bad), kInvalidArgument);
  EXPECT_CODE(store_->RenameConversation(c.id, ""), kInvalidArgument);
  EXPECT_CODE(store_->RenameConversation(12345, "x"), kNotFound);
  EXPECT_CODE(store_->ListConversations(0, 0), kInvalidArgument);
}

}  // namespace
}  // namespace xnai::store
