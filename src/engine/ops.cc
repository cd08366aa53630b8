#include "engine/ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/cpu.h"
#include "engine/kernels.h"
#include "engine/quants.h"

namespace xnai::engine::ops {

namespace {

// Below this many multiply-adds a matrix product runs on the calling thread:
// waking the pool costs about a microsecond.
constexpr int64_t kMinParallelWork = 1 << 15;

// Weight rows per piece of work handed to a thread: a multiple of the tile
// height. A prompt's product sweeps every activation row against one chunk
// while the chunk's weights stay in L1/L2, so chunks are small; a single
// token's product is memory-bound and wants enough chunks per thread to even
// out a thread that the machine slows down.
int64_t RowChunk(int64_t rows, int64_t n_tokens, int n_threads) {
  constexpr int64_t kTile = kernels::kMaxTileRows;
  if (n_tokens >= kernels::kMaxTileCols) return 4 * kTile;
  const int64_t target = rows / (static_cast<int64_t>(n_threads) * 8);
  return std::clamp<int64_t>(target / kTile * kTile, kTile, 64 * kTile);
}

}  // namespace

Status MatMul(const MatrixView& w, const float* x, int64_t n_tokens, float* out, ThreadPool* pool) {
  const MatMulTarget target{&w, out};
  return MatMulBatch(std::span(&target, 1), x, n_tokens, pool);
}

Status MatMulBatch(std::span<const MatMulTarget> targets, const float* x, int64_t n_tokens,
                   ThreadPool* pool) {
  constexpr int kMaxTargets = 4;
  if (targets.empty()) return Status::Ok();
  if (targets.size() > kMaxTargets) {
    return Status::InvalidArgument("MatMulBatch takes at most 4 matrices");
  }
  const int64_t cols = targets[0].w->cols;
  const int n_threads = pool != nullptr ? pool->size() : 1;
  const CpuPath path = ActiveCpuPath();

  // Per matrix: its kernels, prepared activations and chunking.
  struct Plan {
    const MatrixView* w;
    float* out;
    const kernels::TypeKernels* kernel;
    const uint8_t* act;
    int64_t act_stride;
    int64_t chunk;  // weight rows per piece of work
    int64_t n_chunks;
    int64_t first;  // index of its first chunk in the combined range
  };
  Plan plans[kMaxTargets];
  // Activations are prepared once per format (the matrices of one batch
  // often share it), in buffers this thread keeps between calls.
  thread_local std::vector<uint8_t> act_buffers[3];
  const uint8_t* prepared_for[3] = {nullptr, nullptr, nullptr};
  int64_t total_chunks = 0;
  int64_t work = 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    const MatrixView& w = *targets[i].w;
    if (w.cols != cols) {
      return Status::InvalidArgument("MatMulBatch: matrices of different widths");
    }
    const kernels::TypeKernels* kernel = kernels::GetKernels(w.type, path);
    if (kernel == nullptr) return CheckSupportedType(w.type);
    Plan& plan = plans[i];
    plan.w = &w;
    plan.out = targets[i].out;
    plan.kernel = kernel;
    const int format = static_cast<int>(kernel->act_format);
    if (kernel->act_format == kernels::ActFormat::kF32) {
      // Float weights read the activations as they are.
      plan.act = reinterpret_cast<const uint8_t*>(x);
      plan.act_stride = cols * static_cast<int64_t>(sizeof(float));
    } else {
      plan.act_stride = kernels::ActRowBytes(kernel->act_format, cols);
      if (prepared_for[format] == nullptr) {
        std::vector<uint8_t>& buffer = act_buffers[format];
        const size_t needed = static_cast<size_t>(plan.act_stride * n_tokens);
        if (buffer.size() < needed) buffer.resize(needed);
        uint8_t* prepared = buffer.data();
        const int64_t stride = plan.act_stride;
        auto prepare = [&](int64_t begin, int64_t end) {
          for (int64_t t = begin; t < end; ++t) {
            kernel->prepare_act(x + t * cols, prepared + t * stride, cols);
          }
        };
        if (pool != nullptr && n_tokens > 1) {
          pool->ParallelFor(n_tokens, 8, prepare);
        } else {
          prepare(0, n_tokens);
        }
        prepared_for[format] = prepared;
      }
      plan.act = prepared_for[format];
    }
    plan.chunk = RowChunk(w.rows, n_tokens, n_threads);
    plan.n_chunks = (w.rows + plan.chunk - 1) / plan.chunk;
    plan.first = total_chunks;
    total_chunks += plan.n_chunks;
    work += w.rows * w.cols * n_tokens;
  }

  // One region for every matrix: pieces are (matrix, chunk of rows); each
  // piece sweeps its rows, tile by tile downward, against every activation
  // row while the rows are in cache.
  const int n_plans = static_cast<int>(targets.size());
  auto compute = [&](int64_t begin, int64_t end) {
    for (int64_t index = begin; index < end; ++index) {
      int p = 0;
      while (p + 1 < n_plans && index >= plans[p + 1].first) ++p;
      const Plan& plan = plans[p];
      const MatrixView& w = *plan.w;
      const int64_t chunk_index = index - plan.first;
      const int64_t row_end = std::min(w.rows, (chunk_index + 1) * plan.chunk);
      for (int64_t row = chunk_index * plan.chunk; row < row_end; row += kernels::kMaxTileRows) {
        const int rows = static_cast<int>(std::min<int64_t>(kernels::kMaxTileRows, row_end - row));
        for (int64_t t = 0; t < n_tokens; t += kernels::kMaxTileCols) {
          const int n_cols =
              static_cast<int>(std::min<int64_t>(kernels::kMaxTileCols, n_tokens - t));
          plan.kernel->dot_tile(cols, w.data + row * w.row_bytes, w.row_bytes, rows,
                                plan.act + t * plan.act_stride, plan.act_stride, n_cols,
                                plan.out + t * w.rows + row, w.rows);
        }
      }
    }
  };
  if (pool != nullptr && work >= kMinParallelWork) {
    pool->ParallelFor(total_chunks, 1, compute);
  } else {
    compute(0, total_chunks);
  }
  return Status::Ok();
}

void RmsNorm(const float* x, const float* weight, float* out, int64_t n, float eps) {
  double sum_squares = 0;
  for (int64_t i = 0; i < n; ++i) sum_squares += static_cast<double>(x[i]) * x[i];
  const float scale =
      static_cast<float>(1.0 / std::sqrt(sum_squares / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

void RopeAngles(int64_t n_rot, int64_t pos, float theta_base, const float* freq_factors,
                float* cos_out, float* sin_out) {
  const int64_t half = n_rot / 2;
  for (int64_t pair = 0; pair < half; ++pair) {
    double angle = static_cast<double>(pos) *
                   std::pow(static_cast<double>(theta_base),
                            -2.0 * static_cast<double>(pair) / static_cast<double>(n_rot));
    if (freq_factors != nullptr) angle /= freq_factors[pair];
    cos_out[pair] = static_cast<float>(std::cos(angle));
    sin_out[pair] = static_cast<float>(std::sin(angle));
  }
}

void RopeApply(float* head, int64_t n_rot, RopeStyle style, const float* cos_a,
               const float* sin_a) {
  const int64_t half = n_rot / 2;
  for (int64_t pair = 0; pair < half; ++pair) {
    // The two dimensions this pair rotates.
    const int64_t first = style == RopeStyle::kNormal ? 2 * pair : pair;
    const int64_t second = style == RopeStyle::kNormal ? 2 * pair + 1 : pair + half;
    const float x0 = head[first];
    const float x1 = head[second];
    head[first] = x0 * cos_a[pair] - x1 * sin_a[pair];
    head[second] = x0 * sin_a[pair] + x1 * cos_a[pair];
  }
}

void Rope(float* head, int64_t n_rot, int64_t pos, float theta_base, RopeStyle style,
          const float* freq_factors) {
  std::vector<float> cos_a(static_cast<size_t>(n_rot / 2)), sin_a(static_cast<size_t>(n_rot / 2));
  RopeAngles(n_rot, pos, theta_base, freq_factors, cos_a.data(), sin_a.data());
  RopeApply(head, n_rot, style, cos_a.data(), sin_a.data());
}

void Softmax(float* x, int64_t n) {
  if (n <= 0) return;
  const float max_value = *std::max_element(x, x + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max_value);
    sum += x[i];
  }
  const float inv_sum = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv_sum;
}

float Silu(float x) { return x / (1.0f + std::exp(-x)); }

}  // namespace xnai::engine::ops
