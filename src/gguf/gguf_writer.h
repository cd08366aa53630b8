// GGUF writer: builds a GGUF v3 file (little-endian) from metadata and tensors,
// in memory or atomically to a path. Used by tests and tools to make small
// models; everything it writes is read back by gguf_reader.
//
// Thread safety: none; use one writer from one thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "base/status.h"
#include "gguf/ggml_type.h"
#include "gguf/gguf_reader.h"

namespace xnai::gguf {

// An owning metadata value, held in its encoded form (without the leading
// type id). Build one with the static makers.
class WriterValue {
 public:
  static WriterValue Uint8(uint8_t v);
  static WriterValue Int8(int8_t v);
  static WriterValue Uint16(uint16_t v);
  static WriterValue Int16(int16_t v);
  static WriterValue Uint32(uint32_t v);
  static WriterValue Int32(int32_t v);
  static WriterValue Uint64(uint64_t v);
  static WriterValue Int64(int64_t v);
  static WriterValue Float32(float v);
  static WriterValue Float64(double v);
  static WriterValue Bool(bool v);
  static WriterValue String(std::string_view v);

  // Arrays of fixed-size scalars; T is one of uint8_t, int8_t, uint16_t,
  // int16_t, uint32_t, int32_t, uint64_t, int64_t, float, double.
  template <typename T>
  static WriterValue ArrayOf(std::span<const T> values);
  static WriterValue BoolArray(const std::vector<bool>& values);
  static WriterValue StringArray(std::span<const std::string> values);
  static WriterValue StringArray(std::span<const std::string_view> values);
  // Any array, including arrays of arrays: every element must have type
  // `element_type`, else InvalidArgument.
  static Result<WriterValue> Array(ValueType element_type, std::span<const WriterValue> elements);

  ValueType type() const { return type_; }
  const std::string& encoded() const { return encoded_; }

 private:
  WriterValue(ValueType type, std::string encoded) : type_(type), encoded_(std::move(encoded)) {}
  ValueType type_;
  std::string encoded_;
};

class GgufWriter {
 public:
  GgufWriter() = default;

  // Adds a key. InvalidArgument for an empty key, or a "general.alignment"
  // that is not a uint32 power of two (it sets the file's alignment);
  // AlreadyExists for a key added before. Keys are written in call order.
  Status Add(std::string_view key, WriterValue value);

  // Adds a tensor; `dims[0]` is the row length (ggml order), 1 to 4 dims.
  // `data` is copied and must be exactly the tensor's size for its type and
  // shape. InvalidArgument for a bad shape, size or empty name; AlreadyExists
  // for a repeated name.
  Status AddTensor(std::string_view name, GgmlType type, std::span<const int64_t> dims,
                   std::string_view data);

  // The complete file: header, metadata, tensor infos, padding, data (each
  // tensor's offset a multiple of the alignment, the file padded to it too).
  std::string Build() const;
  // Build() written with WriteFileAtomic.
  Status WriteToFile(const std::filesystem::path& path) const;

 private:
  struct Kv {
    std::string key;
    WriterValue value;
  };
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> dims;
    std::string data;
  };
  std::vector<Kv> kvs_;
  std::unordered_set<std::string> keys_;
  std::vector<Tensor> tensors_;
  std::unordered_set<std::string> tensor_names_;
  uint64_t alignment_ = kDefaultAlignment;
};

}  // namespace xnai::gguf
