// KvCache: the keys and values one sequence has computed so far, per layer.
// Keys are stored one row per position (k_dim elements in key_type: F16 by
// default, Q8_0 to halve it again, F32 for exactness); values are stored
// transposed, one row per dimension over the positions (value_type F16 or
// F32), so that attention's weighted sum of values is a row-times-vector
// product like the key scores, done by the same kernels (engine/kernels.h).
//
// Capacity grows geometrically as positions are added, never beyond
// max_positions, so a short sequence of a long-context model stays small;
// growing copies the transposed values to their new row length.
//
// Thread safety: none; a cache belongs to one sequence, used by one thread at
// a time (the forward pass writes disjoint positions from its pool threads).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/tensor_types.h"

namespace xnai::engine {

class KvCache {
 public:
  // k_dim / v_dim: elements per position per layer (n_head_kv * head_dim).
  // key_type: F32, F16 or Q8_0 (Q8_0 needs k_dim and the head dimension to
  // be multiples of 32: the model checks); value_type: F32 or F16.
  KvCache(int64_t n_layer, int64_t k_dim, int64_t v_dim, int64_t max_positions, TensorType key_type,
          TensorType value_type);

  // Makes positions [0, n_positions) addressable (n_positions <=
  // max_positions); keeps existing contents.
  void Reserve(int64_t n_positions);

  int64_t capacity() const { return capacity_; }
  TensorType key_type() const { return key_type_; }
  TensorType value_type() const { return value_type_; }
  // Bytes of one position's keys (k_dim elements of key_type).
  int64_t key_row_bytes() const { return key_row_bytes_; }
  // Bytes from one value dimension's row to the next (capacity elements).
  int64_t value_row_bytes() const { return capacity_ * value_elem_bytes_; }
  // Bytes of the first `n` key elements (n a multiple of the key block size):
  // the offset of a head's keys inside a row.
  int64_t KeyBytes(int64_t n) const;

  // The keys of `layer` at `pos` (key_row_bytes()); pos < capacity().
  const uint8_t* KeyRow(int64_t layer, int64_t pos) const {
    return keys_[layer].data() + pos * key_row_bytes_;
  }
  // The values of dimension `dim` of `layer` over positions 0.. (capacity()
  // elements of value_type).
  const uint8_t* ValueRow(int64_t layer, int64_t dim) const {
    return values_[layer].data() + dim * value_row_bytes();
  }

  // Stores position `pos` of `layer`: k (k_dim floats), v (v_dim floats),
  // converted to the cache's types.
  void Store(int64_t layer, int64_t pos, const float* k, const float* v);

 private:
  int64_t k_dim_;
  int64_t v_dim_;
  int64_t max_positions_;
  TensorType key_type_;
  TensorType value_type_;
  int64_t key_row_bytes_;
  int64_t value_elem_bytes_;
  int64_t capacity_ = 0;
  std::vector<std::vector<uint8_t>> keys_;    // (n_layer)(capacity, key_row_bytes)
  std::vector<std::vector<uint8_t>> values_;  // (n_layer)(v_dim, capacity) elements
};

}  // namespace xnai::engine
