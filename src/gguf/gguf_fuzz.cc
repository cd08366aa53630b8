// libFuzzer entry point for the GGUF reader: parses arbitrary bytes and, when
// they parse, touches every metadata value and every byte of every tensor so
// that any offset or size the reader let through is exercised. Built as a
// libFuzzer target with -DXNAI_FUZZ=ON (clang), and linked into the
// deterministic gguf_fuzz_replay test in every build.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "gguf/gguf_reader.h"

namespace {

// Touches one value through every accessor; the results are folded into a
// checksum so the compiler cannot drop the reads.
uint64_t TouchValue(const xnai::gguf::MetadataValue& value) {
  uint64_t sum = value.DebugString(4, 16).size();
  if (auto v = value.AsUint()) sum += *v;
  if (auto v = value.AsInt()) sum += static_cast<uint64_t>(*v);
  if (auto v = value.AsFloat()) sum += static_cast<uint64_t>(*v == *v);
  if (auto v = value.AsBool()) sum += *v;
  if (auto v = value.AsString()) sum += v->size();
  if (auto v = value.AsIntArray()) sum += v->size();
  if (auto v = value.AsFloatArray()) sum += v->size();
  if (auto v = value.AsBoolArray()) sum += v->size();
  if (auto v = value.AsStringArray()) {
    for (std::string_view s : *v) sum += s.empty() ? 0 : static_cast<uint8_t>(s.back());
  }
  if (auto v = value.AsNestedArray()) {
    for (const xnai::gguf::MetadataValue& child : *v) sum += TouchValue(child);
  }
  return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto file = xnai::gguf::OpenGgufFromMemory(bytes);
  if (!file) return 0;
  uint64_t sum = 0;
  for (const auto& [key, value] : (*file)->metadata()) {
    sum += key.size() + TouchValue(value);
    if ((*file)->FindMetadata(key) != &value) __builtin_trap();
  }
  for (const xnai::gguf::TensorInfo& info : (*file)->tensors()) {
    if ((*file)->FindTensor(info.name) != &info) __builtin_trap();
    sum += info.ShapeString().size();
    for (uint64_t i = 0; i < info.n_bytes; ++i) sum += info.data[i];
  }
  // Keep `sum` observable without printing.
  volatile uint64_t sink = sum;
  (void)sink;
  return 0;
}
