#include "engine/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "engine/fp16.h"
#include "engine/quants.h"

namespace xnai::engine {

namespace {

// The first allocation: enough for a short exchange without regrowing.
constexpr int64_t kMinCapacity = 256;

}  // namespace

KvCache::KvCache(int64_t n_layer, int64_t k_dim, int64_t v_dim, int64_t max_positions,
                 TensorType key_type, TensorType value_type)
    : k_dim_(k_dim),
      v_dim_(v_dim),
      max_positions_(max_positions),
      key_type_(key_type),
      value_type_(value_type),
      key_row_bytes_(RowBytes(key_type, k_dim).value_or(0)),
      value_elem_bytes_(value_type == TensorType::kF32 ? 4 : 2),
      keys_(static_cast<size_t>(n_layer)),
      values_(static_cast<size_t>(n_layer)) {}

int64_t KvCache::KeyBytes(int64_t n) const { return RowBytes(key_type_, n).value_or(0); }

void KvCache::Reserve(int64_t n_positions) {
  if (n_positions <= capacity_) return;
  const int64_t grown = std::max({n_positions, 2 * capacity_, kMinCapacity});
  const int64_t new_capacity = std::max(n_positions, std::min(grown, max_positions_));
  for (auto& layer : keys_) layer.resize(static_cast<size_t>(new_capacity * key_row_bytes_));
  // Values are transposed: each dimension's row gets longer, so rows move.
  const int64_t old_row = capacity_ * value_elem_bytes_;
  const int64_t new_row = new_capacity * value_elem_bytes_;
  for (auto& layer : values_) {
    std::vector<uint8_t> grown_layer(static_cast<size_t>(v_dim_ * new_row));
    for (int64_t dim = 0; dim < v_dim_ && old_row > 0; ++dim) {
      std::memcpy(grown_layer.data() + dim * new_row, layer.data() + dim * old_row,
                  static_cast<size_t>(old_row));
    }
    layer.swap(grown_layer);
  }
  capacity_ = new_capacity;
}

void KvCache::Store(int64_t layer, int64_t pos, const float* k, const float* v) {
  uint8_t* key_row = keys_[layer].data() + pos * key_row_bytes_;
  // The type and length were checked when the model was loaded.
  (void)QuantizeRow(key_type_, k, key_row, k_dim_);
  uint8_t* values = values_[layer].data();
  const int64_t row = value_row_bytes();
  if (value_type_ == TensorType::kF32) {
    for (int64_t dim = 0; dim < v_dim_; ++dim) {
      std::memcpy(values + dim * row + pos * 4, &v[dim], 4);
    }
  } else {
    for (int64_t dim = 0; dim < v_dim_; ++dim) {
      const uint16_t half = F32ToF16(v[dim]);
      std::memcpy(values + dim * row + pos * 2, &half, 2);
    }
  }
}

}  // namespace xnai::engine
