#include "engine/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <queue>
#include <unordered_map>
#include <utility>

#include "base/utf8.h"

namespace xnai::engine {
namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581, SentencePiece's space

// Length of the UTF-8 sequence starting at text[pos], clamped to the text; 1
// for a byte that cannot start a valid sequence (so invalid input advances
// byte by byte instead of swallowing what follows).
size_t Utf8Len(std::string_view text, size_t pos) {
  const auto c = static_cast<uint8_t>(text[pos]);
  size_t n = 1;
  if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
  } else if (c >= 0xE0) {
    n = c <= 0xEF ? 3 : 1;
  } else if (c >= 0xC2) {
    n = 2;
  }
  if (pos + n > text.size()) return 1;
  for (size_t i = 1; i < n; ++i) {
    if ((static_cast<uint8_t>(text[pos + i]) & 0xC0) != 0x80) return 1;
  }
  return n;
}

// Decodes the code point at text[pos] (length from Utf8Len); -1 for an
// invalid byte.
int32_t DecodeCodePoint(std::string_view text, size_t pos, size_t len) {
  const auto b = [&](size_t i) { return static_cast<uint8_t>(text[pos + i]); };
  switch (len) {
    case 1:
      return b(0) < 0x80 ? b(0) : -1;
    case 2:
      return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3:
      return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    default:
      return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
}

std::string ReplaceAll(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (true) {
    size_t hit = s.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(pos, hit - pos));
    out.append(to);
    pos = hit + from.size();
  }
  out.append(s.substr(pos));
  return out;
}

// The pre-tokenizer regexes per tokenizer.ggml.pre, applied in order: each
// one splits every piece left by the previous ones into its matches and the
// text between them. (Lists as llama.cpp documents them per pre-tokenizer.)
constexpr std::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
// Llama 3 and Qwen2 write the contractions case-insensitively; spelled out so
// that only ASCII letters fold.
constexpr std::string_view kLlama3Regex =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// CJK ideographs, U+0800..U+4E00 and Hangul, as DeepSeek's tokenizer groups them.
constexpr std::string_view kDeepseekCjk =
    "[\\x{4E00}-\\x{9FA5}\\x{0800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+";

struct PreTokenizer {
  std::vector<std::string> regexes;
  bool ignore_merges = false;
};

std::optional<PreTokenizer> PreTokenizerFor(std::string_view pre) {
  PreTokenizer p;
  if (pre.empty() || pre == "default") {
    p.regexes = {R"([\p{P}\$\+<=>\^~\|]+)", std::string(kGpt2Regex), R"(\p{N}+)",
                 "[0-9][0-9][0-9]"};
  } else if (pre == "gpt-2" || pre == "mpt" || pre == "olmo" || pre == "jais") {
    p.regexes = {std::string(kGpt2Regex)};
  } else if (pre == "llama-bpe" || pre == "llama3" || pre == "dbrx" || pre == "smaug-bpe") {
    p.regexes = {std::string(kLlama3Regex)};
    p.ignore_merges = true;
  } else if (pre == "qwen2" || pre == "stablelm2") {
    p.regexes = {std::string(kQwen2Regex)};
  } else if (pre == "deepseek-llm") {
    // The letter class is DeepSeek's explicit list of cased-letter ranges
    // (not \p{L}: it leaves out e.g. CJK and modifier letters).
    p.regexes = {
        "[\\r\\n]",
        "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}"
        "\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}"
        "\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}"
        "\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}"
        "\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}"
        "\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}"
        "\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}"
        "\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}"
        "\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}"
        "\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}"
        "\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}"
        "\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}"
        "\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}"
        "\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}"
        "\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}"
        "\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}"
        "\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}"
        "\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+",
        "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+",
        "\\s+$",
        std::string(kDeepseekCjk),
        "\\p{N}+",
    };
  } else if (pre == "deepseek-coder") {
    p.regexes = {"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", std::string(kDeepseekCjk), "\\p{N}"};
  } else if (pre == "falcon") {
    p.regexes = {R"([\p{P}\$\+<=>\^~\|`]+)", std::string(kGpt2Regex), "[0-9][0-9][0-9]"};
  } else if (pre == "starcoder" || pre == "refact" || pre == "smollm" || pre == "command-r" ||
             pre == "codeshell" || pre == "exaone" || pre == "minerva") {
    p.regexes = {R"(\p{N})", std::string(kGpt2Regex)};
  } else {
    return std::nullopt;
  }
  return p;
}

// One compiled pre-tokenizer regex (PCRE2, UTF + Unicode properties, JIT).
struct CompiledRegex {
  pcre2_code* code = nullptr;
  ~CompiledRegex() {
    if (code != nullptr) pcre2_code_free(code);
  }
};

// One symbol of a word being merged (BPE and SentencePiece): a byte range of
// the word, linked to its neighbours.
struct Symbol {
  size_t start, len;  // in the word
  int prev, next;     // indices into the symbol list, -1 at the ends
};

// Splits `word` into one symbol per UTF-8 character, linked in order.
void SplitIntoSymbols(std::string_view word, std::vector<Symbol>& syms) {
  syms.clear();
  for (size_t pos = 0; pos < word.size();) {
    size_t len = Utf8Len(word, pos);
    int idx = static_cast<int>(syms.size());
    syms.push_back({pos, len, idx - 1, -1});
    if (idx > 0) syms[idx - 1].next = idx;
    pos += len;
  }
}

}  // namespace

size_t CompleteUtf8Prefix(std::string_view bytes) {
  const size_t n = bytes.size();
  // The last sequence starts at most 3 bytes before the end.
  for (size_t back = 1; back <= 4 && back <= n; ++back) {
    const auto c = static_cast<uint8_t>(bytes[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back
    size_t need = 1;
    if (c >= 0xF0 && c <= 0xF4) {
      need = 4;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 3;
    } else if (c >= 0xC2 && c <= 0xDF) {
      need = 2;
    }
    return need > back ? n - back : n;
  }
  return n;
}

struct Tokenizer::Impl {
  std::unordered_map<std::string_view, int32_t> token_to_id;   // keys view tokens_
  std::unordered_map<std::string, int32_t> merge_rank;         // "left right" -> rank
  std::vector<std::pair<std::string_view, int32_t>> specials;  // longest first
  std::vector<std::unique_ptr<CompiledRegex>> regexes;
  std::array<std::string, 256> byte_to_unicode;  // byte -> UTF-8 of its mapped code point
  std::unordered_map<int32_t, uint8_t> unicode_to_byte;
  std::array<int32_t, 256> byte_token;  // SPM <0xXX> / BPE single-byte token, -1 if none
  size_t max_token_len = 0;
  // WordPiece spelling: GGUF files mark word starts with U+2581 and leave
  // continuations bare; Hugging Face vocabularies leave starts bare and prefix
  // continuations with "##".
  std::string wp_first_prefix;
  std::string wp_cont_prefix;
};

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(const gguf::GgufFile& file) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  auto model = file.GetString("tokenizer.ggml.model");
  if (!model) return Err(model.error());
  t->model_name_ = std::string(*model);
  if (*model == "gpt2") {
    t->kind_ = TokenizerKind::kBpe;
  } else if (*model == "llama") {
    t->kind_ = TokenizerKind::kSpm;
  } else if (*model == "bert") {
    t->kind_ = TokenizerKind::kWordPiece;
  } else {
    return Err(Status::Unsupported("tokenizer model '" + t->model_name_ +
                                   "' is not supported (gpt2, llama, bert are)"));
  }
  if (file.HasMetadata("tokenizer.ggml.pre")) {
    auto pre = file.GetString("tokenizer.ggml.pre");
    if (!pre) return Err(pre.error());
    t->pre_ = std::string(*pre);
  }

  auto tokens = file.GetStringArray("tokenizer.ggml.tokens");
  if (!tokens) return Err(tokens.error());
  if (tokens->empty()) return Err(Status::Corruption("tokenizer.ggml.tokens is empty"));
  if (tokens->size() > static_cast<size_t>(INT32_MAX)) {
    return Err(Status::Corruption("tokenizer.ggml.tokens has too many entries"));
  }
  const size_t n = tokens->size();
  t->tokens_.reserve(n);
  for (std::string_view s : *tokens) t->tokens_.emplace_back(s);

  if (file.HasMetadata("tokenizer.ggml.scores")) {
    auto scores = file.GetFloatArray("tokenizer.ggml.scores");
    if (!scores) return Err(scores.error());
    if (scores->size() != n) {
      return Err(Status::Corruption("tokenizer.ggml.scores has " + std::to_string(scores->size()) +
                                    " entries for " + std::to_string(n) + " tokens"));
    }
    t->scores_ = std::move(*scores);
  } else {
    t->scores_.assign(n, 0.0f);
  }
  t->types_.assign(n, TokenType::kNormal);
  if (file.HasMetadata("tokenizer.ggml.token_type")) {
    auto types = file.GetIntArray("tokenizer.ggml.token_type");
    if (!types) return Err(types.error());
    if (types->size() != n) {
      return Err(Status::Corruption("tokenizer.ggml.token_type has " +
                                    std::to_string(types->size()) + " entries for " +
                                    std::to_string(n) + " tokens"));
    }
    for (size_t i = 0; i < n; ++i) {
      int64_t v = (*types)[i];
      t->types_[i] = (v >= 0 && v <= 6) ? static_cast<TokenType>(v) : TokenType::kUndefined;
    }
  }

  auto read_id = [&](std::string_view key, int32_t& out) -> Status {
    if (!file.HasMetadata(key)) return Status::Ok();
    auto v = file.GetInt(key);
    if (!v) return v.error();
    if (*v >= 0 && *v < static_cast<int64_t>(n)) out = static_cast<int32_t>(*v);
    return Status::Ok();
  };
  auto read_bool = [&](std::string_view key, bool& out) -> Status {
    if (!file.HasMetadata(key)) return Status::Ok();
    auto v = file.GetBool(key);
    if (!v) return v.error();
    out = *v;
    return Status::Ok();
  };
  XNAI_RETURN_IF_ERROR(read_id("tokenizer.ggml.bos_token_id", t->bos_id_));
  XNAI_RETURN_IF_ERROR(read_id("tokenizer.ggml.eos_token_id", t->eos_id_));
  XNAI_RETURN_IF_ERROR(read_id("tokenizer.ggml.unknown_token_id", t->unk_id_));
  // The key is misspelt in the GGUF specification itself; accept both.
  XNAI_RETURN_IF_ERROR(read_id("tokenizer.ggml.seperator_token_id", t->sep_id_));
  XNAI_RETURN_IF_ERROR(read_id("tokenizer.ggml.separator_token_id", t->sep_id_));
  XNAI_RETURN_IF_ERROR(read_id("tokenizer.ggml.padding_token_id", t->pad_id_));
  XNAI_RETURN_IF_ERROR(read_id("tokenizer.ggml.cls_token_id", t->cls_id_));
  // Defaults as the model kinds behave without the flags: SentencePiece
  // prepends BOS, byte-level BPE does not; bert always brackets with CLS/SEP.
  t->add_bos_ = t->kind_ != TokenizerKind::kBpe;
  t->add_eos_ = t->kind_ == TokenizerKind::kWordPiece;
  XNAI_RETURN_IF_ERROR(read_bool("tokenizer.ggml.add_bos_token", t->add_bos_));
  XNAI_RETURN_IF_ERROR(read_bool("tokenizer.ggml.add_eos_token", t->add_eos_));
  XNAI_RETURN_IF_ERROR(read_bool("tokenizer.ggml.add_space_prefix", t->add_space_prefix_));

  Impl& im = *t->impl_;
  im.token_to_id.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    // A later duplicate wins, as in the reference implementation.
    im.token_to_id[t->tokens_[i]] = static_cast<int32_t>(i);
    im.max_token_len = std::max(im.max_token_len, t->tokens_[i].size());
    TokenType ty = t->types_[i];
    if ((ty == TokenType::kControl || ty == TokenType::kUserDefined || ty == TokenType::kUnknown) &&
        !t->tokens_[i].empty()) {
      im.specials.emplace_back(t->tokens_[i], static_cast<int32_t>(i));
    }
  }
  std::stable_sort(im.specials.begin(), im.specials.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });

  // GPT-2 byte<->unicode table: printable Latin-1 bytes map to themselves,
  // the others to U+0100 upwards in byte order.
  {
    int32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      int32_t cp = printable ? b : next++;
      im.byte_to_unicode[b].clear();
      AppendUtf8(im.byte_to_unicode[b], static_cast<char32_t>(cp));
      im.unicode_to_byte[cp] = static_cast<uint8_t>(b);
    }
  }
  for (int b = 0; b < 256; ++b) {
    im.byte_token[b] = -1;
    std::string key;
    if (t->kind_ == TokenizerKind::kSpm) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
      key = buf;
    } else if (t->kind_ == TokenizerKind::kBpe) {
      key = im.byte_to_unicode[b];
    } else {
      continue;
    }
    auto it = im.token_to_id.find(key);
    if (it != im.token_to_id.end()) im.byte_token[b] = it->second;
  }

  if (t->kind_ == TokenizerKind::kBpe) {
    auto pre = PreTokenizerFor(t->pre_);
    if (!pre) {
      return Err(Status::Unsupported("pre-tokenizer '" + t->pre_ +
                                     "' (tokenizer.ggml.pre) is not supported"));
    }
    t->ignore_merges_ = pre->ignore_merges;
    for (const std::string& rx : pre->regexes) {
      int err = 0;
      PCRE2_SIZE err_off = 0;
      auto c = std::make_unique<CompiledRegex>();
      c->code =
          pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rx.data()), rx.size(),
                        PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &err_off, nullptr);
      if (c->code == nullptr) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof(msg));
        return Err(Status::Internal("pre-tokenizer regex for '" + t->pre_ +
                                    "' does not compile at " + std::to_string(err_off) + ": " +
                                    reinterpret_cast<const char*>(msg)));
      }
      // JIT is an optimisation; without it (unsupported CPU) matching still works.
      pcre2_jit_compile(c->code, PCRE2_JIT_COMPLETE);
      im.regexes.push_back(std::move(c));
    }
    if (file.HasMetadata("tokenizer.ggml.merges")) {
      auto merges = file.GetStringArray("tokenizer.ggml.merges");
      if (!merges) return Err(merges.error());
      im.merge_rank.reserve(merges->size() * 2);
      for (size_t i = 0; i < merges->size(); ++i) {
        std::string_view m = (*merges)[i];
        // The separator is the first space after the first character, so a
        // left part that is itself a space still parses.
        size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string_view::npos;
        if (sp == std::string_view::npos || sp + 1 >= m.size()) {
          return Err(Status::Corruption("tokenizer.ggml.merges[" + std::to_string(i) +
                                        "] is not 'left right': '" + std::string(m.substr(0, 64)) +
                                        "'"));
        }
        im.merge_rank.emplace(std::string(m), static_cast<int32_t>(i));
      }
    }
  } else if (t->kind_ == TokenizerKind::kWordPiece) {
    bool any_marker = false, any_hashes = false;
    for (const std::string& s : t->tokens_) {
      if (s.starts_with(kSpaceMarker)) any_marker = true;
      if (s.size() > 2 && s.starts_with("##")) any_hashes = true;
    }
    if (!any_marker && any_hashes) {
      im.wp_cont_prefix = "##";
    } else {
      im.wp_first_prefix = std::string(kSpaceMarker);
    }
    if (t->unk_id_ < 0) {
      if (auto id = t->FindToken("[UNK]")) t->unk_id_ = *id;
    }
    if (t->cls_id_ < 0) t->cls_id_ = t->bos_id_;
    if (t->sep_id_ < 0) t->sep_id_ = t->eos_id_;
  }
  return t;
}

std::string_view Tokenizer::TokenText(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return tokens_[id];
}

TokenType Tokenizer::GetTokenType(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return TokenType::kUndefined;
  return types_[id];
}

std::optional<int32_t> Tokenizer::FindToken(std::string_view text) const {
  auto it = impl_->token_to_id.find(text);
  if (it == impl_->token_to_id.end()) return std::nullopt;
  return it->second;
}

int32_t Tokenizer::ByteToken(uint8_t byte) const { return impl_->byte_token[byte]; }

std::vector<Tokenizer::Fragment> Tokenizer::SplitSpecial(std::string_view text,
                                                         bool parse_special) const {
  std::vector<Fragment> frags;
  if (!text.empty()) frags.push_back({-1, 0, text.size()});
  // Longest special tokens first, so that a token containing a shorter one wins.
  for (const auto& [piece, id] : impl_->specials) {
    TokenType ty = types_[id];
    if (!parse_special && ty != TokenType::kUserDefined) continue;
    std::vector<Fragment> next;
    next.reserve(frags.size());
    for (const Fragment& f : frags) {
      if (f.token >= 0 || f.length < piece.size()) {
        next.push_back(f);
        continue;
      }
      std::string_view region = text.substr(f.offset, f.length);
      size_t pos = 0;
      while (true) {
        size_t hit = region.find(piece, pos);
        if (hit == std::string_view::npos) break;
        if (hit > pos) next.push_back({-1, f.offset + pos, hit - pos});
        next.push_back({id, 0, 0});
        pos = hit + piece.size();
      }
      if (pos < region.size()) next.push_back({-1, f.offset + pos, region.size() - pos});
    }
    frags = std::move(next);
  }
  return frags;
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
  std::vector<int32_t> out;
  const std::vector<Fragment> frags = SplitSpecial(text, parse_special);
  switch (kind_) {
    case TokenizerKind::kBpe:
      if (add_special && add_bos_ && bos_id_ >= 0) out.push_back(bos_id_);
      for (const Fragment& f : frags) {
        if (f.token >= 0) {
          out.push_back(f.token);
        } else {
          EncodeBpe(text.substr(f.offset, f.length), out);
        }
      }
      if (add_special && add_eos_ && eos_id_ >= 0) out.push_back(eos_id_);
      break;
    case TokenizerKind::kSpm: {
      if (add_special && add_bos_ && bos_id_ >= 0) out.push_back(bos_id_);
      // SentencePiece adds a space in front of the text, and llama.cpp (whose
      // output we match) also after every special token.
      bool prev_special = true;
      for (const Fragment& f : frags) {
        if (f.token >= 0) {
          out.push_back(f.token);
          prev_special = true;
          continue;
        }
        std::string piece;
        if (add_space_prefix_ && prev_special) piece = " ";
        piece.append(text.substr(f.offset, f.length));
        EncodeSpm(ReplaceAll(piece, " ", kSpaceMarker), out);
        prev_special = false;
      }
      if (add_special && add_eos_ && eos_id_ >= 0) out.push_back(eos_id_);
      break;
    }
    case TokenizerKind::kWordPiece:
      if (add_special && cls_id_ >= 0) out.push_back(cls_id_);
      for (const Fragment& f : frags) {
        if (f.token >= 0) {
          out.push_back(f.token);
        } else {
          EncodeWordPiece(text.substr(f.offset, f.length), out);
        }
      }
      if (add_special && sep_id_ >= 0) out.push_back(sep_id_);
      break;
  }
  return out;
}

// ---- byte-level BPE -----------------------------------------------------------

void Tokenizer::EncodeBpe(std::string_view text, std::vector<int32_t>& out) const {
  const Impl& im = *impl_;
  // Pre-tokenize: every regex splits each current piece into matches and the
  // gaps between them; each piece is its own subject, so anchors and
  // lookaheads see the piece's ends.
  std::vector<std::pair<size_t, size_t>> pieces;  // offset, length
  if (!text.empty()) pieces.emplace_back(0, text.size());
  pcre2_match_data* md = nullptr;
  pcre2_match_context* mctx = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  if (mctx != nullptr && jit_stack != nullptr) pcre2_jit_stack_assign(mctx, nullptr, jit_stack);
  for (const auto& rx : im.regexes) {
    if (md != nullptr) pcre2_match_data_free(md);
    md = pcre2_match_data_create_from_pattern(rx->code, nullptr);
    std::vector<std::pair<size_t, size_t>> next;
    next.reserve(pieces.size() * 2);
    for (auto [off, len] : pieces) {
      auto subject = reinterpret_cast<PCRE2_SPTR>(text.data() + off);
      size_t pos = 0;   // end of what has been emitted
      size_t from = 0;  // where the next search starts
      while (from <= len && md != nullptr) {
        int rc = pcre2_match(rx->code, subject, len, from, 0, md, mctx);
        if (rc < 0) break;  // no match (or a resource limit: keep the rest as one piece)
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (me <= ms) {  // empty match: emit nothing, move on one character
          if (ms >= len) break;
          from = ms + Utf8Len(std::string_view(text.data() + off, len), ms);
          continue;
        }
        if (ms > pos) next.emplace_back(off + pos, ms - pos);
        next.emplace_back(off + ms, me - ms);
        pos = from = me;
      }
      if (pos < len) next.emplace_back(off + pos, len - pos);
    }
    pieces = std::move(next);
  }
  if (md != nullptr) pcre2_match_data_free(md);
  if (jit_stack != nullptr) pcre2_jit_stack_free(jit_stack);
  if (mctx != nullptr) pcre2_match_context_free(mctx);

  struct Candidate {
    int32_t rank;
    int left, right;
    size_t left_len, right_len;                 // to detect stale entries
    bool operator<(const Candidate& o) const {  // priority_queue pops the largest
      return rank != o.rank ? rank > o.rank : left > o.left;
    }
  };
  std::string word, key;
  std::vector<Symbol> syms;
  for (auto [off, len] : pieces) {
    word.clear();
    for (size_t i = 0; i < len; ++i) {
      word += im.byte_to_unicode[static_cast<uint8_t>(text[off + i])];
    }
    if (ignore_merges_) {
      auto it = im.token_to_id.find(word);
      if (it != im.token_to_id.end()) {
        out.push_back(it->second);
        continue;
      }
    }
    SplitIntoSymbols(word, syms);
    std::priority_queue<Candidate> queue;
    auto consider = [&](int left, int right) {
      if (left < 0 || right < 0) return;
      key.assign(word, syms[left].start, syms[left].len);
      key += ' ';
      key.append(word, syms[right].start, syms[right].len);
      auto it = im.merge_rank.find(key);
      if (it == im.merge_rank.end()) return;
      queue.push({it->second, left, right, syms[left].len, syms[right].len});
    };
    for (int i = 0; i + 1 < static_cast<int>(syms.size()); ++i) consider(i, i + 1);
    while (!queue.empty()) {
      Candidate c = queue.top();
      queue.pop();
      Symbol& l = syms[c.left];
      Symbol& r = syms[c.right];
      if (l.len != c.left_len || r.len != c.right_len || l.next != c.right || r.len == 0) continue;
      l.len += r.len;
      r.len = 0;
      l.next = r.next;
      if (r.next >= 0) syms[r.next].prev = c.left;
      consider(l.prev, c.left);
      consider(c.left, l.next);
    }
    for (int i = syms.empty() ? -1 : 0; i >= 0; i = syms[i].next) {
      std::string_view s(word.data() + syms[i].start, syms[i].len);
      auto it = im.token_to_id.find(s);
      if (it != im.token_to_id.end()) {
        out.push_back(it->second);
        continue;
      }
      // Not in the vocabulary: one token per mapped byte character.
      for (size_t p = 0; p < s.size();) {
        size_t cl = Utf8Len(s, p);
        auto bt = im.token_to_id.find(s.substr(p, cl));
        if (bt != im.token_to_id.end()) {
          out.push_back(bt->second);
        } else if (unk_id_ >= 0) {
          out.push_back(unk_id_);
        }
        p += cl;
      }
    }
  }
}

// ---- SentencePiece BPE ----------------------------------------------------------

void Tokenizer::EncodeSpm(std::string_view text, std::vector<int32_t>& out) const {
  const Impl& im = *impl_;
  struct Candidate {
    float score;
    int left, right;
    size_t len;                                 // merged length, to detect stale entries
    bool operator<(const Candidate& o) const {  // highest score, then leftmost
      return score != o.score ? score < o.score : left > o.left;
    }
  };
  std::vector<Symbol> syms;
  SplitIntoSymbols(text, syms);
  std::priority_queue<Candidate> queue;
  auto consider = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    std::string_view merged = text.substr(syms[left].start, syms[left].len + syms[right].len);
    auto it = im.token_to_id.find(merged);
    if (it == im.token_to_id.end()) return;
    queue.push({scores_[it->second], left, right, merged.size()});
  };
  for (int i = 0; i + 1 < static_cast<int>(syms.size()); ++i) consider(i, i + 1);
  while (!queue.empty()) {
    Candidate c = queue.top();
    queue.pop();
    Symbol& l = syms[c.left];
    Symbol& r = syms[c.right];
    if (l.len == 0 || r.len == 0 || l.next != c.right || l.len + r.len != c.len) continue;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = c.left;
    consider(l.prev, c.left);
    consider(c.left, l.next);
  }
  // A merge only happens when its result is a token, so a final symbol that
  // is not a token is a single character outside the vocabulary: it is spelt
  // with <0xXX> byte tokens.
  auto emit = [&](std::string_view s) {
    auto it = im.token_to_id.find(s);
    if (it != im.token_to_id.end()) {
      out.push_back(it->second);
      return;
    }
    for (char ch : s) {
      int32_t bt = ByteToken(static_cast<uint8_t>(ch));
      if (bt >= 0) {
        out.push_back(bt);
      } else if (unk_id_ >= 0) {
        out.push_back(unk_id_);
      }
    }
  };
  for (int i = syms.empty() ? -1 : 0; i >= 0; i = syms[i].next) {
    emit(text.substr(syms[i].start, syms[i].len));
  }
}

// ---- WordPiece ---------------------------------------------------------------------

namespace {

bool IsWhitespaceCp(int32_t cp) {
  if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C ||
      cp == 0x85) {
    return true;
  }
  return utf8proc_category(cp) == UTF8PROC_CATEGORY_ZS || cp == 0x2028 || cp == 0x2029;
}

bool IsCjk(int32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

}  // namespace

void Tokenizer::EncodeWordPiece(std::string_view text, std::vector<int32_t>& out) const {
  const Impl& im = *impl_;
  // Normalize and split into words.
  std::vector<std::string> words(1);
  auto end_word = [&] {
    if (!words.back().empty()) words.emplace_back();
  };
  for (size_t p = 0; p < text.size();) {
    size_t l = Utf8Len(text, p);
    int32_t cp = DecodeCodePoint(text, p, l);
    p += l;
    if (cp < 0) continue;  // invalid UTF-8: dropped like other unprintables
    utf8proc_int32_t decomposed[8];
    int last_boundclass = 0;
    utf8proc_ssize_t nd =
        utf8proc_decompose_char(cp, decomposed, 8, UTF8PROC_DECOMPOSE, &last_boundclass);
    if (nd <= 0 || nd > 8) {
      decomposed[0] = cp;
      nd = 1;
    }
    for (utf8proc_ssize_t k = 0; k < nd; ++k) {
      int32_t c = decomposed[k];
      if (IsWhitespaceCp(c)) {
        end_word();
        continue;
      }
      utf8proc_category_t cat = utf8proc_category(c);
      if (c == 0 || c == 0xFFFD || cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_CC ||
          cat == UTF8PROC_CATEGORY_CF || cat == UTF8PROC_CATEGORY_CO ||
          cat == UTF8PROC_CATEGORY_CS || cat == UTF8PROC_CATEGORY_CN) {
        continue;  // accents (after NFD) and control characters are dropped
      }
      bool punct = cat == UTF8PROC_CATEGORY_PC || cat == UTF8PROC_CATEGORY_PD ||
                   cat == UTF8PROC_CATEGORY_PS || cat == UTF8PROC_CATEGORY_PE ||
                   cat == UTF8PROC_CATEGORY_PI || cat == UTF8PROC_CATEGORY_PF ||
                   cat == UTF8PROC_CATEGORY_PO;
      bool ascii_symbol = c < 0x7F && (cat == UTF8PROC_CATEGORY_SM || cat == UTF8PROC_CATEGORY_SC ||
                                       cat == UTF8PROC_CATEGORY_SK || cat == UTF8PROC_CATEGORY_SO);
      std::string s;
      AppendUtf8(s, static_cast<char32_t>(utf8proc_tolower(c)));
      if (punct || ascii_symbol || IsCjk(c)) {
        end_word();
        words.back() = s;
        words.emplace_back();
      } else {
        words.back() += s;
      }
    }
  }
  // Greedy longest match, first piece with the word-start spelling and the
  // rest with the continuation spelling; a word with any unmatched position
  // becomes one [UNK].
  std::string cand, word;
  const bool hf_style = !im.wp_cont_prefix.empty();
  for (const std::string& w : words) {
    if (w.empty()) continue;
    // GGUF spelling: match over U+2581 + word with bare pieces (so the marker
    // may also match on its own). Hugging Face spelling: bare first piece,
    // "##" before the others.
    word = hf_style ? w : im.wp_first_prefix + w;
    const size_t before = out.size();
    bool ok = true;
    for (size_t i = 0; i < word.size();) {
      const std::string_view prefix =
          (hf_style && i > 0) ? std::string_view(im.wp_cont_prefix) : std::string_view();
      size_t j = std::min(word.size(), i + im.max_token_len);
      bool found = false;
      for (; j > i; --j) {
        cand.assign(prefix);
        cand.append(word, i, j - i);
        auto it = im.token_to_id.find(cand);
        if (it != im.token_to_id.end()) {
          out.push_back(it->second);
          found = true;
          break;
        }
      }
      if (!found) {
        ok = false;
        break;
      }
      i = j;
    }
    if (!ok) {
      out.resize(before);
      if (unk_id_ >= 0) out.push_back(unk_id_);
    }
  }
}

// ---- decoding ------------------------------------------------------------------------

std::string Tokenizer::TokenPiece(int32_t id, bool render_special) const {
  if (id < 0 || id >= vocab_size()) return {};
  const std::string& s = tokens_[id];
  switch (types_[id]) {
    case TokenType::kControl:
    case TokenType::kUnknown:
    case TokenType::kUnused:
      return render_special ? s : std::string();
    case TokenType::kUserDefined:
      return s;
    default:
      break;
  }
  switch (kind_) {
    case TokenizerKind::kBpe: {
      std::string out;
      for (size_t p = 0; p < s.size();) {
        size_t l = Utf8Len(s, p);
        int32_t cp = DecodeCodePoint(s, p, l);
        auto it = impl_->unicode_to_byte.find(cp);
        if (it != impl_->unicode_to_byte.end()) {
          out += static_cast<char>(it->second);
        } else {
          out.append(s, p, l);
        }
        p += l;
      }
      return out;
    }
    case TokenizerKind::kSpm:
      if (types_[id] == TokenType::kByte) {
        // "<0xXX>"; a byte token spelt otherwise (a damaged file) renders as text.
        auto hex = [](char c) -> int {
          if (c >= '0' && c <= '9') return c - '0';
          if (c >= 'A' && c <= 'F') return c - 'A' + 10;
          if (c >= 'a' && c <= 'f') return c - 'a' + 10;
          return -1;
        };
        if (s.size() == 6 && s.starts_with("<0x") && s[5] == '>' && hex(s[3]) >= 0 &&
            hex(s[4]) >= 0) {
          return std::string(1, static_cast<char>(hex(s[3]) * 16 + hex(s[4])));
        }
      }
      return ReplaceAll(s, kSpaceMarker, " ");
    case TokenizerKind::kWordPiece:
      if (!impl_->wp_cont_prefix.empty()) {
        return s.starts_with(impl_->wp_cont_prefix) ? s.substr(impl_->wp_cont_prefix.size())
                                                    : " " + s;
      }
      return ReplaceAll(s, kSpaceMarker, " ");
  }
  return s;
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool render_special) const {
  std::string out;
  bool first_text = true;
  for (int32_t id : ids) {
    std::string piece = TokenPiece(id, render_special);
    if (first_text && !piece.empty()) {
      // Undo the space SentencePiece put in front of the text, and the word
      // separator before WordPiece's first word.
      if ((kind_ == TokenizerKind::kSpm && add_space_prefix_) ||
          kind_ == TokenizerKind::kWordPiece) {
        if (piece[0] == ' ' && GetTokenType(id) != TokenType::kControl) piece.erase(0, 1);
      }
      first_text = false;
    }
    out += piece;
  }
  return out;
}

}  // namespace xnai::engine
