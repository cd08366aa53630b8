// PDF through poppler-cpp: text per page in reading order, each page's
// paragraphs tagged with its 1-based number so citations can name the page.
#include <poppler-document.h>
#include <poppler-global.h>
#include <poppler-page.h>

#include <climits>
#include <exception>
#include <memory>
#include <mutex>

#include "ingest/parse.h"
#include "ingest/text_util.h"

namespace xnai::ingest {

namespace {

constexpr int64_t kMaxTitleCodePoints = 120;

// Poppler reports every oddity of a damaged file on stderr; the parser turns
// failure into a Status instead, so the chatter is noise.
void IgnorePopplerMessage(const std::string& /*message*/, void* /*closure*/) {}

// Poppler's document-level state is not documented as safe to use from
// several threads at once (its global parameters and font caches are shared),
// and a crash would take the server down, so PDFs are parsed one at a time.
std::mutex& PopplerMutex() {
  static std::mutex mu;
  return mu;
}

std::string ToUtf8(const poppler::ustring& s) {
  poppler::byte_array bytes = s.to_utf8();
  return CleanText(DecodeToUtf8(std::string_view(bytes.data(), bytes.size())));
}

std::string FirstShortLine(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string line = CollapseWhitespace(text.substr(pos, nl - pos));
    if (!line.empty()) {
      return CountCodePoints(line) <= kMaxTitleCodePoints ? line : std::string();
    }
    pos = nl + 1;
  }
  return "";
}

Result<ParsedDocument> ParsePdfLocked(std::string_view bytes) {
  if (bytes.size() > static_cast<size_t>(INT_MAX)) {
    return Err(Status::TooLarge("PDF over 2 GiB cannot be parsed"));
  }
  // load_from_raw_data does not copy: `bytes` outlives `document`.
  std::unique_ptr<poppler::document> document(
      poppler::document::load_from_raw_data(bytes.data(), static_cast<int>(bytes.size())));
  if (document == nullptr) return Err(Status::Unprocessable("corrupt or unreadable PDF"));
  if (document->is_locked()) return Err(Status::Unprocessable("encrypted PDF"));
  int pages = document->pages();
  if (pages <= 0) return Err(Status::Unprocessable("corrupt or unreadable PDF (no pages)"));

  DocumentBuilder builder(kApplicationPdf);
  for (int index = 0; index < pages; ++index) {
    std::unique_ptr<poppler::page> page(document->create_page(index));
    if (page == nullptr) continue;
    // Reading order, not physical layout: physical layout pads columns with
    // runs of spaces, which only hurts search.
    std::string text =
        ToUtf8(page->text(poppler::rectf(), poppler::page::non_raw_non_physical_layout));
    AddTextParagraphs(builder, text, index + 1);
  }
  if (builder.empty()) {
    return Err(Status::Unprocessable("PDF has no extractable text (scanned image?)"));
  }
  std::string title = CollapseWhitespace(ToUtf8(document->info_key("Title")));
  ParsedDocument doc = builder.Finish();
  doc.title = title.empty() ? FirstShortLine(doc.text) : title;
  return doc;
}

}  // namespace

Result<ParsedDocument> ParsePdf(std::string_view bytes) {
  static std::once_flag quiet;
  std::call_once(quiet, [] { poppler::set_debug_error_function(&IgnorePopplerMessage, nullptr); });
  std::lock_guard<std::mutex> lock(PopplerMutex());
  try {
    return ParsePdfLocked(bytes);
  } catch (const std::bad_alloc&) {
    return Err(Status::ResourceExhausted("out of memory parsing PDF"));
  } catch (const std::exception& e) {
    return Err(Status::Unprocessable(std::string("corrupt or unreadable PDF: ") + e.what()));
  }
}

}  // namespace xnai::ingest
