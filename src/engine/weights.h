// Weight and hyperparameter lookup shared by the model files (decoders and
// encoders): every read checked against the file, errors naming the key or
// tensor. Weights stay in the mapping; only 1-D tensors are converted.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/ops.h"
#include "gguf/gguf_reader.h"

namespace xnai::engine {

// A positive integer hyperparameter no larger than `limit` (Corruption
// otherwise). When the key is absent: `fallback` if given, else NotFound.
Result<int64_t> ReadDim(const gguf::GgufFile& file, const std::string& key, int64_t limit,
                        std::optional<int64_t> fallback = std::nullopt);

// The row count (dims[1]) of the 2-D tensor `name`, a size the file declares
// only through that tensor (vocabulary, context). NotFound when absent;
// Corruption ("has shape [..], expected [cols, what]") when not 2-D or
// outside [1, limit].
Result<int64_t> ReadRowCount(const gguf::GgufFile& file, const std::string& name, int64_t cols,
                             int64_t limit, const std::string& what);

// The tensor `name`, checked to have exactly `dims` (ggml order) and a type
// the engine supports.
Result<const gguf::TensorInfo*> FindChecked(const gguf::GgufFile& file, const std::string& name,
                                            std::initializer_list<int64_t> dims);

// A 2-D weight of `rows` rows of `cols` elements, used in place.
Result<ops::MatrixView> LoadMatrix(const gguf::GgufFile& file, const std::string& name,
                                   int64_t cols, int64_t rows);

// A 1-D tensor of n elements, converted to float.
Result<std::vector<float>> LoadVector(const gguf::GgufFile& file, const std::string& name,
                                      int64_t n);

}  // namespace xnai::engine
