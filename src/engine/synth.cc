// Random-weight models of real shapes: presets, the type mixes, the synthetic
// tokenizers and the random quant blocks. See synth.h for the contract.
#include "engine/synth.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <memory>
#include <numbers>
#include <unordered_set>

#include "base/utf8.h"
#include "engine/fp16.h"
#include "gguf/gguf_writer.h"

namespace xnai::engine {

namespace {

using gguf::GgufWriter;
using gguf::WriterValue;

// --- presets -----------------------------------------------------------------

SynthShape Decoder(std::string name, std::string arch, int64_t n_vocab, int64_t n_embd,
                   int64_t n_layer, int64_t n_head, int64_t n_head_kv, int64_t head_dim,
                   int64_t n_ff, int64_t n_ctx, double rope_theta, double norm_eps, std::string pre,
                   std::string description) {
  SynthShape s;
  s.name = std::move(name);
  s.architecture = std::move(arch);
  s.n_vocab = n_vocab;
  s.n_embd = n_embd;
  s.n_layer = n_layer;
  s.n_head = n_head;
  s.n_head_kv = n_head_kv;
  s.head_dim = head_dim;
  s.n_ff = n_ff;
  s.n_ctx = n_ctx;
  s.rope_theta = rope_theta;
  s.norm_eps = norm_eps;
  s.tied = true;
  s.write_head_dim = s.architecture == "qwen3";
  s.tokenizer_pre = std::move(pre);
  s.description = std::move(description);
  return s;
}

SynthShape Bert(std::string name, int64_t n_layer, int pooling, std::string pre,
                std::string description) {
  SynthShape s;
  s.name = std::move(name);
  s.architecture = "bert";
  s.n_vocab = 30522;
  s.n_embd = 384;
  s.n_layer = n_layer;
  s.n_head = 12;
  s.n_head_kv = 12;
  s.head_dim = 32;
  s.n_ff = 1536;
  s.n_ctx = 512;
  s.norm_eps = 1e-12;
  s.bert_pooling = pooling;
  s.tokenizer_pre = std::move(pre);
  s.description = std::move(description);
  return s;
}

std::vector<SynthShape> MakePresets() {
  std::vector<SynthShape> presets;
  presets.push_back(Decoder("qwen3-0.6b", "qwen3", 151936, 1024, 28, 16, 8, 128, 3072, 40960, 1e6,
                            1e-6, "qwen2", "the Qwen3-0.6B shape"));
  presets.push_back(Decoder("qwen3-1.7b", "qwen3", 151936, 2048, 28, 16, 8, 128, 6144, 40960, 1e6,
                            1e-6, "qwen2", "the Qwen3-1.7B shape"));
  SynthShape llama = Decoder("llama-3.2-1b", "llama", 128256, 2048, 16, 32, 8, 64, 8192, 131072,
                             5e5, 1e-5, "llama-bpe", "the Llama-3.2-1B shape");
  llama.rope_scale_factor = 32;
  llama.rope_low_freq_factor = 1;
  llama.rope_high_freq_factor = 4;
  llama.rope_original_ctx = 8192;
  presets.push_back(llama);
  presets.push_back(Decoder("smollm2-135m", "llama", 49152, 576, 30, 9, 3, 64, 1536, 8192, 1e5,
                            1e-5, "smollm", "the SmolLM2-135M shape"));
  presets.push_back(Bert("bge-small", 12, 2, "bert-bge", "the bge-small-en-v1.5 shape"));
  presets.push_back(Bert("all-minilm-l6", 6, 1, "default", "the all-MiniLM-L6-v2 shape"));
  presets.push_back(Decoder("tiny-qwen3", "qwen3", 4096, 256, 2, 4, 2, 128, 768, 4096, 1e6, 1e-6,
                            "qwen2", "a tiny qwen3 for tests (the reference qwen3-s shape)"));
  SynthShape tiny_bert =
      Bert("tiny-bert", 2, 2, "bert-bge", "a tiny bert for tests (the reference bert-s shape)");
  tiny_bert.n_embd = 128;
  tiny_bert.n_head = tiny_bert.n_head_kv = 2;
  tiny_bert.head_dim = 64;
  tiny_bert.n_ff = 512;
  presets.push_back(tiny_bert);
  return presets;
}

const std::vector<SynthShape>& Presets() {
  static const std::vector<SynthShape> presets = MakePresets();
  return presets;
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

struct TypeName {
  SynthType type;
  std::string_view name;
  uint32_t file_type;  // llama.cpp's llama_ftype
};
// Pure K-quant files have no ftype of their own; the nearest "_S" id is used.
constexpr TypeName kTypeNames[] = {
    {SynthType::kF32, "F32", 0},        {SynthType::kF16, "F16", 1},
    {SynthType::kBF16, "BF16", 32},     {SynthType::kQ8_0, "Q8_0", 7},
    {SynthType::kQ4_0, "Q4_0", 2},      {SynthType::kQ4_K, "Q4_K", 14},
    {SynthType::kQ5_K, "Q5_K", 16},     {SynthType::kQ6_K, "Q6_K", 18},
    {SynthType::kQ4_K_M, "Q4_K_M", 15}, {SynthType::kQ5_K_M, "Q5_K_M", 17},
};

// --- random numbers ----------------------------------------------------------

// SplitMix64: tiny, fast, and good enough for weights nobody trains.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n).
  uint32_t Below(uint32_t n) { return static_cast<uint32_t>(((Next() >> 32) * n) >> 32); }
  // Uniform in [-1, 1).
  float Symmetric() { return static_cast<float>(Next() >> 40) * 0x1p-23f - 1.0f; }
  void Bytes(uint8_t* out, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const uint64_t bits = Next();
      std::memcpy(out + i, &bits, 8);
    }
    if (i < n) {
      const uint64_t bits = Next();
      std::memcpy(out + i, &bits, n - i);
    }
  }

 private:
  uint64_t state_;
};

uint64_t Mix(uint64_t a, uint64_t b) {
  Rng rng(a ^ (b * 0xd1b54a32d192ed03ull));
  rng.Next();
  return rng.Next();
}

// --- random rows ---------------------------------------------------------------

// The standard deviation of every random 2-D weight.
constexpr float kWeightStd = 0.02f;
// Standard deviations of the integer codes each format draws uniformly:
// sqrt((k^2 - 1) / 12) for k equally likely values.
constexpr float kStd255 = 73.6f;  // int8 in [-127, 127]
constexpr float kStd15 = 4.320f;  // 4 bits without 0 (Q4_0: q - 8 in [-7, 7])
constexpr float kStd16 = 4.610f;  // 4 bits
constexpr float kStd32 = 9.233f;  // 5 bits
constexpr float kStd64 = 18.47f;  // 6 bits

void PutF16(uint8_t* out, float value) {
  const uint16_t h = F32ToF16(value);
  std::memcpy(out, &h, 2);
}

// Packs eight 6-bit sub-block scales and mins as Q4_K/Q5_K store them.
void PackKScales(const uint8_t sc[8], const uint8_t m[8], uint8_t out[12]) {
  for (int j = 0; j < 4; ++j) {
    out[j] = static_cast<uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    out[j + 4] = static_cast<uint8_t>((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    out[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

// One block of Q4_K (bits 4) or Q5_K (bits 5): codes uniform, each sub-block
// scale sc random in [32, 63] and its min chosen so the sub-block's mean is
// zero: x = d*sc*q - dmin*m with m = sc and dmin = d * (2^bits - 1) / 2.
void KBlock(Rng& rng, int bits, uint8_t* block) {
  const float code_std = bits == 4 ? kStd16 : kStd32;
  const float d = kWeightStd / (code_std * 47.5f);
  PutF16(block, d);
  PutF16(block + 2, d * (static_cast<float>((1 << bits) - 1) / 2.0f));
  uint8_t sc[8];
  for (uint8_t& s : sc) s = static_cast<uint8_t>(32 + rng.Below(32));
  PackKScales(sc, sc, block + 4);
  rng.Bytes(block + 16, bits == 4 ? 128 : 160);  // Q5_K: qh[32] then qs[128]
}

// 16-bit floats are drawn from a table of kHalfTableSize values evenly
// spaced over [-spread, spread]: converting every value from float would
// make F16/BF16 models ten times slower to write than quantized ones.
constexpr int kHalfTableBits = 12;
constexpr int kHalfTableSize = 1 << kHalfTableBits;

std::vector<uint16_t> HalfTable(TensorType type, float stddev) {
  const float spread = stddev * std::sqrt(3.0f);
  std::vector<uint16_t> table(kHalfTableSize);
  for (int k = 0; k < kHalfTableSize; ++k) {
    const float value = spread * ((2.0f * k + 1.0f) / kHalfTableSize - 1.0f);
    table[k] = type == TensorType::kBF16 ? F32ToBf16(value) : F32ToF16(value);
  }
  return table;
}

// Fills one row of n elements of `type` at `out` with random values of
// standard deviation about `stddev` (F32/F16/BF16; `half_table` from
// HalfTable for the 16-bit types) or kWeightStd (quants).
void FillRow(TensorType type, Rng& rng, float stddev, const uint16_t* half_table, int64_t n,
             uint8_t* out) {
  const float spread = stddev * std::sqrt(3.0f);  // uniform on [-spread, spread]
  switch (type) {
    case TensorType::kF32:
      for (int64_t i = 0; i < n; ++i) {
        const float v = spread * rng.Symmetric();
        std::memcpy(out + 4 * i, &v, 4);
      }
      return;
    case TensorType::kF16:
    case TensorType::kBF16:
      for (int64_t i = 0; i < n;) {
        uint64_t bits = rng.Next();
        for (int j = 0; j < 64 / kHalfTableBits && i < n; ++j, ++i, bits >>= kHalfTableBits) {
          std::memcpy(out + 2 * i, &half_table[bits & (kHalfTableSize - 1)], 2);
        }
      }
      return;
    case TensorType::kQ8_0:
      for (int64_t b = 0; b < n / 32; ++b) {
        uint8_t* block = out + 34 * b;
        PutF16(block, kWeightStd / kStd255);
        rng.Bytes(block + 2, 32);
        // -128 is not a code the reference quantizer makes (it uses
        // [-127, 127]); SIMD kernels may rely on that.
        for (int i = 2; i < 34; ++i) {
          if (block[i] == 0x80) block[i] = 0x81;
        }
      }
      return;
    case TensorType::kQ4_0:
      // Codes in [1, 15] so that q - 8 is symmetric about zero.
      for (int64_t b = 0; b < n / 32; ++b) {
        uint8_t* block = out + 18 * b;
        PutF16(block, kWeightStd / kStd15);
        for (int i = 0; i < 16; i += 4) {
          uint64_t bits = rng.Next();
          for (int j = 0; j < 4; ++j, bits >>= 16) {
            const uint32_t lo = 1 + (((bits & 0xff) * 15) >> 8);
            const uint32_t hi = 1 + ((((bits >> 8) & 0xff) * 15) >> 8);
            block[2 + i + j] = static_cast<uint8_t>(lo | (hi << 4));
          }
        }
      }
      return;
    case TensorType::kQ4_K:
      for (int64_t b = 0; b < n / 256; ++b) KBlock(rng, 4, out + 144 * b);
      return;
    case TensorType::kQ5_K:
      for (int64_t b = 0; b < n / 256; ++b) KBlock(rng, 5, out + 176 * b);
      return;
    case TensorType::kQ6_K:
      for (int64_t b = 0; b < n / 256; ++b) {
        uint8_t* block = out + 210 * b;
        rng.Bytes(block, 192);  // ql[128], qh[64]
        for (int i = 0; i < 16; ++i) block[192 + i] = static_cast<uint8_t>(64 + rng.Below(64));
        PutF16(block + 208, kWeightStd / (kStd64 * 95.5f));
      }
      return;
    default:
      // SynthTensorType only picks the types above.
      std::memset(out, 0, static_cast<size_t>(*RowBytes(type, n)));
      return;
  }
}

// --- tokenizers ----------------------------------------------------------------

// The byte-level BPE alphabet: printable Latin-1 bytes stand for themselves,
// the other bytes for U+0100 upwards in byte order (so a space is "Ġ").
std::vector<std::string> ByteAlphabet() {
  std::vector<std::string> out(256);
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    AppendUtf8(out[static_cast<size_t>(b)],
               static_cast<char32_t>(printable ? static_cast<uint32_t>(b) : next++));
  }
  return out;
}

// English letter frequencies (per mille), so that synthetic tokens look like
// text and common letter sequences merge.
constexpr int kLetterWeights[26] = {82, 15, 28, 43, 127, 22, 20, 61, 70, 2,  8, 40, 24,
                                    67, 75, 19, 1,  60,  63, 91, 28, 10, 24, 2, 20, 1};

class LetterPicker {
 public:
  LetterPicker() {
    int total = 0;
    for (int i = 0; i < 26; ++i) cumulative_[i] = total += kLetterWeights[i];
  }
  char Pick(Rng& rng) const {
    const int r = static_cast<int>(rng.Below(static_cast<uint32_t>(cumulative_[25])));
    int i = 0;
    while (cumulative_[i] <= r) ++i;
    return static_cast<char>('a' + i);
  }

 private:
  int cumulative_[26];
};

// Where a decoder family's special tokens go and which are BOS/EOS.
struct SpecialLayout {
  int64_t real_first_id;  // the real model's first special id; used when it fits
  std::vector<std::string> names;
  std::string bos, eos;
  bool add_bos;
  std::string filler;  // names the ids after `names`: "<|reserved_special_token_%|>" or "[PAD%]"
  int64_t filler_start;
};

SpecialLayout SpecialsFor(const SynthShape& shape) {
  if (shape.tokenizer_pre == "llama-bpe") {
    return {128000,
            {"<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
             "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>",
             "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
             "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"},
            "<|begin_of_text|>",
            "<|eot_id|>",
            true,
            "<|reserved_special_token_%|>",
            3};
  }
  if (shape.tokenizer_pre == "qwen2") {
    return {151643,
            {"<|endoftext|>", "<|im_start|>", "<|im_end|>"},
            "<|endoftext|>",
            "<|im_end|>",
            false,
            "[PAD%]",
            -1};
  }
  // smollm and anything else: ChatML specials at the end.
  return {-1,
          {"<|endoftext|>", "<|im_start|>", "<|im_end|>"},
          "<|im_start|>",
          "<|im_end|>",
          false,
          "[PAD%]",
          -1};
}

constexpr int32_t kTypeNormal = 1;
constexpr int32_t kTypeUnknown = 2;
constexpr int32_t kTypeControl = 3;

Result<SynthVocab> MakeBpeVocab(const SynthShape& shape) {
  SynthVocab vocab;
  const SpecialLayout specials = SpecialsFor(shape);
  const int64_t n_vocab = shape.n_vocab;
  const int64_t n_named = static_cast<int64_t>(specials.names.size());
  if (n_vocab < 256 + n_named + 1) {
    return Err(Status::InvalidArgument("a byte-level BPE vocabulary needs more than " +
                                       std::to_string(256 + n_named) + " tokens, got " +
                                       std::to_string(n_vocab)));
  }
  const int64_t special_first =
      specials.real_first_id > 256 && specials.real_first_id + n_named <= n_vocab
          ? specials.real_first_id
          : n_vocab - n_named;

  vocab.tokens.reserve(static_cast<size_t>(n_vocab));
  vocab.token_types.reserve(static_cast<size_t>(n_vocab));
  std::unordered_set<std::string> seen;
  seen.reserve(static_cast<size_t>(n_vocab) * 2);
  for (std::string& byte : ByteAlphabet()) {
    seen.insert(byte);
    vocab.tokens.push_back(std::move(byte));
    vocab.token_types.push_back(kTypeNormal);
  }

  // Merged tokens: each is an existing word-like token extended by a letter
  // (or a short lowercase token), so every merge joins two tokens of lower
  // rank, a space ("Ġ") appears only at a token's start, and frequent letter
  // sequences become tokens. About half start a word (with "Ġ"), as in real
  // vocabularies; the first ones are "Ġ" + each lowercase letter.
  const LetterPicker letters;
  Rng rng(0x5eed0fb0cab5ull);        // the vocabulary does not depend on --seed
  std::vector<int32_t> word_starts;  // ids of tokens starting with "Ġ"
  std::vector<int32_t> inner;        // ids of tokens without "Ġ" (letters first)
  std::vector<int32_t> suffixes;     // ids of short lowercase tokens
  for (int c = 'a'; c <= 'z'; ++c) {
    inner.push_back(c);
    inner.push_back(c - 'a' + 'A');
    suffixes.push_back(c);
  }
  const size_t n_merged = static_cast<size_t>(special_first - 256);
  auto add_merge = [&](int32_t left, int32_t right) {
    std::string text = vocab.tokens[left] + vocab.tokens[right];
    if (!seen.insert(text).second) return;
    vocab.merges.push_back(vocab.tokens[left] + " " + vocab.tokens[right]);
    const int32_t id = static_cast<int32_t>(vocab.tokens.size());
    const bool lowercase =
        std::all_of(text.begin(), text.end(), [](char c) { return c >= 'a' && c <= 'z'; });
    if (lowercase && text.size() <= 4) suffixes.push_back(id);
    (left == ' ' || vocab.tokens[left].starts_with(vocab.tokens[' ']) ? word_starts : inner)
        .push_back(id);
    vocab.tokens.push_back(std::move(text));
    vocab.token_types.push_back(kTypeNormal);
  };
  for (int c = 'a'; c <= 'z' && vocab.merges.size() < n_merged; ++c) add_merge(' ', c);
  size_t attempts = 0;
  while (vocab.merges.size() < n_merged) {
    if (++attempts > 100 * n_merged + 1000) {
      return Err(Status::Internal("could not make enough distinct synthetic tokens"));
    }
    const std::vector<int32_t>& pool = rng.Below(2) == 0 ? word_starts : inner;
    // Recent tokens are extended more often, so words grow a few letters long.
    const bool recent = rng.Below(2) == 0 && pool.size() > 64;
    const size_t pick =
        recent ? pool.size() - 1 - rng.Below(64) : rng.Below(static_cast<uint32_t>(pool.size()));
    const int32_t left = pool[pick];
    if (vocab.tokens[left].size() >= 14) continue;
    const int32_t right = rng.Below(5) != 0
                              ? letters.Pick(rng)
                              : suffixes[rng.Below(static_cast<uint32_t>(suffixes.size()))];
    add_merge(left, right);
  }

  // Special tokens, then reserved fillers up to the vocabulary size.
  for (const std::string& name : specials.names) {
    vocab.tokens.push_back(name);
    vocab.token_types.push_back(kTypeControl);
  }
  int64_t filler_index = specials.filler_start;
  while (static_cast<int64_t>(vocab.tokens.size()) < n_vocab) {
    const int64_t number =
        filler_index >= 0 ? filler_index++ : static_cast<int64_t>(vocab.tokens.size());
    std::string name = specials.filler;
    name.replace(name.find('%'), 1, std::to_string(number));
    vocab.tokens.push_back(std::move(name));
    vocab.token_types.push_back(kTypeControl);
  }
  for (int64_t i = 0; i < n_named; ++i) {
    const std::string& name = specials.names[static_cast<size_t>(i)];
    if (name == specials.bos) vocab.bos_id = static_cast<int32_t>(special_first + i);
    if (name == specials.eos) vocab.eos_id = static_cast<int32_t>(special_first + i);
  }
  return vocab;
}

Result<SynthVocab> MakeWordPieceVocab(const SynthShape& shape) {
  if (shape.n_vocab < 200) {
    return Err(Status::InvalidArgument("a WordPiece vocabulary needs at least 200 tokens, got " +
                                       std::to_string(shape.n_vocab)));
  }
  SynthVocab vocab;
  std::unordered_set<std::string> seen;
  auto add = [&](std::string token, int32_t type) {
    if (static_cast<int64_t>(vocab.tokens.size()) >= shape.n_vocab) return;
    if (!seen.insert(token).second) return;
    vocab.tokens.push_back(std::move(token));
    vocab.token_types.push_back(type);
  };
  // The layout of the uncased BERT vocabulary: [PAD], [unused*], [UNK],
  // [CLS], [SEP], [MASK], then characters, then words and "##" pieces.
  add("[PAD]", kTypeControl);
  for (int i = 0; i < 99; ++i) add("[unused" + std::to_string(i) + "]", kTypeNormal);
  add("[UNK]", kTypeUnknown);
  add("[CLS]", kTypeControl);
  add("[SEP]", kTypeControl);
  add("[MASK]", kTypeControl);
  vocab.pad_id = 0;
  vocab.unk_id = 100;
  vocab.cls_id = 101;
  vocab.sep_id = 102;
  vocab.mask_id = 103;
  for (int c = '!'; c <= '~'; ++c) {
    if (c < 'A' || c > 'Z') add(std::string(1, static_cast<char>(c)), kTypeNormal);
  }
  for (int c = '0'; c <= '9'; ++c) add("##" + std::string(1, static_cast<char>(c)), kTypeNormal);
  for (int c = 'a'; c <= 'z'; ++c) add("##" + std::string(1, static_cast<char>(c)), kTypeNormal);
  const LetterPicker letters;
  Rng rng(0x5eed0fb0be27ull);
  size_t attempts = 0;
  while (static_cast<int64_t>(vocab.tokens.size()) < shape.n_vocab) {
    if (++attempts > 100 * static_cast<size_t>(shape.n_vocab)) {
      return Err(Status::Internal("could not make enough distinct synthetic word pieces"));
    }
    const bool piece = rng.Below(10) < 3;
    const uint32_t length = piece ? 2 + rng.Below(4) : 2 + rng.Below(8);
    std::string word = piece ? "##" : "";
    for (uint32_t i = 0; i < length; ++i) word.push_back(letters.Pick(rng));
    add(std::move(word), kTypeNormal);
  }
  return vocab;
}

// --- tensors ---------------------------------------------------------------------

struct TensorPlan {
  std::string name;
  TensorType type;
  std::vector<int64_t> dims;  // ggml order: dims[0] is the row length
  enum Fill { kRandom, kOnes, kZeros, kValues } fill = kRandom;
  std::vector<float> values = {};  // kValues (1-D F32)
  float stddev = kWeightStd;
};

TensorPlan Plan(std::string name, TensorType type, std::vector<int64_t> dims,
                TensorPlan::Fill fill = TensorPlan::kRandom) {
  TensorPlan plan;
  plan.name = std::move(name);
  plan.type = type;
  plan.dims = std::move(dims);
  plan.fill = fill;
  return plan;
}

int64_t Elements(const TensorPlan& t) {
  int64_t n = 1;
  for (int64_t d : t.dims) n *= d;
  return n;
}

// The RoPE frequency divisors of llama3-style scaling: high frequencies keep
// theirs, low ones are divided by the factor, the band between is blended.
std::vector<float> Llama3RopeFactors(const SynthShape& s) {
  const int64_t n_rot = s.head_dim;
  const double low_wavelen = static_cast<double>(s.rope_original_ctx) / s.rope_low_freq_factor;
  const double high_wavelen = static_cast<double>(s.rope_original_ctx) / s.rope_high_freq_factor;
  std::vector<float> factors;
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const double freq = std::pow(s.rope_theta, -2.0 * static_cast<double>(i) / n_rot);
    const double wavelen = 2 * std::numbers::pi / freq;
    double factor = 1;
    if (wavelen > low_wavelen) {
      factor = s.rope_scale_factor;
    } else if (wavelen >= high_wavelen) {
      const double smooth =
          (static_cast<double>(s.rope_original_ctx) / wavelen - s.rope_low_freq_factor) /
          (s.rope_high_freq_factor - s.rope_low_freq_factor);
      factor = 1 / ((1 - smooth) / s.rope_scale_factor + smooth);
    }
    factors.push_back(static_cast<float>(factor));
  }
  return factors;
}

std::vector<TensorPlan> PlanDecoder(const SynthShape& s, SynthType type, int64_t n_layer) {
  std::vector<TensorPlan> plan;
  auto matrix = [&](std::string name, SynthRole role, int64_t layer, int64_t cols, int64_t rows) {
    plan.push_back(Plan(std::move(name), SynthTensorType(type, role, layer, n_layer, cols, s.tied),
                        {cols, rows}));
  };
  auto one_d = [&](std::string name, int64_t n, TensorPlan::Fill fill) {
    plan.push_back(Plan(std::move(name), TensorType::kF32, {n}, fill));
  };
  const int64_t q_dim = s.n_head * s.head_dim;
  const int64_t kv_dim = s.n_head_kv * s.head_dim;
  matrix("token_embd.weight", SynthRole::kTokenEmbd, 0, s.n_embd, s.n_vocab);
  one_d("output_norm.weight", s.n_embd, TensorPlan::kOnes);
  if (!s.tied) matrix("output.weight", SynthRole::kOutput, 0, s.n_embd, s.n_vocab);
  if (s.rope_scale_factor > 0) {
    TensorPlan freqs =
        Plan("rope_freqs.weight", TensorType::kF32, {s.head_dim / 2}, TensorPlan::kValues);
    freqs.values = Llama3RopeFactors(s);
    plan.push_back(std::move(freqs));
  }
  for (int64_t layer = 0; layer < n_layer; ++layer) {
    const std::string blk = "blk." + std::to_string(layer) + ".";
    one_d(blk + "attn_norm.weight", s.n_embd, TensorPlan::kOnes);
    matrix(blk + "attn_q.weight", SynthRole::kAttnQ, layer, s.n_embd, q_dim);
    matrix(blk + "attn_k.weight", SynthRole::kAttnK, layer, s.n_embd, kv_dim);
    matrix(blk + "attn_v.weight", SynthRole::kAttnV, layer, s.n_embd, kv_dim);
    matrix(blk + "attn_output.weight", SynthRole::kAttnOutput, layer, q_dim, s.n_embd);
    if (s.architecture == "qwen3") {
      one_d(blk + "attn_q_norm.weight", s.head_dim, TensorPlan::kOnes);
      one_d(blk + "attn_k_norm.weight", s.head_dim, TensorPlan::kOnes);
    }
    one_d(blk + "ffn_norm.weight", s.n_embd, TensorPlan::kOnes);
    matrix(blk + "ffn_gate.weight", SynthRole::kFfnGate, layer, s.n_embd, s.n_ff);
    matrix(blk + "ffn_up.weight", SynthRole::kFfnUp, layer, s.n_embd, s.n_ff);
    matrix(blk + "ffn_down.weight", SynthRole::kFfnDown, layer, s.n_ff, s.n_embd);
  }
  return plan;
}

std::vector<TensorPlan> PlanBert(const SynthShape& s, SynthType type, int64_t n_layer) {
  std::vector<TensorPlan> plan;
  const int64_t e = s.n_embd;
  auto matrix = [&](std::string name, SynthRole role, int64_t layer, int64_t cols, int64_t rows) {
    plan.push_back(Plan(std::move(name), SynthTensorType(type, role, layer, n_layer, cols, true),
                        {cols, rows}));
  };
  auto one_d = [&](std::string name, int64_t n, TensorPlan::Fill fill) {
    plan.push_back(Plan(std::move(name), TensorType::kF32, {n}, fill));
  };
  matrix("token_embd.weight", SynthRole::kTokenEmbd, 0, e, s.n_vocab);
  // Position and token-type tables stay F32, as the reference quantizer
  // leaves them.
  plan.push_back(Plan("token_types.weight", TensorType::kF32, {e, 2}));
  plan.push_back(Plan("position_embd.weight", TensorType::kF32, {e, s.n_ctx}));
  one_d("token_embd_norm.weight", e, TensorPlan::kOnes);
  one_d("token_embd_norm.bias", e, TensorPlan::kZeros);
  for (int64_t layer = 0; layer < n_layer; ++layer) {
    const std::string blk = "blk." + std::to_string(layer) + ".";
    matrix(blk + "attn_q.weight", SynthRole::kAttnQ, layer, e, e);
    one_d(blk + "attn_q.bias", e, TensorPlan::kZeros);
    matrix(blk + "attn_k.weight", SynthRole::kAttnK, layer, e, e);
    one_d(blk + "attn_k.bias", e, TensorPlan::kZeros);
    matrix(blk + "attn_v.weight", SynthRole::kAttnV, layer, e, e);
    one_d(blk + "attn_v.bias", e, TensorPlan::kZeros);
    matrix(blk + "attn_output.weight", SynthRole::kAttnOutput, layer, e, e);
    one_d(blk + "attn_output.bias", e, TensorPlan::kZeros);
    one_d(blk + "attn_output_norm.weight", e, TensorPlan::kOnes);
    one_d(blk + "attn_output_norm.bias", e, TensorPlan::kZeros);
    matrix(blk + "ffn_up.weight", SynthRole::kFfnUp, layer, e, s.n_ff);
    one_d(blk + "ffn_up.bias", s.n_ff, TensorPlan::kZeros);
    matrix(blk + "ffn_down.weight", SynthRole::kFfnDown, layer, s.n_ff, e);
    one_d(blk + "ffn_down.bias", e, TensorPlan::kZeros);
    one_d(blk + "layer_output_norm.weight", e, TensorPlan::kOnes);
    one_d(blk + "layer_output_norm.bias", e, TensorPlan::kZeros);
  }
  return plan;
}

Status CheckShape(const SynthShape& s) {
  const std::pair<const char*, int64_t> dims[] = {
      {"n_vocab", s.n_vocab}, {"n_embd", s.n_embd},       {"n_layer", s.n_layer},
      {"n_head", s.n_head},   {"n_head_kv", s.n_head_kv}, {"head_dim", s.head_dim},
      {"n_ff", s.n_ff},       {"n_ctx", s.n_ctx}};
  for (const auto& [what, value] : dims) {
    if (value < 1 || value > (int64_t{1} << 24)) {
      return Status::InvalidArgument(std::string(what) + " " + std::to_string(value) +
                                     " is out of range");
    }
  }
  if (s.architecture == "bert") {
    if (s.n_head * s.head_dim != s.n_embd) {
      return Status::InvalidArgument("bert needs n_embd = n_head * head_dim");
    }
    if (s.bert_pooling != 1 && s.bert_pooling != 2) {
      return Status::InvalidArgument("bert pooling must be 1 (mean) or 2 (cls)");
    }
  } else if (s.architecture == "qwen3" || s.architecture == "llama") {
    if (s.n_head % s.n_head_kv != 0) {
      return Status::InvalidArgument("n_head must be a multiple of n_head_kv");
    }
    if (s.head_dim % 2 != 0) return Status::InvalidArgument("head_dim must be even");
    if (!s.write_head_dim && s.n_head * s.head_dim != s.n_embd) {
      return Status::InvalidArgument("head_dim must be n_embd / n_head unless written");
    }
    if (!(s.rope_theta > 1)) return Status::InvalidArgument("rope_theta must be above 1");
  } else {
    return Status::InvalidArgument("architecture '" + s.architecture +
                                   "' cannot be synthesized (qwen3, llama, bert can)");
  }
  if (!(s.norm_eps > 0 && s.norm_eps < 1)) {
    return Status::InvalidArgument("norm_eps must be in (0, 1)");
  }
  return Status::Ok();
}

Status AddMetadata(GgufWriter& w, const SynthOptions& options, int64_t n_layer,
                   const SynthVocab& vocab) {
  const SynthShape& s = options.shape;
  const SynthType type = options.type;
  const bool bert = s.architecture == "bert";
  const std::string a = s.architecture + ".";
  auto u32 = [](int64_t v) { return WriterValue::Uint32(static_cast<uint32_t>(v)); };
  XNAI_RETURN_IF_ERROR(w.Add("general.architecture", WriterValue::String(s.architecture)));
  XNAI_RETURN_IF_ERROR(
      w.Add("general.name",
            WriterValue::String("synthetic " + s.name + " " + std::string(SynthTypeName(type)))));
  XNAI_RETURN_IF_ERROR(
      w.Add("general.description",
            WriterValue::String("random weights of " + s.description + " (xnai model synth, seed " +
                                std::to_string(options.seed) + "); not a trained model")));
  XNAI_RETURN_IF_ERROR(w.Add("general.file_type", WriterValue::Uint32(SynthFileType(type))));
  const bool quantized =
      type != SynthType::kF32 && type != SynthType::kF16 && type != SynthType::kBF16;
  if (quantized) XNAI_RETURN_IF_ERROR(w.Add("general.quantization_version", u32(2)));

  XNAI_RETURN_IF_ERROR(w.Add(a + "context_length", u32(s.n_ctx)));
  XNAI_RETURN_IF_ERROR(w.Add(a + "embedding_length", u32(s.n_embd)));
  XNAI_RETURN_IF_ERROR(w.Add(a + "block_count", u32(n_layer)));
  XNAI_RETURN_IF_ERROR(w.Add(a + "feed_forward_length", u32(s.n_ff)));
  XNAI_RETURN_IF_ERROR(w.Add(a + "attention.head_count", u32(s.n_head)));
  XNAI_RETURN_IF_ERROR(w.Add(a + "attention.head_count_kv", u32(s.n_head_kv)));
  if (bert) {
    XNAI_RETURN_IF_ERROR(w.Add(a + "attention.layer_norm_epsilon",
                               WriterValue::Float32(static_cast<float>(s.norm_eps))));
    XNAI_RETURN_IF_ERROR(w.Add(a + "attention.causal", WriterValue::Bool(false)));
    XNAI_RETURN_IF_ERROR(w.Add(a + "pooling_type", u32(s.bert_pooling)));
    XNAI_RETURN_IF_ERROR(w.Add(a + "token_type_count", u32(2)));
  } else {
    XNAI_RETURN_IF_ERROR(w.Add(a + "attention.layer_norm_rms_epsilon",
                               WriterValue::Float32(static_cast<float>(s.norm_eps))));
    XNAI_RETURN_IF_ERROR(
        w.Add(a + "rope.freq_base", WriterValue::Float32(static_cast<float>(s.rope_theta))));
    if (s.write_head_dim) {
      XNAI_RETURN_IF_ERROR(w.Add(a + "attention.key_length", u32(s.head_dim)));
      XNAI_RETURN_IF_ERROR(w.Add(a + "attention.value_length", u32(s.head_dim)));
    } else {
      XNAI_RETURN_IF_ERROR(w.Add(a + "rope.dimension_count", u32(s.head_dim)));
    }
    XNAI_RETURN_IF_ERROR(w.Add(a + "vocab_size", u32(s.n_vocab)));
  }

  XNAI_RETURN_IF_ERROR(w.Add("tokenizer.ggml.model", WriterValue::String(bert ? "bert" : "gpt2")));
  XNAI_RETURN_IF_ERROR(w.Add("tokenizer.ggml.pre", WriterValue::String(s.tokenizer_pre)));
  XNAI_RETURN_IF_ERROR(w.Add("tokenizer.ggml.tokens", WriterValue::StringArray(vocab.tokens)));
  XNAI_RETURN_IF_ERROR(
      w.Add("tokenizer.ggml.token_type", WriterValue::ArrayOf<int32_t>(vocab.token_types)));
  if (bert) {
    XNAI_RETURN_IF_ERROR(w.Add("tokenizer.ggml.token_type_count", u32(2)));
    XNAI_RETURN_IF_ERROR(w.Add("tokenizer.ggml.unknown_token_id", u32(vocab.unk_id)));
    XNAI_RETURN_IF_ERROR(w.Add("tokenizer.ggml.seperator_token_id", u32(vocab.sep_id)));
    XNAI_RETURN_IF_ERROR(w.Add("tokenizer.ggml.padding_token_id", u32(vocab.pad_id)));
    XNAI_RETURN_IF_ERROR(w.Add("tokenizer.ggml.cls_token_id", u32(vocab.cls_id)));
    XNAI_RETURN_IF_ERROR(w.Add("tokenizer.ggml.mask_token_id", u32(vocab.mask_id)));
  } else {
    XNAI_RETURN_IF_ERROR(w.Add("tokenizer.ggml.merges", WriterValue::StringArray(vocab.merges)));
    XNAI_RETURN_IF_ERROR(w.Add("tokenizer.ggml.bos_token_id", u32(vocab.bos_id)));
    XNAI_RETURN_IF_ERROR(w.Add("tokenizer.ggml.eos_token_id", u32(vocab.eos_id)));
    XNAI_RETURN_IF_ERROR(
        w.Add("tokenizer.ggml.add_bos_token", WriterValue::Bool(SpecialsFor(s).add_bos)));
  }
  return Status::Ok();
}

}  // namespace

// --- public ------------------------------------------------------------------------

std::span<const SynthShape> SynthPresets() { return Presets(); }

std::optional<SynthShape> FindSynthPreset(std::string_view name) {
  for (const SynthShape& shape : Presets()) {
    if (shape.name == name) return shape;
  }
  return std::nullopt;
}

std::string SynthPresetNames() {
  std::string out;
  for (const SynthShape& shape : Presets()) out += (out.empty() ? "" : ", ") + shape.name;
  return out;
}

std::string_view SynthTypeName(SynthType type) {
  for (const TypeName& t : kTypeNames) {
    if (t.type == type) return t.name;
  }
  return "?";
}

std::optional<SynthType> ParseSynthType(std::string_view name) {
  const std::string upper = Upper(name);
  for (const TypeName& t : kTypeNames) {
    if (t.name == upper) return t.type;
  }
  return std::nullopt;
}

std::string SynthTypeNames() {
  std::string out;
  for (const TypeName& t : kTypeNames) out += (out.empty() ? "" : ", ") + std::string(t.name);
  return out;
}

uint32_t SynthFileType(SynthType type) {
  for (const TypeName& t : kTypeNames) {
    if (t.type == type) return t.file_type;
  }
  return 0;
}

TensorType SynthTensorType(SynthType type, SynthRole role, int64_t layer, int64_t n_layer,
                           int64_t row_length, bool tied) {
  TensorType chosen = TensorType::kF32;
  switch (type) {
    case SynthType::kF32:
      chosen = TensorType::kF32;
      break;
    case SynthType::kF16:
      chosen = TensorType::kF16;
      break;
    case SynthType::kBF16:
      chosen = TensorType::kBF16;
      break;
    case SynthType::kQ8_0:
      chosen = TensorType::kQ8_0;
      break;
    case SynthType::kQ4_0:
      chosen = TensorType::kQ4_0;
      break;
    case SynthType::kQ4_K:
      chosen = TensorType::kQ4_K;
      break;
    case SynthType::kQ5_K:
      chosen = TensorType::kQ5_K;
      break;
    case SynthType::kQ6_K:
      chosen = TensorType::kQ6_K;
      break;
    case SynthType::kQ4_K_M:
    case SynthType::kQ5_K_M: {
      chosen = type == SynthType::kQ4_K_M ? TensorType::kQ4_K : TensorType::kQ5_K;
      // The reference quantizer's use_more_bits(): the first and last eighth
      // of the layers, and every third layer in between.
      const int64_t eighth = n_layer / 8;
      const bool more_bits =
          layer < eighth || layer >= 7 * n_layer / 8 || (layer - eighth) % 3 == 2;
      const bool is_output = role == SynthRole::kOutput || (role == SynthRole::kTokenEmbd && tied);
      if (is_output) {
        chosen = TensorType::kQ6_K;
      } else if ((role == SynthRole::kAttnV || role == SynthRole::kFfnDown) && more_bits) {
        chosen = TensorType::kQ6_K;
      }
      break;
    }
  }
  const bool k_quant =
      chosen == TensorType::kQ4_K || chosen == TensorType::kQ5_K || chosen == TensorType::kQ6_K;
  if (k_quant && row_length % 256 != 0) {
    chosen = chosen == TensorType::kQ4_K ? TensorType::kQ4_0 : TensorType::kQ8_0;
  }
  const bool block32 = chosen == TensorType::kQ8_0 || chosen == TensorType::kQ4_0;
  if (block32 && row_length % 32 != 0) chosen = TensorType::kF16;
  return chosen;
}

Result<SynthVocab> MakeSynthVocab(const SynthShape& shape) {
  XNAI_RETURN_IF_ERROR(CheckShape(shape));
  return shape.architecture == "bert" ? MakeWordPieceVocab(shape) : MakeBpeVocab(shape);
}

Result<SynthResult> WriteSynthModel(const SynthOptions& options,
                                    const std::filesystem::path& path) {
  const SynthShape& shape = options.shape;
  XNAI_RETURN_IF_ERROR(CheckShape(shape));
  const int64_t n_layer =
      options.max_layers > 0 ? std::min(options.max_layers, shape.n_layer) : shape.n_layer;
  XNAI_ASSIGN_OR_RETURN(SynthVocab vocab, MakeSynthVocab(shape));

  GgufWriter writer;
  XNAI_RETURN_IF_ERROR(AddMetadata(writer, options, n_layer, vocab));
  vocab = SynthVocab();  // the writer holds its own encoded copy

  const std::vector<TensorPlan> plan = shape.architecture == "bert"
                                           ? PlanBert(shape, options.type, n_layer)
                                           : PlanDecoder(shape, options.type, n_layer);
  SynthResult result;
  // Shared by the row sources, which the writer calls one at a time.
  auto done = std::make_shared<uint64_t>(0);
  auto total = std::make_shared<uint64_t>(0);
  for (size_t tensor_idx = 0; tensor_idx < plan.size(); ++tensor_idx) {
    const TensorPlan& t = plan[tensor_idx];
    result.parameters += Elements(t);
    const int64_t cols = t.dims[0];
    XNAI_ASSIGN_OR_RETURN(const int64_t row_bytes, RowBytes(t.type, cols));
    const uint64_t tensor_seed = Mix(options.seed, tensor_idx + 1);
    GgufWriter::RowSource source;
    switch (t.fill) {
      case TensorPlan::kRandom: {
        auto half_table = std::make_shared<const std::vector<uint16_t>>(
            t.type == TensorType::kF16 || t.type == TensorType::kBF16 ? HalfTable(t.type, t.stddev)
                                                                      : std::vector<uint16_t>());
        source = [type = t.type, stddev = t.stddev, half_table, cols, row_bytes, tensor_seed,
                  progress = options.progress, done, total](int64_t begin, int64_t end, char* out) {
          for (int64_t row = begin; row < end; ++row) {
            // Seeded per row: the bytes do not depend on how rows are batched.
            Rng rng(Mix(tensor_seed, static_cast<uint64_t>(row)));
            FillRow(type, rng, stddev, half_table->data(), cols,
                    reinterpret_cast<uint8_t*>(out) + (row - begin) * row_bytes);
          }
          *done += static_cast<uint64_t>((end - begin) * row_bytes);
          if (progress) progress(*done, *total);
        };
        break;
      }
      case TensorPlan::kOnes:
      case TensorPlan::kZeros:
      case TensorPlan::kValues: {
        std::vector<float> values = t.values;
        if (t.fill != TensorPlan::kValues) {
          values.assign(static_cast<size_t>(Elements(t)),
                        t.fill == TensorPlan::kOnes ? 1.0f : 0.0f);
        }
        source = [values = std::move(values), cols](int64_t begin, int64_t end, char* out) {
          std::memcpy(out, values.data() + begin * cols,
                      static_cast<size_t>((end - begin) * cols) * sizeof(float));
        };
        break;
      }
    }
    XNAI_RETURN_IF_ERROR(writer.AddTensorRows(t.name, t.type, t.dims, std::move(source)));
    ++result.n_tensors;
  }
  result.file_bytes = writer.FileSize();
  *total = result.file_bytes;
  XNAI_RETURN_IF_ERROR(writer.WriteToFile(path));
  if (options.progress) options.progress(result.file_bytes, result.file_bytes);
  return result;
}

}  // namespace xnai::engine
