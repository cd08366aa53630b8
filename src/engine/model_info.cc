#include "engine/model_info.h"

#include <algorithm>
#include <map>

#include "engine/tensor_types.h"

namespace xnai::engine {

ModelInfo DescribeModel(const gguf::GgufFile& file) {
  ModelInfo info;
  info.gguf_version = file.version();
  info.file_bytes = file.file_size();
  if (auto name = file.GetString("general.name")) info.name = std::string(*name);
  if (auto arch = file.GetString("general.architecture")) info.architecture = std::string(*arch);
  if (!info.architecture.empty()) {
    if (auto ctx = file.GetUint(info.architecture + ".context_length")) {
      info.context_length = static_cast<int64_t>(*ctx);
    }
  }
  if (auto vocab = file.GetString("tokenizer.ggml.model")) info.vocabulary = std::string(*vocab);
  if (auto tokens = file.GetStringArray("tokenizer.ggml.tokens")) {
    info.vocabulary_size = static_cast<int64_t>(tokens->size());
  }
  info.has_chat_template = file.HasMetadata("tokenizer.chat_template");

  std::map<std::string, TensorTypeShare> by_type;
  for (const auto& tensor : file.tensors()) {
    info.parameters += tensor.n_elements;
    info.tensor_bytes += tensor.n_bytes;
    std::string type_name(gguf::GgmlTypeName(tensor.type));
    TensorTypeShare& share = by_type[type_name];
    share.type = type_name;
    share.tensors += 1;
    share.elements += tensor.n_elements;
    share.bytes += tensor.n_bytes;
    share.supported = IsSupportedType(tensor.type);
  }
  for (auto& [name, share] : by_type) info.types.push_back(share);
  std::sort(info.types.begin(), info.types.end(),
            [](const TensorTypeShare& a, const TensorTypeShare& b) {
              return a.bytes != b.bytes ? a.bytes > b.bytes : a.type < b.type;
            });
  return info;
}

}  // namespace xnai::engine
