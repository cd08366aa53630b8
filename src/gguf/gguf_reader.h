// GGUF reader: maps a GGUF file (v2 or v3, little-endian) read-only and exposes
// its metadata and tensors in place, without copying weights.
//
// Every count, length, offset, size and alignment is checked against the file
// before it is used, so a truncated, corrupt or hostile file yields a one-line
// Status naming the problem (and the key or tensor), never a crash or a huge
// allocation. Status codes: Unsupported for a GGUF version, byte order or
// tensor type id xnai does not know; Corruption for everything structurally
// wrong; InvalidArgument for a file that is not GGUF at all (bad magic); the
// errno-derived codes (NotFound, PermissionDenied, IOError) for OS failures.
//
// Thread safety: a GgufFile is immutable after it is opened; all const
// methods may be called concurrently. Everything it hands out (string_views,
// tensor data pointers, MetadataValue references) points into the GgufFile or
// its mapping and is valid only while the GgufFile lives.
//
// Known limit of mmap: if another process truncates the file while it is
// mapped, touching the lost pages raises SIGBUS. Opening validates against the
// size the file had at open time.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/status.h"
#include "gguf/ggml_type.h"

namespace xnai::gguf {

inline constexpr uint64_t kDefaultAlignment = 32;
inline constexpr int kMaxDims = 4;
// Arrays may nest; deeper nesting than this is rejected (no real file nests
// at all, and unbounded recursion on hostile input would exhaust the stack).
inline constexpr int kMaxArrayDepth = 8;
// Limits far above any real file (which has tens of keys, a few thousand
// tensors and no nested arrays) that bound the memory a hostile file can make
// the reader allocate to a small multiple of these counts.
inline constexpr uint64_t kMaxMetadataCount = 1 << 16;
inline constexpr uint64_t kMaxTensorCount = 1 << 20;
inline constexpr uint64_t kMaxNestedArrayElements = 1 << 20;

// Metadata value types, with the ids the format stores.
enum class ValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// "uint32", "string", "array", ...; "type#<id>" is never returned because
// values of unknown type are rejected when the file is opened.
std::string_view ValueTypeName(ValueType type);
// True for the eight integer types.
bool IsIntegerType(ValueType type);
// Encoded size of a fixed-size scalar type; 0 for string and array.
int ScalarSize(ValueType type);

// One metadata value, viewing the mapped file. Scalars are decoded when the
// file is opened; arrays of fixed-size scalars stay in the file and are
// decoded on access; arrays of strings and of arrays are indexed at open.
class MetadataValue {
 public:
  ValueType type() const { return type_; }

  // Scalar accessors. Each returns InvalidArgument naming both types when the
  // value has a different type; the integer accessors accept every integer
  // type whose value fits (AsUint rejects negatives, AsInt rejects uint64
  // values above INT64_MAX); AsFloat accepts float32 and float64.
  Result<uint64_t> AsUint() const;
  Result<int64_t> AsInt() const;
  Result<double> AsFloat() const;
  Result<bool> AsBool() const;
  Result<std::string_view> AsString() const;

  // Arrays. element_type()/array_size() are meaningful only for kArray.
  ValueType element_type() const { return element_type_; }
  uint64_t array_size() const { return count_; }
  // Integer array (any integer element type) as int64; InvalidArgument if the
  // value is not such an array or a uint64 element exceeds INT64_MAX.
  Result<std::vector<int64_t>> AsIntArray() const;
  // float32 or float64 array, as float.
  Result<std::vector<float>> AsFloatArray() const;
  // Array of strings, as views into the file (no copy).
  Result<std::span<const std::string_view>> AsStringArray() const;
  // Array of arrays.
  Result<std::span<const MetadataValue>> AsNestedArray() const;
  // Array of bool.
  Result<std::vector<bool>> AsBoolArray() const;
  // The raw little-endian bytes of an array of fixed-size scalars (count *
  // ScalarSize(element_type)); empty for other values. Not aligned.
  std::string_view raw_array_bytes() const { return raw_; }

  // A short human-readable rendering for `model info` and logs: scalars in
  // full, strings quoted and cut at max_chars, arrays as
  // "[string x 4096: "a", "b", ...]" with at most max_elems elements shown.
  std::string DebugString(size_t max_elems = 8, size_t max_chars = 80) const;

 private:
  friend class Parser;
  ValueType type_ = ValueType::kUint8;
  uint64_t uint_ = 0;  // unsigned integers and bool
  int64_t int_ = 0;    // signed integers
  double float_ = 0;   // float32 / float64
  std::string_view string_;
  ValueType element_type_ = ValueType::kUint8;
  uint64_t count_ = 0;
  std::string_view raw_;
  std::vector<std::string_view> strings_;
  std::vector<MetadataValue> arrays_;
};

// One tensor as described by the file. dims[0] is the innermost (row)
// dimension, as in ggml; unused dims are 1.
struct TensorInfo {
  std::string_view name;
  GgmlType type = GgmlType::kF32;
  int n_dims = 0;
  std::array<int64_t, kMaxDims> dims = {1, 1, 1, 1};
  int64_t n_elements = 0;
  uint64_t n_bytes = 0;
  uint64_t offset = 0;            // relative to the data section, as stored
  const uint8_t* data = nullptr;  // into the mapping; n_bytes long

  // "[256, 4096]" style shape.
  std::string ShapeString() const;
};

class GgufFile {
 public:
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  // Absolute offset of the data section (a multiple of alignment()).
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return bytes_.size(); }
  // The whole file (mapped, or the caller's buffer for OpenGgufFromMemory).
  std::string_view bytes() const { return bytes_; }

  // All key/value pairs in file order.
  const std::vector<std::pair<std::string_view, MetadataValue>>& metadata() const {
    return metadata_;
  }
  // nullptr when absent.
  const MetadataValue* FindMetadata(std::string_view key) const;
  bool HasMetadata(std::string_view key) const { return FindMetadata(key) != nullptr; }

  // Typed lookups. NotFound ("metadata key 'k' not found") when absent;
  // InvalidArgument ("metadata key 'k' has type uint32, expected string")
  // when the type does not fit; see MetadataValue for the conversions.
  Result<std::string_view> GetString(std::string_view key) const;
  Result<uint64_t> GetUint(std::string_view key) const;
  Result<int64_t> GetInt(std::string_view key) const;
  Result<double> GetFloat(std::string_view key) const;
  Result<bool> GetBool(std::string_view key) const;
  Result<std::span<const std::string_view>> GetStringArray(std::string_view key) const;
  Result<std::vector<int64_t>> GetIntArray(std::string_view key) const;
  Result<std::vector<float>> GetFloatArray(std::string_view key) const;

  // All tensors in file order.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // nullptr when absent.
  const TensorInfo* FindTensor(std::string_view name) const;
  // NotFound ("tensor 'x' not found") when absent.
  Result<const TensorInfo*> GetTensor(std::string_view name) const;

 private:
  friend class Parser;
  friend Result<std::unique_ptr<GgufFile>> OpenGguf(const std::filesystem::path& path);
  GgufFile() = default;

  // The mapping this object owns (nullptr for OpenGgufFromMemory).
  void* map_addr_ = nullptr;
  size_t map_size_ = 0;

  std::string_view bytes_;
  uint32_t version_ = 0;
  uint64_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string_view, MetadataValue>> metadata_;
  std::unordered_map<std::string_view, size_t> metadata_index_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

// Maps `path` read-only (MAP_PRIVATE) and parses it. Errors are prefixed with
// the path. The returned file owns the mapping and unmaps it on destruction.
Result<std::unique_ptr<GgufFile>> OpenGguf(const std::filesystem::path& path);

// Parses a GGUF image held by the caller. Non-owning: `bytes` must outlive the
// returned file. For tests and fuzzing.
Result<std::unique_ptr<GgufFile>> OpenGgufFromMemory(std::string_view bytes);

}  // namespace xnai::gguf
