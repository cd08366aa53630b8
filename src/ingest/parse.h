// Parsers: bytes of a supported format -> plain text with its structure
// (title, sections with character offsets, PDF pages). Pure functions: no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace xnai::ingest {

// Media types the parsers handle.
inline constexpr std::string_view kTextPlain = "text/plain";
inline constexpr std::string_view kTextMarkdown = "text/markdown";
inline constexpr std::string_view kTextHtml = "text/html";
inline constexpr std::string_view kApplicationPdf = "application/pdf";

// A structural block of the extracted text. Offsets are in code points
// (not bytes) into ParsedDocument::text, [begin, end).
struct Block {
  enum class Kind { kHeading, kParagraph };
  Kind kind = Kind::kParagraph;
  int64_t begin = 0;
  int64_t end = 0;
  std::string section;  // heading path in force, e.g. "Install > Debian"; "" before any heading
  int32_t page = 0;     // 1-based for PDF, else 0
};

struct ParsedDocument {
  std::string title;          // from <title>, the first heading, PDF metadata, or ""
  std::string text;           // valid UTF-8, blocks separated by "\n\n", no control chars but \n
  std::vector<Block> blocks;  // in order, non-overlapping, covering every non-blank text span
  std::string media_type;
};

// Decides the media type from the content first, the extension second.
// Returns one of the four media types above, or Unsupported with a reason
// that names what the content looks like ("binary content (image/png)",
// "unsupported type application/zip"). Empty input is InvalidArgument.
Result<std::string> DetectMediaType(std::string_view filename, std::string_view bytes);

// Dispatches on media_type. Unprocessable for content that cannot be parsed
// (e.g. a corrupt PDF), with a reason.
Result<ParsedDocument> Parse(std::string_view media_type, std::string_view bytes);

Result<ParsedDocument> ParseText(std::string_view bytes);
Result<ParsedDocument> ParseMarkdown(std::string_view bytes);  // cmark-gfm; headings -> sections
Result<ParsedDocument> ParseHtml(std::string_view bytes);      // gumbo; drops script/style/nav/...
Result<ParsedDocument> ParsePdf(std::string_view bytes);       // poppler-cpp; one page at a time

}  // namespace xnai::ingest
