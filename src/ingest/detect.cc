// Media type detection: the content decides first (PDF signature, binary vs
// text, libmagic's opinion), the file name second (markdown vs plain text,
// HTML), because names lie more often than bytes do.
#include <magic.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "ingest/parse.h"
#include "ingest/text_util.h"

namespace xnai::ingest {

namespace {

// libmagic only needs the head of a file to name its type; on text it scans
// every byte it is given (with regexes), so a whole 1 MiB file cost more than
// parsing it. Whether the rest of the file is text is decided by our own scan
// of the whole buffer (ScanText), which is what catches binary in the middle.
constexpr size_t kMagicSniffBytes = 16 << 10;
// The PDF header may legally be preceded by junk within the first 1024 bytes.
constexpr size_t kPdfHeaderWindow = 1024;

// One libmagic handle for the process. A magic_t is not thread-safe, so every
// use holds the mutex; loading the database once (~ms) beats once per call.
class Magic {
 public:
  static Magic& Instance() {
    static Magic instance;
    return instance;
  }

  // MIME type of the content ("image/png"), or "" if libmagic is unusable.
  std::string MimeType(std::string_view bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    if (cookie_ == nullptr) return "";
    const char* mime =
        magic_buffer(cookie_, bytes.data(), std::min(bytes.size(), kMagicSniffBytes));
    return mime != nullptr ? std::string(mime) : std::string();
  }

 private:
  Magic() {
    cookie_ = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR);
    if (cookie_ != nullptr && magic_load(cookie_, nullptr) != 0) {
      magic_close(cookie_);
      cookie_ = nullptr;  // detection falls back to our own checks
    }
  }
  ~Magic() {
    if (cookie_ != nullptr) magic_close(cookie_);
  }
  std::mutex mu_;
  magic_t cookie_ = nullptr;
};

std::string LowerExtension(std::string_view filename) {
  size_t slash = filename.find_last_of('/');
  if (slash != std::string_view::npos) filename.remove_prefix(slash + 1);
  size_t dot = filename.find_last_of('.');
  if (dot == std::string_view::npos || dot == 0) return "";
  std::string ext(filename.substr(dot + 1));
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

// `<!doctype html` or `<html` at the start (after a BOM, whitespace and
// comments-free leading blanks).
bool LooksLikeHtml(std::string_view bytes) {
  if (bytes.substr(0, 3) == "\xEF\xBB\xBF") bytes.remove_prefix(3);
  size_t i = 0;
  while (i < bytes.size() && i < 4096 && std::isspace(static_cast<unsigned char>(bytes[i]))) ++i;
  std::string_view head = bytes.substr(i);
  return StartsWithNoCase(head, "<!doctype html") || StartsWithNoCase(head, "<html");
}

// Textual types libmagic names outside text/*.
bool IsTextualApplicationType(std::string_view mime) {
  return mime == "application/json" || mime == "application/xml" ||
         mime == "application/javascript" || mime == "application/x-ndjson" ||
         mime == "application/x-wine-extension-ini" || mime == "application/csv" ||
         mime == "application/x-empty" || mime == "application/toml" ||
         mime == "application/x-subrip";
}

// Text formats we recognise but do not parse: indexing their raw syntax would
// only pollute search results.
bool IsUnwantedTextType(std::string_view mime) {
  return mime.substr(0, 6) == "image/" || mime == "application/postscript" || mime == "text/rtf" ||
         mime == "application/rtf";
}

}  // namespace

Result<std::string> DetectMediaType(std::string_view filename, std::string_view bytes) {
  if (bytes.empty()) return Err(Status::InvalidArgument("empty file"));

  std::string_view pdf_window = bytes.substr(0, kPdfHeaderWindow);
  if (pdf_window.find("%PDF-") != std::string_view::npos) return std::string(kApplicationPdf);

  std::string mime = Magic::Instance().MimeType(bytes);
  if (mime.empty()) mime = "application/octet-stream";
  const TextScan scan = ScanText(bytes);
  // Few enough control characters to be text: escape (colour codes in logs)
  // and the usual whitespace are normal there and not counted.
  const bool few_controls = scan.controls <= bytes.size() / 100;
  bool magic_says_text = mime.substr(0, 5) == "text/" || IsTextualApplicationType(mime);
  bool is_text = !scan.has_nul && few_controls && (magic_says_text || scan.valid_utf8);
  if (!is_text) {
    // libmagic calls NUL-bearing text "application/octet-stream" or even
    // text/plain; either way it is not something we can index.
    if (magic_says_text) mime = "application/octet-stream";
    return Err(Status::Unsupported("binary content (" + mime + ")"));
  }
  if (IsUnwantedTextType(mime)) return Err(Status::Unsupported("unsupported type " + mime));

  // A markdown file may start with raw HTML, which libmagic calls text/html;
  // the extension is the author's statement of intent, so it wins there.
  std::string ext = LowerExtension(filename);
  if (ext == "md" || ext == "markdown" || ext == "mdown" || ext == "mkd" || ext == "mkdn") {
    return std::string(kTextMarkdown);
  }
  if (ext == "html" || ext == "htm" || ext == "xhtml" || mime == "text/html" ||
      LooksLikeHtml(bytes)) {
    return std::string(kTextHtml);
  }
  return std::string(kTextPlain);
}

}  // namespace xnai::ingest
