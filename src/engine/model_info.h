// ModelInfo: what a GGUF model is, read from its metadata and tensor table
// without touching the weights (for `xnai model info`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "gguf/gguf_reader.h"

namespace xnai::engine {

struct TensorTypeShare {
  std::string type;       // "Q8_0", "F32", ...
  int64_t tensors = 0;    // how many tensors have this type
  int64_t elements = 0;   // their parameters
  uint64_t bytes = 0;     // their bytes in the file
  bool supported = true;  // the engine can compute with it
};

struct ModelInfo {
  std::string name;                // general.name, "" when absent
  std::string architecture;        // general.architecture, "" when absent (vocab-only files)
  int64_t parameters = 0;          // sum of tensor elements
  std::vector<TensorTypeShare> types;  // largest share (bytes) first
  int64_t context_length = 0;      // <arch>.context_length, 0 when absent
  std::string vocabulary;          // tokenizer.ggml.model ("gpt2", "llama", "bert"), "" when absent
  int64_t vocabulary_size = 0;     // entries of tokenizer.ggml.tokens
  bool has_chat_template = false;  // tokenizer.chat_template present
  uint32_t gguf_version = 0;
  uint64_t file_bytes = 0;         // the file's size (all of it is mapped, read-only)
  uint64_t tensor_bytes = 0;       // bytes of tensor data
};

// Summarizes an opened file. Never fails: missing keys leave fields empty.
ModelInfo DescribeModel(const gguf::GgufFile& file);

}  // namespace xnai::engine
