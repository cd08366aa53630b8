#include "engine/ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <system_error>
#include <thread>
#include <vector>

#include "engine/quants.h"

namespace xnai::engine::ops {

namespace {

// Below this many multiply-adds a matrix product runs on the calling thread:
// starting a thread costs tens of microseconds.
constexpr int64_t kMinParallelWork = 1 << 18;

// Rows [row_begin, row_end) of MatMul. `scratch` holds one dequantized row.
Status MatMulRows(const MatrixView& w, const float* x, int64_t n_tokens, float* out,
                  int64_t row_begin, int64_t row_end) {
  std::vector<float> scratch;
  // F32 rows are used in place when they are aligned for float access (the
  // GGUF data section is aligned, but a file may declare alignment 1).
  const bool in_place = w.type == TensorType::kF32 &&
                        reinterpret_cast<uintptr_t>(w.data) % alignof(float) == 0 &&
                        w.row_bytes % static_cast<int64_t>(sizeof(float)) == 0;
  if (!in_place) scratch.resize(static_cast<size_t>(w.cols));
  for (int64_t row = row_begin; row < row_end; ++row) {
    const uint8_t* src = w.data + row * w.row_bytes;
    const float* weights;
    if (in_place) {
      weights = reinterpret_cast<const float*>(src);
    } else {
      XNAI_RETURN_IF_ERROR(DequantizeRow(w.type, src, scratch.data(), w.cols));
      weights = scratch.data();
    }
    for (int64_t token = 0; token < n_tokens; ++token) {
      out[token * w.rows + row] = Dot(weights, x + token * w.cols, w.cols);
    }
  }
  return Status::Ok();
}

}  // namespace

float Dot(const float* a, const float* b, int64_t n) {
  float partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int lane = 0; lane < 8; ++lane) partial[lane] += a[i + lane] * b[i + lane];
  }
  for (; i < n; ++i) partial[0] += a[i] * b[i];
  return ((partial[0] + partial[1]) + (partial[2] + partial[3])) +
         ((partial[4] + partial[5]) + (partial[6] + partial[7]));
}

Status MatMul(const MatrixView& w, const float* x, int64_t n_tokens, float* out, int n_threads) {
  const int64_t work = w.rows * w.cols * n_tokens;
  int64_t n_workers = std::max<int64_t>(1, n_threads);
  if (work < kMinParallelWork) n_workers = 1;
  n_workers = std::min(n_workers, w.rows);
  if (n_workers <= 1) return MatMulRows(w, x, n_tokens, out, 0, w.rows);

  // Contiguous row ranges; the calling thread takes the first one.
  std::vector<Status> results(static_cast<size_t>(n_workers));
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(n_workers - 1));
  const int64_t per_worker = (w.rows + n_workers - 1) / n_workers;
  for (int64_t worker = 1; worker < n_workers; ++worker) {
    const int64_t begin = std::min(w.rows, worker * per_worker);
    const int64_t end = std::min(w.rows, begin + per_worker);
    auto run = [&, worker, begin, end] {
      results[static_cast<size_t>(worker)] = MatMulRows(w, x, n_tokens, out, begin, end);
    };
    try {
      threads.emplace_back(run);
    } catch (const std::system_error&) {
      run();  // no thread to be had: do this range here rather than fail
    }
  }
  results[0] = MatMulRows(w, x, n_tokens, out, 0, std::min(w.rows, per_worker));
  for (std::thread& thread : threads) thread.join();
  for (const Status& status : results) {
    if (!status.ok()) return status;
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

void Rope(float* head, int64_t n_rot, int64_t pos, float theta_base, RopeStyle style,
          const float* freq_factors) {
  const int64_t half = n_rot / 2;
  for (int64_t pair = 0; pair < half; ++pair) {
    double angle = static_cast<double>(pos) *
                   std::pow(static_cast<double>(theta_base),
                            -2.0 * static_cast<double>(pair) / static_cast<double>(n_rot));
    if (freq_factors != nullptr) angle /= freq_factors[pair];
    const float cos_a = static_cast<float>(std::cos(angle));
    const float sin_a = static_cast<float>(std::sin(angle));
    // The two dimensions this pair rotates.
    const int64_t first = style == RopeStyle::kNormal ? 2 * pair : pair;
    const int64_t second = style == RopeStyle::kNormal ? 2 * pair + 1 : pair + half;
    const float x0 = head[first];
    const float x1 = head[second];
    head[first] = x0 * cos_a - x1 * sin_a;
    head[second] = x0 * sin_a + x1 * cos_a;
  }
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
