// Small, valid GGUF files made with GgufWriter, used as the seed corpus of the
// GGUF fuzzer and as the starting points of the gguf_fuzz_replay test.
#pragma once

#include <string>
#include <vector>

namespace xnai::gguf {

// Deterministic: the same files on every call. Together they use every
// metadata type (including nested arrays and string arrays), several tensor
// types, a non-default alignment and a file without tensors.
std::vector<std::string> MakeFuzzSeeds();

}  // namespace xnai::gguf
