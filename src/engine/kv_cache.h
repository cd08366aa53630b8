// KvCache: the keys and values one sequence has computed so far, per layer,
// in float32. It grows as positions are added (never beyond what the caller
// reserves), so a short sequence of a long-context model stays small.
//
// Thread safety: none; a cache belongs to one sequence, used by one thread at
// a time.
#pragma once

#include <cstdint>
#include <vector>

namespace xnai::engine {

class KvCache {
 public:
  // k_dim / v_dim: floats per position per layer (n_head_kv * head_dim).
  KvCache(int64_t n_layer, int64_t k_dim, int64_t v_dim)
      : k_dim_(k_dim), v_dim_(v_dim), keys_(n_layer), values_(n_layer) {}

  // Makes positions [0, n_positions) addressable; keeps existing contents.
  void Reserve(int64_t n_positions) {
    if (n_positions <= capacity_) return;
    for (auto& layer : keys_) layer.resize(static_cast<size_t>(n_positions * k_dim_));
    for (auto& layer : values_) layer.resize(static_cast<size_t>(n_positions * v_dim_));
    capacity_ = n_positions;
  }

  int64_t capacity() const { return capacity_; }
  int64_t k_dim() const { return k_dim_; }
  int64_t v_dim() const { return v_dim_; }

  // The key / value vector (k_dim / v_dim floats) of `layer` at `pos`;
  // pos < capacity().
  float* Key(int64_t layer, int64_t pos) { return keys_[layer].data() + pos * k_dim_; }
  float* Value(int64_t layer, int64_t pos) { return values_[layer].data() + pos * v_dim_; }

 private:
  int64_t k_dim_;
  int64_t v_dim_;
  int64_t capacity_ = 0;
  std::vector<std::vector<float>> keys_;    // (n_layer)(capacity, k_dim)
  std::vector<std::vector<float>> values_;  // (n_layer)(capacity, v_dim)
};

}  // namespace xnai::engine
