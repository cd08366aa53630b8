// Scalar reference implementations of the supported tensor types: dequantize
// a row, quantize a row, and take the dot product of a row with float
// activations. These are the oracle that the later SIMD kernels are tested
// against; they favour clarity over speed.
//
// Block layouts (little-endian; "f16" is an IEEE half, d/dmin are the block
// scales; a row is a sequence of whole blocks):
//   Q8_0 (32 elements, 34 bytes): f16 d | int8 q[32].             x = d*q
//   Q4_0 (32, 18): f16 d | u8 qs[16]; element j < 16 is the low nibble of
//        qs[j], element j+16 its high nibble.                      x = d*(q-8)
//   Q4_K (256, 144): f16 d | f16 dmin | u8 scales[12] | u8 qs[128]. Eight
//        sub-blocks of 32 with a 6-bit scale sc and 6-bit min m each, packed
//        in `scales`: for j < 4, sc[j] and m[j] are the low 6 bits of bytes j
//        and j+4; for j >= 4, their low 4 bits are the low and high nibble of
//        byte j+4 and their top 2 bits the top 2 bits of bytes j-4 and j.
//        Elements 64c..64c+31 are the low nibbles of qs[32c..32c+31] (sub-block
//        2c), elements 64c+32..64c+63 the high nibbles (sub-block 2c+1).
//                                                       x = d*sc*q - dmin*m
//   Q5_K (256, 176): f16 d | f16 dmin | scales[12] (as Q4_K) | u8 qh[32] |
//        u8 qs[128]; q as Q4_K plus a fifth bit 16: for element 64c+l (l<32)
//        bit 2c of qh[l], for element 64c+32+l bit 2c+1 of qh[l].
//   Q6_K (256, 210): u8 ql[128] | u8 qh[64] | int8 scales[16] | f16 d. Two
//        halves of 128; in half h, for l < 32 and k = 0..3, element
//        128h+32k+l has low 4 bits from ql[64h+l+32(k&1)] (low nibble for
//        k < 2, high for k >= 2) and high 2 bits from bits 2k..2k+1 of
//        qh[32h+l]; scale scales[element/16].                  x = d*sc*(q-32)
//   F32, F16, BF16: one element per block.
//
// All functions are thread-safe (no shared state). `n` is the row length in
// elements and must be a multiple of the type's block size.
#pragma once

#include <cstdint>

#include "base/status.h"
#include "engine/tensor_types.h"

namespace xnai::engine {

// Writes n floats to dst. Unsupported for types other than the eight
// supported ones (the message names the type); InvalidArgument when n is not
// a whole number of blocks.
Status DequantizeRow(TensorType type, const void* src, float* dst, int64_t n);

// Encodes n floats (finite) into RowBytes(type, n) bytes at dst. Reference
// quantizers: round-to-nearest for Q8_0/Q4_0 (scale from the largest
// magnitude), a per-sub-block least-squares scale/min search for Q4_K/Q5_K,
// largest-magnitude scales for Q6_K; F16/BF16 round to nearest even. Errors
// as DequantizeRow.
Status QuantizeRow(TensorType type, const float* src, void* dst, int64_t n);

// sum_i w_i * x_i over a row of n weights, computed block by block on the
// quantized values (d*sc*sum(q*x) - dmin*m*sum(x)), as kernels do; equal to
// the dot product of the dequantized row with x up to float rounding. Errors
// as DequantizeRow.
Result<float> DotRow(TensorType type, const void* weights, const float* x, int64_t n);

}  // namespace xnai::engine
