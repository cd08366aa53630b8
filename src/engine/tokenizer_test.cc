// Unit tests of engine::Tokenizer on tiny hand-made vocabularies (one per
// model kind), with expected ids worked out by hand in the comments.
#include "engine/tokenizer.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"

namespace xnai::engine {
namespace {

using gguf::GgufWriter;
using gguf::WriterValue;
using Ids = std::vector<int32_t>;

// A vocabulary description turned into a GGUF image and loaded.
struct VocabSpec {
  std::string model;
  std::optional<std::string> pre;
  std::vector<std::string> tokens;
  std::vector<int32_t> types;  // empty: not written
  std::vector<float> scores;   // empty: not written
  std::vector<std::string> merges;
  std::vector<std::pair<std::string, uint32_t>> ids;
  std::vector<std::pair<std::string, bool>> flags;
};

std::string BuildGguf(const VocabSpec& spec) {
  GgufWriter w;
  EXPECT_TRUE(w.Add("tokenizer.ggml.model", WriterValue::String(spec.model)).ok());
  if (spec.pre) {
    EXPECT_TRUE(w.Add("tokenizer.ggml.pre", WriterValue::String(*spec.pre)).ok());
  }
  if (!spec.tokens.empty()) {
    EXPECT_TRUE(w.Add("tokenizer.ggml.tokens",
                      WriterValue::StringArray(std::span<const std::string>(spec.tokens)))
                    .ok());
  }
  if (!spec.types.empty()) {
    EXPECT_TRUE(w.Add("tokenizer.ggml.token_type",
                      WriterValue::ArrayOf<int32_t>(std::span<const int32_t>(spec.types)))
                    .ok());
  }
  if (!spec.scores.empty()) {
    EXPECT_TRUE(w.Add("tokenizer.ggml.scores",
                      WriterValue::ArrayOf<float>(std::span<const float>(spec.scores)))
                    .ok());
  }
  if (!spec.merges.empty()) {
    EXPECT_TRUE(w.Add("tokenizer.ggml.merges",
                      WriterValue::StringArray(std::span<const std::string>(spec.merges)))
                    .ok());
  }
  for (const auto& [key, v] : spec.ids) EXPECT_TRUE(w.Add(key, WriterValue::Uint32(v)).ok());
  for (const auto& [key, v] : spec.flags) EXPECT_TRUE(w.Add(key, WriterValue::Bool(v)).ok());
  return w.Build();
}

Result<std::unique_ptr<Tokenizer>> Load(const VocabSpec& spec) {
  std::string bytes = BuildGguf(spec);
  auto file = gguf::OpenGgufFromMemory(bytes);
  if (!file) return Err(file.error());
  // The tokenizer must not need the file (nor its bytes) afterwards.
  return Tokenizer::FromGguf(**file);
}

// GPT-2 byte<->unicode mapping of one byte, as UTF-8.
std::string ByteChar(int b) {
  bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  int cp = b;
  if (!printable) {
    int next = 256;
    for (int x = 0; x < b; ++x) {
      bool p = (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255);
      if (!p) ++next;
    }
    cp = next;
  }
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// Byte-level BPE: ids 0..255 are the 256 byte characters (id == byte value),
// then merged tokens, a control token and a user-defined token.
enum BpeId : int32_t {
  kHe = 256,
  kLl,
  kHell,
  kHello,
  kGw,    // "Ġw" (" w")
  kGwo,   // "Ġwo"
  k123,   // "123", a token no merge produces
  kEot,   // <|endoftext|>, control
  kTool,  // <tool>, user-defined
};

VocabSpec BpeSpec(std::string pre) {
  VocabSpec s;
  s.model = "gpt2";
  s.pre = std::move(pre);
  for (int b = 0; b < 256; ++b) s.tokens.push_back(ByteChar(b));
  for (const char* t :
       {"he", "ll", "hell", "hello", "\xC4\xA0w", "\xC4\xA0wo", "123", "<|endoftext|>", "<tool>"}) {
    s.tokens.push_back(t);
  }
  s.types.assign(s.tokens.size(), 1);
  s.types[kEot] = 3;
  s.types[kTool] = 4;
  // Ranks: "h e" 0, "l l" 1, "he ll" 2, "hell o" 3, "Ġ w" 4, "Ġw o" 5.
  s.merges = {"h e", "l l", "he ll", "hell o", "\xC4\xA0 w", "\xC4\xA0w o"};
  s.ids = {{"tokenizer.ggml.bos_token_id", kEot}, {"tokenizer.ggml.eos_token_id", kEot}};
  return s;
}

Ids Bytes(std::string_view s) {
  Ids ids;
  for (char c : s) ids.push_back(static_cast<uint8_t>(c));
  return ids;
}

TEST(TokenizerBpe, MergesByRank) {
  auto tok = Load(BpeSpec("gpt-2"));
  ASSERT_TRUE(tok.has_value()) << tok.error().ToString();
  const Tokenizer& t = **tok;
  EXPECT_EQ(t.kind(), TokenizerKind::kBpe);
  EXPECT_EQ(t.vocab_size(), kTool + 1);
  // "hello" -> h e l l o -> [he] l l o -> [he][ll] o -> [hell] o -> [hello].
  // " world" -> Ġ w o r l d -> [Ġw] o r l d -> [Ġwo] r l d.
  EXPECT_EQ(t.Encode("hello world", false, false), (Ids{kHello, kGwo, 'r', 'l', 'd'}));
  // "hel" -> [he] l: "he l" is no merge.
  EXPECT_EQ(t.Encode("hel", false, false), (Ids{kHe, 'l'}));
  // "ll" alone merges; "lll" merges the leftmost pair first.
  EXPECT_EQ(t.Encode("lll", false, false), (Ids{kLl, 'l'}));
  EXPECT_EQ(t.Decode(t.Encode("hello world", false, false)), "hello world");
}

TEST(TokenizerBpe, PreTokenizerDecidesDigitsAndWords) {
  // gpt-2: " ?\p{N}+" keeps "12345" whole; no merges apply, so bytes.
  auto gpt2 = Load(BpeSpec("gpt-2"));
  ASSERT_TRUE(gpt2.has_value());
  EXPECT_EQ((*gpt2)->Encode("12345", false, false), Bytes("12345"));
  // llama-bpe: digits in groups of three, and a piece that is a whole token
  // is taken as is (ignore_merges): "123" "45".
  auto llama3 = Load(BpeSpec("llama-bpe"));
  ASSERT_TRUE(llama3.has_value());
  EXPECT_EQ((*llama3)->Encode("12345", false, false), (Ids{k123, '4', '5'}));
  // qwen2: one digit at a time, so "123" is never seen whole.
  auto qwen2 = Load(BpeSpec("qwen2"));
  ASSERT_TRUE(qwen2.has_value());
  EXPECT_EQ((*qwen2)->Encode("12345", false, false), Bytes("12345"));
  // The space joins the word (" hello" is one piece), but "Ġ h" is no merge:
  // Ġ h e l l o -> Ġ [he] l l o -> Ġ [he][ll] o -> Ġ [hell] o -> Ġ [hello].
  EXPECT_EQ((*gpt2)->Encode(" hello", false, false), (Ids{' ', kHello}));
  // The default regex list (no tokenizer.ggml.pre) splits punctuation first.
  VocabSpec d = BpeSpec("x");
  d.pre.reset();
  auto def = Load(d);
  ASSERT_TRUE(def.has_value()) << def.error().ToString();
  EXPECT_EQ((*def)->Encode("hello!!", false, false), (Ids{kHello, '!', '!'}));
}

TEST(TokenizerBpe, SpecialTokens) {
  auto tok = Load(BpeSpec("gpt-2"));
  ASSERT_TRUE(tok.has_value());
  const Tokenizer& t = **tok;
  // parse_special: the control token's text is that token.
  EXPECT_EQ(t.Encode("hello<|endoftext|>", false, true), (Ids{kHello, kEot}));
  // Without it, the text is plain text: "<|", "endoftext", "|>" are bytes.
  Ids plain = t.Encode("<|endoftext|>", false, false);
  EXPECT_EQ(plain, Bytes("<|endoftext|>"));
  EXPECT_EQ(t.Decode(plain), "<|endoftext|>");
  // User-defined tokens are always recognised.
  EXPECT_EQ(t.Encode("<tool>hello", false, false), (Ids{kTool, kHello}));
  EXPECT_EQ(t.Decode(Ids{kTool, kHello}), "<tool>hello");
  // BPE vocabularies add nothing unless asked by the flags.
  EXPECT_FALSE(t.add_bos());
  EXPECT_EQ(t.Encode("hello", true, false), (Ids{kHello}));
  VocabSpec s = BpeSpec("gpt-2");
  s.flags = {{"tokenizer.ggml.add_bos_token", true}, {"tokenizer.ggml.add_eos_token", true}};
  auto with_bos = Load(s);
  ASSERT_TRUE(with_bos.has_value());
  EXPECT_EQ((*with_bos)->Encode("hello", true, false), (Ids{kEot, kHello, kEot}));
  EXPECT_EQ((*with_bos)->Encode("hello", false, false), (Ids{kHello}));
  // Control tokens decode to nothing unless rendered.
  EXPECT_EQ(t.Decode(Ids{kHello, kEot}), "hello");
  EXPECT_EQ(t.Decode(Ids{kHello, kEot}, /*render_special=*/true), "hello<|endoftext|>");
  EXPECT_TRUE(t.IsControl(kEot));
  EXPECT_FALSE(t.IsControl(kHello));
}

TEST(TokenizerBpe, InvalidUtf8AndBytesAcrossTokens) {
  auto tok = Load(BpeSpec("gpt-2"));
  ASSERT_TRUE(tok.has_value());
  const Tokenizer& t = **tok;
  const std::string bad = "he\xFF\xFEllo \xC3 \xE2\x82 \xF0\x9F\x98\x80!";
  Ids ids = t.Encode(bad, false, false);
  EXPECT_FALSE(ids.empty());
  EXPECT_EQ(t.Decode(ids), bad);
  // "é" is two byte tokens; each piece alone is half a character, together exact.
  Ids e = t.Encode("\xC3\xA9", false, false);
  ASSERT_EQ(e, (Ids{0xC3, 0xA9}));
  EXPECT_EQ(t.TokenPiece(e[0]), "\xC3");
  EXPECT_EQ(t.TokenPiece(e[0]) + t.TokenPiece(e[1]), "\xC3\xA9");
  EXPECT_EQ(t.Encode("", true, true), Ids{});
  // Out-of-range ids decode to nothing.
  EXPECT_EQ(t.Decode(Ids{-1, 100000, kHello}), "hello");
  EXPECT_EQ(t.TokenText(-5), "");
  EXPECT_EQ(t.GetTokenType(100000), TokenType::kUndefined);
}

// SentencePiece: <unk> <s> </s>, 256 byte tokens (ids 3..258), then pieces.
enum SpmId : int32_t {
  kUnk = 0,
  kBos = 1,
  kEos = 2,
  kByte0 = 3,
  kMarker = 259,  // "▁"
  kH,             // "h"
  kE,             // "e"
  kL,             // "l"
  kO,             // "o"
  kMarkerH,       // "▁h"
  kLlS,           // "ll"
  kMarkerHe,      // "▁he"
  kLlo,           // "llo"
  kA,             // "a"
  kB,             // "b"
  kC,             // "c"
  kAb,            // "ab", -1
  kBc,            // "bc", -2
};

VocabSpec SpmSpec() {
  VocabSpec s;
  s.model = "llama";
  s.pre = "default";
  s.tokens = {"<unk>", "<s>", "</s>"};
  s.types = {2, 3, 3};
  s.scores = {0, 0, 0};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    s.tokens.push_back(buf);
    s.types.push_back(6);
    s.scores.push_back(0);
  }
  const std::vector<std::pair<std::string, float>> pieces = {{"\xE2\x96\x81", -10},
                                                             {"h", -10},
                                                             {"e", -10},
                                                             {"l", -10},
                                                             {"o", -10},
                                                             {"\xE2\x96\x81h", -3},
                                                             {"ll", -1},
                                                             {"\xE2\x96\x81he", -4},
                                                             {"llo", -2},
                                                             {"a", -10},
                                                             {"b", -10},
                                                             {"c", -10},
                                                             {"ab", -1},
                                                             {"bc", -2}};
  for (const auto& [p, score] : pieces) {
    s.tokens.push_back(p);
    s.types.push_back(1);
    s.scores.push_back(score);
  }
  s.ids = {{"tokenizer.ggml.bos_token_id", kBos},
           {"tokenizer.ggml.eos_token_id", kEos},
           {"tokenizer.ggml.unknown_token_id", kUnk}};
  return s;
}

TEST(TokenizerSpm, MergesByScoreWithSpacePrefix) {
  auto tok = Load(SpmSpec());
  ASSERT_TRUE(tok.has_value()) << tok.error().ToString();
  const Tokenizer& t = **tok;
  EXPECT_EQ(t.kind(), TokenizerKind::kSpm);
  // "hello" -> "▁hello" -> ▁ h e l l o. Best pair "ll" (-1): ▁ h e [ll] o;
  // then "llo" (-2): ▁ h e [llo]; then "▁h" (-3): [▁h] e [llo]; then "▁he"
  // (-4): [▁he][llo]; "▁hello" is no token.
  EXPECT_EQ(t.Encode("hello", false, false), (Ids{kMarkerHe, kLlo}));
  EXPECT_EQ(t.Decode(t.Encode("hello", false, false)), "hello");
  // "abc" -> ▁ a b c: "ab" (-1) beats "bc" (-2), then nothing merges further.
  EXPECT_EQ(t.Encode("abc", false, false), (Ids{kMarker, kAb, kC}));
  // "i" is no piece: byte fallback <0x69>.
  EXPECT_EQ(t.Encode("hi", false, false), (Ids{kMarkerH, kByte0 + 'i'}));
  // Spaces become ▁ pieces; "é" is two byte tokens.
  EXPECT_EQ(t.Encode("h \xC3\xA9", false, false),
            (Ids{kMarkerH, kMarker, kByte0 + 0xC3, kByte0 + 0xA9}));
  EXPECT_EQ(t.Decode(t.Encode("h \xC3\xA9", false, false)), "h \xC3\xA9");
  // Streaming pieces keep the leading space; Decode removes it once.
  EXPECT_EQ(t.TokenPiece(kMarkerHe), " he");
  EXPECT_EQ(t.TokenPiece(kByte0 + 0xC3), "\xC3");
  EXPECT_EQ(t.Decode(Ids{kMarkerHe, kMarkerHe}), "he he");
  // Empty text stays empty (no lone space piece); BOS by default with add_special.
  EXPECT_EQ(t.Encode("", false, false), Ids{});
  EXPECT_TRUE(t.add_bos());
  EXPECT_EQ(t.Encode("hello", true, false), (Ids{kBos, kMarkerHe, kLlo}));
  EXPECT_EQ(t.Decode(Ids{kBos, kMarkerHe, kLlo}), "hello");
}

TEST(TokenizerSpm, SpecialTokensAndInvalidUtf8) {
  auto tok = Load(SpmSpec());
  ASSERT_TRUE(tok.has_value());
  const Tokenizer& t = **tok;
  // With parse_special, "</s>" is EOS and the text after it gets a space prefix.
  EXPECT_EQ(t.Encode("hello</s>hello", false, true), (Ids{kMarkerHe, kLlo, kEos, kMarkerHe, kLlo}));
  // Without, it is text: ▁ < / s > as pieces or bytes.
  Ids plain = t.Encode("</s>", false, false);
  EXPECT_EQ(plain, (Ids{kMarker, kByte0 + '<', kByte0 + '/', kByte0 + 's', kByte0 + '>'}));
  EXPECT_EQ(t.Decode(plain), "</s>");
  const std::string bad = "h\xFF\xC3 \xE2\x82";
  EXPECT_EQ(t.Decode(t.Encode(bad, false, false)), bad);
}

// WordPiece in the GGUF spelling: word starts carry ▁, continuations are bare.
VocabSpec BertSpec() {
  VocabSpec s;
  s.model = "bert";
  s.pre = "bert-bge";
  s.tokens = {"[PAD]",
              "[UNK]",
              "[CLS]",
              "[SEP]",
              "\xE2\x96\x81hello",
              "\xE2\x96\x81world",
              "\xE2\x96\x81un",
              "aff",
              "able",
              "\xE2\x96\x81!",
              "\xE2\x96\x81"
              "cafe",
              "\xE2\x96\x81\xE4\xB8\xAD",
              "s"};
  s.types = {3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  s.ids = {{"tokenizer.ggml.unknown_token_id", 1},
           {"tokenizer.ggml.cls_token_id", 2},
           {"tokenizer.ggml.seperator_token_id", 3},
           {"tokenizer.ggml.padding_token_id", 0}};
  return s;
}

TEST(TokenizerWordPiece, GreedyLongestMatch) {
  auto tok = Load(BertSpec());
  ASSERT_TRUE(tok.has_value()) << tok.error().ToString();
  const Tokenizer& t = **tok;
  EXPECT_EQ(t.kind(), TokenizerKind::kWordPiece);
  // Lowercased; "," is its own word and unknown; "!" is its own word.
  EXPECT_EQ(t.Encode("Hello, World!", false, false), (Ids{4, 1, 5, 9}));
  // Continuations: ▁un + aff + able; ▁hello + s.
  EXPECT_EQ(t.Encode("unaffable  hellos", false, false), (Ids{6, 7, 8, 4, 12}));
  // Accents dropped after NFD: "Café" -> "cafe".
  EXPECT_EQ(t.Encode("Caf\xC3\xA9", false, false), (Ids{10}));
  // CJK ideographs are words of one character: 中 known, 文 unknown.
  EXPECT_EQ(t.Encode("\xE4\xB8\xAD\xE6\x96\x87", false, false), (Ids{11, 1}));
  // A word with an unmatched rest is one [UNK] (nothing of "hellox" kept).
  EXPECT_EQ(t.Encode("hellox world", false, false), (Ids{1, 5}));
  // [CLS] ... [SEP] with add_special.
  EXPECT_EQ(t.Encode("hello", true, false), (Ids{2, 4, 3}));
  EXPECT_EQ(t.Encode("", true, false), (Ids{2, 3}));
  // Special text only with parse_special.
  EXPECT_EQ(t.Encode("[SEP]", false, true), (Ids{3}));
  EXPECT_EQ(t.Encode("[SEP]", false, false), (Ids{1, 1, 1}));  // "[" "sep" "]"
  EXPECT_EQ(t.Decode(Ids{2, 4, 12, 5, 3}), "hellos world");
  // Invalid UTF-8 and control characters are dropped, not fatal.
  EXPECT_EQ(t.Encode("\xFFhello\x01\xC3", false, false), (Ids{4}));
}

TEST(TokenizerWordPiece, HuggingFaceSpelling) {
  VocabSpec s;
  s.model = "bert";
  s.tokens = {"[UNK]", "hello", "##s", "un", "##aff", "##able", "[CLS]", "[SEP]"};
  s.types = {3, 1, 1, 1, 1, 1, 3, 3};
  s.ids = {{"tokenizer.ggml.unknown_token_id", 0},
           {"tokenizer.ggml.cls_token_id", 6},
           {"tokenizer.ggml.seperator_token_id", 7}};
  auto tok = Load(s);
  ASSERT_TRUE(tok.has_value()) << tok.error().ToString();
  EXPECT_EQ((*tok)->Encode("unaffable hellos ss", true, false), (Ids{6, 3, 4, 5, 1, 2, 0, 7}));
  EXPECT_EQ((*tok)->Decode(Ids{3, 4, 5, 1, 2}), "unaffable hellos");
}

TEST(TokenizerLoad, Errors) {
  {
    VocabSpec s = BpeSpec("gpt-2");
    s.model = "rwkv";
    auto tok = Load(s);
    ASSERT_FALSE(tok.has_value());
    EXPECT_EQ(tok.error().code(), Status::Code::kUnsupported);
    EXPECT_NE(tok.error().message().find("rwkv"), std::string::npos);
  }
  {
    auto tok = Load(BpeSpec("no-such-pre"));
    ASSERT_FALSE(tok.has_value());
    EXPECT_EQ(tok.error().code(), Status::Code::kUnsupported);
    EXPECT_NE(tok.error().message().find("no-such-pre"), std::string::npos);
  }
  {
    VocabSpec s = BpeSpec("gpt-2");
    s.tokens.clear();
    s.types.clear();
    auto tok = Load(s);
    ASSERT_FALSE(tok.has_value());
    EXPECT_EQ(tok.error().code(), Status::Code::kNotFound);
  }
  {
    VocabSpec s = SpmSpec();
    s.scores.pop_back();
    auto tok = Load(s);
    ASSERT_FALSE(tok.has_value());
    EXPECT_EQ(tok.error().code(), Status::Code::kCorruption);
  }
  {
    VocabSpec s = SpmSpec();
    s.types.push_back(1);
    auto tok = Load(s);
    ASSERT_FALSE(tok.has_value());
    EXPECT_EQ(tok.error().code(), Status::Code::kCorruption);
  }
  {
    VocabSpec s = BpeSpec("gpt-2");
    s.merges.push_back("nospace");
    auto tok = Load(s);
    ASSERT_FALSE(tok.has_value());
    EXPECT_EQ(tok.error().code(), Status::Code::kCorruption);
    EXPECT_NE(tok.error().message().find("merges[6]"), std::string::npos);
  }
  {
    // tokenizer.ggml.model missing entirely.
    GgufWriter w;
    ASSERT_TRUE(w.Add("general.name", WriterValue::String("x")).ok());
    std::string bytes = w.Build();
    auto file = gguf::OpenGgufFromMemory(bytes);
    ASSERT_TRUE(file.has_value());
    auto tok = Tokenizer::FromGguf(**file);
    ASSERT_FALSE(tok.has_value());
    EXPECT_EQ(tok.error().code(), Status::Code::kNotFound);
  }
  {
    // Special ids outside the vocabulary are treated as absent.
    VocabSpec s = BpeSpec("gpt-2");
    s.ids = {{"tokenizer.ggml.bos_token_id", 999999}};
    s.flags = {{"tokenizer.ggml.add_bos_token", true}};
    auto tok = Load(s);
    ASSERT_TRUE(tok.has_value());
    EXPECT_EQ((*tok)->bos_id(), -1);
    EXPECT_EQ((*tok)->Encode("hello", true, false), (Ids{kHello}));
  }
}

TEST(TokenizerBpe, LongInputWithoutSpaces) {
  // A long run of one character: merging must stay fast (heap, not rescans)
  // and the regex must not overflow its stack.
  auto tok = Load(BpeSpec("gpt-2"));
  ASSERT_TRUE(tok.has_value());
  std::string text(200000, 'l');
  Ids ids = (*tok)->Encode(text, false, false);
  EXPECT_EQ(ids.size(), 100000u);
  EXPECT_EQ((*tok)->Decode(ids), text);
  std::string spaces(100000, ' ');
  spaces += "x";
  EXPECT_EQ((*tok)->Decode((*tok)->Encode(spaces, false, false)), spaces);
}

TEST(TokenizerStreaming, CompleteUtf8Prefix) {
  EXPECT_EQ(CompleteUtf8Prefix(""), 0u);
  EXPECT_EQ(CompleteUtf8Prefix("abc"), 3u);
  EXPECT_EQ(CompleteUtf8Prefix("a\xC3"), 1u);
  EXPECT_EQ(CompleteUtf8Prefix("a\xC3\xA9"), 3u);
  EXPECT_EQ(CompleteUtf8Prefix("\xF0\x9F\x98"), 0u);
  EXPECT_EQ(CompleteUtf8Prefix("\xF0\x9F\x98\x80"), 4u);
  EXPECT_EQ(CompleteUtf8Prefix("x\xE2\x82"), 1u);
  // Never valid: not held back.
  EXPECT_EQ(CompleteUtf8Prefix("a\xFF"), 2u);
  EXPECT_EQ(CompleteUtf8Prefix("\x80\x80\x80\x80\x80"), 5u);
  // Streaming the byte tokens of an emoji one at a time.
  auto tok = Load(BpeSpec("gpt-2"));
  ASSERT_TRUE(tok.has_value());
  const std::string text = "h\xF0\x9F\x98\x80!";
  std::string pending, shown;
  for (int32_t id : (*tok)->Encode(text, false, false)) {
    pending += (*tok)->TokenPiece(id);
    size_t n = CompleteUtf8Prefix(pending);
    shown += pending.substr(0, n);
    pending.erase(0, n);
    EXPECT_EQ(CompleteUtf8Prefix(shown), shown.size());
  }
  EXPECT_EQ(shown, text);
  EXPECT_TRUE(pending.empty());
}

TEST(TokenizerBpe, ConcurrentEncode) {
  auto tok = Load(BpeSpec("llama-bpe"));
  ASSERT_TRUE(tok.has_value());
  std::string text;
  for (int i = 0; i < 200; ++i) text += "hello world 12345 <tool> \xC3\xA9\n";
  const Ids want = (*tok)->Encode(text, true, true);
  std::vector<Ids> got(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < 20; ++k) got[i] = (*tok)->Encode(text, true, true);
    });
  }
  for (auto& th : threads) th.join();
  for (const Ids& g : got) EXPECT_EQ(g, want);
}

}  // namespace
}  // namespace xnai::engine
