// Tokenizer: text <-> token ids for the vocabularies GGUF files carry
// (tokenizer.ggml.*), compatible with the reference tokenizations llama.cpp
// produces for the same files.
//
// Three model kinds (tokenizer.ggml.model):
//   "gpt2"  byte-level BPE: the text is split by the pre-tokenizer regexes named
//           by tokenizer.ggml.pre, every byte of a piece is mapped to a printable
//           code point (the GPT-2 byte<->unicode table) and merges are applied
//           by rank.
//   "llama" SentencePiece BPE: spaces become U+2581, a leading space is added,
//           adjacent pieces merge by highest score, pieces missing from the
//           vocabulary fall back to <0xXX> byte tokens.
//   "bert"  WordPiece: NFD, lowercase, accents dropped, split on whitespace,
//           punctuation and CJK ideographs, greedy longest match per word.
//
// Special tokens: control and unknown-type tokens (<s>, <|endoftext|>, ...) are
// recognised in the input text only with parse_special; user-defined tokens
// (type 4, "added tokens") are always recognised, as Hugging Face tokenizers
// and llama.cpp do, since the vocabulary relies on them to spell that text.
//
// Thread safety: immutable after FromGguf; Encode/Decode/TokenPiece and all
// accessors may be called concurrently. The tokenizer copies what it needs and
// does not reference the GgufFile after FromGguf returns.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gguf/gguf_reader.h"

namespace xnai::engine {

enum class TokenizerKind { kBpe, kSpm, kWordPiece };

// Values of tokenizer.ggml.token_type.
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// Length of the longest prefix of `bytes` that does not end inside an
// incomplete UTF-8 sequence. For streaming TokenPiece output: print
// bytes[0, n) and keep the rest until more bytes arrive. Bytes that can never
// become valid UTF-8 count as complete, so nothing is held back forever.
size_t CompleteUtf8Prefix(std::string_view bytes);

class Tokenizer {
 public:
  // Reads the vocabulary of `file`. Errors: NotFound when tokenizer.ggml.model
  // or tokenizer.ggml.tokens is missing; Unsupported naming the model kind
  // (anything but gpt2, llama, bert) or the pre-tokenizer
  // (tokenizer.ggml.pre) when xnai does not know it; Corruption when the
  // scores/token_type arrays do not match the token count or a merge is
  // malformed; InvalidArgument for keys of the wrong type. Special-token ids
  // outside the vocabulary are treated as absent (real files carry such
  // leftovers).
  static Result<std::unique_ptr<Tokenizer>> FromGguf(const gguf::GgufFile& file);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Token ids of `text`. add_special adds BOS/EOS as the vocabulary asks
  // (add_bos()/add_eos()); for bert it adds [CLS] ... [SEP]. parse_special
  // makes text equal to a control token's content become that token;
  // otherwise that text is tokenized as ordinary text. Never fails: bytes
  // that are not valid UTF-8 are tokenized as bytes (BPE, SPM byte fallback)
  // or dropped/[UNK] (WordPiece).
  std::vector<int32_t> Encode(std::string_view text, bool add_special, bool parse_special) const;

  // The text of `ids`, concatenated. Bytes split across tokens are joined, so
  // decoding a whole sequence reproduces the bytes exactly (for SPM the space
  // Encode added in front is removed again). Control/unknown tokens render as
  // their text only with render_special, else as nothing. Ids outside the
  // vocabulary render as nothing.
  std::string Decode(std::span<const int32_t> ids, bool render_special = false) const;

  // The raw bytes of one token, for streaming: may be an incomplete UTF-8
  // sequence (byte tokens, split multi-byte characters); callers buffer until
  // the bytes form complete characters. Unlike Decode, the SPM leading space
  // is not stripped. Empty for ids outside the vocabulary.
  std::string TokenPiece(int32_t id, bool render_special = false) const;

  TokenizerKind kind() const { return kind_; }
  // tokenizer.ggml.model as read: "gpt2", "llama" or "bert".
  const std::string& model_name() const { return model_name_; }
  // tokenizer.ggml.pre as read ("" when absent).
  const std::string& pre() const { return pre_; }
  int32_t vocab_size() const { return static_cast<int32_t>(tokens_.size()); }

  // Special ids, -1 when the vocabulary has none.
  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  int32_t unk_id() const { return unk_id_; }
  int32_t sep_id() const { return sep_id_; }
  int32_t pad_id() const { return pad_id_; }
  int32_t cls_id() const { return cls_id_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }

  // The stored text of a token (byte-level or U+2581 form); "" when out of range.
  std::string_view TokenText(int32_t id) const;
  // kUndefined when out of range.
  TokenType GetTokenType(int32_t id) const;
  // The id whose stored text is exactly `text`.
  std::optional<int32_t> FindToken(std::string_view text) const;
  // True for control tokens (EOS, end-of-turn markers and the like).
  bool IsControl(int32_t id) const { return GetTokenType(id) == TokenType::kControl; }

 private:
  struct Impl;
  Tokenizer();

  // One piece of the input after special-token splitting.
  struct Fragment {
    int32_t token = -1;  // >= 0: a special token; -1: text [offset, offset+length)
    size_t offset = 0;
    size_t length = 0;
  };
  std::vector<Fragment> SplitSpecial(std::string_view text, bool parse_special) const;
  void EncodeBpe(std::string_view text, std::vector<int32_t>& out) const;
  void EncodeSpm(std::string_view text, std::vector<int32_t>& out) const;
  void EncodeWordPiece(std::string_view text, std::vector<int32_t>& out) const;
  int32_t ByteToken(uint8_t byte) const;

  TokenizerKind kind_ = TokenizerKind::kBpe;
  std::string model_name_;
  std::string pre_;
  std::vector<std::string> tokens_;
  std::vector<float> scores_;
  std::vector<TokenType> types_;
  int32_t bos_id_ = -1, eos_id_ = -1, unk_id_ = -1, sep_id_ = -1, pad_id_ = -1, cls_id_ = -1;
  bool add_bos_ = false;
  bool add_eos_ = false;
  bool add_space_prefix_ = true;  // SPM
  bool ignore_merges_ = false;    // BPE: a piece that is a whole token skips merging
  std::unique_ptr<Impl> impl_;
};

}  // namespace xnai::engine
