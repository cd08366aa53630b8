#include "engine/sampler.h"

#include <map>
#include <vector>

#include <gtest/gtest.h>

namespace xnai::engine {
namespace {

TEST(SamplerTest, GreedyTakesArgmaxWithLowestIdOnTies) {
  SamplingParams params;
  params.temperature = 0;
  Sampler sampler(params);
  std::vector<float> logits = {0.1f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(sampler.Sample(logits, {}), 1);
}

TEST(SamplerTest, PenaltiesChangeTheGreedyChoice) {
  SamplingParams params;
  params.temperature = 0;
  params.repeat_penalty = 2.0f;  // 2.0 -> 1.0 for token 1
  Sampler sampler(params);
  std::vector<float> logits = {1.5f, 2.0f, 0.0f};
  std::vector<int32_t> history = {1};
  EXPECT_EQ(sampler.Sample(logits, history), 0);

  SamplingParams freq;
  freq.temperature = 0;
  freq.frequency_penalty = 0.4f;  // token 1 seen twice: 2.0 - 0.8 = 1.2 < 1.5
  Sampler by_frequency(freq);
  std::vector<int32_t> twice = {1, 1};
  EXPECT_EQ(by_frequency.Sample(logits, twice), 0);
  std::vector<int32_t> once = {1};
  EXPECT_EQ(by_frequency.Sample(logits, once), 1);  // 2.0 - 0.4 = 1.6 > 1.5

  SamplingParams presence;
  presence.temperature = 0;
  presence.presence_penalty = 1.0f;
  Sampler by_presence(presence);
  EXPECT_EQ(by_presence.Sample(logits, once), 0);
}

TEST(SamplerTest, SameSeedSameTokens) {
  SamplingParams params;
  params.temperature = 1.0f;
  params.top_k = 0;
  params.top_p = 1.0f;
  params.min_p = 0;
  params.seed = 1234;
  std::vector<float> logits(50);
  for (size_t idx = 0; idx < logits.size(); ++idx) logits[idx] = static_cast<float>(idx % 7);
  Sampler a(params), b(params);
  std::vector<int32_t> seq_a, seq_b;
  for (int step = 0; step < 100; ++step) {
    seq_a.push_back(a.Sample(logits, {}));
    seq_b.push_back(b.Sample(logits, {}));
  }
  EXPECT_EQ(seq_a, seq_b);
  params.seed = 99;
  Sampler c(params);
  std::vector<int32_t> seq_c;
  for (int step = 0; step < 100; ++step) seq_c.push_back(c.Sample(logits, {}));
  EXPECT_NE(seq_a, seq_c);
}

TEST(SamplerTest, TopKTopPAndMinPRestrictTheChoices) {
  std::vector<float> logits = {5.0f, 4.9f, 4.8f, 0.0f, -3.0f};
  auto seen_with = [&](SamplingParams params) {
    std::map<int32_t, int> seen;
    Sampler sampler(params);
    for (int step = 0; step < 2000; ++step) ++seen[sampler.Sample(logits, {})];
    return seen;
  };
  SamplingParams top_k;
  top_k.temperature = 1.0f;
  top_k.top_k = 2;
  top_k.top_p = 1.0f;
  top_k.min_p = 0;
  auto seen = seen_with(top_k);
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen.count(0) && seen.count(1));

  SamplingParams top_p = top_k;
  top_p.top_k = 0;
  top_p.top_p = 0.3f;  // the best token alone has p ~ 0.35
  seen = seen_with(top_p);
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen.count(0));

  SamplingParams min_p = top_k;
  min_p.top_k = 0;
  min_p.min_p = 0.5f;  // tokens 3 and 4 are far below half the best
  seen = seen_with(min_p);
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_FALSE(seen.count(3));

  SamplingParams cold = top_k;
  cold.top_k = 0;
  cold.temperature = 0.01f;  // nearly greedy
  seen = seen_with(cold);
  EXPECT_GT(seen[0], 1990);
}

}  // namespace
}  // namespace xnai::engine
