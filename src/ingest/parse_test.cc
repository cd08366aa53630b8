#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>

#include "ingest/parse.h"
#include "ingest/test_pdf.h"
#include "ingest/text_util.h"

namespace xnai::ingest {
namespace {

using testing::MakePdf;
using testing::PdfPage;

// The text of a block, by its code point offsets.
std::string BlockText(const ParsedDocument& doc, const Block& block) {
  Utf8Index index(doc.text);
  size_t b = index.ByteOffset(block.begin);
  size_t e = index.ByteOffset(block.end);
  return doc.text.substr(b, e - b);
}

// Invariants every parser promises (parse.h).
void ExpectWellFormed(const ParsedDocument& doc) {
  EXPECT_TRUE(IsValidUtf8(doc.text));
  for (char c : doc.text) {
    auto u = static_cast<unsigned char>(c);
    EXPECT_FALSE(u < 0x20 && c != '\n') << "control char " << int(u);
  }
  int64_t previous_end = 0;
  int64_t total = CountCodePoints(doc.text);
  for (size_t i = 0; i < doc.blocks.size(); ++i) {
    const Block& b = doc.blocks[i];
    EXPECT_LT(b.begin, b.end);
    EXPECT_LE(b.end, total);
    EXPECT_GE(b.begin, previous_end);
    if (i > 0) {
      EXPECT_EQ(b.begin, previous_end + 2) << "blocks are separated by \\n\\n";
    }
    std::string text = BlockText(doc, b);
    EXPECT_EQ(text.find("\n\n"), std::string::npos) << text;
    EXPECT_NE(text.front(), ' ');
    EXPECT_NE(text.back(), ' ');
    previous_end = b.end;
  }
  EXPECT_EQ(previous_end, total) << "blocks cover the text";
}

// ---------------------------------------------------------------- text_util

TEST(TextUtilTest, ValidatesUtf8Strictly) {
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("caf\xE9"));           // Latin-1 byte
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xE2\x82"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\x80"));              // lone continuation
}

// Straightforward code point decoding, as the oracle for the word-at-a-time
// scanners.
bool ReferenceValidUtf8(std::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    auto c = static_cast<unsigned char>(bytes[i]);
    int len = c < 0x80             ? 1
              : (c & 0xE0) == 0xC0 ? 2
              : (c & 0xF0) == 0xE0 ? 3
              : (c & 0xF8) == 0xF0 ? 4
                                   : 0;
    if (len == 0 || i + len > bytes.size()) return false;
    char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(bytes[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    const char32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

TEST(TextUtilTest, ScanTextAgreesWithReferenceOnRandomBuffers) {
  // Mostly ASCII with sprinkled multi-byte sequences, broken sequences,
  // controls and NULs at every alignment relative to the 8-byte words.
  const std::vector<std::string> pieces = {"a",
                                           "hello ",
                                           "\n",
                                           "\t",
                                           "\x1B[0m",
                                           "\xC3\xA9",
                                           "\xE2\x82\xAC",
                                           "\xF0\x9F\x98\x80",
                                           "\x7F",
                                           "\x01",
                                           std::string("\0", 1),
                                           "\xC0\xAF",
                                           "\xED\xA0\x80",
                                           "\xF4\x90\x80\x80",
                                           "\xE0\x9F\xBF",
                                           "\x80",
                                           "\xC3",
                                           "\xF0\x9F\x98",
                                           "\xFF",
                                           "\r\f\v"};
  std::mt19937 rng(7);
  for (int round = 0; round < 3000; ++round) {
    std::string buf;
    int n = static_cast<int>(rng() % 40);
    for (int k = 0; k < n; ++k) {
      // Clean ASCII most of the time so the fast path is taken.
      buf += rng() % 4 != 0 ? pieces[rng() % 2] : pieces[rng() % pieces.size()];
    }
    SCOPED_TRACE(::testing::PrintToString(buf));
    TextScan scan = ScanText(buf);
    EXPECT_EQ(scan.valid_utf8, ReferenceValidUtf8(buf));
    EXPECT_EQ(IsValidUtf8(buf), ReferenceValidUtf8(buf));
    EXPECT_EQ(scan.has_nul, buf.find('\0') != std::string::npos);
    size_t controls = 0;
    for (char ch : buf) {
      auto c = static_cast<unsigned char>(ch);
      if ((c < 0x20 && std::string_view("\t\n\r\f\v\x1B").find(ch) == std::string_view::npos) ||
          c == 0x7F)
        ++controls;
    }
    EXPECT_EQ(scan.controls, controls);
  }
}

// The code point by code point definition of CleanText, as the oracle for
// its run-at-a-time implementation.
std::string ReferenceCleanText(std::string_view utf8) {
  std::string out;
  size_t pos = 0;
  while (pos < utf8.size()) {
    auto c = static_cast<unsigned char>(utf8[pos]);
    if (c < 0x80) {
      ++pos;
      if (c == '\n' || c == '\f') {
        out += '\n';
      } else if (c == '\r') {
        if (pos < utf8.size() && utf8[pos] == '\n') ++pos;
        out += '\n';
      } else if (c == '\t' || c == '\v') {
        out += ' ';
      } else if (c >= 0x20 && c != 0x7F) {
        out += static_cast<char>(c);
      }
      continue;
    }
    int len = Utf8SequenceLength(c);
    std::string_view seq = utf8.substr(pos, len);
    pos += seq.size();
    if (seq == "\xE2\x80\xA8" || seq == "\xE2\x80\xA9") {
      out += '\n';
    } else if (seq != "\xEF\xBB\xBF" && !(seq.size() == 2 && seq[0] == '\xC2' &&
                                          static_cast<unsigned char>(seq[1]) <= 0x9F)) {
      out += seq;
    }
  }
  return out;
}

TEST(TextUtilTest, CleanTextAgreesWithReferenceOnRandomText) {
  const std::vector<std::string> pieces = {"word ",
                                           "longer run of plain text. ",
                                           "\n",
                                           "\r\n",
                                           "\r",
                                           "\t",
                                           "\v",
                                           "\f",
                                           "\x01",
                                           "\x02",
                                           "\x7F",
                                           "\xC3\xA9",
                                           "\xE2\x82\xAC",
                                           "\xF0\x9F\x98\x80",
                                           "\xE2\x80\xA8",
                                           "\xEF\xBB\xBF",
                                           "\xC2\x85",
                                           "~",
                                           " "};
  std::mt19937 rng(11);
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    int n = static_cast<int>(rng() % 30);
    for (int k = 0; k < n; ++k) {
      text += rng() % 3 != 0 ? pieces[rng() % 2] : pieces[rng() % pieces.size()];
    }
    SCOPED_TRACE(::testing::PrintToString(text));
    EXPECT_EQ(CleanText(text), ReferenceCleanText(text));
  }
}

TEST(TextUtilTest, ScanTextEdges) {
  EXPECT_TRUE(ScanText("").valid_utf8);
  EXPECT_FALSE(ScanText("").has_nul);
  TextScan clean = ScanText(std::string(1 << 16, 'x') + "\n\t\x1B");
  EXPECT_TRUE(clean.valid_utf8);
  EXPECT_EQ(clean.controls, 0u);
  TextScan late = ScanText(std::string(1 << 16, 'x') + std::string("\x02\0\xFF", 3));
  EXPECT_TRUE(late.has_nul);
  EXPECT_EQ(late.controls, 2u);  // \x02 and NUL
  EXPECT_FALSE(late.valid_utf8);
}

TEST(TextUtilTest, DecodesWindows1252AndStripsBom) {
  EXPECT_EQ(DecodeToUtf8("\xEF\xBB\xBFhello"), "hello");
  EXPECT_EQ(DecodeToUtf8("caf\xE9"), "caf\xC3\xA9");
  EXPECT_EQ(DecodeToUtf8("\x93quoted\x94 \x80"), "\xE2\x80\x9Cquoted\xE2\x80\x9D \xE2\x82\xAC");
}

TEST(TextUtilTest, CleanTextNormalizesNewlinesAndDropsControls) {
  EXPECT_EQ(CleanText("a\r\nb\rc\nd"), "a\nb\nc\nd");
  EXPECT_EQ(CleanText("a\tb"), "a b");
  EXPECT_EQ(CleanText(std::string("x\x02y\x03z\x00w\x1b\x7f", 9)), "xyzw");
  EXPECT_EQ(CleanText("a\xC2\x85"
                      "b\xEF\xBB\xBF"
                      "c\xE2\x80\xA8"
                      "d"),
            "ab"
            "c\nd");
}

TEST(TextUtilTest, Utf8IndexConvertsBothWays) {
  std::string text;
  for (int i = 0; i < 1000; ++i)
    text += (i % 3 == 0) ? "\xC3\xA9" : (i % 3 == 1) ? "a" : "\xE2\x82\xAC";
  Utf8Index index(text);
  ASSERT_EQ(index.code_points(), 1000);
  size_t byte = 0;
  for (int64_t cp = 0; cp <= 1000; ++cp) {
    ASSERT_EQ(index.ByteOffset(cp), byte) << cp;
    ASSERT_EQ(index.CodePointOffset(byte), cp) << cp;
    if (cp < 1000) byte += Utf8SequenceLength(static_cast<unsigned char>(text[byte]));
  }
  EXPECT_EQ(index.ByteOffset(5000), text.size());
  Utf8Index empty("");
  EXPECT_EQ(empty.ByteOffset(0), 0u);
  EXPECT_EQ(empty.CodePointOffset(0), 0);
}

TEST(TextUtilTest, StripMarkupDecodesEntitiesAndDropsScripts) {
  EXPECT_EQ(CollapseWhitespace(StripMarkup(
                "<p>Fish &amp; chips &lt;3 &#233;&#x20AC;</p><script>alert('<p>')</script>"
                "<!-- note --> end &bogus; a < b")),
            "Fish & chips <3 \xC3\xA9\xE2\x82\xAC end &bogus; a < b");
}

// ---------------------------------------------------------------- detection

struct DetectCase {
  const char* name;
  std::string filename;
  std::string bytes;
  Status::Code code;
  std::string expected;  // media type, or a substring of the error message
};

TEST(DetectTest, Table) {
  const std::string png("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde",
                        33);
  // A real (stored, one-entry) zip archive: libmagic wants the central directory.
  const std::string zip(
      "\x50\x4b\x03\x04\x14\x00\x00\x00\x00\x00\x3a\x69\x77\x5d\x86\xa6\x10\x36\x05\x00\x00\x00\x05"
      "\x00"
      "\x00\x00\x05\x00\x00\x00\x61\x2e\x74\x78\x74\x68\x65\x6c\x6c\x6f\x50\x4b\x01\x02\x14\x03\x14"
      "\x00"
      "\x00\x00\x00\x00\x3a\x69\x77\x5d\x86\xa6\x10\x36\x05\x00\x00\x00\x05\x00\x00\x00\x05\x00\x00"
      "\x00"
      "\x00\x00\x00\x00\x00\x00\x00\x00\x80\x01\x00\x00\x00\x00\x61\x2e\x74\x78\x74\x50\x4b\x05\x06"
      "\x00"
      "\x00\x00\x00\x01\x00\x01\x00\x33\x00\x00\x00\x28\x00\x00\x00\x00\x00",
      113);
  std::string elf(
      "\x7f"
      "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0\x01\0\0\0",
      24);
  elf.resize(64, '\0');
  const std::vector<DetectCase> cases = {
      {"txt", "notes.txt", "Just some notes.\nSecond line.\n", Status::Code::kOk, "text/plain"},
      {"md", "README.md", "# Title\n\nSome *text*.\n", Status::Code::kOk, "text/markdown"},
      {"md upper ext", "README.MARKDOWN", "plain words", Status::Code::kOk, "text/markdown"},
      {"md starting with html", "x.md", "<div>hi</div>\n\n# T\n", Status::Code::kOk,
       "text/markdown"},
      {"html by ext", "page.htm", "hello there", Status::Code::kOk, "text/html"},
      {"html by sniff", "page", "  <!DOCTYPE html><html><body>x</body></html>", Status::Code::kOk,
       "text/html"},
      {"html sniff in .txt", "x.txt", "<html><p>x</p></html>", Status::Code::kOk, "text/html"},
      {"pdf", "doc.bin", MakePdf({PdfPage{{"Hello"}}}), Status::Code::kOk, "application/pdf"},
      {"pdf named txt", "doc.txt", "%PDF-1.7\ngarbage", Status::Code::kOk, "application/pdf"},
      {"source file", "main.cc", "#include <cstdio>\nint main() { return 0; }\n", Status::Code::kOk,
       "text/plain"},
      {"csv", "data.csv", "a,b,c\n1,2,3\n", Status::Code::kOk, "text/plain"},
      {"latin1", "old.txt",
       "Caf\xE9 cr\xE8me br\xFBl\xE9\x65, na\xEFve fa\xE7"
       "ade.\n",
       Status::Code::kOk, "text/plain"},
      {"png", "image.txt", png, Status::Code::kUnsupported, "binary content (image/png)"},
      {"zip", "a.zip", zip, Status::Code::kUnsupported, "binary content (application/zip)"},
      {"elf", "prog", elf, Status::Code::kUnsupported, "binary content (application/x-"},
      {"nul in txt", "x.txt", std::string("hello\0world, this is text", 25),
       Status::Code::kUnsupported, "binary content"},
      {"empty", "empty.txt", "", Status::Code::kInvalidArgument, "empty file"},
  };
  for (const DetectCase& c : cases) {
    SCOPED_TRACE(c.name);
    auto result = DetectMediaType(c.filename, c.bytes);
    if (c.code == Status::Code::kOk) {
      ASSERT_TRUE(result.has_value()) << result.error().ToString();
      EXPECT_EQ(*result, c.expected);
    } else {
      ASSERT_FALSE(result.has_value()) << *result;
      EXPECT_EQ(result.error().code(), c.code);
      EXPECT_NE(result.error().message().find(c.expected), std::string::npos)
          << result.error().message();
    }
  }
}

// libmagic only sees the head of a file; the whole-buffer scan must still
// catch binary content after it.
TEST(DetectTest, BinaryPastTheSniffedHeadIsCaught) {
  std::string text;
  while (text.size() < (300u << 10)) text += "An ordinary line of prose, nothing binary here.\n";
  {
    auto result = DetectMediaType("big.txt", text);
    ASSERT_TRUE(result) << result.error().ToString();
    EXPECT_EQ(*result, "text/plain");
  }
  {
    std::string with_nul = text;
    with_nul[250u << 10] = '\0';
    auto result = DetectMediaType("big.txt", with_nul);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code(), Status::Code::kUnsupported);
    EXPECT_NE(result.error().message().find("binary content"), std::string::npos);
  }
  {
    // A binary blob without NULs appended to text: many control characters.
    std::string with_controls = text;
    std::mt19937 rng(3);
    for (int k = 0; k < (64 << 10); ++k) with_controls += static_cast<char>(1 + rng() % 0x1F);
    auto result = DetectMediaType("big.md", with_controls);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code(), Status::Code::kUnsupported);
  }
  {
    std::string utf8 = text + "caf\xC3\xA9 \xE2\x82\xAC\n";
    auto result = DetectMediaType("big.md", utf8);
    ASSERT_TRUE(result) << result.error().ToString();
    EXPECT_EQ(*result, "text/markdown");
  }
}

TEST(ParseTest, DispatchRejectsUnknownType) {
  auto r = Parse("application/zip", "PK");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Status::Code::kUnsupported);
}

// ---------------------------------------------------------------- plain text

TEST(ParseTextTest, ParagraphsAndTitle) {
  auto doc =
      ParseText("My Notes\r\n\r\nFirst paragraph\r\nstill first.\r\n \r\n\r\nSecond\tone.\n");
  ASSERT_TRUE(doc);
  ExpectWellFormed(*doc);
  EXPECT_EQ(doc->title, "My Notes");
  EXPECT_EQ(doc->media_type, "text/plain");
  ASSERT_EQ(doc->blocks.size(), 3u);
  EXPECT_EQ(BlockText(*doc, doc->blocks[1]), "First paragraph\nstill first.");
  EXPECT_EQ(BlockText(*doc, doc->blocks[2]), "Second one.");
  EXPECT_EQ(doc->text, "My Notes\n\nFirst paragraph\nstill first.\n\nSecond one.");
}

TEST(ParseTextTest, LongFirstLineIsNoTitle) {
  auto doc = ParseText(std::string(200, 'x') + "\n\nrest");
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc->title, "");
}

TEST(ParseTextTest, Latin1AndMarkersAndOffsetsInCodePoints) {
  auto doc = ParseText("caf\xE9\n\n\x02na\xEFve\x03 \x80");
  ASSERT_TRUE(doc);
  ExpectWellFormed(*doc);
  EXPECT_EQ(doc->text, "caf\xC3\xA9\n\nna\xC3\xAFve \xE2\x82\xAC");
  ASSERT_EQ(doc->blocks.size(), 2u);
  EXPECT_EQ(doc->blocks[0].begin, 0);
  EXPECT_EQ(doc->blocks[0].end, 4);  // code points, not bytes
  EXPECT_EQ(doc->blocks[1].begin, 6);
  EXPECT_EQ(doc->blocks[1].end, 13);
}

TEST(ParseTextTest, WhitespaceOnlyGivesNoBlocks) {
  auto doc = ParseText(" \n\n\t\r\n");
  ASSERT_TRUE(doc);
  EXPECT_TRUE(doc->blocks.empty());
  EXPECT_EQ(doc->text, "");
}

// ---------------------------------------------------------------- markdown

TEST(ParseMarkdownTest, HeadingsDriveSectionsAndTitle) {
  const char* md =
      "Intro paragraph with **bold** and `code` and a [link](http://x.example).\n"
      "\n"
      "# Guide\n"
      "\n"
      "Welcome text.\n"
      "\n"
      "## Install\n"
      "\n"
      "### Debian\n"
      "\n"
      "- apt-get install *xnai*\n"
      "- second item ![diagram alt](d.png)\n"
      "\n"
      "## Usage\n"
      "\n"
      "> quoted ~~struck~~ text\n"
      "\n"
      "```\n"
      "code line 1\n"
      "code line 2\n"
      "```\n"
      "\n"
      "| a | b |\n"
      "|---|---|\n"
      "| 1 | 2 |\n"
      "\n"
      "<div class=\"x\">raw <b>html</b> block</div>\n"
      "\n"
      "# Appendix\n"
      "\n"
      "Last words.\n";
  auto doc = ParseMarkdown(md);
  ASSERT_TRUE(doc);
  ExpectWellFormed(*doc);
  EXPECT_EQ(doc->title, "Guide");
  EXPECT_EQ(doc->media_type, "text/markdown");
  std::vector<std::pair<std::string, std::string>> got;  // (section, text)
  for (const Block& b : doc->blocks) got.emplace_back(b.section, BlockText(*doc, b));
  std::vector<std::pair<std::string, std::string>> want = {
      {"", "Intro paragraph with bold and code and a link."},
      {"Guide", "Guide"},
      {"Guide", "Welcome text."},
      {"Guide > Install", "Install"},
      {"Guide > Install > Debian", "Debian"},
      {"Guide > Install > Debian", "apt-get install xnai"},
      {"Guide > Install > Debian", "second item diagram alt"},
      {"Guide > Usage", "Usage"},
      {"Guide > Usage", "quoted struck text"},
      {"Guide > Usage", "code line 1\ncode line 2"},
      {"Guide > Usage", "a | b"},
      {"Guide > Usage", "1 | 2"},
      {"Guide > Usage", "raw html block"},
      {"Appendix", "Appendix"},
      {"Appendix", "Last words."},
  };
  EXPECT_EQ(got, want);
  EXPECT_EQ(doc->blocks[1].kind, Block::Kind::kHeading);
  EXPECT_EQ(doc->blocks[2].kind, Block::Kind::kParagraph);
}

TEST(ParseMarkdownTest, FrontMatterTitleWinsAndIsNotIndexed) {
  auto doc =
      ParseMarkdown("---\ntitle: \"Front Title\"\ntags: [secret-tag]\n---\n# Heading\n\nBody.\n");
  ASSERT_TRUE(doc);
  ExpectWellFormed(*doc);
  EXPECT_EQ(doc->title, "Front Title");
  EXPECT_EQ(doc->text.find("secret-tag"), std::string::npos);
  EXPECT_EQ(doc->text, "Heading\n\nBody.");
}

TEST(ParseMarkdownTest, UnclosedFrontMatterIsJustText) {
  auto doc = ParseMarkdown("---\ntitle: x\n\nno closing line\n");
  ASSERT_TRUE(doc);
  EXPECT_NE(doc->text.find("no closing line"), std::string::npos);
}

TEST(ParseMarkdownTest, TitleFallsBackToFirstHeading) {
  auto doc = ParseMarkdown("## Second level first\n\ntext\n\n# Later H1\n");
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc->title, "Later H1");
  doc = ParseMarkdown("## Only h2\n\ntext\n");
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc->title, "Only h2");
  doc = ParseMarkdown("no headings\n");
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc->title, "");
}

TEST(ParseMarkdownTest, HostileInputDoesNotCrash) {
  std::string deep_quotes(100000, '>');
  deep_quotes += " deep\n";
  auto doc = ParseMarkdown(deep_quotes);
  ASSERT_TRUE(doc);
  ExpectWellFormed(*doc);
  std::string deep_lists;
  for (int i = 0; i < 2000; ++i) deep_lists += std::string(i * 2, ' ') + "- item\n";
  doc = ParseMarkdown(deep_lists);
  ASSERT_TRUE(doc);
  ExpectWellFormed(*doc);
  constexpr char kBroken[] = "bad \xFF\xFE utf8 \x02 and \0 nul";
  doc = ParseMarkdown(std::string(kBroken, sizeof(kBroken) - 1));
  ASSERT_TRUE(doc);
  ExpectWellFormed(*doc);
  std::string brackets(50000, '[');
  doc = ParseMarkdown(brackets + std::string(50000, ']'));
  ASSERT_TRUE(doc);
  ExpectWellFormed(*doc);
}

// ---------------------------------------------------------------- HTML

TEST(ParseHtmlTest, DropsChromeKeepsStructure) {
  const char* html = R"(<!DOCTYPE html>
<html><head><title>  The &amp; Title </title>
<style>body { color: red }</style><script>var secret = "script-text";</script></head>
<body>
<nav><a href="/">Home nav-link</a></nav>
<header><p>Site header text</p></header>
<h1>Main <em>heading</em></h1>
<p>First   para
   with &lt;entities&gt; &eacute; &#8364; and <b>bold</b>text.</p>
<aside>aside-text</aside>
<h2>Sub</h2>
<ul><li>one</li><li>two<br>lines</li></ul>
<pre>  keep   spacing
  here</pre>
<table><tr><th>k</th><th>v</th></tr><tr><td>a</td><td>1</td></tr></table>
<div>loose div text<div hidden>hidden-text</div></div>
<noscript>noscript-text</noscript><form><button>button-text</button></form>
<svg><text>svg-text</text></svg>
<footer>footer-text</footer>
</body></html>)";
  auto doc = ParseHtml(html);
  ASSERT_TRUE(doc);
  ExpectWellFormed(*doc);
  EXPECT_EQ(doc->title, "The & Title");
  for (const char* dropped : {"script-text", "color: red", "nav-link", "aside-text", "footer-text",
                              "noscript-text", "button-text", "svg-text", "hidden-text"}) {
    EXPECT_EQ(doc->text.find(dropped), std::string::npos) << dropped;
  }
  std::vector<std::pair<std::string, std::string>> got;
  for (const Block& b : doc->blocks) got.emplace_back(b.section, BlockText(*doc, b));
  std::vector<std::pair<std::string, std::string>> want = {
      {"", "Site header text"},
      {"Main heading", "Main heading"},
      {"Main heading", "First para with <entities> \xC3\xA9 \xE2\x82\xAC and boldtext."},
      {"Main heading > Sub", "Sub"},
      {"Main heading > Sub", "one"},
      {"Main heading > Sub", "two\nlines"},
      {"Main heading > Sub", "keep   spacing\n  here"},
      {"Main heading > Sub", "k | v"},
      {"Main heading > Sub", "a | 1"},
      {"Main heading > Sub", "loose div text"},
  };
  EXPECT_EQ(got, want);
}

TEST(ParseHtmlTest, TitleFallsBackToH1) {
  auto doc = ParseHtml("<body><h2>two</h2><h1>The H1</h1><p>x</p></body>");
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc->title, "The H1");
}

TEST(ParseHtmlTest, DeepNestingDoesNotCrashOrHang) {
  std::string html = "<html><head><title>Deep</title></head><body>";
  for (int i = 0; i < 200000; ++i) html += "<div>";
  html += "deep text";
  for (int i = 0; i < 200000; ++i) html += "</div>";
  html += "</body></html>";
  auto start = std::chrono::steady_clock::now();
  auto doc = ParseHtml(html);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(doc);
  ExpectWellFormed(*doc);
  EXPECT_NE(doc->text.find("deep text"), std::string::npos);
  EXPECT_EQ(doc->title, "Deep");
  EXPECT_LT(seconds, 10.0);
}

TEST(ParseHtmlTest, ModeratelyDeepNestingUsesTheTree) {
  // Under the fallback threshold: gumbo parses it and the walk is iterative.
  std::string html = "<title>T</title><h1>Top</h1>";
  for (int i = 0; i < 3000; ++i) html += "<span>";
  html += "inner <script>nope()</script>text";
  auto doc = ParseHtml(html);
  ASSERT_TRUE(doc);
  ExpectWellFormed(*doc);
  ASSERT_EQ(doc->blocks.size(), 2u);
  EXPECT_EQ(BlockText(*doc, doc->blocks[1]), "inner text");
  EXPECT_EQ(doc->blocks[1].section, "Top");
}

TEST(ParseHtmlTest, UnclosedTagsHugeAttributesBrokenUtf8) {
  std::string html = "<p>one<p>two<li>three<table><td>cell<b><i>bold";
  html += "<a href=\"" + std::string(1 << 20, 'x') + "\">link text</a>";
  html += "<p>broken \xFF\xFE utf8 \xE2\x82 end<p>ctrl \x02\x03\x01 chars";
  html += "<div";  // truncated tag
  auto doc = ParseHtml(html);
  ASSERT_TRUE(doc);
  ExpectWellFormed(*doc);
  EXPECT_NE(doc->text.find("link text"), std::string::npos);
  EXPECT_NE(doc->text.find("ctrl chars"), std::string::npos);
  EXPECT_EQ(doc->text.find('\x02'), std::string::npos);
}

TEST(ParseHtmlTest, EmptyAndTextOnly) {
  auto doc = ParseHtml("<html><body><script>x()</script></body></html>");
  ASSERT_TRUE(doc);
  EXPECT_TRUE(doc->blocks.empty());
  doc = ParseHtml("just text, no tags");
  ASSERT_TRUE(doc);
  ASSERT_EQ(doc->blocks.size(), 1u);
  EXPECT_EQ(doc->text, "just text, no tags");
}

// ---------------------------------------------------------------- PDF

TEST(ParsePdfTest, PagesAndTitleFromInfo) {
  std::string pdf = MakePdf({PdfPage{{"Hello from page one.", "Second line (with parens)."}},
                             PdfPage{{"Page two says goodbye."}}},
                            "Test Document");
  auto doc = ParsePdf(pdf);
  ASSERT_TRUE(doc) << doc.error().ToString();
  ExpectWellFormed(*doc);
  EXPECT_EQ(doc->title, "Test Document");
  EXPECT_EQ(doc->media_type, "application/pdf");
  ASSERT_GE(doc->blocks.size(), 2u);
  std::string page1, page2;
  for (const Block& b : doc->blocks) {
    ASSERT_TRUE(b.page == 1 || b.page == 2) << b.page;
    (b.page == 1 ? page1 : page2) += BlockText(*doc, b) + "\n";
  }
  EXPECT_NE(page1.find("Hello from page one."), std::string::npos) << page1;
  EXPECT_NE(page1.find("Second line (with parens)."), std::string::npos) << page1;
  EXPECT_EQ(page1.find("goodbye"), std::string::npos);
  EXPECT_NE(page2.find("Page two says goodbye."), std::string::npos) << page2;
  EXPECT_EQ(doc->blocks.front().page, 1);
  EXPECT_EQ(doc->blocks.back().page, 2);
}

TEST(ParsePdfTest, TitleFallsBackToFirstLine) {
  auto doc = ParsePdf(MakePdf({PdfPage{{"Quarterly Report", "Body text here."}}}));
  ASSERT_TRUE(doc) << doc.error().ToString();
  EXPECT_EQ(doc->title, "Quarterly Report");
}

TEST(ParsePdfTest, BlankPagesAreSkippedButNumberingHolds) {
  auto doc = ParsePdf(MakePdf({PdfPage{}, PdfPage{{"Only the second page has text."}}}));
  ASSERT_TRUE(doc) << doc.error().ToString();
  ASSERT_FALSE(doc->blocks.empty());
  for (const Block& b : doc->blocks) EXPECT_EQ(b.page, 2);
}

TEST(ParsePdfTest, NoTextIsUnprocessable) {
  auto doc = ParsePdf(MakePdf({PdfPage{}, PdfPage{}}));
  ASSERT_FALSE(doc);
  EXPECT_EQ(doc.error().code(), Status::Code::kUnprocessable);
  EXPECT_NE(doc.error().message().find("no extractable text"), std::string::npos);
}

TEST(ParsePdfTest, CorruptPdfIsUnprocessable) {
  std::string good = MakePdf({PdfPage{{"Hello"}}});
  const std::vector<std::string> bad = {
      "%PDF-1.4\n" + std::string(5000, 'g'),
      "%PDF-",
      good.substr(0, 40),
      good.substr(0, good.size() / 2),
  };
  for (const std::string& bytes : bad) {
    auto doc = ParsePdf(bytes);
    ASSERT_FALSE(doc) << "size " << bytes.size();
    EXPECT_EQ(doc.error().code(), Status::Code::kUnprocessable) << doc.error().ToString();
  }
}

TEST(ParsePdfTest, DamagedXrefIsRepairedOrRejectedNotCrashed) {
  std::string pdf = MakePdf({PdfPage{{"Recoverable text"}}});
  size_t xref = pdf.find("xref");
  pdf.replace(xref + 10, 10, "9999999999");  // break an offset
  auto doc = ParsePdf(pdf);
  if (doc) {
    EXPECT_NE(doc->text.find("Recoverable text"), std::string::npos);
  } else {
    EXPECT_EQ(doc.error().code(), Status::Code::kUnprocessable);
  }
}

// ---------------------------------------------------------------- robustness

// Random soups of markup and bytes: every parser returns a well-formed
// document (or a clean error), never crashes.
TEST(ParseRobustnessTest, RandomInputsGiveWellFormedDocuments) {
  std::mt19937 rng(777);
  static const std::vector<std::string> kPieces = {"<div>",
                                                   "</div>",
                                                   "<p>",
                                                   "<h1>",
                                                   "</h1>",
                                                   "<h3>",
                                                   "<script>",
                                                   "</script>",
                                                   "<pre>",
                                                   "</pre>",
                                                   "<!--",
                                                   "-->",
                                                   "&amp;",
                                                   "&#x0;",
                                                   "&#99999999;",
                                                   "# ",
                                                   "## ",
                                                   "\n",
                                                   "\n\n",
                                                   "```",
                                                   "> ",
                                                   "- ",
                                                   "|a|b|\n|-|-|\n",
                                                   "[x](",
                                                   ")",
                                                   "**",
                                                   "`",
                                                   "---\n",
                                                   "title: t\n",
                                                   "word ",
                                                   "caf\xC3\xA9 ",
                                                   "\xFF",
                                                   "\xC3",
                                                   "\x02",
                                                   "\x03",
                                                   "\r",
                                                   "\t",
                                                   std::string(1, '\0'),
                                                   "<table><tr><td>",
                                                   "<br>",
                                                   "<title>",
                                                   "</title>",
                                                   "<svg>",
                                                   "<![CDATA[",
                                                   "]]>"};
  for (int iteration = 0; iteration < 300; ++iteration) {
    std::string input;
    int pieces = static_cast<int>(rng() % 200);
    for (int i = 0; i < pieces; ++i) input += kPieces[rng() % kPieces.size()];
    SCOPED_TRACE("iteration " + std::to_string(iteration));
    for (auto parse : {&ParseText, &ParseMarkdown, &ParseHtml}) {
      auto doc = parse(input);
      ASSERT_TRUE(doc) << doc.error().ToString();
      ASSERT_NO_FATAL_FAILURE(ExpectWellFormed(*doc));
      EXPECT_TRUE(IsValidUtf8(doc->title));
      EXPECT_EQ(doc->title.find('\x02'), std::string::npos);
    }
  }
}

TEST(ParseRobustnessTest, MutatedPdfsAreParsedOrRejected) {
  const std::string pdf = MakePdf(
      {PdfPage{{"Mutation target text.", "Line two."}}, PdfPage{{"Second page."}}}, "Title");
  std::mt19937 rng(4242);
  for (int iteration = 0; iteration < 200; ++iteration) {
    std::string mutated = pdf;
    int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
      size_t pos = 5 + rng() % (mutated.size() - 5);  // keep the %PDF- signature
      switch (rng() % 3) {
        case 0:
          mutated[pos] = static_cast<char>(rng());
          break;
        case 1:
          mutated.erase(pos, 1 + rng() % 16);
          break;
        default:
          mutated.insert(pos, std::string(1 + rng() % 16, static_cast<char>(rng())));
          break;
      }
    }
    auto doc = ParsePdf(mutated);
    if (doc) {
      ASSERT_NO_FATAL_FAILURE(ExpectWellFormed(*doc));
      for (const Block& b : doc->blocks) ASSERT_TRUE(b.page == 1 || b.page == 2);
    } else {
      EXPECT_EQ(doc.error().code(), Status::Code::kUnprocessable) << doc.error().ToString();
    }
  }
}

}  // namespace
}  // namespace xnai::ingest
