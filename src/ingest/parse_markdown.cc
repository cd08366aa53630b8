// Markdown through cmark-gfm: the AST gives real structure (headings drive
// the section path) and reduces inline markup to its text, so "**bold**",
// links and `code` index as the words a reader sees.
#include <cmark-gfm-core-extensions.h>
#include <cmark-gfm-extension_api.h>
#include <cmark-gfm.h>

#include <memory>
#include <mutex>

#include "ingest/parse.h"
#include "ingest/text_util.h"

namespace xnai::ingest {

namespace {

// cmark-gfm keeps the "special characters" of attached extensions in a
// process-wide table that parser creation and destruction modify, so two
// parsers alive on two threads race on it. Parsing is fast; serialize it.
std::mutex& CmarkMutex() {
  static std::mutex mu;
  return mu;
}

struct NodeDeleter {
  void operator()(cmark_node* node) const { cmark_node_free(node); }
};
struct ParserDeleter {
  void operator()(cmark_parser* parser) const { cmark_parser_free(parser); }
};
struct IterDeleter {
  void operator()(cmark_iter* iter) const { cmark_iter_free(iter); }
};

bool TypeIs(cmark_node* node, std::string_view type_string) {
  const char* s = cmark_node_get_type_string(node);
  return s != nullptr && type_string == s;
}

std::string_view Literal(cmark_node* node) {
  const char* s = cmark_node_get_literal(node);
  return s != nullptr ? std::string_view(s) : std::string_view();
}

// The text a reader sees in `node`'s subtree: emphasis, links and code spans
// reduced to their text, images to their alt text (their children), raw
// inline HTML dropped, table cells separated by " | ".
std::string InlineText(cmark_node* node) {
  std::string out;
  std::unique_ptr<cmark_iter, IterDeleter> iter(cmark_iter_new(node));
  bool first_cell = true;
  cmark_event_type event;
  while ((event = cmark_iter_next(iter.get())) != CMARK_EVENT_DONE) {
    if (event != CMARK_EVENT_ENTER) continue;
    cmark_node* cur = cmark_iter_get_node(iter.get());
    switch (cmark_node_get_type(cur)) {
      case CMARK_NODE_TEXT:
      case CMARK_NODE_CODE:
        out += Literal(cur);
        break;
      case CMARK_NODE_SOFTBREAK:
        out += ' ';
        break;
      case CMARK_NODE_LINEBREAK:
        out += '\n';
        break;
      default:
        if (TypeIs(cur, "table_cell")) {
          if (!first_cell) out += " | ";
          first_cell = false;
        }
        break;
    }
  }
  return out;
}

struct FrontMatter {
  size_t length = 0;  // bytes to skip, 0 if none
  std::string title;
};

std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// YAML front matter: a first line "---", then lines up to a closing "---" or
// "...". Only the top-level `title:` is read; a real YAML parser is not
// needed for that and the rest is metadata that is not indexed.
FrontMatter ParseFrontMatter(std::string_view text) {
  FrontMatter fm;
  size_t nl = text.find('\n');
  if (nl == std::string_view::npos || TrimBlanks(text.substr(0, nl)) != "---") return fm;
  size_t pos = nl + 1;
  std::string title;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view raw = text.substr(pos, end - pos);
    std::string_view line = TrimBlanks(raw);
    if (line == "---" || line == "...") {
      fm.length = std::min(end + 1, text.size());
      fm.title = std::move(title);
      return fm;
    }
    if (title.empty() && raw.substr(0, 6) == "title:") {
      std::string_view value = TrimBlanks(raw.substr(6));
      if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
          value.back() == value.front()) {
        value = value.substr(1, value.size() - 2);
      }
      title = std::string(value);
    }
    pos = end + 1;
  }
  return fm;  // never closed: not front matter, just a thematic break
}

void AttachExtension(cmark_parser* parser, const char* name) {
  cmark_syntax_extension* ext = cmark_find_syntax_extension(name);
  if (ext != nullptr) cmark_parser_attach_syntax_extension(parser, ext);
}

}  // namespace

Result<ParsedDocument> ParseMarkdown(std::string_view bytes) {
  // Newlines are normalized up front; tabs are kept because they are
  // significant to markdown (indented code). Extracted text is cleaned by the
  // builder.
  std::string source = DecodeToUtf8(bytes);
  {
    std::string normalized;
    normalized.reserve(source.size());
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\r') {
        if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
        normalized.push_back('\n');
      } else {
        normalized.push_back(source[i]);
      }
    }
    source = std::move(normalized);
  }
  FrontMatter fm = ParseFrontMatter(source);
  std::string_view body = std::string_view(source).substr(fm.length);

  DocumentBuilder builder(kTextMarkdown);
  {
    static std::once_flag registered;
    std::call_once(registered, [] { cmark_gfm_core_extensions_ensure_registered(); });

    std::lock_guard<std::mutex> lock(CmarkMutex());
    std::unique_ptr<cmark_parser, ParserDeleter> parser(cmark_parser_new(CMARK_OPT_VALIDATE_UTF8));
    if (parser == nullptr) return Err(Status::Internal("cmark_parser_new failed"));
    AttachExtension(parser.get(), "table");
    AttachExtension(parser.get(), "strikethrough");
    AttachExtension(parser.get(), "autolink");
    cmark_parser_feed(parser.get(), body.data(), body.size());
    std::unique_ptr<cmark_node, NodeDeleter> root(cmark_parser_finish(parser.get()));
    if (root == nullptr) return Err(Status::Unprocessable("markdown parser failed"));

    std::unique_ptr<cmark_iter, IterDeleter> iter(cmark_iter_new(root.get()));
    cmark_event_type event;
    while ((event = cmark_iter_next(iter.get())) != CMARK_EVENT_DONE) {
      if (event != CMARK_EVENT_ENTER) continue;
      cmark_node* node = cmark_iter_get_node(iter.get());
      bool consumed = true;  // the subtree was turned into a block: skip it
      switch (cmark_node_get_type(node)) {
        case CMARK_NODE_HEADING:
          builder.AddHeading(InlineText(node), cmark_node_get_heading_level(node));
          break;
        case CMARK_NODE_PARAGRAPH:
          builder.AddParagraph(InlineText(node));
          break;
        case CMARK_NODE_CODE_BLOCK:
          builder.AddParagraph(Literal(node));
          break;
        case CMARK_NODE_HTML_BLOCK:
          builder.AddParagraph(CollapseWhitespace(StripMarkup(Literal(node))));
          break;
        default:
          if (TypeIs(node, "table_row") || TypeIs(node, "table_header")) {
            builder.AddParagraph(InlineText(node));
          } else {
            consumed = false;  // containers: document, lists, quotes, tables
          }
          break;
      }
      if (consumed) cmark_iter_reset(iter.get(), node, CMARK_EVENT_EXIT);
    }
  }

  std::string title = fm.title;
  if (title.empty()) title = builder.first_h1();
  if (title.empty()) title = builder.first_heading();
  ParsedDocument doc = builder.Finish();
  doc.title = CollapseWhitespace(CleanText(title));
  return doc;
}

}  // namespace xnai::ingest
