#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "base/files.h"
#include "gguf/ggml_type.h"
#include "gguf/gguf_fuzz_seeds.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"
#include "gguf/testdata.h"

namespace xnai::gguf {
namespace {

namespace fs = std::filesystem;
using Code = Status::Code;

// Hand-assembles GGUF bytes, independently of GgufWriter, so hostile layouts
// can be built and the writer is checked against the format, not itself.
class Raw {
 public:
  Raw& U8(uint8_t v) { return Put(v); }
  Raw& U32(uint32_t v) { return Put(v); }
  Raw& U64(uint64_t v) { return Put(v); }
  Raw& I32(int32_t v) { return Put(v); }
  Raw& Str(std::string_view s) {
    U64(s.size());
    bytes_.append(s);
    return *this;
  }
  Raw& Bytes(std::string_view s) {
    bytes_.append(s);
    return *this;
  }
  Raw& PadTo(size_t alignment) {
    bytes_.resize((bytes_.size() + alignment - 1) / alignment * alignment, '\0');
    return *this;
  }
  // Header with magic "GGUF".
  Raw& Header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    bytes_.append("GGUF");
    return U32(version).U64(n_tensors).U64(n_kv);
  }
  // A tensor info record.
  Raw& Tensor(std::string_view name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    Str(name).U32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) U64(d);
    return U32(type).U64(offset);
  }
  const std::string& str() const { return bytes_; }
  size_t size() const { return bytes_.size(); }

 private:
  template <typename T>
  Raw& Put(T v) {
    char buf[sizeof(T)];
    std::memcpy(buf, &v, sizeof(T));
    bytes_.append(buf, sizeof(T));
    return *this;
  }
  std::string bytes_;
};

constexpr uint32_t kTypeUint32 = 4;
constexpr uint32_t kTypeBool = 7;
constexpr uint32_t kTypeString = 8;
constexpr uint32_t kTypeArray = 9;
constexpr uint32_t kF32 = 0;
constexpr uint32_t kQ8_0 = 8;

// Expects `bytes` to be rejected with `code` and a message containing `what`.
void ExpectRejected(const std::string& bytes, Code code, std::string_view what) {
  auto file = OpenGgufFromMemory(bytes);
  ASSERT_FALSE(file) << "expected an error containing '" << what << "'";
  EXPECT_EQ(file.error().code(), code) << file.error().ToString();
  EXPECT_NE(file.error().message().find(what), std::string::npos) << file.error().ToString();
  // One line.
  EXPECT_EQ(file.error().message().find('\n'), std::string::npos);
}

// --- writer -> reader round trips ----------------------------------------------

TEST(GgufRoundTrip, EveryMetadataType) {
  GgufWriter w;
  ASSERT_TRUE(w.Add("u8", WriterValue::Uint8(200)).ok());
  ASSERT_TRUE(w.Add("i8", WriterValue::Int8(-100)).ok());
  ASSERT_TRUE(w.Add("u16", WriterValue::Uint16(60000)).ok());
  ASSERT_TRUE(w.Add("i16", WriterValue::Int16(-30000)).ok());
  ASSERT_TRUE(w.Add("u32", WriterValue::Uint32(4000000000u)).ok());
  ASSERT_TRUE(w.Add("i32", WriterValue::Int32(-2000000000)).ok());
  ASSERT_TRUE(w.Add("u64", WriterValue::Uint64(UINT64_MAX)).ok());
  ASSERT_TRUE(w.Add("i64", WriterValue::Int64(INT64_MIN)).ok());
  ASSERT_TRUE(w.Add("f32", WriterValue::Float32(1.5f)).ok());
  ASSERT_TRUE(w.Add("f64", WriterValue::Float64(-2.25e300)).ok());
  ASSERT_TRUE(w.Add("t", WriterValue::Bool(true)).ok());
  ASSERT_TRUE(w.Add("f", WriterValue::Bool(false)).ok());
  ASSERT_TRUE(w.Add("s", WriterValue::String(std::string("a\0b", 3))).ok());
  ASSERT_TRUE(w.Add("empty", WriterValue::String("")).ok());
  const std::vector<std::string> strings = {"x", "", "\xe2\x82\xac", "long string value"};
  ASSERT_TRUE(w.Add("strs", WriterValue::StringArray(std::span<const std::string>(strings))).ok());
  const std::vector<uint8_t> u8s = {0, 255};
  ASSERT_TRUE(w.Add("a_u8", WriterValue::ArrayOf<uint8_t>(u8s)).ok());
  const std::vector<int8_t> i8s = {-128, 127};
  ASSERT_TRUE(w.Add("a_i8", WriterValue::ArrayOf<int8_t>(i8s)).ok());
  const std::vector<uint16_t> u16s = {1, 65535};
  ASSERT_TRUE(w.Add("a_u16", WriterValue::ArrayOf<uint16_t>(u16s)).ok());
  const std::vector<int16_t> i16s = {-32768, 5};
  ASSERT_TRUE(w.Add("a_i16", WriterValue::ArrayOf<int16_t>(i16s)).ok());
  const std::vector<uint32_t> u32s = {7, 0xffffffffu};
  ASSERT_TRUE(w.Add("a_u32", WriterValue::ArrayOf<uint32_t>(u32s)).ok());
  const std::vector<int32_t> i32s = {-1, 2, -3};
  ASSERT_TRUE(w.Add("a_i32", WriterValue::ArrayOf<int32_t>(i32s)).ok());
  const std::vector<uint64_t> u64s = {1ull << 40};
  ASSERT_TRUE(w.Add("a_u64", WriterValue::ArrayOf<uint64_t>(u64s)).ok());
  const std::vector<uint64_t> big_u64s = {UINT64_MAX};
  ASSERT_TRUE(w.Add("a_big_u64", WriterValue::ArrayOf<uint64_t>(big_u64s)).ok());
  const std::vector<int64_t> i64s = {INT64_MIN, INT64_MAX};
  ASSERT_TRUE(w.Add("a_i64", WriterValue::ArrayOf<int64_t>(i64s)).ok());
  const std::vector<float> f32s = {0.25f, -8.0f};
  ASSERT_TRUE(w.Add("a_f32", WriterValue::ArrayOf<float>(f32s)).ok());
  const std::vector<double> f64s = {1e-3, 2.5};
  ASSERT_TRUE(w.Add("a_f64", WriterValue::ArrayOf<double>(f64s)).ok());
  ASSERT_TRUE(w.Add("a_bool", WriterValue::BoolArray({true, false, false})).ok());
  const std::vector<float> no_floats;
  ASSERT_TRUE(w.Add("a_empty", WriterValue::ArrayOf<float>(no_floats)).ok());
  const std::vector<WriterValue> inner = {
      WriterValue::ArrayOf<int32_t>(i32s),
      WriterValue::ArrayOf<int32_t>(std::span<const int32_t>())};
  auto inner_array = WriterValue::Array(ValueType::kArray, inner);
  ASSERT_TRUE(inner_array);
  const std::vector<WriterValue> outer = {
      *inner_array, WriterValue::StringArray(std::span<const std::string>(strings))};
  auto nested = WriterValue::Array(ValueType::kArray, outer);
  ASSERT_TRUE(nested);
  ASSERT_TRUE(w.Add("nested", *nested).ok());

  const std::string bytes = w.Build();
  auto opened = OpenGgufFromMemory(bytes);
  ASSERT_TRUE(opened) << opened.error().ToString();
  const GgufFile& f = **opened;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.metadata().size(), 29u);
  EXPECT_EQ(f.metadata()[0].first, "u8");  // file order kept
  EXPECT_EQ(f.FindMetadata("u8")->type(), ValueType::kUint8);
  EXPECT_EQ(*f.GetUint("u8"), 200u);
  EXPECT_EQ(*f.GetInt("i8"), -100);
  EXPECT_EQ(*f.GetUint("u16"), 60000u);
  EXPECT_EQ(*f.GetInt("i16"), -30000);
  EXPECT_EQ(*f.GetUint("u32"), 4000000000u);
  EXPECT_EQ(*f.GetInt("u32"), 4000000000);
  EXPECT_EQ(*f.GetInt("i32"), -2000000000);
  EXPECT_EQ(*f.GetUint("u64"), UINT64_MAX);
  EXPECT_EQ(*f.GetInt("i64"), INT64_MIN);
  EXPECT_EQ(*f.GetFloat("f32"), 1.5);
  EXPECT_EQ(*f.GetFloat("f64"), -2.25e300);
  EXPECT_TRUE(*f.GetBool("t"));
  EXPECT_FALSE(*f.GetBool("f"));
  EXPECT_EQ(*f.GetString("s"), std::string_view("a\0b", 3));
  EXPECT_EQ(*f.GetString("empty"), "");
  auto strs = f.GetStringArray("strs");
  ASSERT_TRUE(strs);
  EXPECT_EQ(std::vector<std::string>(strs->begin(), strs->end()), strings);
  EXPECT_EQ(*f.GetIntArray("a_u8"), (std::vector<int64_t>{0, 255}));
  EXPECT_EQ(*f.GetIntArray("a_i8"), (std::vector<int64_t>{-128, 127}));
  EXPECT_EQ(*f.GetIntArray("a_u16"), (std::vector<int64_t>{1, 65535}));
  EXPECT_EQ(*f.GetIntArray("a_i16"), (std::vector<int64_t>{-32768, 5}));
  EXPECT_EQ(*f.GetIntArray("a_u32"), (std::vector<int64_t>{7, 0xffffffffll}));
  EXPECT_EQ(*f.GetIntArray("a_i32"), (std::vector<int64_t>{-1, 2, -3}));
  EXPECT_EQ(*f.GetIntArray("a_u64"), (std::vector<int64_t>{1ll << 40}));
  EXPECT_EQ(*f.GetIntArray("a_i64"), (std::vector<int64_t>{INT64_MIN, INT64_MAX}));
  EXPECT_EQ(*f.GetFloatArray("a_f32"), (std::vector<float>{0.25f, -8.0f}));
  EXPECT_EQ(*f.GetFloatArray("a_f64"), (std::vector<float>{1e-3f, 2.5f}));
  EXPECT_EQ(*f.FindMetadata("a_bool")->AsBoolArray(), (std::vector<bool>{true, false, false}));
  EXPECT_EQ(f.FindMetadata("a_empty")->array_size(), 0u);
  EXPECT_EQ(f.FindMetadata("a_empty")->element_type(), ValueType::kFloat32);
  EXPECT_TRUE(f.GetFloatArray("a_empty")->empty());

  const MetadataValue* nv = f.FindMetadata("nested");
  ASSERT_NE(nv, nullptr);
  auto level1 = nv->AsNestedArray();
  ASSERT_TRUE(level1);
  ASSERT_EQ(level1->size(), 2u);
  auto level2 = (*level1)[0].AsNestedArray();
  ASSERT_TRUE(level2);
  ASSERT_EQ(level2->size(), 2u);
  EXPECT_EQ(*(*level2)[0].AsIntArray(), (std::vector<int64_t>{-1, 2, -3}));
  EXPECT_TRUE((*level2)[1].AsIntArray()->empty());
  EXPECT_EQ((*level1)[1].AsStringArray()->size(), strings.size());

  // Debug rendering used by `model info`.
  EXPECT_EQ(f.FindMetadata("u8")->DebugString(), "200");
  EXPECT_EQ(f.FindMetadata("s")->DebugString(), "\"a\\x00b\"");
  EXPECT_EQ(f.FindMetadata("a_i32")->DebugString(2), "[int32 x 3: -1, 2, ...]");
  EXPECT_EQ(f.FindMetadata("strs")->DebugString(1), "[string x 4: \"x\", ...]");
  EXPECT_EQ(f.FindMetadata("t")->DebugString(), "true");
}

TEST(GgufRoundTrip, TypedGetterErrorsNameKeyAndTypes) {
  GgufWriter w;
  ASSERT_TRUE(w.Add("general.architecture", WriterValue::String("qwen3")).ok());
  ASSERT_TRUE(w.Add("neg", WriterValue::Int32(-5)).ok());
  ASSERT_TRUE(w.Add("huge", WriterValue::Uint64(UINT64_MAX)).ok());
  const std::vector<uint64_t> big = {UINT64_MAX};
  ASSERT_TRUE(w.Add("big_array", WriterValue::ArrayOf<uint64_t>(big)).ok());
  const std::string bytes = w.Build();
  auto f = OpenGgufFromMemory(bytes);
  ASSERT_TRUE(f);

  auto wrong = (*f)->GetUint("general.architecture");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), Code::kInvalidArgument);
  EXPECT_EQ(wrong.error().message(),
            "metadata key 'general.architecture' has type string, expected an unsigned integer");
  auto missing = (*f)->GetString("general.name");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Code::kNotFound);
  EXPECT_EQ(missing.error().message(), "metadata key 'general.name' not found");
  EXPECT_FALSE((*f)->HasMetadata("general.name"));
  auto negative = (*f)->GetUint("neg");
  ASSERT_FALSE(negative);
  EXPECT_NE(negative.error().message().find("'neg' has negative value -5"), std::string::npos);
  EXPECT_EQ(*(*f)->GetInt("neg"), -5);
  EXPECT_FALSE((*f)->GetInt("huge"));
  EXPECT_FALSE((*f)->GetFloat("neg"));
  EXPECT_FALSE((*f)->GetBool("neg"));
  EXPECT_FALSE((*f)->GetIntArray("big_array"));
  auto not_strings = (*f)->GetStringArray("big_array");
  ASSERT_FALSE(not_strings);
  EXPECT_EQ(not_strings.error().message(),
            "metadata key 'big_array' has type array of uint64, expected array of string");
  EXPECT_FALSE((*f)->GetFloatArray("neg"));
}

std::string PatternBytes(size_t n, uint8_t salt) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>((i * 7 + salt) & 0xff);
  return out;
}

TEST(GgufRoundTrip, TensorsOfSeveralTypes) {
  struct Case {
    std::string name;
    GgmlType type;
    std::vector<int64_t> dims;
    size_t bytes;
  };
  const std::vector<Case> cases = {
      {"f32", GgmlType::kF32, {5, 3}, 60},
      {"f16", GgmlType::kF16, {7}, 14},
      {"bf16", GgmlType::kBF16, {2, 2, 2}, 16},
      {"q8_0", GgmlType::kQ8_0, {64, 3}, 6 * 34},
      {"q4_0", GgmlType::kQ4_0, {32, 1, 1, 2}, 2 * 18},
      {"q4_k", GgmlType::kQ4_K, {512}, 2 * 144},
      {"q5_k", GgmlType::kQ5_K, {256, 2}, 2 * 176},
      {"q6_k", GgmlType::kQ6_K, {256}, 210},
      {"q2_k", GgmlType::kQ2_K, {256}, 84},  // readable though the engine lacks it
      {"empty", GgmlType::kF32, {0, 4}, 0},
  };
  for (uint32_t alignment : {32u, 64u, 1u}) {
    GgufWriter w;
    if (alignment != 32) {
      ASSERT_TRUE(w.Add("general.alignment", WriterValue::Uint32(alignment)).ok());
    }
    for (size_t i = 0; i < cases.size(); ++i) {
      const Case& c = cases[i];
      ASSERT_TRUE(w.AddTensor(c.name, c.type, c.dims, PatternBytes(c.bytes, i)).ok()) << c.name;
    }
    const std::string bytes = w.Build();
    auto opened = OpenGgufFromMemory(bytes);
    ASSERT_TRUE(opened) << opened.error().ToString();
    const GgufFile& f = **opened;
    EXPECT_EQ(f.alignment(), alignment);
    EXPECT_EQ(f.data_offset() % alignment, 0u);
    ASSERT_EQ(f.tensors().size(), cases.size());
    for (size_t i = 0; i < cases.size(); ++i) {
      const Case& c = cases[i];
      const TensorInfo& t = f.tensors()[i];
      EXPECT_EQ(t.name, c.name);
      EXPECT_EQ(t.type, c.type);
      EXPECT_EQ(t.n_dims, static_cast<int>(c.dims.size()));
      int64_t n = 1;
      for (size_t d = 0; d < c.dims.size(); ++d) {
        EXPECT_EQ(t.dims[d], c.dims[d]);
        n *= c.dims[d];
      }
      for (size_t d = c.dims.size(); d < 4; ++d) EXPECT_EQ(t.dims[d], 1);
      EXPECT_EQ(t.n_elements, n);
      EXPECT_EQ(t.n_bytes, c.bytes);
      EXPECT_EQ(t.offset % alignment, 0u);
      EXPECT_EQ((reinterpret_cast<const char*>(t.data) - bytes.data()) % alignment, 0);
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(t.data), t.n_bytes),
                PatternBytes(c.bytes, i))
          << c.name;
      EXPECT_EQ(f.FindTensor(c.name), &t);
    }
    EXPECT_EQ(f.tensors()[0].ShapeString(), "[5, 3]");
    EXPECT_EQ(f.FindTensor("nope"), nullptr);
    auto missing = f.GetTensor("nope");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code(), Code::kNotFound);
    EXPECT_EQ(missing.error().message(), "tensor 'nope' not found");
  }
}

TEST(GgufRoundTrip, WriterMatchesHandAssembledBytes) {
  // The writer's output for a tiny file, byte for byte, against the format
  // as assembled by hand: header, KV, tensor info, padding, data, padding.
  GgufWriter w;
  ASSERT_TRUE(w.Add("k", WriterValue::Uint32(7)).ok());
  const float data[2] = {1.0f, -2.0f};
  const int64_t dims[] = {2};
  ASSERT_TRUE(w.AddTensor("t", GgmlType::kF32, dims,
                          std::string_view(reinterpret_cast<const char*>(data), 8))
                  .ok());
  Raw raw;
  raw.Header(3, 1, 1).Str("k").U32(kTypeUint32).U32(7);
  raw.Tensor("t", {2}, kF32, 0).PadTo(32);
  raw.Bytes(std::string_view(reinterpret_cast<const char*>(data), 8)).PadTo(32);
  EXPECT_EQ(w.Build(), raw.str());
}

TEST(GgufWriter, RejectsBadInput) {
  GgufWriter w;
  ASSERT_TRUE(w.Add("a", WriterValue::Uint8(1)).ok());
  EXPECT_EQ(w.Add("a", WriterValue::Uint8(2)).code(), Code::kAlreadyExists);
  EXPECT_EQ(w.Add("", WriterValue::Uint8(2)).code(), Code::kInvalidArgument);
  EXPECT_EQ(w.Add("general.alignment", WriterValue::Uint32(48)).code(), Code::kInvalidArgument);
  EXPECT_EQ(w.Add("general.alignment", WriterValue::Uint64(64)).code(), Code::kInvalidArgument);
  const int64_t dims[] = {33};
  Status bad_row = w.AddTensor("t", GgmlType::kQ8_0, dims, std::string(36, '\0'));
  EXPECT_EQ(bad_row.code(), Code::kInvalidArgument);
  EXPECT_NE(bad_row.message().find("not a multiple of the Q8_0 block size 32"), std::string::npos)
      << bad_row.message();
  const int64_t dims32[] = {32};
  Status bad_size = w.AddTensor("t", GgmlType::kQ8_0, dims32, std::string(33, '\0'));
  EXPECT_EQ(bad_size.message(), "tensor 't' needs 34 bytes of Q8_0 data, got 33");
  ASSERT_TRUE(w.AddTensor("t", GgmlType::kQ8_0, dims32, std::string(34, '\0')).ok());
  EXPECT_EQ(w.AddTensor("t", GgmlType::kQ8_0, dims32, std::string(34, '\0')).code(),
            Code::kAlreadyExists);
  const int64_t five[] = {1, 1, 1, 1, 1};
  EXPECT_EQ(w.AddTensor("u", GgmlType::kF32, five, std::string(4, '\0')).code(),
            Code::kInvalidArgument);
  const int64_t negative[] = {-1};
  EXPECT_EQ(w.AddTensor("u", GgmlType::kF32, negative, "").code(), Code::kInvalidArgument);
  EXPECT_EQ(w.AddTensor("", GgmlType::kF32, dims32, std::string(128, '\0')).code(),
            Code::kInvalidArgument);
  const std::vector<WriterValue> mixed = {WriterValue::Uint8(1), WriterValue::Int8(1)};
  EXPECT_FALSE(WriterValue::Array(ValueType::kUint8, mixed));
}

TEST(GgufFile, OpenFromPathAndOsErrors) {
  const fs::path dir = fs::temp_directory_path() / ("xnai_gguf_test_" + std::to_string(getpid()));
  fs::create_directories(dir);
  GgufWriter w;
  ASSERT_TRUE(w.Add("general.architecture", WriterValue::String("llama")).ok());
  const int64_t dims[] = {4};
  ASSERT_TRUE(w.AddTensor("w", GgmlType::kF32, dims, PatternBytes(16, 9)).ok());
  const fs::path path = dir / "m.gguf";
  ASSERT_TRUE(w.WriteToFile(path).ok());
  {
    auto f = OpenGguf(path);
    ASSERT_TRUE(f) << f.error().ToString();
    EXPECT_EQ(*(*f)->GetString("general.architecture"), "llama");
    EXPECT_EQ((*f)->file_size(), fs::file_size(path));
    EXPECT_EQ(std::string(reinterpret_cast<const char*>((*f)->tensors()[0].data), 16),
              PatternBytes(16, 9));
  }
  auto missing = OpenGguf(dir / "absent.gguf");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Code::kNotFound);
  EXPECT_NE(missing.error().message().find("absent.gguf"), std::string::npos);
  auto directory = OpenGguf(dir);
  ASSERT_FALSE(directory);
  EXPECT_EQ(directory.error().code(), Code::kInvalidArgument);
  ASSERT_TRUE(WriteFileAtomic(dir / "empty.gguf", "").ok());
  auto empty = OpenGguf(dir / "empty.gguf");
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().message().find("empty.gguf: not a GGUF file"), std::string::npos)
      << empty.error().ToString();
  // Corrupt file on disk: the error names the path and the problem.
  std::string bytes = w.Build();
  ASSERT_TRUE(WriteFileAtomic(dir / "cut.gguf", bytes.substr(0, bytes.size() - 40)).ok());
  auto cut = OpenGguf(dir / "cut.gguf");
  ASSERT_FALSE(cut);
  EXPECT_NE(cut.error().message().find("cut.gguf: tensor 'w' extends past end of file"),
            std::string::npos)
      << cut.error().ToString();
  fs::remove_all(dir);
}

// --- hostile files -----------------------------------------------------------------

TEST(GgufHostile, BadMagicAndVersions) {
  ExpectRejected("", Code::kInvalidArgument, "not a GGUF file");
  ExpectRejected("GGU", Code::kInvalidArgument, "not a GGUF file");
  ExpectRejected(std::string("GGML\3\0\0\0", 8), Code::kInvalidArgument, "bad magic 47 47 4d 4c");
  ExpectRejected(Raw().Header(1, 0, 0).str(), Code::kUnsupported,
                 "GGUF version 1 is not supported");
  ExpectRejected(Raw().Header(4, 0, 0).str(), Code::kUnsupported, "GGUF version 4");
  ExpectRejected(Raw().Header(0, 0, 0).str(), Code::kUnsupported, "GGUF version 0");
  ExpectRejected(Raw().Header(0x03000000, 0, 0).str(), Code::kUnsupported,
                 "big-endian GGUF files are not supported");
  // v2 has the same little-endian layout as v3 and is accepted.
  auto v2 = OpenGgufFromMemory(Raw().Header(2, 0, 0).str());
  ASSERT_TRUE(v2) << v2.error().ToString();
  EXPECT_EQ((*v2)->version(), 2u);
  EXPECT_TRUE((*v2)->tensors().empty());
}

TEST(GgufHostile, EveryTruncationIsAnError) {
  for (const std::string& seed : MakeFuzzSeeds()) {
    auto full = OpenGgufFromMemory(seed);
    ASSERT_TRUE(full);
    // The file is complete once the last tensor's bytes are present (the
    // writer's trailing padding is optional); without tensors, once the
    // metadata has been read, i.e. at the data offset's unaligned start.
    size_t needed = 0;
    for (const TensorInfo& t : (*full)->tensors()) {
      needed = std::max<size_t>(needed, (*full)->data_offset() + t.offset + t.n_bytes);
    }
    for (size_t n = 0; n < seed.size(); ++n) {
      const std::string prefix = seed.substr(0, n);
      auto file = OpenGgufFromMemory(prefix);
      if (n < needed || n < 24) {
        ASSERT_FALSE(file) << "prefix of " << n << " bytes of " << seed.size() << " parsed";
        EXPECT_FALSE(file.error().message().empty());
      }
    }
  }
}

TEST(GgufHostile, TruncatedMetadataNamesTheKey) {
  Raw raw;
  raw.Header(3, 0, 1).Str("general.name").U32(kTypeString).U64(100).Bytes("short");
  ExpectRejected(raw.str(), Code::kCorruption, "metadata key 'general.name'");
  ExpectRejected(raw.str(), Code::kCorruption, "length 100 of a string value");
}

TEST(GgufHostile, TensorOutsideFile) {
  Raw raw;
  raw.Header(3, 1, 0).Tensor("blk.0.attn_q.weight", {32, 4}, kF32, 0).PadTo(32);
  raw.Bytes(std::string(100, '\0'));  // needs 512
  ExpectRejected(raw.str(), Code::kCorruption,
                 "tensor 'blk.0.attn_q.weight' extends past end of file (data section 96 + "
                 "offset 0 + size 512 > file size 196)");
  // An offset near 2^64 must not wrap around.
  Raw wrap;
  wrap.Header(3, 1, 0).Tensor("w", {8}, kF32, 0xffffffffffffffe0ull).PadTo(32);
  wrap.Bytes(std::string(32, '\0'));
  ExpectRejected(wrap.str(), Code::kCorruption, "tensor 'w' extends past end of file");
}

TEST(GgufHostile, MisalignedOffset) {
  Raw raw;
  raw.Header(3, 1, 0).Tensor("w", {8}, kF32, 8).PadTo(32);
  raw.Bytes(std::string(64, '\0'));
  ExpectRejected(raw.str(), Code::kCorruption,
                 "tensor 'w' offset 8 is not a multiple of the alignment 32");
}

TEST(GgufHostile, HugeCountsDoNotAllocate) {
  ExpectRejected(Raw().Header(3, 1ull << 60, 0).str(), Code::kCorruption,
                 "tensor count 1152921504606846976 exceeds");
  ExpectRejected(Raw().Header(3, 0, 1ull << 60).str(), Code::kCorruption,
                 "metadata count 1152921504606846976 exceeds");
  ExpectRejected(Raw().Header(3, UINT64_MAX, UINT64_MAX).str(), Code::kCorruption, "exceeds");
  for (uint32_t elem : {0u, kTypeString, kTypeArray, 12u}) {
    Raw raw;
    raw.Header(3, 0, 1).Str("tokenizer.ggml.tokens").U32(kTypeArray).U32(elem).U64(1ull << 60);
    raw.Bytes(std::string(64, '\0'));
    ExpectRejected(raw.str(), Code::kCorruption, "array of 1152921504606846976");
  }
}

TEST(GgufHostile, CountLimitsBoundMemory) {
  // Counts the bytes could hold but no real file has.
  Raw many_keys;
  many_keys.Header(3, 0, kMaxMetadataCount + 1)
      .Bytes(std::string(14 * (kMaxMetadataCount + 1), 'k'));
  ExpectRejected(many_keys.str(), Code::kCorruption, "metadata count 65537 exceeds the limit");
  Raw many_tensors;
  many_tensors.Header(3, kMaxTensorCount + 1, 0)
      .Bytes(std::string(33 * (kMaxTensorCount + 1), 't'));
  ExpectRejected(many_tensors.str(), Code::kCorruption, "tensor count 1048577 exceeds the limit");
  // Arrays of empty arrays cost 12 bytes each in the file but a whole value
  // in memory: bounded file-wide.
  Raw nested;
  nested.Header(3, 0, 1).Str("n").U32(kTypeArray).U32(kTypeArray).U64(kMaxNestedArrayElements + 1);
  for (uint64_t i = 0; i <= kMaxNestedArrayElements; ++i) nested.U32(kTypeUint32).U64(0);
  ExpectRejected(nested.str(), Code::kCorruption, "elements in nested arrays");
}

TEST(GgufHostile, HugeStringLengths) {
  ExpectRejected(Raw().Header(3, 0, 1).U64(1ull << 60).Bytes(std::string(40, 'x')).str(),
                 Code::kCorruption, "length 1152921504606846976 of metadata key 0");
  ExpectRejected(Raw().Header(3, 0, 1).Str("k").U32(kTypeString).U64(UINT64_MAX).str(),
                 Code::kCorruption, "length 18446744073709551615 of a string value");
  Raw arr;
  arr.Header(3, 0, 1).Str("k").U32(kTypeArray).U32(kTypeString).U64(2).Str("ok").U64(1ull << 62);
  ExpectRejected(arr.str(), Code::kCorruption, "length 4611686018427387904 of an array string");
  ExpectRejected(Raw().Header(3, 1, 0).U64(1ull << 60).Bytes(std::string(40, 'x')).str(),
                 Code::kCorruption, "the name of tensor 0");
}

TEST(GgufHostile, BadAlignment) {
  for (uint32_t alignment : {0u, 3u, 48u, 0x80000001u}) {
    Raw raw;
    raw.Header(3, 0, 1).Str("general.alignment").U32(kTypeUint32).U32(alignment);
    ExpectRejected(raw.str(), Code::kCorruption, "is not a power of two");
  }
  Raw wrong_type;
  wrong_type.Header(3, 0, 1).Str("general.alignment").U32(kTypeString).Str("32");
  ExpectRejected(wrong_type.str(), Code::kCorruption,
                 "general.alignment has type string, expected an unsigned integer");
  Raw huge;
  huge.Header(3, 0, 1).Str("general.alignment").U32(kTypeUint32).U32(0x80000000u);
  ExpectRejected(huge.str(), Code::kCorruption, "unreasonably large");
  // A legal non-default alignment moves the data section.
  Raw ok;
  ok.Header(3, 1, 1).Str("general.alignment").U32(kTypeUint32).U32(128);
  ok.Tensor("w", {4}, kF32, 0).PadTo(128).Bytes(std::string(16, '\1'));
  auto f = OpenGgufFromMemory(ok.str());
  ASSERT_TRUE(f) << f.error().ToString();
  EXPECT_EQ((*f)->alignment(), 128u);
  EXPECT_EQ((*f)->data_offset(), 128u);
}

TEST(GgufHostile, DimensionProblems) {
  const std::string pad(64, '\0');
  ExpectRejected(
      Raw().Header(3, 1, 0).Tensor("w", {1ull << 32, 1ull << 32}, kF32, 0).Bytes(pad).str(),
      Code::kCorruption, "tensor 'w' element count overflows int64");
  ExpectRejected(
      Raw().Header(3, 1, 0).Tensor("w", {1ull << 31, 1ull << 31}, kF32, 0).Bytes(pad).str(),
      Code::kCorruption, "tensor 'w' byte size overflows int64");
  ExpectRejected(Raw().Header(3, 1, 0).Tensor("w", {1ull << 63}, kF32, 0).Bytes(pad).str(),
                 Code::kCorruption, "tensor 'w' dimension 0 is 9223372036854775808, too large");
  ExpectRejected(Raw().Header(3, 1, 0).Tensor("w", {}, kF32, 0).Bytes(pad).str(), Code::kCorruption,
                 "tensor 'w' has 0 dimensions (must be 1 to 4)");
  ExpectRejected(Raw().Header(3, 1, 0).Tensor("w", {1, 1, 1, 1, 1}, kF32, 0).Bytes(pad).str(),
                 Code::kCorruption, "tensor 'w' has 5 dimensions");
  ExpectRejected(Raw().Header(3, 1, 0).Tensor("w", {33}, kQ8_0, 0).Bytes(pad).str(),
                 Code::kCorruption,
                 "tensor 'w' row length 33 is not a multiple of the Q8_0 block size 32");
  ExpectRejected(Raw().Header(3, 1, 0).Tensor("w", {32}, 99, 0).Bytes(pad).str(),
                 Code::kUnsupported, "tensor 'w' has unknown tensor type id 99");
  ExpectRejected(Raw().Header(3, 1, 0).Tensor("w", {32}, 4, 0).Bytes(pad).str(), Code::kUnsupported,
                 "tensor 'w' has unknown tensor type id 4");
}

TEST(GgufHostile, Duplicates) {
  Raw keys;
  keys.Header(3, 0, 2).Str("a").U32(kTypeUint32).U32(1).Str("a").U32(kTypeUint32).U32(2);
  ExpectRejected(keys.str(), Code::kCorruption, "duplicate metadata key 'a'");
  Raw names;
  names.Header(3, 2, 0).Tensor("w", {8}, kF32, 0).Tensor("w", {8}, kF32, 32).PadTo(32);
  names.Bytes(std::string(64, '\0'));
  ExpectRejected(names.str(), Code::kCorruption, "duplicate tensor name 'w'");
  Raw overlap;
  overlap.Header(3, 2, 0).Tensor("a", {16}, kF32, 0).Tensor("b", {8}, kF32, 32).PadTo(32);
  overlap.Bytes(std::string(128, '\0'));
  ExpectRejected(overlap.str(), Code::kCorruption, "tensors 'a' and 'b' overlap");
}

TEST(GgufHostile, BadValues) {
  ExpectRejected(Raw().Header(3, 0, 1).Str("k").U32(13).U32(0).str(), Code::kCorruption,
                 "metadata key 'k' has unknown value type 13");
  ExpectRejected(Raw().Header(3, 0, 1).Str("k").U32(kTypeArray).U32(77).U64(0).str(),
                 Code::kCorruption, "unknown array element type 77");
  ExpectRejected(Raw().Header(3, 0, 1).Str("k").U32(kTypeBool).U8(2).str(), Code::kCorruption,
                 "invalid bool value 2");
  ExpectRejected(
      Raw().Header(3, 0, 1).Str("k").U32(kTypeArray).U32(kTypeBool).U64(2).U8(1).U8(9).str(),
      Code::kCorruption, "invalid bool value 9");
  ExpectRejected(Raw().Header(3, 0, 1).Str("").U32(kTypeUint32).U32(0).str(), Code::kCorruption,
                 "metadata key 0 is empty");
}

TEST(GgufHostile, NestingDepthIsBounded) {
  auto nested = [](int depth) {
    Raw raw;
    raw.Header(3, 0, 1).Str("deep").U32(kTypeArray);
    for (int i = 0; i < depth - 1; ++i) raw.U32(kTypeArray).U64(1);
    raw.U32(kTypeUint32).U64(1).U32(42);
    return raw.str();
  };
  auto ok = OpenGgufFromMemory(nested(kMaxArrayDepth));
  ASSERT_TRUE(ok) << ok.error().ToString();
  ExpectRejected(nested(kMaxArrayDepth + 1), Code::kCorruption, "nested deeper than 8");
  ExpectRejected(nested(100000), Code::kCorruption, "nested deeper than 8");
}

TEST(GgufHostile, VocabOnlyFileNeedsNoDataSection) {
  // No tensors: the file may end right after the metadata, unpadded.
  Raw raw;
  raw.Header(3, 0, 1).Str("tokenizer.ggml.model").U32(kTypeString).Str("gpt2");
  auto f = OpenGgufFromMemory(raw.str());
  ASSERT_TRUE(f) << f.error().ToString();
  EXPECT_EQ(*(*f)->GetString("tokenizer.ggml.model"), "gpt2");
}

// --- the reference data --------------------------------------------------------------

TEST(GgufTestdata, EveryReferenceFileOpens) {
  const fs::path dir = FindTestdataDir();
  if (dir.empty()) {
    GTEST_SKIP() << "*** reference data not found: set XNAI_TESTDATA or place it at "
                    "<repo>/../shared/testdata — GGUF reference files NOT checked ***";
  }
  int models = 0;
  int vocabs = 0;
  for (const char* sub : {"models", "vocab"}) {
    for (const fs::directory_entry& entry : fs::directory_iterator(dir / sub)) {
      if (entry.path().extension() != ".gguf") continue;
      SCOPED_TRACE(entry.path().string());
      auto opened = OpenGguf(entry.path());
      ASSERT_TRUE(opened) << opened.error().ToString();
      const GgufFile& f = **opened;
      EXPECT_GE(f.version(), 2u);
      EXPECT_EQ(f.data_offset() % f.alignment(), 0u);
      auto tokens = f.GetStringArray("tokenizer.ggml.tokens");
      ASSERT_TRUE(tokens) << tokens.error().ToString();
      EXPECT_GT(tokens->size(), 100u);
      EXPECT_TRUE(f.GetString("tokenizer.ggml.model"));
      if (std::string(sub) == "vocab") {
        ++vocabs;
        continue;
      }
      ++models;
      auto arch = f.GetString("general.architecture");
      ASSERT_TRUE(arch) << arch.error().ToString();
      const std::string stem = entry.path().stem().string();
      const std::string prefix = stem.substr(0, stem.find('-'));
      EXPECT_EQ(*arch, prefix);  // qwen3-s-... is "qwen3", bert-s-... is "bert"
      const std::string arch_key = std::string(*arch) + ".block_count";
      EXPECT_EQ(*f.GetUint(arch_key), 2u);
      const uint64_t embd = *f.GetUint(std::string(*arch) + ".embedding_length");
      ASSERT_FALSE(f.tensors().empty());
      std::set<std::string_view> names;
      for (const TensorInfo& t : f.tensors()) {
        EXPECT_TRUE(names.insert(t.name).second);
        EXPECT_GT(t.n_bytes, 0u) << t.name;
        EXPECT_GE(t.data, reinterpret_cast<const uint8_t*>(f.bytes().data()) + f.data_offset());
        EXPECT_LE(t.data + t.n_bytes,
                  reinterpret_cast<const uint8_t*>(f.bytes().data()) + f.file_size());
      }
      const TensorInfo* embd_tensor = f.FindTensor("token_embd.weight");
      ASSERT_NE(embd_tensor, nullptr);
      EXPECT_EQ(embd_tensor->n_dims, 2);
      EXPECT_EQ(static_cast<uint64_t>(embd_tensor->dims[0]), embd);
      EXPECT_EQ(static_cast<uint64_t>(embd_tensor->dims[1]), tokens->size());
      if (stem.rfind("qwen3-s-", 0) == 0) {
        EXPECT_EQ(embd, 256u);
        EXPECT_EQ(tokens->size(), 4096u);
        EXPECT_EQ(f.tensors().size(), 1u + 1u + 2u * 11u) << "token_embd, output_norm, 11/layer";
      }
    }
  }
  EXPECT_EQ(models, 15);
  EXPECT_EQ(vocabs, 13);
}

}  // namespace
}  // namespace xnai::gguf
