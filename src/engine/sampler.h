// Sampler: picks the next token from a row of logits. Greedy when
// temperature <= 0; otherwise penalties -> top-k -> top-p -> min-p ->
// temperature -> a draw from the remaining distribution. The same seed, the
// same logits and the same history give the same token (reproducible).
// Not thread-safe: one Sampler per sequence.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace xnai::engine {

struct SamplingParams {
  float temperature = 0.8f;       // <= 0: greedy (argmax after penalties)
  int top_k = 40;                 // <= 0: no limit
  float top_p = 0.95f;            // 1: off
  float min_p = 0.05f;            // 0: off; keep tokens with p >= min_p * p_max
  float repeat_penalty = 1.0f;    // 1: off; divides positive / multiplies negative logits
  float frequency_penalty = 0.0f; // subtracted once per earlier occurrence
  float presence_penalty = 0.0f;  // subtracted once if the token occurred
  int penalty_last_n = 64;        // how much history the penalties look at (0 = none, -1 = all)
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  // `logits` has one entry per vocabulary token; `history` is the sequence so
  // far (prompt and generated tokens), used by the penalties.
  int32_t Sample(std::span<const float> logits, std::span<const int32_t> history);

 private:
  struct Candidate {
    int32_t id;
    float logit;
    float p;
  };
  void ApplyPenalties(std::vector<Candidate>& candidates, std::span<const int32_t> history) const;

  SamplingParams params_;
  std::mt19937_64 rng_;
};

}  // namespace xnai::engine
