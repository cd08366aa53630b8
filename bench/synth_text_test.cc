#include "bench/synth_text.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace xnai::bench {
namespace {

TEST(RngTest, DeterministicAndInRange) {
  Rng a(1), b(1), c(2);
  EXPECT_EQ(a.Next(), b.Next());
  EXPECT_NE(a.Next(), c.Next());
  for (int i = 0; i < 10000; ++i) {
    double u = a.Uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    int64_t v = a.Between(-3, 3);
    ASSERT_GE(v, -3);
    ASSERT_LE(v, 3);
  }
  EXPECT_EQ(a.Between(5, 5), 5);
}

TEST(SynthTextTest, SameSeedSameText) {
  SynthText a(42), b(42), c(43);
  EXPECT_EQ(a.PlainDocument(5000), b.PlainDocument(5000));
  EXPECT_EQ(a.MarkdownDocument(5000), b.MarkdownDocument(5000));
  EXPECT_NE(a.PlainDocument(5000), c.PlainDocument(5000));
}

TEST(SynthTextTest, VocabularyIsDistinctAndZipfy) {
  SynthText gen(1, 5000);
  ASSERT_EQ(gen.vocab_size(), 5000);
  std::set<std::string> words;
  for (int r = 0; r < gen.vocab_size(); ++r) words.insert(gen.WordAt(r));
  EXPECT_EQ(words.size(), 5000u);
  EXPECT_EQ(gen.WordAt(0), "the");
  std::map<int, int> counts;
  for (int i = 0; i < 100000; ++i) ++counts[gen.SampleRank()];
  // Rank 0 is about twice as frequent as rank 1 and far above rank 1000.
  EXPECT_GT(counts[0], counts[1] * 3 / 2);
  EXPECT_GT(counts[0], 20 * (counts[1000] + 1));
  for (int i = 0; i < 1000; ++i) EXPECT_GE(gen.SampleContentRank(), gen.function_word_count());
}

TEST(SynthTextTest, SizesAndShapes) {
  SynthText gen(3);
  std::string plain = gen.PlainDocument(20000);
  EXPECT_GE(plain.size(), 20000u);
  EXPECT_LT(plain.size(), 22000u);
  EXPECT_NE(plain.find("\n\n"), std::string::npos);
  std::string md = gen.MarkdownDocument(20000);
  EXPECT_GE(md.size(), 20000u);
  EXPECT_EQ(md.rfind("# ", 0), 0u);
  EXPECT_NE(md.find("\n## "), std::string::npos);
  EXPECT_NE(md.find("```"), std::string::npos);
  EXPECT_GE(gen.TextOfAtLeast(950).size(), 950u);
  for (char ch : plain + md) ASSERT_TRUE(ch == '\n' || (ch >= 0x20 && ch < 0x7f)) << int(ch);
}

}  // namespace
}  // namespace xnai::bench
