#include "gguf/gguf_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <type_traits>

#include "base/files.h"

namespace xnai::gguf {
namespace {

template <typename T>
void AppendLe(std::string* out, T value) {
  char buf[sizeof(T)];
  std::memcpy(buf, &value, sizeof(T));  // little-endian host (asserted in the reader)
  out->append(buf, sizeof(T));
}

void AppendString(std::string* out, std::string_view s) {
  AppendLe<uint64_t>(out, s.size());
  out->append(s);
}

template <typename T>
constexpr ValueType ValueTypeOf() {
  if constexpr (std::is_same_v<T, uint8_t>)
    return ValueType::kUint8;
  else if constexpr (std::is_same_v<T, int8_t>)
    return ValueType::kInt8;
  else if constexpr (std::is_same_v<T, uint16_t>)
    return ValueType::kUint16;
  else if constexpr (std::is_same_v<T, int16_t>)
    return ValueType::kInt16;
  else if constexpr (std::is_same_v<T, uint32_t>)
    return ValueType::kUint32;
  else if constexpr (std::is_same_v<T, int32_t>)
    return ValueType::kInt32;
  else if constexpr (std::is_same_v<T, uint64_t>)
    return ValueType::kUint64;
  else if constexpr (std::is_same_v<T, int64_t>)
    return ValueType::kInt64;
  else if constexpr (std::is_same_v<T, float>)
    return ValueType::kFloat32;
  else if constexpr (std::is_same_v<T, double>)
    return ValueType::kFloat64;
  else
    static_assert(sizeof(T) == 0, "not a GGUF scalar type");
}

std::string ArrayHeader(ValueType element_type, uint64_t count) {
  std::string out;
  AppendLe<uint32_t>(&out, static_cast<uint32_t>(element_type));
  AppendLe<uint64_t>(&out, count);
  return out;
}

}  // namespace

// --- WriterValue ---------------------------------------------------------------

#define XNAI_SCALAR_MAKER(Name, CType, Kind)                 \
  WriterValue WriterValue::Name(CType v) {                   \
    std::string encoded;                                     \
    AppendLe<CType>(&encoded, v);                            \
    return WriterValue(ValueType::Kind, std::move(encoded)); \
  }
XNAI_SCALAR_MAKER(Uint8, uint8_t, kUint8)
XNAI_SCALAR_MAKER(Int8, int8_t, kInt8)
XNAI_SCALAR_MAKER(Uint16, uint16_t, kUint16)
XNAI_SCALAR_MAKER(Int16, int16_t, kInt16)
XNAI_SCALAR_MAKER(Uint32, uint32_t, kUint32)
XNAI_SCALAR_MAKER(Int32, int32_t, kInt32)
XNAI_SCALAR_MAKER(Uint64, uint64_t, kUint64)
XNAI_SCALAR_MAKER(Int64, int64_t, kInt64)
XNAI_SCALAR_MAKER(Float32, float, kFloat32)
XNAI_SCALAR_MAKER(Float64, double, kFloat64)
#undef XNAI_SCALAR_MAKER

WriterValue WriterValue::Bool(bool v) {
  return WriterValue(ValueType::kBool, std::string(1, v ? '\1' : '\0'));
}

WriterValue WriterValue::String(std::string_view v) {
  std::string encoded;
  AppendString(&encoded, v);
  return WriterValue(ValueType::kString, std::move(encoded));
}

template <typename T>
WriterValue WriterValue::ArrayOf(std::span<const T> values) {
  constexpr ValueType kType = ValueTypeOf<T>();
  std::string encoded = ArrayHeader(kType, values.size());
  for (T v : values) AppendLe<T>(&encoded, v);
  return WriterValue(ValueType::kArray, std::move(encoded));
}

template WriterValue WriterValue::ArrayOf<uint8_t>(std::span<const uint8_t>);
template WriterValue WriterValue::ArrayOf<int8_t>(std::span<const int8_t>);
template WriterValue WriterValue::ArrayOf<uint16_t>(std::span<const uint16_t>);
template WriterValue WriterValue::ArrayOf<int16_t>(std::span<const int16_t>);
template WriterValue WriterValue::ArrayOf<uint32_t>(std::span<const uint32_t>);
template WriterValue WriterValue::ArrayOf<int32_t>(std::span<const int32_t>);
template WriterValue WriterValue::ArrayOf<uint64_t>(std::span<const uint64_t>);
template WriterValue WriterValue::ArrayOf<int64_t>(std::span<const int64_t>);
template WriterValue WriterValue::ArrayOf<float>(std::span<const float>);
template WriterValue WriterValue::ArrayOf<double>(std::span<const double>);

WriterValue WriterValue::BoolArray(const std::vector<bool>& values) {
  std::string encoded = ArrayHeader(ValueType::kBool, values.size());
  for (bool v : values) encoded.push_back(v ? '\1' : '\0');
  return WriterValue(ValueType::kArray, std::move(encoded));
}

WriterValue WriterValue::StringArray(std::span<const std::string> values) {
  std::string encoded = ArrayHeader(ValueType::kString, values.size());
  for (const std::string& v : values) AppendString(&encoded, v);
  return WriterValue(ValueType::kArray, std::move(encoded));
}

WriterValue WriterValue::StringArray(std::span<const std::string_view> values) {
  std::string encoded = ArrayHeader(ValueType::kString, values.size());
  for (std::string_view v : values) AppendString(&encoded, v);
  return WriterValue(ValueType::kArray, std::move(encoded));
}

Result<WriterValue> WriterValue::Array(ValueType element_type,
                                       std::span<const WriterValue> elements) {
  std::string encoded = ArrayHeader(element_type, elements.size());
  for (size_t i = 0; i < elements.size(); ++i) {
    if (elements[i].type() != element_type) {
      return Err(Status::InvalidArgument("array element " + std::to_string(i) + " has type " +
                                         std::string(ValueTypeName(elements[i].type())) +
                                         ", expected " + std::string(ValueTypeName(element_type))));
    }
    encoded += elements[i].encoded();
  }
  return WriterValue(ValueType::kArray, std::move(encoded));
}

// --- GgufWriter ----------------------------------------------------------------

Status GgufWriter::Add(std::string_view key, WriterValue value) {
  if (key.empty()) return Status::InvalidArgument("metadata key is empty");
  if (keys_.count(std::string(key)) != 0) {
    return Status::AlreadyExists("metadata key '" + std::string(key) + "' added twice");
  }
  if (key == "general.alignment") {
    uint32_t alignment = 0;
    if (value.type() == ValueType::kUint32) {
      std::memcpy(&alignment, value.encoded().data(), 4);
    }
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
      return Status::InvalidArgument("general.alignment must be a uint32 power of two");
    }
    alignment_ = alignment;
  }
  keys_.emplace(key);
  kvs_.push_back(Kv{std::string(key), std::move(value)});
  return Status::Ok();
}

Result<GgufWriter::Tensor> GgufWriter::NewTensor(std::string_view name, GgmlType type,
                                                 std::span<const int64_t> dims) const {
  const std::string label = "tensor '" + std::string(name) + "'";
  if (name.empty()) return Err(Status::InvalidArgument("tensor name is empty"));
  if (tensor_names_.count(std::string(name)) != 0) {
    return Err(Status::AlreadyExists(label + " added twice"));
  }
  if (dims.empty() || dims.size() > static_cast<size_t>(kMaxDims)) {
    return Err(Status::InvalidArgument(label + " must have 1 to 4 dimensions"));
  }
  int64_t rows = 1;
  for (size_t d = 0; d < dims.size(); ++d) {
    if (dims[d] < 0) return Err(Status::InvalidArgument(label + " has a negative dimension"));
    if (d > 0 && __builtin_mul_overflow(rows, dims[d], &rows)) {
      return Err(Status::InvalidArgument(label + " is too large"));
    }
  }
  Result<int64_t> row_bytes = GgmlRowBytes(type, dims[0]);
  if (!row_bytes) return Err(row_bytes.error().WithContext(label));
  int64_t n_bytes = 0;
  if (__builtin_mul_overflow(rows, *row_bytes, &n_bytes)) {
    return Err(Status::InvalidArgument(label + " is too large"));
  }
  Tensor tensor;
  tensor.name = std::string(name);
  tensor.type = type;
  tensor.dims.assign(dims.begin(), dims.end());
  tensor.rows = rows;
  tensor.row_bytes = *row_bytes;
  tensor.n_bytes = static_cast<uint64_t>(n_bytes);
  return tensor;
}

Status GgufWriter::AddTensor(std::string_view name, GgmlType type, std::span<const int64_t> dims,
                             std::string_view data) {
  Result<Tensor> tensor = NewTensor(name, type, dims);
  if (!tensor) return tensor.error();
  if (tensor->n_bytes != data.size()) {
    return Status::InvalidArgument("tensor '" + std::string(name) + "' needs " +
                                   std::to_string(tensor->n_bytes) + " bytes of " +
                                   std::string(GgmlTypeName(type)) + " data, got " +
                                   std::to_string(data.size()));
  }
  tensor->data = std::string(data);
  tensor_names_.emplace(name);
  tensors_.push_back(std::move(*tensor));
  return Status::Ok();
}

Status GgufWriter::AddTensorRows(std::string_view name, GgmlType type,
                                 std::span<const int64_t> dims, RowSource source) {
  if (!source) {
    return Status::InvalidArgument("tensor '" + std::string(name) + "' has no row source");
  }
  Result<Tensor> tensor = NewTensor(name, type, dims);
  if (!tensor) return tensor.error();
  tensor->source = std::move(source);
  tensor_names_.emplace(name);
  tensors_.push_back(std::move(*tensor));
  return Status::Ok();
}

std::string GgufWriter::BuildHeader() const {
  std::string out;
  out.append("GGUF");
  AppendLe<uint32_t>(&out, 3);
  AppendLe<uint64_t>(&out, tensors_.size());
  AppendLe<uint64_t>(&out, kvs_.size());
  for (const Kv& kv : kvs_) {
    AppendString(&out, kv.key);
    AppendLe<uint32_t>(&out, static_cast<uint32_t>(kv.value.type()));
    out += kv.value.encoded();
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    AppendString(&out, t.name);
    AppendLe<uint32_t>(&out, static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) AppendLe<uint64_t>(&out, static_cast<uint64_t>(d));
    AppendLe<uint32_t>(&out, static_cast<uint32_t>(t.type));
    AppendLe<uint64_t>(&out, offset);
    offset = AlignUp(offset + t.n_bytes);
  }
  out.resize(AlignUp(out.size()), '\0');
  return out;
}

uint64_t GgufWriter::FileSize() const {
  uint64_t size = BuildHeader().size();
  for (const Tensor& t : tensors_) size = AlignUp(size + t.n_bytes);
  return size;
}

Status GgufWriter::EmitData(const Tensor& tensor,
                            const std::function<Status(std::string_view)>& sink) const {
  if (!tensor.source) return sink(tensor.data);
  const int64_t batch_rows =
      std::max<int64_t>(1, kRowBatchBytes / std::max<int64_t>(1, tensor.row_bytes));
  std::string buffer;
  for (int64_t row = 0; row < tensor.rows; row += batch_rows) {
    const int64_t row_end = std::min(tensor.rows, row + batch_rows);
    buffer.resize(static_cast<size_t>((row_end - row) * tensor.row_bytes));
    tensor.source(row, row_end, buffer.data());
    XNAI_RETURN_IF_ERROR(sink(buffer));
  }
  return Status::Ok();
}

std::string GgufWriter::Build() const {
  std::string out = BuildHeader();
  for (const Tensor& t : tensors_) {
    // Appending to a string cannot fail.
    (void)EmitData(t, [&out](std::string_view piece) {
      out.append(piece);
      return Status::Ok();
    });
    out.resize(AlignUp(out.size()), '\0');
  }
  return out;
}

namespace {

// A file written through a temporary name that becomes `path` only on
// Commit; dropped without Commit, the temporary file is removed.
class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path path) : path_(std::move(path)) {}
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
  }

  Status Open() {
    // mkstemp gives every writer its own temporary name.
    std::string tmp = path_.string() + ".tmp.XXXXXX";
    fd_ = ::mkostemp(tmp.data(), O_CLOEXEC);
    if (fd_ < 0) {
      return StatusFromErrno(errno, "create temporary file for '" + path_.string() + "'");
    }
    tmp_ = tmp;
    ::fchmod(fd_, 0644);
    return Status::Ok();
  }

  Status Append(std::string_view data) {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return StatusFromErrno(errno, "write '" + path_.string() + "'");
      }
      done += static_cast<size_t>(n);
    }
    written_ += data.size();
    return Status::Ok();
  }

  uint64_t written() const { return written_; }

  Status Commit() {
    if (::fsync(fd_) != 0) return StatusFromErrno(errno, "fsync '" + path_.string() + "'");
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) return StatusFromErrno(errno, "close '" + path_.string() + "'");
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
      return StatusFromErrno(errno, "rename to '" + path_.string() + "'");
    }
    tmp_.clear();
    // The new name is durable only once its directory is synced.
    std::string dir = path_.has_parent_path() ? path_.parent_path().string() : ".";
    int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
      int sync_rc = ::fsync(dir_fd);
      int err = errno;
      ::close(dir_fd);
      if (sync_rc != 0 && err != EINVAL) {
        return StatusFromErrno(err, "fsync directory '" + dir + "'");
      }
    }
    return Status::Ok();
  }

 private:
  std::filesystem::path path_;
  std::string tmp_;
  int fd_ = -1;
  uint64_t written_ = 0;
};

}  // namespace

Status GgufWriter::WriteToFile(const std::filesystem::path& path) const {
  AtomicFile file(path);
  XNAI_RETURN_IF_ERROR(file.Open());
  XNAI_RETURN_IF_ERROR(file.Append(BuildHeader()));
  const std::string zeros(static_cast<size_t>(alignment_), '\0');
  for (const Tensor& t : tensors_) {
    XNAI_RETURN_IF_ERROR(
        EmitData(t, [&file](std::string_view piece) { return file.Append(piece); }));
    const uint64_t padding = AlignUp(file.written()) - file.written();
    XNAI_RETURN_IF_ERROR(file.Append(std::string_view(zeros).substr(0, padding)));
  }
  return file.Commit();
}

}  // namespace xnai::gguf
