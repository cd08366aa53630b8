// gguf_fuzz_replay: a deterministic stand-in for the fuzzer that runs in every
// build. It feeds the fuzz entry point a few thousand mutations of the seed
// files (every truncation, bit flips, random overwrites of bytes and of the
// 8-byte count/length/offset fields) and exits 0 if nothing crashed; a crash
// (or a sanitizer report, in sanitizer builds) fails the test.
//
// `gguf_fuzz_replay --write-seeds DIR` writes the seeds as DIR/seed-N.gguf to
// start a libFuzzer corpus.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>

#include "gguf/gguf_fuzz_seeds.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

int64_t g_runs = 0;

void Run(const std::string& bytes) {
  // A fresh heap copy of exactly the input size, so sanitizers see overreads.
  std::string copy(bytes);
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(copy.data()), copy.size());
  ++g_runs;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> seeds = xnai::gguf::MakeFuzzSeeds();
  if (argc == 3 && std::strcmp(argv[1], "--write-seeds") == 0) {
    for (size_t i = 0; i < seeds.size(); ++i) {
      std::ofstream out(std::string(argv[2]) + "/seed-" + std::to_string(i) + ".gguf",
                        std::ios::binary);
      out << seeds[i];
      if (!out) return 1;
    }
    return 0;
  }

  std::mt19937_64 rng(0x9e3779b97f4a7c15ull);
  const uint64_t kInteresting[] = {0,          1,
                                   2,          3,
                                   7,          31,
                                   32,         33,
                                   0x7f,       0xff,
                                   0xffff,     0x7fffffff,
                                   0xffffffff, 1ull << 32,
                                   1ull << 60, 0x7fffffffffffffffull,
                                   UINT64_MAX, UINT64_MAX - 7};
  for (const std::string& seed : seeds) {
    Run(seed);
    // Every prefix.
    for (size_t n = 0; n < seed.size(); ++n) Run(seed.substr(0, n));
    // Single bit flips over the header/metadata/tensor-info region.
    for (int i = 0; i < 600; ++i) {
      std::string m = seed;
      const size_t pos = rng() % m.size();
      m[pos] = static_cast<char>(m[pos] ^ (1 << (rng() % 8)));
      Run(m);
    }
    // Random byte overwrites (1 to 4 bytes).
    for (int i = 0; i < 400; ++i) {
      std::string m = seed;
      const int k = 1 + static_cast<int>(rng() % 4);
      for (int j = 0; j < k; ++j) m[rng() % m.size()] = static_cast<char>(rng());
      Run(m);
    }
    // Interesting 4- and 8-byte values at every 4-byte position of the
    // first 512 bytes, where counts, lengths, types, dims and offsets live.
    const size_t limit = std::min<size_t>(seed.size(), 512);
    for (size_t pos = 0; pos + 8 <= limit; pos += 4) {
      const uint64_t v = kInteresting[rng() % std::size(kInteresting)];
      std::string m8 = seed;
      std::memcpy(&m8[pos], &v, 8);
      Run(m8);
      std::string m4 = seed;
      const uint32_t v4 = static_cast<uint32_t>(v);
      std::memcpy(&m4[pos], &v4, 4);
      Run(m4);
    }
    // Truncate and extend with garbage.
    for (int i = 0; i < 50; ++i) {
      std::string m = seed.substr(0, rng() % seed.size());
      const size_t extra = rng() % 64;
      for (size_t j = 0; j < extra; ++j) m.push_back(static_cast<char>(rng()));
      Run(m);
    }
  }
  std::printf("gguf_fuzz_replay: %lld inputs, no crash\n", static_cast<long long>(g_runs));
  return 0;
}
