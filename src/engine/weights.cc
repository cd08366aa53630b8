#include "engine/weights.h"

#include "engine/quants.h"
#include "engine/tensor_types.h"

namespace xnai::engine {
namespace {

std::string Shape(std::initializer_list<int64_t> dims) {
  std::string out = "[";
  for (int64_t dim : dims) {
    if (out.size() > 1) out += ", ";
    out += std::to_string(dim);
  }
  return out + "]";
}

}  // namespace

Result<int64_t> ReadDim(const gguf::GgufFile& file, const std::string& key, int64_t limit,
                        std::optional<int64_t> fallback) {
  if (!file.HasMetadata(key) && fallback.has_value()) return *fallback;
  Result<uint64_t> value = file.GetUint(key);
  if (!value) return Err(value.error());
  if (*value == 0 || *value > static_cast<uint64_t>(limit)) {
    return Err(Status::Corruption("metadata key '" + key + "' = " + std::to_string(*value) +
                                  " is out of range [1, " + std::to_string(limit) + "]"));
  }
  return static_cast<int64_t>(*value);
}

Result<int64_t> ReadRowCount(const gguf::GgufFile& file, const std::string& name, int64_t cols,
                             int64_t limit, const std::string& what) {
  const gguf::TensorInfo* info = file.FindTensor(name);
  if (info == nullptr) return Err(Status::NotFound("tensor '" + name + "' not found"));
  int64_t rows = info->n_dims == 2 ? info->dims[1] : 0;
  if (rows <= 0 || rows > limit) {
    return Err(Status::Corruption("tensor '" + name + "' has shape " + info->ShapeString() +
                                  ", expected [" + std::to_string(cols) + ", " + what + "]"));
  }
  return rows;
}

Result<const gguf::TensorInfo*> FindChecked(const gguf::GgufFile& file, const std::string& name,
                                            std::initializer_list<int64_t> dims) {
  Result<const gguf::TensorInfo*> found = file.GetTensor(name);
  if (!found) return Err(found.error());
  const gguf::TensorInfo& info = **found;
  bool same = info.n_dims == static_cast<int>(dims.size());
  int dim_idx = 0;
  for (int64_t dim : dims) {
    if (!same) break;
    same = info.dims[dim_idx++] == dim;
  }
  if (!same) {
    return Err(Status::Corruption("tensor '" + name + "' has shape " + info.ShapeString() +
                                  ", expected " + Shape(dims)));
  }
  Status supported = CheckSupportedType(info.type);
  if (!supported.ok()) return Err(supported.WithContext("tensor '" + name + "'"));
  return &info;
}

Result<ops::MatrixView> LoadMatrix(const gguf::GgufFile& file, const std::string& name,
                                   int64_t cols, int64_t rows) {
  Result<const gguf::TensorInfo*> info = FindChecked(file, name, {cols, rows});
  if (!info) return Err(info.error());
  Result<int64_t> row_bytes = RowBytes((*info)->type, cols);
  if (!row_bytes) return Err(row_bytes.error().WithContext("tensor '" + name + "'"));
  return ops::MatrixView{(*info)->type, (*info)->data, rows, cols, *row_bytes};
}

Result<std::vector<float>> LoadVector(const gguf::GgufFile& file, const std::string& name,
                                      int64_t n) {
  Result<const gguf::TensorInfo*> info = FindChecked(file, name, {n});
  if (!info) return Err(info.error());
  std::vector<float> out(static_cast<size_t>(n));
  Status status = DequantizeRow((*info)->type, (*info)->data, out.data(), n);
  if (!status.ok()) return Err(status.WithContext("tensor '" + name + "'"));
  return out;
}

}  // namespace xnai::engine
