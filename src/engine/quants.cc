#include "engine/quants.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "engine/fp16.h"

namespace xnai::engine {
namespace {

// Block geometry (elements) and byte offsets inside a block; the block byte
// sizes come from the type table (gguf/ggml_type.cc).
constexpr int kQ8_0Elems = 32;
constexpr int kQ4_0Elems = 32;
constexpr int kQkK = 256;          // super-block of the K types
constexpr int kKScalesOffset = 4;  // Q4_K/Q5_K: after d and dmin
constexpr int kQ4_KQsOffset = 16;
constexpr int kQ5_KQhOffset = 16;
constexpr int kQ5_KQsOffset = 48;
constexpr int kQ6_KQhOffset = 128;
constexpr int kQ6_KScalesOffset = 192;
constexpr int kQ6_KDOffset = 208;

float LoadF16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return F16ToF32(h);
}

// Stores f as f16 and returns the value actually stored, so quantizers can
// work with the scale a reader will see.
float StoreF16(uint8_t* p, float f) {
  const uint16_t h = F32ToF16(f);
  std::memcpy(p, &h, 2);
  return F16ToF32(h);
}

int RoundClamp(float v, int lo, int hi) {
  if (!(v == v)) return lo;  // NaN input: keep the result defined
  const float r = std::nearbyint(std::clamp(v, static_cast<float>(lo), static_cast<float>(hi)));
  return static_cast<int>(r);
}

// --- K-type scale packing --------------------------------------------------------

void UnpackScalesMins(const uint8_t* s, uint8_t* sc, uint8_t* mn) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = s[j] & 63;
    mn[j] = s[j + 4] & 63;
  }
  for (int j = 4; j < 8; ++j) {
    sc[j] = static_cast<uint8_t>((s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4));
    mn[j] = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

void PackScalesMins(const uint8_t* sc, const uint8_t* mn, uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = static_cast<uint8_t>((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
    s[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xf) | ((mn[j + 4] & 0xf) << 4));
  }
}

// The 0..31 (Q5_K) or 0..15 (Q4_K) quant of element i of a K block.
inline int QuantQ4K(const uint8_t* qs, int i) {
  const int c = i / 64, r = i % 64;
  const uint8_t byte = qs[32 * c + r % 32];
  return r < 32 ? (byte & 0xf) : (byte >> 4);
}

inline int QuantQ5K(const uint8_t* qh, const uint8_t* qs, int i) {
  const int c = i / 64, r = i % 64;
  const int bit = 2 * c + (r >= 32 ? 1 : 0);
  return QuantQ4K(qs, i) | (((qh[r % 32] >> bit) & 1) << 4);
}

// The signed (-32..31) quant of element i of a Q6_K block.
inline int QuantQ6K(const uint8_t* ql, const uint8_t* qh, int i) {
  const int h = i / 128, r = i % 128, k = r / 32, l = r % 32;
  const uint8_t low_byte = ql[64 * h + l + 32 * (k & 1)];
  const int low = k < 2 ? (low_byte & 0xf) : (low_byte >> 4);
  const int high = (qh[32 * h + l] >> (2 * k)) & 3;
  return (low | (high << 4)) - 32;
}

// --- dequantize -------------------------------------------------------------------

void DequantQ8_0(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  for (int i = 0; i < kQ8_0Elems; ++i) y[i] = d * static_cast<int8_t>(b[2 + i]);
}

void DequantQ4_0(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * ((qs[j] & 0xf) - 8);
    y[j + 16] = d * ((qs[j] >> 4) - 8);
  }
}

void DequantQ4_K(const uint8_t* b, float* y) {
  const float d = LoadF16(b), dmin = LoadF16(b + 2);
  uint8_t sc[8], mn[8];
  UnpackScalesMins(b + kKScalesOffset, sc, mn);
  const uint8_t* qs = b + kQ4_KQsOffset;
  for (int i = 0; i < kQkK; ++i) {
    const int j = i / 32;
    y[i] = d * sc[j] * QuantQ4K(qs, i) - dmin * mn[j];
  }
}

void DequantQ5_K(const uint8_t* b, float* y) {
  const float d = LoadF16(b), dmin = LoadF16(b + 2);
  uint8_t sc[8], mn[8];
  UnpackScalesMins(b + kKScalesOffset, sc, mn);
  const uint8_t* qh = b + kQ5_KQhOffset;
  const uint8_t* qs = b + kQ5_KQsOffset;
  for (int i = 0; i < kQkK; ++i) {
    const int j = i / 32;
    y[i] = d * sc[j] * QuantQ5K(qh, qs, i) - dmin * mn[j];
  }
}

void DequantQ6_K(const uint8_t* b, float* y) {
  const float d = LoadF16(b + kQ6_KDOffset);
  const int8_t* scales = reinterpret_cast<const int8_t*>(b + kQ6_KScalesOffset);
  for (int i = 0; i < kQkK; ++i) {
    y[i] = d * scales[i / 16] * QuantQ6K(b, b + kQ6_KQhOffset, i);
  }
}

// --- dot products on quantized blocks -----------------------------------------

float DotQ8_0(const uint8_t* b, const float* x) {
  float sum = 0;
  for (int i = 0; i < kQ8_0Elems; ++i) sum += static_cast<int8_t>(b[2 + i]) * x[i];
  return LoadF16(b) * sum;
}

float DotQ4_0(const uint8_t* b, const float* x) {
  const uint8_t* qs = b + 2;
  float sum = 0;
  for (int j = 0; j < 16; ++j) {
    sum += ((qs[j] & 0xf) - 8) * x[j] + ((qs[j] >> 4) - 8) * x[j + 16];
  }
  return LoadF16(b) * sum;
}

template <bool kFiveBit>
float DotK(const uint8_t* b, const float* x) {
  const float d = LoadF16(b), dmin = LoadF16(b + 2);
  uint8_t sc[8], mn[8];
  UnpackScalesMins(b + kKScalesOffset, sc, mn);
  float sum = 0;
  for (int j = 0; j < 8; ++j) {
    float qx = 0, xs = 0;
    for (int i = 32 * j; i < 32 * j + 32; ++i) {
      const int q = kFiveBit ? QuantQ5K(b + kQ5_KQhOffset, b + kQ5_KQsOffset, i)
                             : QuantQ4K(b + kQ4_KQsOffset, i);
      qx += q * x[i];
      xs += x[i];
    }
    sum += d * sc[j] * qx - dmin * mn[j] * xs;
  }
  return sum;
}

float DotQ6_K(const uint8_t* b, const float* x) {
  const int8_t* scales = reinterpret_cast<const int8_t*>(b + kQ6_KScalesOffset);
  float sum = 0;
  for (int s = 0; s < 16; ++s) {
    float qx = 0;
    for (int i = 16 * s; i < 16 * s + 16; ++i) qx += QuantQ6K(b, b + kQ6_KQhOffset, i) * x[i];
    sum += scales[s] * qx;
  }
  return LoadF16(b + kQ6_KDOffset) * sum;
}

// --- quantize -------------------------------------------------------------------

void QuantQ8_0(const float* x, uint8_t* b) {
  float amax = 0;
  for (int i = 0; i < kQ8_0Elems; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = StoreF16(b, amax / 127.0f);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  for (int i = 0; i < kQ8_0Elems; ++i) {
    b[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(RoundClamp(x[i] * id, -127, 127)));
  }
}

void QuantQ4_0(const float* x, uint8_t* b) {
  // The scale maps the element of largest magnitude to -8, using the full
  // negative range; the other side reaches +7.
  float extreme = 0;
  for (int i = 0; i < kQ4_0Elems; ++i) {
    if (std::fabs(x[i]) > std::fabs(extreme)) extreme = x[i];
  }
  const float d = StoreF16(b, extreme / -8.0f);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    const int lo = RoundClamp(x[j] * id + 8, 0, 15);
    const int hi = RoundClamp(x[j + 16] * id + 8, 0, 15);
    qs[j] = static_cast<uint8_t>(lo | (hi << 4));
  }
}

// Fits x ~= scale * q - min with q in 0..nmax and min >= 0 for one K-type
// sub-block: a few starting ranges, each refined by alternating rounding and
// a least-squares refit of (scale, min); the lowest squared error wins.
void FitScaleMin(const float* x, int n, int nmax, float* scale_out, float* min_out) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  lo = std::min(lo, 0.0f);  // the offset can only pull values down
  if (hi <= lo) {
    *scale_out = 0;
    *min_out = -lo;
    return;
  }
  float best_err = std::numeric_limits<float>::infinity();
  float best_scale = (hi - lo) / nmax, best_offset = lo;
  for (float shrink : {1.0f, 0.96f, 0.92f, 0.88f, 0.84f}) {
    float scale = (hi - lo) * shrink / nmax;
    float offset = lo * shrink;  // x ~= scale * q + offset, offset <= 0
    for (int iter = 0; iter < 4; ++iter) {
      double sq = 0, sqq = 0, sx = 0, sqx = 0;
      for (int i = 0; i < n; ++i) {
        const int q = RoundClamp((x[i] - offset) / scale, 0, nmax);
        sq += q;
        sqq += static_cast<double>(q) * q;
        sx += x[i];
        sqx += q * static_cast<double>(x[i]);
      }
      const double det = n * sqq - sq * sq;
      if (det <= 0) break;
      double new_scale = (n * sqx - sq * sx) / det;
      double new_offset = (sx - new_scale * sq) / n;
      if (new_offset > 0) {
        new_offset = 0;
        new_scale = sqx / sqq;
      }
      if (!(new_scale > 0)) break;
      scale = static_cast<float>(new_scale);
      offset = static_cast<float>(new_offset);
    }
    float err = 0;
    for (int i = 0; i < n; ++i) {
      const int q = RoundClamp((x[i] - offset) / scale, 0, nmax);
      const float diff = x[i] - (scale * q + offset);
      err += diff * diff;
    }
    if (err < best_err) {
      best_err = err;
      best_scale = scale;
      best_offset = offset;
    }
  }
  *scale_out = best_scale;
  *min_out = -best_offset;
}

// Shared by Q4_K (nmax 15) and Q5_K (nmax 31): per-sub-block fits, 6-bit
// scales and mins relative to the super-block's d and dmin, then the final
// quants against the scales a reader will reconstruct. Writes d, dmin and
// the 12 scale bytes; returns the 256 quants in q.
void QuantKScales(const float* x, int nmax, uint8_t* b, uint8_t* q) {
  float scales[8], mins[8];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    FitScaleMin(x + 32 * j, 32, nmax, &scales[j], &mins[j]);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float d = StoreF16(b, max_scale / 63.0f);
  const float dmin = StoreF16(b + 2, max_min / 63.0f);
  uint8_t sc[8], mn[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = static_cast<uint8_t>(d > 0 ? RoundClamp(scales[j] / d, 0, 63) : 0);
    mn[j] = static_cast<uint8_t>(dmin > 0 ? RoundClamp(mins[j] / dmin, 0, 63) : 0);
  }
  PackScalesMins(sc, mn, b + kKScalesOffset);
  for (int j = 0; j < 8; ++j) {
    const float eff_scale = d * sc[j], eff_min = dmin * mn[j];
    for (int i = 32 * j; i < 32 * j + 32; ++i) {
      q[i] = static_cast<uint8_t>(eff_scale > 0 ? RoundClamp((x[i] + eff_min) / eff_scale, 0, nmax)
                                                : 0);
    }
  }
}

void QuantQ4_K(const float* x, uint8_t* b) {
  uint8_t q[kQkK];
  QuantKScales(x, 15, b, q);
  uint8_t* qs = b + kQ4_KQsOffset;
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      qs[32 * c + l] = static_cast<uint8_t>(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
    }
  }
}

void QuantQ5_K(const float* x, uint8_t* b) {
  uint8_t q[kQkK];
  QuantKScales(x, 31, b, q);
  uint8_t* qh = b + kQ5_KQhOffset;
  uint8_t* qs = b + kQ5_KQsOffset;
  std::memset(qh, 0, 32);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t lo = q[64 * c + l], hi = q[64 * c + 32 + l];
      qs[32 * c + l] = static_cast<uint8_t>((lo & 0xf) | ((hi & 0xf) << 4));
      qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
    }
  }
}

void QuantQ6_K(const float* x, uint8_t* b) {
  // Per 16-element sub-block, the scale maps the largest-magnitude element to
  // -32; the sub-block scales are 8-bit multiples of the super-block d.
  float scales[16];
  float max_abs_scale = 0;
  for (int s = 0; s < 16; ++s) {
    float extreme = 0;
    for (int i = 16 * s; i < 16 * s + 16; ++i) {
      if (std::fabs(x[i]) > std::fabs(extreme)) extreme = x[i];
    }
    scales[s] = extreme / -32.0f;
    max_abs_scale = std::max(max_abs_scale, std::fabs(scales[s]));
  }
  const float d = StoreF16(b + kQ6_KDOffset, max_abs_scale / 127.0f);
  int8_t* sc = reinterpret_cast<int8_t*>(b + kQ6_KScalesOffset);
  uint8_t q[kQkK];
  for (int s = 0; s < 16; ++s) {
    sc[s] = static_cast<int8_t>(d > 0 ? RoundClamp(scales[s] / d, -128, 127) : 0);
    const float eff = d * sc[s];
    for (int i = 16 * s; i < 16 * s + 16; ++i) {
      q[i] = static_cast<uint8_t>((eff != 0 ? RoundClamp(x[i] / eff, -32, 31) : 0) + 32);
    }
  }
  uint8_t* ql = b;
  uint8_t* qh = b + kQ6_KQhOffset;
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t q0 = q[128 * h + l], q1 = q[128 * h + 32 + l];
      const uint8_t q2 = q[128 * h + 64 + l], q3 = q[128 * h + 96 + l];
      ql[64 * h + l] = static_cast<uint8_t>((q0 & 0xf) | ((q2 & 0xf) << 4));
      ql[64 * h + 32 + l] = static_cast<uint8_t>((q1 & 0xf) | ((q3 & 0xf) << 4));
      qh[32 * h + l] =
          static_cast<uint8_t>((q0 >> 4) | ((q1 >> 4) << 2) | ((q2 >> 4) << 4) | ((q3 >> 4) << 6));
    }
  }
}

// Checks the type and the row length; returns the block geometry.
Status CheckRow(TensorType type, int64_t n, int64_t* block_elems, int64_t* block_bytes) {
  XNAI_RETURN_IF_ERROR(CheckSupportedType(type));
  const TensorTypeTraits traits = GetTypeTraits(type);
  if (n < 0 || n % traits.block_elems != 0) {
    return Status::InvalidArgument("row length " + std::to_string(n) +
                                   " is not a multiple of the " + std::string(traits.name) +
                                   " block size " + std::to_string(traits.block_elems));
  }
  *block_elems = traits.block_elems;
  *block_bytes = traits.block_bytes;
  return Status::Ok();
}

template <typename Fn>
void ForEachBlock(int64_t n, int64_t block_elems, int64_t block_bytes, Fn fn) {
  for (int64_t blk = 0; blk < n / block_elems; ++blk) fn(blk * block_elems, blk * block_bytes);
}

}  // namespace

Status DequantizeRow(TensorType type, const void* src, float* dst, int64_t n) {
  int64_t be = 0, bb = 0;
  XNAI_RETURN_IF_ERROR(CheckRow(type, n, &be, &bb));
  const uint8_t* in = static_cast<const uint8_t*>(src);
  switch (type) {
    case TensorType::kF32:
      std::memcpy(dst, in, static_cast<size_t>(n) * 4);
      break;
    case TensorType::kF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = LoadF16(in + 2 * i);
      break;
    case TensorType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t v;
        std::memcpy(&v, in + 2 * i, 2);
        dst[i] = Bf16ToF32(v);
      }
      break;
    case TensorType::kQ8_0:
      ForEachBlock(n, be, bb, [&](int64_t e, int64_t o) { DequantQ8_0(in + o, dst + e); });
      break;
    case TensorType::kQ4_0:
      ForEachBlock(n, be, bb, [&](int64_t e, int64_t o) { DequantQ4_0(in + o, dst + e); });
      break;
    case TensorType::kQ4_K:
      ForEachBlock(n, be, bb, [&](int64_t e, int64_t o) { DequantQ4_K(in + o, dst + e); });
      break;
    case TensorType::kQ5_K:
      ForEachBlock(n, be, bb, [&](int64_t e, int64_t o) { DequantQ5_K(in + o, dst + e); });
      break;
    case TensorType::kQ6_K:
      ForEachBlock(n, be, bb, [&](int64_t e, int64_t o) { DequantQ6_K(in + o, dst + e); });
      break;
    default:
      return Status::Internal("DequantizeRow: supported type without a decoder");
  }
  return Status::Ok();
}

Status QuantizeRow(TensorType type, const float* src, void* dst, int64_t n) {
  int64_t be = 0, bb = 0;
  XNAI_RETURN_IF_ERROR(CheckRow(type, n, &be, &bb));
  uint8_t* out = static_cast<uint8_t*>(dst);
  switch (type) {
    case TensorType::kF32:
      std::memcpy(out, src, static_cast<size_t>(n) * 4);
      break;
    case TensorType::kF16:
      for (int64_t i = 0; i < n; ++i) StoreF16(out + 2 * i, src[i]);
      break;
    case TensorType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t v = F32ToBf16(src[i]);
        std::memcpy(out + 2 * i, &v, 2);
      }
      break;
    case TensorType::kQ8_0:
      ForEachBlock(n, be, bb, [&](int64_t e, int64_t o) { QuantQ8_0(src + e, out + o); });
      break;
    case TensorType::kQ4_0:
      ForEachBlock(n, be, bb, [&](int64_t e, int64_t o) { QuantQ4_0(src + e, out + o); });
      break;
    case TensorType::kQ4_K:
      ForEachBlock(n, be, bb, [&](int64_t e, int64_t o) { QuantQ4_K(src + e, out + o); });
      break;
    case TensorType::kQ5_K:
      ForEachBlock(n, be, bb, [&](int64_t e, int64_t o) { QuantQ5_K(src + e, out + o); });
      break;
    case TensorType::kQ6_K:
      ForEachBlock(n, be, bb, [&](int64_t e, int64_t o) { QuantQ6_K(src + e, out + o); });
      break;
    default:
      return Status::Internal("QuantizeRow: supported type without an encoder");
  }
  return Status::Ok();
}

Result<float> DotRow(TensorType type, const void* weights, const float* x, int64_t n) {
  int64_t be = 0, bb = 0;
  if (Status s = CheckRow(type, n, &be, &bb); !s.ok()) return Err(s);
  const uint8_t* w = static_cast<const uint8_t*>(weights);
  // Blocks accumulate in float, as kernels do; the row total in double so the
  // reference does not lose precision on long rows.
  double total = 0;
  switch (type) {
    case TensorType::kF32:
      for (int64_t i = 0; i < n; ++i) {
        float v;
        std::memcpy(&v, w + 4 * i, 4);
        total += static_cast<double>(v) * x[i];
      }
      break;
    case TensorType::kF16:
      for (int64_t i = 0; i < n; ++i) total += static_cast<double>(LoadF16(w + 2 * i)) * x[i];
      break;
    case TensorType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t v;
        std::memcpy(&v, w + 2 * i, 2);
        total += static_cast<double>(Bf16ToF32(v)) * x[i];
      }
      break;
    case TensorType::kQ8_0:
      ForEachBlock(n, be, bb, [&](int64_t e, int64_t o) { total += DotQ8_0(w + o, x + e); });
      break;
    case TensorType::kQ4_0:
      ForEachBlock(n, be, bb, [&](int64_t e, int64_t o) { total += DotQ4_0(w + o, x + e); });
      break;
    case TensorType::kQ4_K:
      ForEachBlock(n, be, bb, [&](int64_t e, int64_t o) { total += DotK<false>(w + o, x + e); });
      break;
    case TensorType::kQ5_K:
      ForEachBlock(n, be, bb, [&](int64_t e, int64_t o) { total += DotK<true>(w + o, x + e); });
      break;
    case TensorType::kQ6_K:
      ForEachBlock(n, be, bb, [&](int64_t e, int64_t o) { total += DotQ6_K(w + o, x + e); });
      break;
    default:
      return Err(Status::Internal("DotRow: supported type without a kernel"));
  }
  return static_cast<float>(total);
}

}  // namespace xnai::engine
