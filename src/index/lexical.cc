#include "index/lexical.h"

#include <cstdint>
#include <unordered_set>
#include <utility>

namespace xnai::index {

namespace {

bool IsAsciiWordByte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// Decodes one UTF-8 sequence at text[pos]. Returns its length (1-4) and sets
// *cp, or 0 for an invalid sequence (bad lead byte, truncated, overlong,
// surrogate, beyond U+10FFFF).
size_t DecodeUtf8(std::string_view text, size_t pos, char32_t* cp) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  unsigned char lead = byte(pos);
  size_t len;
  char32_t value;
  char32_t min_value;
  if (lead < 0x80) {
    *cp = lead;
    return 1;
  } else if ((lead & 0xE0) == 0xC0) {
    len = 2, value = lead & 0x1F, min_value = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    len = 3, value = lead & 0x0F, min_value = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    len = 4, value = lead & 0x07, min_value = 0x10000;
  } else {
    return 0;
  }
  if (pos + len > text.size()) return 0;
  for (size_t i = 1; i < len; ++i) {
    unsigned char c = byte(pos + i);
    if ((c & 0xC0) != 0x80) return 0;
    value = (value << 6) | (c & 0x3F);
  }
  if (value < min_value || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return 0;
  *cp = value;
  return len;
}

// Non-ASCII code points that separate words: common punctuation, spaces and
// symbols (FTS5's unicode61 tokenizer skips them anyway). Without this a
// query of only "…" or an emoji would become a phrase that can never match
// instead of the clear "no searchable words". Letters, digits and marks of
// every script stay word characters.
bool IsSeparatorCodePoint(char32_t cp) {
  if (cp >= 0x80 && cp <= 0xBF) {
    // C1 controls and Latin-1 punctuation/symbols, but not the letters and
    // numbers among them (ª ² ³ µ ¹ º ¼ ½ ¾).
    switch (cp) {
      case 0xAA:
      case 0xB2:
      case 0xB3:
      case 0xB5:
      case 0xB9:
      case 0xBA:
      case 0xBC:
      case 0xBD:
      case 0xBE:
        return false;
      default:
        return true;
    }
  }
  struct Range {
    char32_t first, last;
  };
  static constexpr Range kRanges[] = {
      {0xD7, 0xD7},      // multiplication sign
      {0xF7, 0xF7},      // division sign
      {0x2000, 0x206F},  // general punctuation: spaces, dashes, quotes, ZWJ, ...
      {0x20A0, 0x20CF},  // currency symbols
      {0x2190, 0x245F},  // arrows, math operators, technical symbols
      {0x2500, 0x2BFF},  // box drawing, shapes, misc symbols, dingbats
      {0x2E00, 0x2E7F},  // supplemental punctuation
      {0x3000, 0x3004},  // CJK space and punctuation
      {0x3008, 0x3020},  // CJK brackets and marks
      {0x3030, 0x3030},  // wavy dash
      {0x303D, 0x303F},   {0xFE00, 0xFE0F},  // variation selectors (emoji presentation)
      {0xFE10, 0xFE1F},                      // vertical forms
      {0xFE30, 0xFE6F},                      // CJK compatibility and small forms
      {0xFEFF, 0xFEFF},                      // byte order mark
      {0xFF01, 0xFF0F},                      // fullwidth ASCII punctuation
      {0xFF1A, 0xFF20},   {0xFF3B, 0xFF40},
      {0xFF5B, 0xFF65},   {0xFFF0, 0xFFFF},  // specials, including the replacement character
      {0x1F000, 0x1FAFF},                    // emoji and pictographs
      {0xE0000, 0xE007F},                    // tags
  };
  for (const Range& range : kRanges) {
    if (cp >= range.first && cp <= range.last) return true;
  }
  return false;
}

// Splits `text` into words (see BuildFtsQuery) and calls on_word(word) for
// each; stops early when on_word returns false.
template <typename OnWord>
void ForEachWord(std::string_view text, OnWord&& on_word) {
  std::string word;
  auto flush = [&]() -> bool {
    if (word.empty()) return true;
    bool more = on_word(std::move(word));
    word.clear();
    return more;
  };
  size_t pos = 0;
  while (pos < text.size()) {
    auto c = static_cast<unsigned char>(text[pos]);
    if (c < 0x80) {
      if (IsAsciiWordByte(c)) {
        // ASCII case folding here makes deduplication case-insensitive;
        // FTS5 folds case itself, so nothing is lost.
        word += static_cast<char>((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
      } else if (!flush()) {
        return;
      }
      ++pos;
      continue;
    }
    char32_t cp = 0;
    size_t len = DecodeUtf8(text, pos, &cp);
    if (len == 0) {
      // An invalid byte separates words and is dropped: FTS5 never sees it.
      if (!flush()) return;
      ++pos;
      continue;
    }
    if (IsSeparatorCodePoint(cp)) {
      if (!flush()) return;
    } else {
      word.append(text.substr(pos, len));
    }
    pos += len;
  }
  flush();
}

// An FTS5 string: double quotes around, embedded quotes doubled. Inside a
// string every FTS5 operator is plain text.
void AppendQuoted(std::string* out, std::string_view term) {
  out->push_back('"');
  for (char c : term) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

}  // namespace

Result<std::string> BuildFtsQuery(std::string_view user_text, int max_terms) {
  if (max_terms < 1) return Err(Status::InvalidArgument("max_terms must be at least 1"));
  std::unordered_set<std::string> seen;
  std::string expression;
  int terms = 0;
  ForEachWord(user_text, [&](std::string word) {
    if (!seen.insert(word).second) return true;
    if (!expression.empty()) expression += " OR ";
    AppendQuoted(&expression, word);
    return ++terms < max_terms;
  });
  if (terms == 0) return Err(Status::InvalidArgument("query has no searchable words"));
  return expression;
}

Result<std::vector<store::SearchHit>> LexicalSearch(store::Store& store, const LexicalQuery& q) {
  auto expression = BuildFtsQuery(q.text);
  if (!expression) return Err(expression.error());
  store::SearchQuery query;
  query.fts_expression = std::move(*expression);
  query.collection = q.collection;
  query.k = q.k;
  return store.SearchChunks(query);
}

namespace {

// Walks a snippet, calling on_text(byte) for ordinary bytes and on_mark(open)
// at each balanced marker (stray end markers dropped, an unclosed mark closed
// at the end).
template <typename OnText, typename OnMark>
void WalkSnippet(std::string_view snippet, OnText&& on_text, OnMark&& on_mark) {
  bool open = false;
  for (char c : snippet) {
    if (c == store::kMarkBegin) {
      if (!open) on_mark(true);
      open = true;
    } else if (c == store::kMarkEnd) {
      if (open) on_mark(false);
      open = false;
    } else {
      on_text(c);
    }
  }
  if (open) on_mark(false);
}

}  // namespace

std::string SnippetToHtml(std::string_view snippet) {
  std::string out;
  out.reserve(snippet.size() + 32);
  WalkSnippet(
      snippet,
      [&](char c) {
        switch (c) {
          case '&':
            out += "&amp;";
            break;
          case '<':
            out += "&lt;";
            break;
          case '>':
            out += "&gt;";
            break;
          case '"':
            out += "&quot;";
            break;
          case '\'':
            out += "&#39;";
            break;
          default:
            out.push_back(c);
        }
      },
      [&](bool open) { out += open ? "<mark>" : "</mark>"; });
  return out;
}

std::string SnippetToAnsi(std::string_view snippet) {
  std::string out;
  out.reserve(snippet.size() + 32);
  WalkSnippet(
      snippet,
      [&](char c) {
        auto byte = static_cast<unsigned char>(c);
        if ((byte < 0x20 && c != '\n' && c != '\t') || byte == 0x7F) return;
        out.push_back(c);
      },
      [&](bool open) { out += open ? "\x1b[1m" : "\x1b[0m"; });
  return out;
}

std::string SnippetToPlain(std::string_view snippet) {
  std::string out;
  out.reserve(snippet.size());
  WalkSnippet(
      snippet, [&](char c) { out.push_back(c); }, [](bool) {});
  return out;
}

}  // namespace xnai::index
