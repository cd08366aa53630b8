// Micro-benchmarks of the matrix-product kernels (engine/kernels.h): for every
// weight type kernels::GetKernels has and every CPU path this machine
// supports (a path that only falls back to a lower one is skipped),
//   gemv/TYPE/PATH/Rx1       one activation row times a 1024 x 1024 weight
//                            matrix (cache resident): bytes/s of weights
//   gemv_dram/TYPE/PATH/Rx1  the same, cycling through 128 MiB of copies of
//                            the matrix so that the weights stream from DRAM
//                            as in generation: bytes/s of weights
//   gemm/TYPE/PATH/RxC       64 activation rows times the 1024 x 1024 matrix
//                            (prompt processing): GMAC/s
//   prepare_act/TYPE/PATH    64 rows of 1024 floats prepared: bytes/s of input
// Single-threaded. Tiles are kMaxTileRows x kMaxTileCols (GEMV: kMaxTileRows
// x 1); --all_tiles adds every other tile shape, to choose MatMul's. Other
// flags are Google Benchmark's (e.g. --benchmark_filter=gemm/Q8_0).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "engine/cpu.h"
#include "engine/kernels.h"
#include "engine/quants.h"

namespace xnai::engine {
namespace {

using kernels::TypeKernels;

constexpr int64_t kN = 1024;                            // row length
constexpr int64_t kRows = 1024;                         // weight rows
constexpr int64_t kGemmCols = 64;                       // activation rows of the GEMM
constexpr int64_t kDramPoolBytes = int64_t{128} << 20;  // 4x the L3 of the target machines

std::vector<float> RandomFloats(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

// A kRows x kN weight matrix of `type`, rows contiguous. Made once per type:
// Google Benchmark runs a benchmark function several times, and the K-type
// quantizers are slow.
const std::vector<uint8_t>& MakeWeights(TensorType type) {
  static std::map<TensorType, std::vector<uint8_t>> cache;
  std::vector<uint8_t>& w = cache[type];
  if (!w.empty()) return w;
  const int64_t row_bytes = RowBytes(type, kN).value();
  w.resize(static_cast<size_t>(row_bytes * kRows));
  const std::vector<float> x = RandomFloats(kN * kRows, 1);
  for (int64_t r = 0; r < kRows; ++r) {
    if (!QuantizeRow(type, x.data() + r * kN, w.data() + r * row_bytes, kN).ok()) std::abort();
  }
  return w;
}

// `rows` prepared activation rows, contiguous.
std::vector<uint8_t> MakeActs(const TypeKernels& k, int64_t rows) {
  const int64_t act_bytes = kernels::ActRowBytes(k.act_format, kN);
  std::vector<uint8_t> a(static_cast<size_t>(act_bytes * rows));
  const std::vector<float> x = RandomFloats(kN * rows, 2);
  for (int64_t c = 0; c < rows; ++c) k.prepare_act(x.data() + c * kN, a.data() + c * act_bytes, kN);
  return a;
}

void BmGemv(benchmark::State& state, TensorType type, const TypeKernels* k, int tile_rows,
            bool dram) {
  const int64_t row_bytes = RowBytes(type, kN).value();
  const int64_t matrix_bytes = row_bytes * kRows;
  const std::vector<uint8_t>& one = MakeWeights(type);
  const int64_t copies = dram ? std::max<int64_t>(1, kDramPoolBytes / matrix_bytes) : 1;
  std::vector<uint8_t> pool(static_cast<size_t>(matrix_bytes * copies));
  for (int64_t i = 0; i < copies; ++i)
    std::memcpy(pool.data() + i * matrix_bytes, one.data(), one.size());
  const std::vector<uint8_t> act = MakeActs(*k, 1);
  const int64_t act_bytes = kernels::ActRowBytes(k->act_format, kN);
  std::vector<float> out(kRows);
  int64_t which = 0;
  for (auto _ : state) {
    const uint8_t* w = pool.data() + which * matrix_bytes;
    which = which + 1 == copies ? 0 : which + 1;
    for (int64_t r = 0; r < kRows; r += tile_rows) {
      k->dot_tile(kN, w + r * row_bytes, row_bytes, tile_rows, act.data(), act_bytes, 1,
                  out.data() + r, 1);
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * matrix_bytes);
}

void BmGemm(benchmark::State& state, TensorType type, const TypeKernels* k, int tile_rows,
            int tile_cols) {
  const int64_t row_bytes = RowBytes(type, kN).value();
  const std::vector<uint8_t>& w = MakeWeights(type);
  const std::vector<uint8_t> act = MakeActs(*k, kGemmCols);
  const int64_t act_bytes = kernels::ActRowBytes(k->act_format, kN);
  std::vector<float> out(kRows * kGemmCols);
  // Weight tile outer, so its rows stay in L1 while the activations (80 KiB
  // for kQ8) stream from L2.
  for (auto _ : state) {
    for (int64_t r = 0; r + tile_rows <= kRows; r += tile_rows) {
      for (int64_t c = 0; c + tile_cols <= kGemmCols; c += tile_cols) {
        k->dot_tile(kN, w.data() + r * row_bytes, row_bytes, tile_rows, act.data() + c * act_bytes,
                    act_bytes, tile_cols, out.data() + c * kRows + r, kRows);
      }
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  // Tiles that do not divide the matrix leave a remainder out; count only
  // the products computed.
  const double macs = static_cast<double>(kRows / tile_rows * tile_rows) *
                      static_cast<double>(kGemmCols / tile_cols * tile_cols) * kN;
  state.counters["GMAC/s"] =
      benchmark::Counter(macs * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BmPrepare(benchmark::State& state, const TypeKernels* k) {
  const std::vector<float> x = RandomFloats(kN * kGemmCols, 3);
  const int64_t act_bytes = kernels::ActRowBytes(k->act_format, kN);
  std::vector<uint8_t> act(static_cast<size_t>(act_bytes * kGemmCols));
  for (auto _ : state) {
    for (int64_t c = 0; c < kGemmCols; ++c) {
      k->prepare_act(x.data() + c * kN, act.data() + c * act_bytes, kN);
    }
    benchmark::DoNotOptimize(act.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kN * kGemmCols *
                          static_cast<int64_t>(sizeof(float)));
}

// The kernels of `type` that are `path`'s own: null when the path only falls
// back to a lower one (or the type has no kernels).
const TypeKernels* OwnKernels(TensorType type, CpuPath path) {
  const TypeKernels* k = kernels::GetKernels(type, path);
  if (k == nullptr || path == CpuPath::kScalar) return k;
  const CpuPath lower = path == CpuPath::kAvx512 ? CpuPath::kAvx2 : CpuPath::kScalar;
  return k == kernels::GetKernels(type, lower) ? nullptr : k;
}

void RegisterAll(bool all_tiles) {
  const TensorType types[] = {TensorType::kF32,  TensorType::kF16,  TensorType::kBF16,
                              TensorType::kQ8_0, TensorType::kQ4_0, TensorType::kQ4_K,
                              TensorType::kQ5_K, TensorType::kQ6_K};
  for (TensorType type : types) {
    for (CpuPath path : {CpuPath::kScalar, CpuPath::kAvx2, CpuPath::kAvx512}) {
      if (!CpuSupports(path)) continue;
      const TypeKernels* k = OwnKernels(type, path);
      if (k == nullptr) continue;
      const std::string suffix =
          std::string(GetTypeTraits(type).name) + "/" + std::string(CpuPathName(path));
      for (int rows = 1; rows <= kernels::kMaxTileRows; ++rows) {
        if (!all_tiles && rows != kernels::kMaxTileRows) continue;
        const std::string tile = "/" + std::to_string(rows) + "x1";
        benchmark::RegisterBenchmark(("gemv/" + suffix + tile).c_str(), BmGemv, type, k, rows,
                                     false);
        benchmark::RegisterBenchmark(("gemv_dram/" + suffix + tile).c_str(), BmGemv, type, k, rows,
                                     true);
      }
      for (int rows = 1; rows <= kernels::kMaxTileRows; ++rows) {
        for (int cols = 1; cols <= kernels::kMaxTileCols; ++cols) {
          const bool max_tile = rows == kernels::kMaxTileRows && cols == kernels::kMaxTileCols;
          if (!all_tiles && !max_tile) continue;
          const std::string tile = "/" + std::to_string(rows) + "x" + std::to_string(cols);
          benchmark::RegisterBenchmark(("gemm/" + suffix + tile).c_str(), BmGemm, type, k, rows,
                                       cols);
        }
      }
      benchmark::RegisterBenchmark(("prepare_act/" + suffix).c_str(), BmPrepare, k);
    }
  }
}

// Attention-shaped F16 products (Model::AttendTile), every path with its own
// F16 kernel, tiles 4 x C for C = 1..4 queries:
//   attn_scores/F16/PATH/4xC  key rows of head_dim 128 (2 KiB apart, as 8 KV
//                             heads of 128) over 1024 positions: GMAC/s
//   attn_values/F16/PATH/4xC  128 transposed value rows (one per dimension)
//                             of 1024 positions each: GMAC/s
void RegisterAttentionBenchmarks() {
  constexpr int64_t kHeadDim = 128, kPositions = 1024;
  constexpr int64_t kKeyStride = 8 * kHeadDim * 2;      // bytes between key rows
  constexpr int64_t kValueStride = 2 * kPositions * 2;  // transposed rows, spare capacity
  const auto run = [](benchmark::State& state, const TypeKernels* k, int cols, bool values) {
    const int64_t n = values ? kPositions : kHeadDim;
    const int64_t rows = values ? kHeadDim : kPositions;
    const int64_t stride = values ? kValueStride : kKeyStride;
    std::vector<uint8_t> w(static_cast<size_t>(stride * rows));
    std::mt19937 rng(4);
    for (size_t i = 0; i + 1 < w.size(); i += 2) {
      const uint16_t h = static_cast<uint16_t>(0x3000 + rng() % 0x0c00) | (rng() % 2 ? 0x8000 : 0);
      std::memcpy(&w[i], &h, 2);
    }
    const std::vector<float> x = RandomFloats(n * cols, 5);
    std::vector<float> out(static_cast<size_t>(rows * cols));
    for (auto _ : state) {
      for (int64_t r = 0; r < rows; r += kernels::kMaxTileRows) {
        k->dot_tile(n, w.data() + r * stride, stride, kernels::kMaxTileRows,
                    reinterpret_cast<const uint8_t*>(x.data()), n * 4, cols, out.data() + r, rows);
      }
      benchmark::DoNotOptimize(out.data());
      benchmark::ClobberMemory();
    }
    state.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(n * rows * cols) * 1e-9,
                                                  benchmark::Counter::kIsIterationInvariantRate);
  };
  for (CpuPath path : {CpuPath::kAvx2, CpuPath::kAvx512}) {
    if (!CpuSupports(path)) continue;
    const TypeKernels* k = OwnKernels(TensorType::kF16, path);
    if (k == nullptr) continue;
    for (bool values : {false, true}) {
      for (int cols = 1; cols <= kernels::kMaxTileCols; ++cols) {
        const std::string name = std::string(values ? "attn_values" : "attn_scores") + "/F16/" +
                                 std::string(CpuPathName(path)) + "/4x" + std::to_string(cols);
        benchmark::RegisterBenchmark(name.c_str(), run, k, cols, values);
      }
    }
  }
}
}  // namespace
}  // namespace xnai::engine

int main(int argc, char** argv) {
  // Our one flag, removed before Google Benchmark parses the rest.
  bool all_tiles = false;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--all_tiles") == 0) {
      all_tiles = true;
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  xnai::engine::RegisterAll(all_tiles);
  xnai::engine::RegisterAttentionBenchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
