// The KV cache: the keys and values each sequence has computed so far, kept
// in fixed-size pages drawn from a pool that belongs to the model.
//
// A page holds `page_positions` consecutive positions of every layer: keys
// one row per position (k_dim elements in key_type: F16 by default, Q8_0 to
// halve it again, F32 for exactness) and values transposed, one row per
// dimension over the page's positions (value_type F16 or F32), so that
// attention's weighted sum of values is a row-times-vector product like the
// key scores, done by the same kernels (engine/kernels.h).
//
// Memory comes in pages as sequences grow, never reserved for a whole
// context up front. The pool may be capped (KvPagePool::SetMaxPages, from the
// memory budget): past the cap an allocation fails instead of growing, and
// the caller (the scheduler) waits or refuses.
//
// Prefix reuse: a page that is full can be published under a key that names
// every token before its end (a hash chain over the pages, verified against
// the stored tokens). A later sequence whose prompt starts with the same
// tokens takes the same pages instead of recomputing them; pages are shared
// by reference and copied before anyone writes into a shared one. Published
// pages that no sequence uses stay cached until the pool needs the room
// (least recently used first).
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "engine/tensor_types.h"

namespace xnai::engine {

struct KvLayout {
  int64_t n_layer = 0;
  int64_t k_dim = 0;  // key elements per position per layer (n_head_kv * head_dim)
  int64_t v_dim = 0;  // value elements per position per layer (n_head_kv * head_dim_v)
  TensorType key_type = TensorType::kF16;    // F32, F16 or Q8_0 (k_dim a multiple of 32)
  TensorType value_type = TensorType::kF16;  // F32 or F16
  int64_t page_positions = 64;               // a multiple of 4 (the kernels' tile rows)

  int64_t key_row_bytes() const;     // one position's keys of one layer
  int64_t value_elem_bytes() const;  // 4 or 2
  int64_t value_row_bytes() const { return page_positions * value_elem_bytes(); }
  int64_t layer_bytes() const {
    return page_positions * key_row_bytes() + v_dim * value_row_bytes();
  }
  int64_t page_bytes() const { return n_layer * layer_bytes(); }
};

// One page of positions of every layer. Made by KvPagePool::Allocate; gives
// its memory back to the pool's count when the last reference goes.
class KvPage {
 public:
  ~KvPage();
  KvPage(const KvPage&) = delete;
  KvPage& operator=(const KvPage&) = delete;

  // (page_positions, key_row_bytes) of `layer`.
  uint8_t* keys(int64_t layer) { return data_.get() + layer * layer_bytes_; }
  const uint8_t* keys(int64_t layer) const { return data_.get() + layer * layer_bytes_; }
  // (v_dim, page_positions) elements of `layer`.
  uint8_t* values(int64_t layer) { return keys(layer) + keys_bytes_; }
  const uint8_t* values(int64_t layer) const { return keys(layer) + keys_bytes_; }
  // Published pages are never written again (a writer copies them first).
  bool published() const { return published_; }

 private:
  friend class KvPagePool;
  struct Counter;
  KvPage(std::shared_ptr<Counter> counter, const KvLayout& layout);

  std::shared_ptr<Counter> counter_;
  std::unique_ptr<uint8_t[]> data_;
  int64_t layer_bytes_;
  int64_t keys_bytes_;
  int64_t page_bytes_;
  bool published_ = false;
};

// Thread safety: every method may be called from any thread. A page's
// contents are not synchronized: the sequence that owns (or copies) it
// writes it; published pages are only read.
class KvPagePool {
 public:
  explicit KvPagePool(const KvLayout& layout);
  ~KvPagePool();
  KvPagePool(const KvPagePool&) = delete;
  KvPagePool& operator=(const KvPagePool&) = delete;

  const KvLayout& layout() const { return layout_; }
  int64_t page_bytes() const { return layout_.page_bytes(); }

  // At most `max_pages` live pages (sequences' and cached); 0 = no limit.
  // Lowering it below what is in use evicts cached pages nobody uses; pages
  // in use stay until released.
  void SetMaxPages(int64_t max_pages);
  int64_t max_pages() const;
  // Live pages: used by sequences or kept by the prefix cache.
  int64_t pages_in_use() const;
  // Live pages that only the prefix cache holds (evictable on demand).
  int64_t pages_cached_idle() const;
  // How many pages Allocate could still return (free under the cap plus
  // evictable cached pages); INT64_MAX without a cap.
  int64_t pages_available() const;

  // A new page (contents undefined). At the cap it first evicts the least
  // recently used cached page no sequence uses; nullptr when there is none.
  std::shared_ptr<KvPage> Allocate();

  // Prefix cache. `key` names the page's contents: KvPagePool::ChainKey of
  // the previous page's key and this page's tokens (page_positions of them).
  // Publishing marks the page read-only; publishing a key twice keeps the
  // first page.
  void Publish(uint64_t key, uint64_t prev_key, std::span<const int32_t> tokens,
               const std::shared_ptr<KvPage>& page);
  // The cached page with that key whose predecessor key and tokens match,
  // or nullptr. Counts toward the hit statistics.
  std::shared_ptr<KvPage> Lookup(uint64_t key, uint64_t prev_key, std::span<const int32_t> tokens);
  // Drops every cached page nobody uses.
  void ClearCache();
  static uint64_t ChainKey(uint64_t prev_key, std::span<const int32_t> tokens);

  struct CacheStats {
    int64_t lookups = 0;
    int64_t hits = 0;
    int64_t evictions = 0;
  };
  CacheStats cache_stats() const;

 private:
  struct Entry {
    std::shared_ptr<KvPage> page;
    uint64_t prev_key;
    std::vector<int32_t> tokens;
    std::list<uint64_t>::iterator lru;  // position in lru_
  };
  // Evicts one cached page nobody else holds; false when there is none.
  bool EvictOneLocked();
  int64_t IdleCachedLocked() const;

  const KvLayout layout_;
  std::shared_ptr<KvPage::Counter> counter_;
  mutable std::mutex mutex_;
  int64_t max_pages_ = 0;
  std::unordered_map<uint64_t, Entry> cache_;
  std::list<uint64_t> lru_;  // front: most recently used
  CacheStats stats_;
};

// One sequence's pages, in position order.
//
// Thread safety: none; a cache belongs to one sequence, used by one thread at
// a time (the forward pass writes disjoint positions from its pool threads).
class KvCache {
 public:
  explicit KvCache(KvPagePool* pool) : pool_(pool) {}

  const KvLayout& layout() const { return pool_->layout(); }
  int64_t page_positions() const { return pool_->layout().page_positions; }
  int64_t n_pages() const { return static_cast<int64_t>(pages_.size()); }
  // Positions addressable now (n_pages * page_positions).
  int64_t capacity() const { return n_pages() * page_positions(); }

  // Makes positions [first, end) writable: allocates the pages missing below
  // `end` and replaces pages overlapping the range that are shared or
  // published by private copies. All or nothing: ResourceExhausted (naming
  // the pool's use) leaves the cache as it was.
  Status PrepareWrite(int64_t first, int64_t end);
  // Keeps the pages holding positions [0, n_positions), drops the rest.
  void Truncate(int64_t n_positions);
  // Appends a (published) page from the prefix cache; the cache must be
  // page-aligned (capacity() positions all in use).
  void AppendShared(std::shared_ptr<KvPage> page) { pages_.push_back(std::move(page)); }
  const std::shared_ptr<KvPage>& page(int64_t index) const { return pages_[index]; }

  // Bytes of the first `n` key elements (n a multiple of the key block size):
  // the offset of a head's keys inside a row.
  int64_t KeyBytes(int64_t n) const;
  // The keys of `layer` at `pos` (key_row_bytes); pos < capacity(). Rows of
  // one page are contiguous (page_positions of them).
  const uint8_t* KeyRow(int64_t layer, int64_t pos) const {
    const int64_t per_page = page_positions();
    return pages_[pos / per_page]->keys(layer) + (pos % per_page) * key_row_bytes_;
  }
  // Row `dim` of the transposed values of `layer` in page `page_index`
  // (page_positions elements; rows are value_row_bytes apart).
  const uint8_t* ValueRow(int64_t layer, int64_t page_index, int64_t dim) const {
    return pages_[page_index]->values(layer) + dim * layout().value_row_bytes();
  }

  // Stores position `pos` of `layer` (after PrepareWrite covered it): k
  // (k_dim floats), v (v_dim floats), converted to the cache's types.
  void Store(int64_t layer, int64_t pos, const float* k, const float* v);

 private:
  KvPagePool* pool_;
  int64_t key_row_bytes_ = pool_->layout().key_row_bytes();
  std::vector<std::shared_ptr<KvPage>> pages_;
};

}  // namespace xnai::engine
