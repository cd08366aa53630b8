// GGUF writer: builds a GGUF v3 file (little-endian) from metadata and tensors,
// in memory or atomically to a path. Used by tests and tools to make models;
// everything it writes is read back by gguf_reader. Tensors added with
// AddTensorRows are produced only while the file is written, so WriteToFile
// can write a file far larger than memory (it holds one batch of rows).
//
// Thread safety: none; use one writer from one thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
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

  // Writes rows [row_begin, row_end) of a tensor, in the tensor's type, to
  // `out`: exactly (row_end - row_begin) * its row bytes. A row is dims[0]
  // elements; a tensor has dims[1] * dims[2] * dims[3] rows.
  using RowSource = std::function<void(int64_t row_begin, int64_t row_end, char* out)>;

  // Like AddTensor, but the data comes from `source` when the file is built
  // or written: called in row order, over consecutive batches of about
  // kRowBatchBytes (at least one row), and only then. The source must stay
  // valid until then and give the same bytes for the same rows every time.
  // Errors as AddTensor (InvalidArgument for an empty source).
  Status AddTensorRows(std::string_view name, GgmlType type, std::span<const int64_t> dims,
                       RowSource source);
  static constexpr int64_t kRowBatchBytes = 8 << 20;

  // Bytes of the complete file.
  uint64_t FileSize() const;

  // The complete file: header, metadata, tensor infos, padding, data (each
  // tensor's offset a multiple of the alignment, the file padded to it too).
  std::string Build() const;
  // The same bytes written atomically (a temporary file in the same
  // directory, fsync, rename; on failure the temporary file is removed and an
  // existing file at `path` is untouched), streaming tensor data: memory use
  // is the metadata plus one batch of rows. Errors: those of the OS calls,
  // naming the path (StatusFromErrno codes).
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
    std::string data;  // AddTensor
    RowSource source;  // AddTensorRows (data is empty)
    int64_t rows = 0;
    int64_t row_bytes = 0;
    uint64_t n_bytes = 0;
  };
  // Checks a new tensor's name and shape; fills everything but its data.
  Result<Tensor> NewTensor(std::string_view name, GgmlType type,
                           std::span<const int64_t> dims) const;
  // Header, metadata and tensor infos, padded to the alignment.
  std::string BuildHeader() const;
  // Calls `sink` with a tensor's data, in pieces (rows batches for a source).
  Status EmitData(const Tensor& tensor, const std::function<Status(std::string_view)>& sink) const;
  uint64_t AlignUp(uint64_t n) const { return (n + alignment_ - 1) / alignment_ * alignment_; }

  std::vector<Kv> kvs_;
  std::unordered_set<std::string> keys_;
  std::vector<Tensor> tensors_;
  std::unordered_set<std::string> tensor_names_;
  uint64_t alignment_ = kDefaultAlignment;
};

}  // namespace xnai::gguf
