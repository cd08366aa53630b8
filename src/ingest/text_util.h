// Text helpers shared by the parsers and the chunker: encoding repair, text
// cleaning, code point counting and offset conversion, and DocumentBuilder,
// which assembles a ParsedDocument block by block so every parser produces the
// same invariants (clean UTF-8, blocks separated by "\n\n", code point offsets).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/utf8.h"
#include "ingest/parse.h"

namespace xnai::ingest {

// True if `bytes` is well-formed UTF-8 (no overlong forms, no surrogates,
// nothing above U+10FFFF).
bool IsValidUtf8(std::string_view bytes);

// What one pass over a whole buffer learns about whether it is text.
struct TextScan {
  bool has_nul = false;
  // C0 controls other than \t \n \r \f \v and ESC (colour codes in logs), plus DEL.
  size_t controls = 0;
  bool valid_utf8 = true;  // same verdict as IsValidUtf8
};

// NULs, unusual control characters and UTF-8 validity of `bytes` in one
// pass, eight ASCII bytes at a time (fast enough to run over every file in
// full, where libmagic only sees the head).
TextScan ScanText(std::string_view bytes);

// Returns `bytes` as UTF-8: valid UTF-8 is kept (a leading BOM removed);
// anything else is decoded as Windows-1252 (a superset of Latin-1 for the
// printable range), which is what undeclared 8-bit text almost always is.
std::string DecodeToUtf8(std::string_view bytes);

// Cleans valid UTF-8 text for indexing: "\r\n" and "\r" become "\n", U+2028/
// U+2029 become "\n", tab and other blank controls become a space, every other
// C0/C1 control (including the snippet markers \x02 \x03), DEL and U+FEFF are
// dropped. Output is valid UTF-8 when the input is.
std::string CleanText(std::string_view utf8);

// Number of code points in valid UTF-8 (counts lead bytes).
int64_t CountCodePoints(std::string_view utf8);

// Length in bytes of the UTF-8 sequence starting with `lead` (1 for a
// continuation or invalid byte, so callers always make progress).
inline int Utf8SequenceLength(unsigned char lead) {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

// Decodes the code point at byte `pos` of valid UTF-8 and advances `pos`.
char32_t DecodeCodePoint(std::string_view utf8, size_t& pos);

// Converts between code point and byte offsets of one UTF-8 string in
// O(kStride) per lookup, keeping a checkpoint every kStride code points (so a
// 64 MB text costs kilobytes, not a code point -> byte table). The string
// must outlive the index.
class Utf8Index {
 public:
  explicit Utf8Index(std::string_view utf8);
  int64_t code_points() const { return total_code_points_; }
  // Byte offset of code point `cp` (clamped to [0, code_points()]).
  size_t ByteOffset(int64_t cp) const;
  // Code point offset of byte `byte`, which must be at a sequence start or at
  // the end of the string.
  int64_t CodePointOffset(size_t byte) const;

 private:
  static constexpr int64_t kStride = 256;
  std::string_view text_;
  std::vector<size_t> checkpoints_;  // byte offset of code point k * kStride
  int64_t total_code_points_ = 0;
};

// Collapses every run of whitespace to one space and trims both ends.
std::string CollapseWhitespace(std::string_view text);

// Removes markup from an HTML fragment without building a tree (linear time,
// no recursion): comments and the content of script/style are dropped, tags
// become a space (block-level tags a newline), and the common named entities
// and every numeric character reference are decoded. For raw HTML inside
// markdown and as the fallback for HTML too hostile to build a tree from.
std::string StripMarkup(std::string_view html);

// Assembles a ParsedDocument. Every piece of text passes through CleanText;
// inside a block, trailing spaces are trimmed from each line and runs of blank
// lines collapse to one newline, so "\n\n" only ever separates blocks. Blank
// blocks are dropped.
class DocumentBuilder {
 public:
  explicit DocumentBuilder(std::string_view media_type) { doc_.media_type = media_type; }

  // A heading of `level` (1 = top): updates the section path ("A > B"),
  // dropping headings at the same or deeper level, then adds a heading block
  // whose section is the new path. Blank headings are ignored.
  void AddHeading(std::string_view text, int level);
  // A paragraph-like block in the current section. Returns false if blank.
  bool AddParagraph(std::string_view text, int32_t page = 0);
  // Leaves any section (e.g. at a new PDF page when headings are unknown).
  void ResetSections() {
    headings_.clear();
    section_.clear();
  }

  const std::string& section() const { return section_; }
  // Text of the first level-1 heading, and of the first heading of any level.
  const std::string& first_h1() const { return first_h1_; }
  const std::string& first_heading() const { return first_any_heading_; }
  bool empty() const { return doc_.blocks.empty(); }
  ParsedDocument& doc() { return doc_; }
  ParsedDocument Finish() { return std::move(doc_); }

 private:
  bool AddBlock(std::string_view text, Block::Kind kind, int32_t page);

  struct Heading {
    int level;
    std::string text;
  };
  ParsedDocument doc_;
  int64_t text_code_points_ = 0;
  std::vector<Heading> headings_;
  std::string section_;
  std::string first_h1_;
  std::string first_any_heading_;
};

// Splits cleaned plain text into paragraphs on blank lines (lines holding only
// whitespace count as blank) and adds each to `builder` on `page`.
void AddTextParagraphs(DocumentBuilder& builder, std::string_view text, int32_t page = 0);

}  // namespace xnai::ingest
