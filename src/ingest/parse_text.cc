// Plain text: paragraphs are separated by blank lines; a short first line is
// taken as the title (the common shape of READMEs, notes and RFC-like text).
#include "ingest/parse.h"
#include "ingest/text_util.h"

namespace xnai::ingest {

namespace {
constexpr int64_t kMaxTitleCodePoints = 120;
}  // namespace

Result<ParsedDocument> ParseText(std::string_view bytes) {
  std::string text = CleanText(DecodeToUtf8(bytes));
  DocumentBuilder builder(kTextPlain);
  AddTextParagraphs(builder, text);
  ParsedDocument doc = builder.Finish();

  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = CollapseWhitespace(std::string_view(text).substr(pos, nl - pos));
    if (!line.empty()) {
      if (CountCodePoints(line) <= kMaxTitleCodePoints) doc.title = std::move(line);
      break;
    }
    pos = nl + 1;
  }
  return doc;
}

}  // namespace xnai::ingest
