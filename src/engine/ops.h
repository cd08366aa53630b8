// Scalar reference operators of the decoder forward pass: matrix-vector
// products over weights of any supported type, RMS normalization, rotary
// position embedding, softmax and SiLU. They know nothing about models: every
// input is a plain buffer with its shape passed alongside.
//
// Thread safety: all functions are reentrant; MatMul may start worker threads
// of its own and joins them before it returns.
#pragma once

#include <cstdint>

#include "base/status.h"
#include "engine/tensor_types.h"

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

// sum_i a[i] * b[i] in float, with eight partial sums (a fixed summation order
// that the compiler can keep in one vector register).
float Dot(const float* a, const float* b, int64_t n);

// out (n_tokens, w.rows) = x (n_tokens, w.cols) times w transposed: out[t][r]
// is the dot product of weight row r with activation row t. Each weight row is
// converted to float once and used for every token. Rows are split over up to
// n_threads threads (1 = the calling thread only) when the work is big enough
// to pay for starting them. Errors: those of DequantizeRow (an unsupported
// type), which a loaded model has already ruled out.
Status MatMul(const MatrixView& w, const float* x, int64_t n_tokens, float* out, int n_threads);

// out (n) = x / sqrt(mean(x^2) + eps) * weight; out may alias x. The mean is
// accumulated in double.
void RmsNorm(const float* x, const float* weight, float* out, int64_t n, float eps);

// Rotates the first n_rot dimensions of one head vector (head_dim long) in
// place for position `pos`: pair i turns by pos * theta_base^(-2i/n_rot),
// divided by freq_factors[i] when freq_factors is not null (n_rot/2 values).
// Dimensions from n_rot on are left alone. n_rot must be even.
void Rope(float* head, int64_t n_rot, int64_t pos, float theta_base, RopeStyle style,
          const float* freq_factors);

// x (n) = softmax(x), in place; stable for any finite input (the maximum is
// subtracted first).
void Softmax(float* x, int64_t n);

// x * sigmoid(x).
float Silu(float x);

}  // namespace xnai::engine::ops
