// Scalar reference operators of the decoder forward pass: matrix-vector
// products over weights of any supported type, RMS normalization, rotary
// position embedding, softmax and SiLU. They know nothing about models: every
// input is a plain buffer with its shape passed alongside.
//
// Thread safety: all functions are reentrant; MatMul runs regions on the pool
// it is given (one region at a time per pool).
#pragma once

#include <cstdint>
#include <span>

#include "base/status.h"
#include "engine/tensor_types.h"
#include "engine/thread_pool.h"

namespace xnai::engine::ops {

// A row-major weight matrix in place (typically inside a mapped GGUF file):
// `rows` rows of `cols` elements of `type`, row r at data + r * row_bytes.
// In ggml terms cols = dims[0], rows = dims[1]. Not owning.
struct MatrixView {
  TensorType type = TensorType::kF32;
  const uint8_t* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t row_bytes = 0;
};

// How rotary embedding pairs up the dimensions of a head: kNormal rotates
// adjacent pairs (2i, 2i+1) (llama); kNeox rotates (i, i + n_rot/2) (qwen2,
// qwen3, "NEOX" in llama.cpp).
enum class RopeStyle { kNormal, kNeox };

// out (n_tokens, w.rows) = x (n_tokens, w.cols) times w transposed: out[t][r]
// is the dot product of weight row r with activation row t, computed by the
// kernels of the active CPU path (engine/kernels.h): the activations are
// prepared once (quantized to 8 bits for quantized weights), then tiles of
// weight rows x activation rows are spread over the pool's threads, each
// chunk of weight rows swept against every activation row while it is in
// cache. `pool` may be null (the calling thread only). Errors: Unsupported
// for a weight type without kernels, which a loaded model has already ruled
// out.
Status MatMul(const MatrixView& w, const float* x, int64_t n_tokens, float* out, ThreadPool* pool);

// One matrix of a MatMulBatch and where its product goes.
struct MatMulTarget {
  const MatrixView* w;
  float* out;  // (n_tokens, w->rows)
};

// MatMul of the same activations with up to 4 matrices of the same width
// (w->cols) at once (q/k/v, gate/up): the activations are prepared once per
// format and all the products share one parallel region. InvalidArgument for
// more than 4 matrices or different widths; otherwise MatMul's errors.
Status MatMulBatch(std::span<const MatMulTarget> targets, const float* x, int64_t n_tokens,
                   ThreadPool* pool);

// out (n) = x / sqrt(mean(x^2) + eps) * weight; out may alias x. The mean is
// accumulated in double.
void RmsNorm(const float* x, const float* weight, float* out, int64_t n, float eps);

// Rotates the first n_rot dimensions of one head vector (head_dim long) in
// place for position `pos`: pair i turns by pos * theta_base^(-2i/n_rot),
// divided by freq_factors[i] when freq_factors is not null (n_rot/2 values).
// Dimensions from n_rot on are left alone. n_rot must be even.
void Rope(float* head, int64_t n_rot, int64_t pos, float theta_base, RopeStyle style,
          const float* freq_factors);

// The rotation of each pair of dimensions for position `pos`, as Rope
// computes it: cos_out[i] and sin_out[i] for the n_rot / 2 pairs. Computed
// once per position and applied to every head of every layer with RopeApply.
void RopeAngles(int64_t n_rot, int64_t pos, float theta_base, const float* freq_factors,
                float* cos_out, float* sin_out);

// Rope with the rotations precomputed by RopeAngles.
void RopeApply(float* head, int64_t n_rot, RopeStyle style, const float* cos_a, const float* sin_a);

// x (n) = softmax(x), in place; stable for any finite input (the maximum is
// subtracted first).
void Softmax(float* x, int64_t n);

// x * sigmoid(x).
float Silu(float x);

}  // namespace xnai::engine::ops
