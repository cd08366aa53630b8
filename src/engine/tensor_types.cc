#include "engine/tensor_types.h"

#include <string>

namespace xnai::engine {

bool IsSupportedType(TensorType type) {
  switch (type) {
    case TensorType::kF32:
    case TensorType::kF16:
    case TensorType::kBF16:
    case TensorType::kQ8_0:
    case TensorType::kQ4_0:
    case TensorType::kQ4_K:
    case TensorType::kQ5_K:
    case TensorType::kQ6_K:
      return true;
    default:
      return false;
  }
}

Status CheckSupportedType(TensorType type) {
  if (IsSupportedType(type)) return Status::Ok();
  const gguf::GgmlTypeInfo* info = gguf::FindGgmlType(static_cast<uint32_t>(type));
  if (info == nullptr) {
    return Status::Unsupported("tensor type id " + std::to_string(static_cast<uint32_t>(type)) +
                               " is unknown");
  }
  return Status::Unsupported("tensor type " + std::string(info->name) + " is not supported yet");
}

TensorTypeTraits GetTypeTraits(TensorType type) {
  const gguf::GgmlTypeInfo* info = gguf::FindGgmlType(static_cast<uint32_t>(type));
  if (info == nullptr) return {type, "unknown", 1, 1, false};
  return {type, info->name, info->block_elems, info->block_bytes, IsSupportedType(type)};
}

}  // namespace xnai::engine
