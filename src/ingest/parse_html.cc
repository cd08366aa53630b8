// HTML through gumbo (a full HTML5 parser, so broken real-world markup parses
// the way browsers parse it). Page chrome (nav, aside, footer, forms, scripts)
// is dropped, headings drive the section path, block elements become blocks.
//
// Hostile input: gumbo's tree construction scans the stack of open elements
// for most start tags, so deep nesting costs O(depth) per tag — 200,000 nested
// <div>s would take a minute — and gumbo frees its tree recursively. So:
// a linear pre-scan estimates that cost and falls back to tag stripping when
// it is too high, the tree is walked with an explicit stack, and gumbo's
// memory comes from a tracking allocator that is released in one sweep
// instead of through gumbo_destroy_output's recursion.
#include <gumbo.h>

#include <cstddef>
#include <cstdlib>
#include <initializer_list>
#include <new>
#include <string>
#include <vector>

#include "ingest/parse.h"
#include "ingest/text_util.h"

namespace xnai::ingest {

namespace {

// Σ (open-element depth at each start tag) beyond which we do not hand the
// document to gumbo (~0.5 s of scope scans), and a maximum depth.
constexpr int64_t kMaxTreeWork = 200'000'000;
constexpr int64_t kMaxTreeDepth = 5'000;

bool IsAsciiAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsAsciiAlnum(char c) { return IsAsciiAlpha(c) || (c >= '0' && c <= '9'); }
char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool OneOf(std::string_view name, std::initializer_list<std::string_view> names) {
  for (std::string_view n : names) {
    if (n == name) return true;
  }
  return false;
}

struct TreeCost {
  int64_t max_depth = 0;
  int64_t work = 0;
};

// Estimates the nesting gumbo would build, in one pass and without recursion.
// Void elements, self-closing tags and elements whose end tag is implied by
// the next sibling (p, li, td, ...) do not deepen the tree.
TreeCost EstimateTreeCost(std::string_view html) {
  TreeCost cost;
  int64_t depth = 0;
  size_t pos = 0;
  while ((pos = html.find('<', pos)) != std::string_view::npos) {
    if (html.substr(pos, 4) == "<!--") {
      size_t end = html.find("-->", pos + 4);
      if (end == std::string_view::npos) break;
      pos = end + 3;
      continue;
    }
    size_t i = pos + 1;
    bool closing = i < html.size() && html[i] == '/';
    if (closing) ++i;
    if (i >= html.size() || !IsAsciiAlpha(html[i])) {
      pos = i;
      continue;
    }
    std::string name;
    while (i < html.size() && IsAsciiAlnum(html[i]) && name.size() < 16) {
      name.push_back(AsciiLower(html[i++]));
    }
    size_t end = html.find('>', i);
    if (end == std::string_view::npos) break;
    pos = end + 1;
    if (closing) {
      if (depth > 0) --depth;
      continue;
    }
    cost.work += depth;
    if (html[end - 1] == '/' ||
        OneOf(name, {"area",  "base", "br",    "col",   "embed",  "hr",       "img",
                     "input", "link", "meta",  "param", "source", "track",    "wbr",
                     "p",     "li",   "dt",    "dd",    "option", "optgroup", "tr",
                     "td",    "th",   "tbody", "thead", "tfoot",  "colgroup", "caption",
                     "rb",    "rt",   "rp",    "html",  "head",   "body"})) {
      continue;
    }
    if (OneOf(name,
              {"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes"})) {
      // Raw text: gumbo does not look for tags until the matching end tag.
      std::string close = "</" + name;
      size_t k = pos;
      while ((k = html.find("</", k)) != std::string_view::npos) {
        bool match = true;
        for (size_t j = 2; j < close.size(); ++j) {
          if (k + j >= html.size() || AsciiLower(html[k + j]) != close[j]) {
            match = false;
            break;
          }
        }
        if (match) break;
        k += 2;
      }
      if (k == std::string_view::npos) break;
      pos = k;
      continue;
    }
    ++depth;
    if (depth > cost.max_depth) cost.max_depth = depth;
  }
  return cost;
}

// Every block gumbo allocates is linked into a list so the whole tree can be
// released without walking it.
// Aligned like malloc's result so what follows the header is too.
struct alignas(std::max_align_t) AllocHeader {
  AllocHeader* prev;
  AllocHeader* next;
};

struct TrackingArena {
  AllocHeader head{&head, &head};

  static void* Allocate(void* userdata, size_t size) {
    auto* arena = static_cast<TrackingArena*>(userdata);
    auto* h = static_cast<AllocHeader*>(std::malloc(sizeof(AllocHeader) + size));
    if (h == nullptr) std::abort();  // gumbo cannot report allocation failure
    h->next = arena->head.next;
    h->prev = &arena->head;
    arena->head.next->prev = h;
    arena->head.next = h;
    return h + 1;
  }
  static void Deallocate(void* userdata, void* ptr) {
    if (ptr == nullptr) return;
    auto* h = static_cast<AllocHeader*>(ptr) - 1;
    h->prev->next = h->next;
    h->next->prev = h->prev;
    std::free(h);
  }
  ~TrackingArena() {
    AllocHeader* h = head.next;
    while (h != &head) {
      AllocHeader* next = h->next;
      std::free(h);
      h = next;
    }
  }
};

bool IsDropped(GumboTag tag) {
  switch (tag) {
    case GUMBO_TAG_SCRIPT:
    case GUMBO_TAG_STYLE:
    case GUMBO_TAG_NOSCRIPT:
    case GUMBO_TAG_NAV:
    case GUMBO_TAG_ASIDE:
    case GUMBO_TAG_FOOTER:
    case GUMBO_TAG_TEMPLATE:
    case GUMBO_TAG_SVG:
    case GUMBO_TAG_IFRAME:
    case GUMBO_TAG_FORM:
    case GUMBO_TAG_BUTTON:
    case GUMBO_TAG_SELECT:
    case GUMBO_TAG_TEXTAREA:
    case GUMBO_TAG_OBJECT:
    case GUMBO_TAG_EMBED:
    case GUMBO_TAG_CANVAS:
    case GUMBO_TAG_AUDIO:
    case GUMBO_TAG_VIDEO:
      return true;
    default:
      return false;
  }
}

bool IsBlock(GumboTag tag) {
  switch (tag) {
    case GUMBO_TAG_HTML:
    case GUMBO_TAG_BODY:
    case GUMBO_TAG_P:
    case GUMBO_TAG_DIV:
    case GUMBO_TAG_LI:
    case GUMBO_TAG_UL:
    case GUMBO_TAG_OL:
    case GUMBO_TAG_DL:
    case GUMBO_TAG_DT:
    case GUMBO_TAG_DD:
    case GUMBO_TAG_TABLE:
    case GUMBO_TAG_CAPTION:
    case GUMBO_TAG_THEAD:
    case GUMBO_TAG_TBODY:
    case GUMBO_TAG_TFOOT:
    case GUMBO_TAG_TR:
    case GUMBO_TAG_PRE:
    case GUMBO_TAG_LISTING:
    case GUMBO_TAG_PLAINTEXT:
    case GUMBO_TAG_XMP:
    case GUMBO_TAG_BLOCKQUOTE:
    case GUMBO_TAG_SECTION:
    case GUMBO_TAG_ARTICLE:
    case GUMBO_TAG_MAIN:
    case GUMBO_TAG_HEADER:
    case GUMBO_TAG_HGROUP:
    case GUMBO_TAG_FIGURE:
    case GUMBO_TAG_FIGCAPTION:
    case GUMBO_TAG_ADDRESS:
    case GUMBO_TAG_DETAILS:
    case GUMBO_TAG_SUMMARY:
    case GUMBO_TAG_HR:
    case GUMBO_TAG_FIELDSET:
    case GUMBO_TAG_LEGEND:
    case GUMBO_TAG_CENTER:
      return true;
    default:
      return false;
  }
}

bool IsPreformatted(GumboTag tag) {
  return tag == GUMBO_TAG_PRE || tag == GUMBO_TAG_LISTING || tag == GUMBO_TAG_PLAINTEXT ||
         tag == GUMBO_TAG_XMP;
}

int HeadingLevel(GumboTag tag) {
  switch (tag) {
    case GUMBO_TAG_H1:
      return 1;
    case GUMBO_TAG_H2:
      return 2;
    case GUMBO_TAG_H3:
      return 3;
    case GUMBO_TAG_H4:
      return 4;
    case GUMBO_TAG_H5:
      return 5;
    case GUMBO_TAG_H6:
      return 6;
    default:
      return 0;
  }
}

bool IsHidden(const GumboElement& element) {
  if (gumbo_get_attribute(&element.attributes, "hidden") != nullptr) return true;
  const GumboAttribute* aria = gumbo_get_attribute(&element.attributes, "aria-hidden");
  return aria != nullptr && std::string_view(aria->value) == "true";
}

// Text of a subtree with whitespace collapsed (for <title>), iteratively.
std::string SubtreeText(const GumboNode* root) {
  std::string out;
  std::vector<const GumboNode*> stack{root};
  while (!stack.empty()) {
    const GumboNode* node = stack.back();
    stack.pop_back();
    if (node->type == GUMBO_NODE_TEXT || node->type == GUMBO_NODE_CDATA ||
        node->type == GUMBO_NODE_WHITESPACE) {
      out += node->v.text.text;
    } else if (node->type == GUMBO_NODE_ELEMENT) {
      const GumboVector& children = node->v.element.children;
      for (unsigned i = children.length; i > 0; --i) {
        stack.push_back(static_cast<const GumboNode*>(children.data[i - 1]));
      }
    }
  }
  return CollapseWhitespace(out);
}

// Walks the tree depth-first with an explicit stack, accumulating inline text
// into the current block and flushing it at block boundaries.
class HtmlWalker {
 public:
  explicit HtmlWalker(DocumentBuilder& builder) : builder_(builder) {}

  void Walk(const GumboNode* root) {
    struct Frame {
      const GumboNode* node;
      unsigned next_child;
    };
    std::vector<Frame> stack;
    if (Enter(root)) stack.push_back({root, 0});
    while (!stack.empty()) {
      Frame& frame = stack.back();
      const GumboVector* children = Children(frame.node);
      if (children == nullptr || frame.next_child >= children->length) {
        const GumboNode* done = frame.node;
        stack.pop_back();
        Exit(done);
        continue;
      }
      const auto* child = static_cast<const GumboNode*>(children->data[frame.next_child++]);
      if (Enter(child)) stack.push_back({child, 0});
    }
    Flush();
  }

  const std::string& title() const { return title_; }

 private:
  static const GumboVector* Children(const GumboNode* node) {
    if (node->type == GUMBO_NODE_DOCUMENT) return &node->v.document.children;
    if (node->type == GUMBO_NODE_ELEMENT) return &node->v.element.children;
    return nullptr;
  }

  // Handles the start of `node`; returns true to descend into its children.
  bool Enter(const GumboNode* node) {
    switch (node->type) {
      case GUMBO_NODE_DOCUMENT:
        return true;
      case GUMBO_NODE_TEXT:
      case GUMBO_NODE_CDATA:
      case GUMBO_NODE_WHITESPACE:
        AppendText(node->v.text.text);
        return false;
      case GUMBO_NODE_ELEMENT:
        break;
      default:
        return false;  // comments, templates
    }
    const GumboElement& element = node->v.element;
    GumboTag tag = element.tag;
    if (tag == GUMBO_TAG_TITLE) {
      if (title_.empty()) title_ = SubtreeText(node);
      return false;
    }
    if (IsDropped(tag) || IsHidden(element)) return false;
    if (tag == GUMBO_TAG_BR) {
      if (heading_level_ == 0) {
        Buffer().push_back('\n');
        pending_space_ = false;
      } else {
        pending_space_ = true;
      }
      return false;
    }
    if (int level = HeadingLevel(tag); level > 0 && heading_level_ == 0) {
      Flush();
      heading_level_ = level;
      heading_node_ = node;
      return true;
    }
    if (heading_level_ != 0) return true;  // everything inside a heading is inline
    if (tag == GUMBO_TAG_TD || tag == GUMBO_TAG_TH) {
      if (!paragraph_.empty()) paragraph_ += " | ";
      pending_space_ = false;
      return true;
    }
    if (IsBlock(tag)) Flush();
    if (IsPreformatted(tag)) ++pre_depth_;
    return true;
  }

  void Exit(const GumboNode* node) {
    if (node->type != GUMBO_NODE_ELEMENT) return;
    GumboTag tag = node->v.element.tag;
    if (node == heading_node_) {
      builder_.AddHeading(heading_, heading_level_);
      heading_.clear();
      heading_level_ = 0;
      heading_node_ = nullptr;
      pending_space_ = false;
      return;
    }
    if (heading_level_ != 0) return;
    if (IsBlock(tag)) Flush();
    if (IsPreformatted(tag) && pre_depth_ > 0) --pre_depth_;
  }

  std::string& Buffer() { return heading_level_ != 0 ? heading_ : paragraph_; }

  void AppendText(std::string_view text) {
    std::string& out = Buffer();
    if (pre_depth_ > 0 && heading_level_ == 0) {
      out.append(text);
      pending_space_ = false;
      return;
    }
    for (char c : text) {
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
        pending_space_ = true;
        continue;
      }
      if (pending_space_ && !out.empty() && out.back() != '\n') out.push_back(' ');
      pending_space_ = false;
      out.push_back(c);
    }
  }

  void Flush() {
    if (!paragraph_.empty()) builder_.AddParagraph(paragraph_);
    paragraph_.clear();
    pending_space_ = false;
  }

  DocumentBuilder& builder_;
  std::string title_;
  std::string paragraph_;
  std::string heading_;
  int heading_level_ = 0;
  const GumboNode* heading_node_ = nullptr;
  int pre_depth_ = 0;
  bool pending_space_ = false;
};

// Fallback for documents too deeply nested to build a tree from: the text
// between the tags, paragraphs split where block tags were.
ParsedDocument ParseByStripping(std::string_view html) {
  DocumentBuilder builder(kTextHtml);
  std::string title;
  // <title> by a case-insensitive search in the head of the document.
  std::string lower;
  std::string_view head = html.substr(0, 64 * 1024);
  for (char c : head) lower.push_back(AsciiLower(c));
  size_t t = lower.find("<title");
  if (t != std::string::npos) {
    size_t open_end = lower.find('>', t);
    size_t close = lower.find("</title", t);
    if (open_end != std::string::npos && close != std::string::npos && open_end < close) {
      title = CollapseWhitespace(
          CleanText(StripMarkup(html.substr(open_end + 1, close - open_end - 1))));
    }
  }
  std::string text = CleanText(StripMarkup(html));
  // Block tags became single newlines; each non-blank line is a paragraph.
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = CollapseWhitespace(std::string_view(text).substr(pos, nl - pos));
    if (!line.empty() && line != title) builder.AddParagraph(line);
    pos = nl + 1;
  }
  ParsedDocument doc = builder.Finish();
  doc.title = std::move(title);
  return doc;
}

}  // namespace

Result<ParsedDocument> ParseHtml(std::string_view bytes) {
  std::string html = DecodeToUtf8(bytes);
  // Controls (other than whitespace) would come back from gumbo as U+FFFD;
  // they carry nothing, so they go before parsing.
  std::erase_if(html, [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f') || c == 0x7F;
  });
  TreeCost cost = EstimateTreeCost(html);
  if (cost.work > kMaxTreeWork || cost.max_depth > kMaxTreeDepth) return ParseByStripping(html);

  TrackingArena arena;
  GumboOptions options = kGumboDefaultOptions;
  options.allocator = &TrackingArena::Allocate;
  options.deallocator = &TrackingArena::Deallocate;
  options.userdata = &arena;
  options.max_errors = 0;  // we never read parse errors; do not record them
  GumboOutput* output = gumbo_parse_with_options(&options, html.data(), html.size());
  if (output == nullptr || output->document == nullptr) {
    return Err(Status::Unprocessable("HTML parser failed"));
  }

  DocumentBuilder builder(kTextHtml);
  HtmlWalker walker(builder);
  walker.Walk(output->document);
  std::string title = walker.title();
  if (title.empty()) title = builder.first_h1();
  if (title.empty()) title = builder.first_heading();
  ParsedDocument doc = builder.Finish();
  doc.title = CollapseWhitespace(CleanText(title));
  return doc;  // `arena` frees gumbo's tree
}

}  // namespace xnai::ingest
