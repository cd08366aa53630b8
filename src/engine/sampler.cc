#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace xnai::engine {

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

void Sampler::ApplyPenalties(std::vector<Candidate>& candidates,
                             std::span<const int32_t> history) const {
  const bool any = params_.repeat_penalty != 1.0f || params_.frequency_penalty != 0.0f ||
                   params_.presence_penalty != 0.0f;
  if (!any || params_.penalty_last_n == 0 || history.empty()) return;
  size_t window = params_.penalty_last_n < 0
                      ? history.size()
                      : std::min(history.size(), static_cast<size_t>(params_.penalty_last_n));
  std::unordered_map<int32_t, int> counts;
  for (int32_t id : history.subspan(history.size() - window)) ++counts[id];
  for (const auto& [id, count] : counts) {
    if (id < 0 || static_cast<size_t>(id) >= candidates.size()) continue;
    float& logit = candidates[id].logit;  // candidates are still indexed by id here
    logit = logit > 0 ? logit / params_.repeat_penalty : logit * params_.repeat_penalty;
    logit -= static_cast<float>(count) * params_.frequency_penalty + params_.presence_penalty;
  }
}

int32_t Sampler::Sample(std::span<const float> logits, std::span<const int32_t> history) {
  std::vector<Candidate> candidates(logits.size());
  for (size_t id = 0; id < logits.size(); ++id) {
    candidates[id] = {static_cast<int32_t>(id), logits[id], 0.0f};
  }
  if (candidates.empty()) return -1;
  ApplyPenalties(candidates, history);

  auto by_logit = [](const Candidate& a, const Candidate& b) {
    return a.logit != b.logit ? a.logit > b.logit : a.id < b.id;  // ties: lower id, like argmax
  };
  if (params_.temperature <= 0.0f) {
    return std::min_element(candidates.begin(), candidates.end(), by_logit)->id;
  }

  // top-k: keep the k largest, sorted.
  size_t keep = candidates.size();
  if (params_.top_k > 0) keep = std::min(keep, static_cast<size_t>(params_.top_k));
  std::partial_sort(candidates.begin(), candidates.begin() + keep, candidates.end(), by_logit);
  candidates.resize(keep);

  // Probabilities at the sampling temperature (max-subtracted for stability).
  const float max_logit = candidates.front().logit;
  double sum = 0;
  for (auto& c : candidates) {
    c.p = std::exp((c.logit - max_logit) / params_.temperature);
    sum += c.p;
  }
  for (auto& c : candidates) c.p = static_cast<float>(c.p / sum);

  // top-p: the smallest prefix whose mass reaches top_p (at least one token).
  if (params_.top_p < 1.0f) {
    double cumulative = 0;
    size_t cut = candidates.size();
    for (size_t idx = 0; idx < candidates.size(); ++idx) {
      cumulative += candidates[idx].p;
      if (cumulative >= params_.top_p) {
        cut = idx + 1;
        break;
      }
    }
    candidates.resize(cut);
  }
  // min-p: drop tokens far less likely than the best one.
  if (params_.min_p > 0.0f) {
    const float floor = params_.min_p * candidates.front().p;
    size_t cut = 1;
    while (cut < candidates.size() && candidates[cut].p >= floor) ++cut;
    candidates.resize(cut);
  }

  double mass = 0;
  for (const auto& c : candidates) mass += c.p;
  std::uniform_real_distribution<double> uniform(0.0, mass);
  double target = uniform(rng_);
  for (const auto& c : candidates) {
    target -= c.p;
    if (target <= 0) return c.id;
  }
  return candidates.back().id;
}

}  // namespace xnai::engine
