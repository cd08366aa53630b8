#include "engine/kv_cache.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>

#include "engine/fp16.h"
#include "engine/quants.h"

namespace xnai::engine {

int64_t KvLayout::key_row_bytes() const { return RowBytes(key_type, k_dim).value_or(0); }

int64_t KvLayout::value_elem_bytes() const { return value_type == TensorType::kF32 ? 4 : 2; }

// Live pages, shared by the pool and its pages (a page may outlive the pool's
// bookkeeping only by the time its last holder takes to drop it).
struct KvPage::Counter {
  std::atomic<int64_t> live{0};
};

KvPage::KvPage(std::shared_ptr<Counter> counter, const KvLayout& layout)
    : counter_(std::move(counter)),
      // Not zeroed: positions are written before they are read, and untouched
      // memory of a fresh allocation stays out of the resident set.
      data_(new uint8_t[static_cast<size_t>(layout.page_bytes())]),
      layer_bytes_(layout.layer_bytes()),
      keys_bytes_(layout.page_positions * layout.key_row_bytes()),
      page_bytes_(layout.page_bytes()) {
  counter_->live++;
}

KvPage::~KvPage() { counter_->live--; }

KvPagePool::KvPagePool(const KvLayout& layout)
    : layout_(layout), counter_(std::make_shared<KvPage::Counter>()) {}

KvPagePool::~KvPagePool() = default;

void KvPagePool::SetMaxPages(int64_t max_pages) {
  std::lock_guard<std::mutex> lock(mutex_);
  max_pages_ = std::max<int64_t>(0, max_pages);
  while (max_pages_ > 0 && counter_->live.load() > max_pages_ && EvictOneLocked()) {
  }
}

int64_t KvPagePool::max_pages() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return max_pages_;
}

int64_t KvPagePool::pages_in_use() const { return counter_->live.load(); }

int64_t KvPagePool::IdleCachedLocked() const {
  int64_t idle = 0;
  for (const auto& [key, entry] : cache_) {
    if (entry.page.use_count() == 1) ++idle;
  }
  return idle;
}

int64_t KvPagePool::pages_cached_idle() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return IdleCachedLocked();
}

int64_t KvPagePool::pages_available() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (max_pages_ == 0) return INT64_MAX;
  return std::max<int64_t>(0, max_pages_ - counter_->live.load()) + IdleCachedLocked();
}

bool KvPagePool::EvictOneLocked() {
  for (auto it = lru_.rbegin(); it != lru_.rend(); ++it) {
    auto entry = cache_.find(*it);
    if (entry->second.page.use_count() != 1) continue;
    lru_.erase(std::next(it).base());
    cache_.erase(entry);
    stats_.evictions++;
    return true;
  }
  return false;
}

std::shared_ptr<KvPage> KvPagePool::Allocate() {
  std::lock_guard<std::mutex> lock(mutex_);
  while (max_pages_ > 0 && counter_->live.load() >= max_pages_) {
    if (!EvictOneLocked()) return nullptr;
  }
  try {
    return std::shared_ptr<KvPage>(new KvPage(counter_, layout_));
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

uint64_t KvPagePool::ChainKey(uint64_t prev_key, std::span<const int32_t> tokens) {
  // splitmix64 steps over the previous key and each token.
  auto mix = [](uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  };
  uint64_t key = mix(prev_key ^ 0x6b76636163686521ULL);
  for (int32_t token : tokens) key = mix(key ^ static_cast<uint32_t>(token));
  return key;
}

void KvPagePool::Publish(uint64_t key, uint64_t prev_key, std::span<const int32_t> tokens,
                         const std::shared_ptr<KvPage>& page) {
  std::lock_guard<std::mutex> lock(mutex_);
  page->published_ = true;
  if (cache_.count(key) != 0) return;
  lru_.push_front(key);
  cache_.emplace(
      key, Entry{page, prev_key, std::vector<int32_t>(tokens.begin(), tokens.end()), lru_.begin()});
}

std::shared_ptr<KvPage> KvPagePool::Lookup(uint64_t key, uint64_t prev_key,
                                           std::span<const int32_t> tokens) {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.lookups++;
  auto it = cache_.find(key);
  if (it == cache_.end() || it->second.prev_key != prev_key ||
      !std::equal(tokens.begin(), tokens.end(), it->second.tokens.begin(),
                  it->second.tokens.end())) {
    return nullptr;
  }
  stats_.hits++;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.page;
}

void KvPagePool::ClearCache() {
  std::lock_guard<std::mutex> lock(mutex_);
  while (EvictOneLocked()) {
  }
}

KvPagePool::CacheStats KvPagePool::cache_stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

Status KvCache::PrepareWrite(int64_t first, int64_t end) {
  const int64_t per_page = page_positions();
  const int64_t first_page = first / per_page;
  const int64_t end_page = (end + per_page - 1) / per_page;
  // Pages to add or replace, allocated before anything changes.
  std::vector<std::pair<int64_t, std::shared_ptr<KvPage>>> fresh;
  for (int64_t index = first_page; index < end_page; ++index) {
    const bool missing = index >= n_pages();
    if (!missing && !pages_[index]->published() && pages_[index].use_count() == 1) continue;
    std::shared_ptr<KvPage> page = pool_->Allocate();
    if (!page) {
      return Status::ResourceExhausted(
          "the KV cache is full: " + std::to_string(pool_->pages_in_use()) + " pages of " +
          std::to_string(pool_->page_bytes() >> 10) + " KiB in use (limit " +
          std::to_string(pool_->max_pages()) + ")");
    }
    if (!missing) {
      std::memcpy(page->keys(0), pages_[index]->keys(0),
                  static_cast<size_t>(layout().page_bytes()));
    }
    fresh.emplace_back(index, std::move(page));
  }
  for (auto& [index, page] : fresh) {
    if (index < n_pages()) {
      pages_[index] = std::move(page);
    } else {
      pages_.push_back(std::move(page));
    }
  }
  return Status::Ok();
}

void KvCache::Truncate(int64_t n_positions) {
  const int64_t per_page = page_positions();
  const int64_t keep = (std::max<int64_t>(0, n_positions) + per_page - 1) / per_page;
  if (keep < n_pages()) pages_.resize(static_cast<size_t>(keep));
}

int64_t KvCache::KeyBytes(int64_t n) const { return RowBytes(layout().key_type, n).value_or(0); }

void KvCache::Store(int64_t layer, int64_t pos, const float* k, const float* v) {
  const KvLayout& lay = layout();
  const int64_t per_page = lay.page_positions;
  KvPage& page = *pages_[pos / per_page];
  const int64_t offset = pos % per_page;
  // The type and length were checked when the model was loaded.
  (void)QuantizeRow(lay.key_type, k, page.keys(layer) + offset * key_row_bytes_, lay.k_dim);
  uint8_t* values = page.values(layer);
  const int64_t row = lay.value_row_bytes();
  if (lay.value_type == TensorType::kF32) {
    for (int64_t dim = 0; dim < lay.v_dim; ++dim) {
      std::memcpy(values + dim * row + offset * 4, &v[dim], 4);
    }
  } else {
    for (int64_t dim = 0; dim < lay.v_dim; ++dim) {
      const uint16_t half = F32ToF16(v[dim]);
      std::memcpy(values + dim * row + offset * 2, &half, 2);
    }
  }
}

}  // namespace xnai::engine
