// Random-weight GGUF models of real architecture shapes (`xnai model synth`),
// so that benchmarks need no download: speed depends on the shapes and
// tensor types, not on the values.
//
// A synthesized file is a complete model: hyperparameters, tensors with the
// real names and shapes, a usable tokenizer (byte-level BPE for decoders,
// WordPiece for BERT) and random weights that keep a forward pass finite
// (matrix entries with a standard deviation of about 0.02, norm weights 1,
// biases 0). Quantized weights are written as random quant blocks directly
// (random codes, scales chosen for that deviation), not by quantizing floats:
// this is exact for the format and about a hundred times faster.
//
// Presets (checked against the models' published config.json; "lay" is the
// layers, "hd" the head dimension, "kv" the KV heads, "rope" the RoPE theta,
// "eps" the RMS/LayerNorm epsilon):
//
// | preset        | arch  | embd | lay | head | kv | hd  | ff   | vocab  | ctx    | rope | eps   |
// |---------------|-------|------|-----|------|----|-----|------|--------|--------|------|-------|
// | qwen3-0.6b    | qwen3 | 1024 | 28  | 16   | 8  | 128 | 3072 | 151936 | 40960  | 1e6  | 1e-6  |
// | qwen3-1.7b    | qwen3 | 2048 | 28  | 16   | 8  | 128 | 6144 | 151936 | 40960  | 1e6  | 1e-6  |
// | llama-3.2-1b  | llama | 2048 | 16  | 32   | 8  | 64  | 8192 | 128256 | 131072 | 5e5  | 1e-5  |
// | smollm2-135m  | llama | 576  | 30  | 9    | 3  | 64  | 1536 | 49152  | 8192   | 1e5  | 1e-5  |
// | bge-small     | bert  | 384  | 12  | 12   | 12 | 32  | 1536 | 30522  | 512    | -    | 1e-12 |
// | all-minilm-l6 | bert  | 384  | 6   | 12   | 12 | 32  | 1536 | 30522  | 512    | -    | 1e-12 |
// | tiny-qwen3    | qwen3 | 256  | 2   | 4    | 2  | 128 | 768  | 4096   | 4096   | 1e6  | 1e-6  |
// | tiny-bert     | bert  | 128  | 2   | 2    | 2  | 64  | 512  | 30522  | 512    | -    | 1e-12 |
//
// All four real decoders tie the output projection to the token embeddings;
// qwen3 has per-head q/k RMS norms; llama-3.2-1b has llama3 RoPE scaling
// (factor 32, low 1, high 4, original context 8192), written as
// rope_freqs.weight. bge-small (bge-small-en-v1.5) pools with CLS,
// all-minilm-l6 (all-MiniLM-L6-v2) with the mean. tiny-qwen3 and tiny-bert
// have the shapes of the reference qwen3-s and bert-s test models (tied, CLS),
// for tests. Tokenizer pre-tokenizers: qwen2 (qwen3), llama-bpe (llama-3.2),
// smollm (smollm2).
//
// Types: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K put every 2-D weight in
// that type; Q4_K_M and Q5_K_M follow the reference implementation's mix
// (SynthTensorType). 1-D tensors (norms, biases, RoPE factors) and BERT's
// position and token-type tables are F32. A K-quant needs rows that are a
// multiple of 256: other rows fall back to Q4_0 (for Q4_K) or Q8_0 (for Q5_K
// and Q6_K); the reference uses Q5_0/Q5_1/Q8_0, which the engine does not
// support yet. Rows that are not a multiple of 32 fall back to F16.
//
// Thread safety: all functions are thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/tensor_types.h"

namespace xnai::engine {

// The shape of a model, as its preset declares it.
struct SynthShape {
  std::string name;          // preset name, "qwen3-0.6b"
  std::string architecture;  // "qwen3", "llama" or "bert"
  int64_t n_vocab = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;  // decoders; bert: n_head
  int64_t head_dim = 0;
  int64_t n_ff = 0;
  int64_t n_ctx = 0;            // context_length (bert: position embeddings)
  double rope_theta = 0;        // decoders
  double norm_eps = 0;          // RMS norm (decoders) or LayerNorm (bert) epsilon
  bool tied = true;             // decoders: no output.weight
  bool write_head_dim = false;  // write attention.key_length/value_length (qwen3)
  // llama3-style RoPE frequency scaling written as rope_freqs.weight (0 = none).
  double rope_scale_factor = 0;
  double rope_low_freq_factor = 0;
  double rope_high_freq_factor = 0;
  int64_t rope_original_ctx = 0;
  int bert_pooling = 0;       // bert: 1 mean, 2 cls
  std::string tokenizer_pre;  // tokenizer.ggml.pre
  std::string description;    // which real model the shape is
};

// Every preset, in the order of the table above.
std::span<const SynthShape> SynthPresets();
// The named preset; nullopt when there is none.
std::optional<SynthShape> FindSynthPreset(std::string_view name);
// "qwen3-0.6b, qwen3-1.7b, ..." for messages.
std::string SynthPresetNames();

// What `--type` selects: one type for every 2-D weight, or a mix.
enum class SynthType { kF32, kF16, kBF16, kQ8_0, kQ4_0, kQ4_K, kQ5_K, kQ6_K, kQ4_K_M, kQ5_K_M };

// "Q4_K_M"; parsing is case-insensitive.
std::string_view SynthTypeName(SynthType type);
std::optional<SynthType> ParseSynthType(std::string_view name);
std::string SynthTypeNames();  // "F32, F16, ..." for messages

// The role of a 2-D weight, which the mixes use to pick its type.
enum class SynthRole {
  kTokenEmbd,  // token_embd.weight
  kOutput,     // output.weight
  kAttnQ,
  kAttnK,
  kAttnV,
  kAttnOutput,
  kFfnGate,
  kFfnUp,
  kFfnDown,
};

// The type of one 2-D weight of `row_length` columns in layer `layer` of
// `n_layer` (layer ignored for token_embd/output). `tied` means the model has
// no output.weight, so token_embd doubles as the output projection. The mixes,
// as the reference implementation's quantizer assigns them:
//   Q4_K_M / Q5_K_M: Q4_K / Q5_K everywhere, except Q6_K for output.weight (or
//   a tied token_embd), and for attn_v and ffn_down in the layers that get
//   more bits: the first n_layer/8, the last n_layer/8 (from 7*n_layer/8 on),
//   and every third one in between ((layer - n_layer/8) % 3 == 2): about half.
// Then the row-length fallbacks of the header comment.
TensorType SynthTensorType(SynthType type, SynthRole role, int64_t layer, int64_t n_layer,
                           int64_t row_length, bool tied);

// The llama.cpp file type id written as general.file_type (Q4_K_M = 15, ...).
uint32_t SynthFileType(SynthType type);

struct SynthOptions {
  SynthShape shape;  // a preset, or a custom shape (tests)
  SynthType type = SynthType::kQ8_0;
  uint64_t seed = 42;  // same seed, same shape and type: same bytes
  // Tests only: write at most this many layers (0 = all), with block_count
  // set to match, so a big preset's other hyperparameters can be loaded
  // cheaply. The Q4_K_M layer rule uses the written layer count.
  int64_t max_layers = 0;
  // Called now and then while tensor data is written: bytes done, total.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

// What WriteSynthModel wrote.
struct SynthResult {
  uint64_t file_bytes = 0;
  int64_t parameters = 0;
  int64_t n_tensors = 0;
};

// Writes the model to `path` atomically, streaming the tensor data (memory
// use: the tokenizer metadata, tens of MiB for a 150k vocabulary, plus one
// batch of rows). Errors: InvalidArgument for an impossible shape (a
// dimension below 1, embd not n_head * head_dim for bert, a vocabulary too
// small for the byte tokens and specials); the OS errors of writing the file
// (NotFound, PermissionDenied, ResourceExhausted for a full disk, IOError),
// naming the path.
Result<SynthResult> WriteSynthModel(const SynthOptions& options, const std::filesystem::path& path);

// The tokenizer a shape gets, for tests: token strings, and for decoders the
// merges, as written to tokenizer.ggml.tokens / .merges.
struct SynthVocab {
  std::vector<std::string> tokens;
  std::vector<int32_t> token_types;  // tokenizer.ggml.token_type
  std::vector<std::string> merges;   // decoders only
  int32_t bos_id = -1, eos_id = -1;
  int32_t unk_id = -1, sep_id = -1, pad_id = -1, cls_id = -1, mask_id = -1;  // bert
};
Result<SynthVocab> MakeSynthVocab(const SynthShape& shape);

}  // namespace xnai::engine
