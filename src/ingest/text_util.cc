#include "ingest/text_util.h"

#include <algorithm>
#include <cstring>

namespace xnai::ingest {

namespace {

// Windows-1252 bytes 0x80..0x9F. The five undefined bytes map to the C1
// control of the same value, which CleanText then drops.
constexpr char32_t kCp1252High[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,  // 80-87
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,  // 88-8F
    0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,  // 90-97
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,  // 98-9F
};

constexpr int kMaxSectionComponentCodePoints = 200;

bool IsBlank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Cuts valid UTF-8 to at most `max_cp` code points.
std::string TruncateCodePoints(std::string s, int64_t max_cp) {
  size_t pos = 0;
  for (int64_t n = 0; n < max_cp && pos < s.size(); ++n) pos += Utf8SequenceLength(s[pos]);
  if (pos < s.size()) s.resize(pos);
  return s;
}

constexpr uint64_t kOnes = 0x0101010101010101ull;
constexpr uint64_t kHighBits = 0x8080808080808080ull;

// Length of the well-formed UTF-8 sequence starting at p[0] (a byte >= 0x80),
// or 0 when it is not one (bad lead, bad continuation, overlong, surrogate,
// above U+10FFFF, or cut off by the end).
size_t WellFormedSequenceLength(const unsigned char* p, size_t available) {
  const unsigned char c = p[0];
  size_t len;
  unsigned char lo = 0x80;  // allowed range of the second byte
  unsigned char hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (len > available) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if ((p[k] & 0xC0) != 0x80) return 0;
  }
  return len;
}

bool IsUnusualControl(unsigned char c) {
  return (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v' && c != 0x1B) ||
         c == 0x7F;
}

}  // namespace

bool IsValidUtf8(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    if (i + 8 <= n) {  // ASCII fast path: eight bytes without a high bit
      uint64_t word;
      std::memcpy(&word, p + i, 8);
      if ((word & kHighBits) == 0) {
        i += 8;
        continue;
      }
    }
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    size_t len = WellFormedSequenceLength(p + i, n - i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

// Text is mostly ASCII without control characters, so eight bytes
// are checked at a time and only a word holding a control character, DEL or
// a non-ASCII byte is looked at byte by byte.
TextScan ScanText(std::string_view bytes) {
  TextScan scan;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    if (i + 8 <= n) {
      uint64_t word;
      std::memcpy(&word, p + i, 8);
      // For ASCII bytes, (b - 0x20) borrows into the high bit exactly when
      // b < 0x20, and (b ^ 0x7F) is zero exactly for DEL.
      const uint64_t below_space = (word - 0x20 * kOnes) & ~word & kHighBits;
      const uint64_t del = word ^ (0x7F * kOnes);
      const uint64_t is_del = (del - kOnes) & ~del & kHighBits;
      if (((word & kHighBits) | below_space | is_del) == 0) {
        i += 8;
        continue;
      }
    }
    const unsigned char c = p[i];
    if (c < 0x80) {
      if (c == 0) scan.has_nul = true;
      if (IsUnusualControl(c)) ++scan.controls;
      ++i;
      continue;
    }
    if (scan.valid_utf8) {
      size_t len = WellFormedSequenceLength(p + i, n - i);
      if (len != 0) {
        i += len;
        continue;
      }
      scan.valid_utf8 = false;
    }
    ++i;  // a byte >= 0x80 is never NUL nor an unusual control character
  }
  return scan;
}

char32_t DecodeCodePoint(std::string_view utf8, size_t& pos) {
  auto c = static_cast<unsigned char>(utf8[pos]);
  int len = Utf8SequenceLength(c);
  if (len == 1 || pos + len > utf8.size()) {
    ++pos;
    return c < 0x80 ? c : 0xFFFD;  // a stray continuation byte: defensive only
  }
  char32_t cp = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
  for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(utf8[pos + k]) & 0x3F);
  pos += len;
  return cp;
}

std::string DecodeToUtf8(std::string_view bytes) {
  if (IsValidUtf8(bytes)) {
    if (bytes.substr(0, 3) == "\xEF\xBB\xBF") bytes.remove_prefix(3);
    return std::string(bytes);
  }
  std::string out;
  out.reserve(bytes.size() + bytes.size() / 8);
  for (char ch : bytes) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out.push_back(ch);
    } else if (c < 0xA0) {
      AppendUtf8(out, kCp1252High[c - 0x80]);
    } else {
      AppendUtf8(out, c);  // Latin-1 == U+00A0..U+00FF
    }
  }
  return out;
}

std::string CleanText(std::string_view utf8) {
  std::string out;
  out.reserve(utf8.size());
  const auto* p = reinterpret_cast<const unsigned char*>(utf8.data());
  const size_t n = utf8.size();
  size_t pos = 0;
  while (pos < n) {
    // Most text is printable ASCII and newlines, kept as they are: find the
    // whole run (eight bytes at a time while there is no control character,
    // DEL or non-ASCII byte) and append it at once.
    size_t run_end = pos;
    for (;;) {
      if (run_end + 8 <= n) {
        uint64_t word;
        std::memcpy(&word, p + run_end, 8);
        const uint64_t below_space = (word - 0x20 * kOnes) & ~word & kHighBits;
        const uint64_t del = word ^ (0x7F * kOnes);
        const uint64_t is_del = (del - kOnes) & ~del & kHighBits;
        if (((word & kHighBits) | below_space | is_del) == 0) {
          run_end += 8;
          continue;
        }
      }
      if (run_end < n && ((p[run_end] >= 0x20 && p[run_end] < 0x7F) || p[run_end] == '\n')) {
        ++run_end;
        continue;
      }
      break;
    }
    if (run_end > pos) {
      out.append(utf8.data() + pos, run_end - pos);
      pos = run_end;
      if (pos >= n) break;
    }
    auto c = static_cast<unsigned char>(utf8[pos]);
    if (c < 0x80) {
      ++pos;
      if (c == '\n') {
        out.push_back('\n');
      } else if (c == '\r') {
        if (pos < utf8.size() && utf8[pos] == '\n') ++pos;
        out.push_back('\n');
      } else if (c == '\f') {
        out.push_back('\n');  // page break
      } else if (c == '\t' || c == '\v') {
        out.push_back(' ');
      } else if (c >= 0x20 && c != 0x7F) {
        out.push_back(static_cast<char>(c));
      }
      continue;  // every other control, including the snippet markers, is dropped
    }
    size_t start = pos;
    char32_t cp = DecodeCodePoint(utf8, pos);
    if (cp >= 0x80 && cp <= 0x9F) continue;  // C1 controls
    if (cp == 0xFEFF) continue;              // BOM / zero-width no-break space
    if (cp == 0x2028 || cp == 0x2029) {
      out.push_back('\n');
      continue;
    }
    if (cp == 0xFFFD && pos - start == 1) {
      AppendUtf8(out, cp);  // stray byte in supposedly valid input: keep output valid
      continue;
    }
    out.append(utf8.substr(start, pos - start));
  }
  return out;
}

int64_t CountCodePoints(std::string_view utf8) {
  int64_t n = 0;
  for (char c : utf8) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

Utf8Index::Utf8Index(std::string_view utf8) : text_(utf8) {
  int64_t cp = 0;
  for (size_t i = 0; i < utf8.size(); ++i) {
    if ((static_cast<unsigned char>(utf8[i]) & 0xC0) == 0x80) continue;
    if (cp % kStride == 0) checkpoints_.push_back(i);
    ++cp;
  }
  total_code_points_ = cp;
  if (cp % kStride == 0) checkpoints_.push_back(utf8.size());
}

size_t Utf8Index::ByteOffset(int64_t cp) const {
  cp = std::clamp<int64_t>(cp, 0, total_code_points_);
  size_t pos = checkpoints_[static_cast<size_t>(cp / kStride)];
  for (int64_t k = cp % kStride; k > 0; --k) {
    pos += Utf8SequenceLength(static_cast<unsigned char>(text_[pos]));
  }
  return std::min(pos, text_.size());
}

int64_t Utf8Index::CodePointOffset(size_t byte) const {
  byte = std::min(byte, text_.size());
  auto it = std::upper_bound(checkpoints_.begin(), checkpoints_.end(), byte);
  size_t idx = static_cast<size_t>(it - checkpoints_.begin()) - 1;  // checkpoints_[0] == 0
  int64_t cp = static_cast<int64_t>(idx) * kStride;
  cp += CountCodePoints(text_.substr(checkpoints_[idx], byte - checkpoints_[idx]));
  return cp;
}

std::string CollapseWhitespace(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  for (char c : text) {
    if (IsBlank(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

namespace {

struct NamedEntity {
  std::string_view name;
  char32_t cp;
};

constexpr NamedEntity kNamedEntities[] = {
    {"amp", '&'},      {"lt", '<'},       {"gt", '>'},       {"quot", '"'},     {"apos", '\''},
    {"nbsp", 0xA0},    {"copy", 0xA9},    {"reg", 0xAE},     {"trade", 0x2122}, {"hellip", 0x2026},
    {"mdash", 0x2014}, {"ndash", 0x2013}, {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"ldquo", 0x201C},
    {"rdquo", 0x201D}, {"laquo", 0xAB},   {"raquo", 0xBB},   {"euro", 0x20AC},  {"pound", 0xA3},
    {"yen", 0xA5},     {"cent", 0xA2},    {"sect", 0xA7},    {"para", 0xB6},    {"middot", 0xB7},
    {"bull", 0x2022},  {"deg", 0xB0},     {"times", 0xD7},   {"divide", 0xF7},  {"eacute", 0xE9},
    {"egrave", 0xE8},  {"agrave", 0xE0},  {"ccedil", 0xE7},  {"uuml", 0xFC},    {"ouml", 0xF6},
    {"auml", 0xE4},    {"szlig", 0xDF},   {"shy", 0xAD},
};

bool IsAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// Decodes the character reference at html[pos] == '&'; on success appends it,
// advances pos past it and returns true.
bool DecodeEntity(std::string_view html, size_t& pos, std::string& out) {
  size_t i = pos + 1;
  if (i < html.size() && html[i] == '#') {
    ++i;
    bool hex = i < html.size() && (html[i] == 'x' || html[i] == 'X');
    if (hex) ++i;
    char32_t value = 0;
    size_t digits = 0;
    while (i < html.size() && digits < 8) {
      char c = html[i];
      int d = (c >= '0' && c <= '9')          ? c - '0'
              : hex && (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : hex && (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                              : -1;
      if (d < 0) break;
      value = value * (hex ? 16 : 10) + static_cast<char32_t>(d);
      ++digits;
      ++i;
    }
    if (digits == 0) return false;
    if (i < html.size() && html[i] == ';') ++i;
    AppendUtf8(out, value == 0 ? 0xFFFD : value);
    pos = i;
    return true;
  }
  size_t start = i;
  while (i < html.size() && i - start < 10 && IsAsciiAlnum(html[i])) ++i;
  std::string_view name = html.substr(start, i - start);
  for (const NamedEntity& e : kNamedEntities) {
    if (e.name == name) {
      if (i < html.size() && html[i] == ';') ++i;
      AppendUtf8(out, e.cp);
      pos = i;
      return true;
    }
  }
  return false;
}

bool IsBlockTagName(std::string_view name) {
  static constexpr std::string_view kBlockTags[] = {
      "p",       "div",     "br", "li", "ul", "ol",     "tr",  "table",
      "h1",      "h2",      "h3", "h4", "h5", "h6",     "pre", "blockquote",
      "section", "article", "dt", "dd", "hr", "header", "main"};
  for (std::string_view t : kBlockTags) {
    if (t == name) return true;
  }
  return false;
}

}  // namespace

std::string StripMarkup(std::string_view html) {
  std::string out;
  out.reserve(html.size());
  size_t pos = 0;
  while (pos < html.size()) {
    char c = html[pos];
    if (c == '&') {
      if (!DecodeEntity(html, pos, out)) {
        out.push_back('&');
        ++pos;
      }
      continue;
    }
    if (c != '<') {
      out.push_back(c);
      ++pos;
      continue;
    }
    if (html.substr(pos, 4) == "<!--") {
      size_t end = html.find("-->", pos + 4);
      pos = end == std::string_view::npos ? html.size() : end + 3;
      continue;
    }
    size_t name_start = pos + 1;
    bool closing = name_start < html.size() && html[name_start] == '/';
    if (closing) ++name_start;
    size_t name_end = name_start;
    while (name_end < html.size() && IsAsciiAlnum(html[name_end])) ++name_end;
    bool is_tag = name_end > name_start || (name_start < html.size() &&
                                            (html[name_start] == '!' || html[name_start] == '?'));
    if (!is_tag) {  // a lone '<' in text
      out.push_back('<');
      ++pos;
      continue;
    }
    std::string name;
    for (size_t k = name_start; k < name_end; ++k) name.push_back(AsciiLower(html[k]));
    size_t tag_end = html.find('>', name_end);
    pos = tag_end == std::string_view::npos ? html.size() : tag_end + 1;
    out.push_back(IsBlockTagName(name) ? '\n' : ' ');
    if (!closing && (name == "script" || name == "style")) {
      // Skip to the matching close tag, case-insensitively.
      std::string close = "</" + name;
      size_t k = pos;
      while (k < html.size()) {
        k = html.find('<', k);
        if (k == std::string_view::npos) break;
        bool match = true;
        for (size_t j = 0; j < close.size(); ++j) {
          if (k + j >= html.size() || AsciiLower(html[k + j]) != close[j]) {
            match = false;
            break;
          }
        }
        if (match) break;
        ++k;
      }
      if (k == std::string_view::npos || k >= html.size()) {
        pos = html.size();
      } else {
        size_t end = html.find('>', k);
        pos = end == std::string_view::npos ? html.size() : end + 1;
      }
    }
  }
  return out;
}

void DocumentBuilder::AddHeading(std::string_view text, int level) {
  std::string clean = CollapseWhitespace(CleanText(text));
  if (clean.empty()) return;
  level = std::clamp(level, 1, 6);
  while (!headings_.empty() && headings_.back().level >= level) headings_.pop_back();
  headings_.push_back({level, TruncateCodePoints(clean, kMaxSectionComponentCodePoints)});
  section_.clear();
  for (const Heading& h : headings_) {
    if (!section_.empty()) section_ += " > ";
    section_ += h.text;
  }
  if (level == 1 && first_h1_.empty()) first_h1_ = clean;
  if (first_any_heading_.empty()) first_any_heading_ = clean;
  AddBlock(clean, Block::Kind::kHeading, 0);
}

bool DocumentBuilder::AddParagraph(std::string_view text, int32_t page) {
  return AddBlock(CleanText(text), Block::Kind::kParagraph, page);
}

bool DocumentBuilder::AddBlock(std::string_view clean, Block::Kind kind, int32_t page) {
  // Normalize lines: trailing blanks trimmed, blank lines dropped, leading
  // blank space of the block dropped.
  std::string body;
  body.reserve(clean.size());
  size_t pos = 0;
  while (pos <= clean.size()) {
    size_t nl = clean.find('\n', pos);
    if (nl == std::string_view::npos) nl = clean.size();
    std::string_view line = clean.substr(pos, nl - pos);
    while (!line.empty() && line.back() == ' ') line.remove_suffix(1);
    if (body.empty()) {
      while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    }
    if (!line.empty()) {
      if (!body.empty()) body.push_back('\n');
      body.append(line);
    }
    pos = nl + 1;
  }
  if (body.empty()) return false;
  if (!doc_.text.empty()) {
    doc_.text += "\n\n";
    text_code_points_ += 2;
  }
  Block block;
  block.kind = kind;
  block.begin = text_code_points_;
  text_code_points_ += CountCodePoints(body);
  block.end = text_code_points_;
  block.section = section_;
  block.page = page;
  doc_.text += body;
  doc_.blocks.push_back(std::move(block));
  return true;
}

void AddTextParagraphs(DocumentBuilder& builder, std::string_view text, int32_t page) {
  std::string paragraph;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    bool blank = std::all_of(line.begin(), line.end(), [](char c) { return IsBlank(c); });
    if (blank) {
      if (!paragraph.empty()) builder.AddParagraph(paragraph, page);
      paragraph.clear();
    } else {
      if (!paragraph.empty()) paragraph.push_back('\n');
      paragraph.append(line);
    }
    pos = nl + 1;
  }
  if (!paragraph.empty()) builder.AddParagraph(paragraph, page);
}

}  // namespace xnai::ingest
