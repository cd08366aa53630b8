#include "ingest/chunker.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "ingest/text_util.h"

namespace xnai::ingest {
namespace {

std::string SliceCodePoints(const std::string& text, const Utf8Index& index, int64_t begin,
                            int64_t end) {
  size_t b = index.ByteOffset(begin);
  return text.substr(b, index.ByteOffset(end) - b);
}

// A random document: sections (headings of random levels), paragraphs of
// random sentences mixing ASCII and multi-byte words, optional PDF pages.
ParsedDocument RandomDocument(std::mt19937& rng, bool paged) {
  static const std::vector<std::string> kWords = {"alpha",
                                                  "beta",
                                                  "gamma",
                                                  "delta",
                                                  "caf\xC3\xA9",
                                                  "na\xC3\xAFve",
                                                  "\xE6\x97\xA5\xE6\x9C\xAC",
                                                  "x",
                                                  "supercalifragilistic",
                                                  "42",
                                                  "\xF0\x9F\x98\x80",
                                                  "end"};
  DocumentBuilder builder(paged ? kApplicationPdf : kTextMarkdown);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  int blocks = 1 + pick(40);
  int page = 1;
  for (int b = 0; b < blocks; ++b) {
    if (!paged && pick(5) == 0) {
      builder.AddHeading("Heading " + std::to_string(b), 1 + pick(3));
      continue;
    }
    if (paged && pick(4) == 0) ++page;
    std::string paragraph;
    int sentences = 1 + pick(pick(3) == 0 ? 60 : 6);
    for (int s = 0; s < sentences; ++s) {
      int words = 1 + pick(25);
      for (int w = 0; w < words; ++w) {
        std::string word = kWords[pick(static_cast<int>(kWords.size()))];
        if (w == 0) word[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(word[0])));
        paragraph += word;
        paragraph += (w + 1 == words) ? (pick(2) ? ". " : "!\n") : " ";
      }
    }
    if (pick(10) == 0) paragraph += std::string(3000, 'z');  // one giant word
    builder.AddParagraph(paragraph, paged ? page : 0);
  }
  return builder.Finish();
}

void CheckInvariants(const ParsedDocument& doc, const ChunkOptions& options,
                     const std::vector<store::ChunkInput>& chunks) {
  const int64_t total = CountCodePoints(doc.text);
  Utf8Index index(doc.text);
  for (size_t i = 0; i < chunks.size(); ++i) {
    const store::ChunkInput& c = chunks[i];
    SCOPED_TRACE("chunk " + std::to_string(i));
    ASSERT_LT(c.char_begin, c.char_end);
    ASSERT_LE(c.char_end, total);
    ASSERT_EQ(c.text, SliceCodePoints(doc.text, index, c.char_begin, c.char_end));
    ASSERT_TRUE(IsValidUtf8(c.text));
    ASSERT_LE(c.char_end - c.char_begin, options.target_chars + options.overlap_chars);
    ASSERT_GT(c.token_count, 0);
    ASSERT_NE(c.text.front(), ' ');
    ASSERT_NE(c.text.back(), ' ');
    // Every block the chunk touches has the chunk's section and page.
    for (const Block& b : doc.blocks) {
      if (b.end <= c.char_begin || b.begin >= c.char_end) continue;
      ASSERT_EQ(b.section, c.section);
      ASSERT_EQ(b.page, c.page);
    }
    if (i > 0) {
      const store::ChunkInput& p = chunks[i - 1];
      ASSERT_GT(c.char_end, p.char_end) << "chunks advance";
      ASSERT_GE(c.char_begin, p.char_begin + 1);
      if (c.section != p.section || c.page != p.page) {
        ASSERT_GE(c.char_begin, p.char_end) << "no overlap across sections/pages";
      } else {
        ASSERT_LE(p.char_end - c.char_begin, options.overlap_chars) << "overlap bounded";
      }
    }
  }
  // Every non-blank paragraph code point is in some chunk (only the
  // whitespace between two chunks may be left out).
  std::vector<bool> covered(static_cast<size_t>(total), false);
  for (const auto& c : chunks) {
    for (int64_t k = c.char_begin; k < c.char_end; ++k) covered[static_cast<size_t>(k)] = true;
  }
  std::u32string code_points;
  for (size_t pos = 0; pos < doc.text.size();)
    code_points.push_back(DecodeCodePoint(doc.text, pos));
  for (const Block& b : doc.blocks) {
    if (b.kind != Block::Kind::kParagraph) continue;
    for (int64_t k = b.begin; k < b.end; ++k) {
      char32_t cp = code_points[static_cast<size_t>(k)];
      ASSERT_TRUE(covered[static_cast<size_t>(k)] || cp == ' ' || cp == '\n')
          << "code point " << k << " of paragraph [" << b.begin << "," << b.end << ")";
    }
  }
}

TEST(ChunkerTest, RandomDocumentsKeepInvariants) {
  std::mt19937 rng(12345);
  const std::vector<ChunkOptions> option_sets = {
      {1000, 150}, {200, 50}, {64, 0}, {50, 40}, {16, 15}};
  for (int iteration = 0; iteration < 80; ++iteration) {
    ParsedDocument doc = RandomDocument(rng, iteration % 3 == 0);
    for (const ChunkOptions& options : option_sets) {
      SCOPED_TRACE("iteration " + std::to_string(iteration) + " target " +
                   std::to_string(options.target_chars));
      auto chunks = ChunkDocument(doc, options);
      ASSERT_NO_FATAL_FAILURE(CheckInvariants(doc, options, chunks));
      auto again = ChunkDocument(doc, options);
      ASSERT_EQ(chunks.size(), again.size());
      for (size_t i = 0; i < chunks.size(); ++i) {
        ASSERT_EQ(chunks[i].text, again[i].text);
        ASSERT_EQ(chunks[i].char_begin, again[i].char_begin);
      }
    }
  }
}

TEST(ChunkerTest, SmallParagraphsArePackedIntoOneChunk) {
  DocumentBuilder builder(kTextPlain);
  builder.AddParagraph("One short paragraph.");
  builder.AddParagraph("Another short one.");
  ParsedDocument doc = builder.Finish();
  auto chunks = ChunkDocument(doc, {});
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].text, "One short paragraph.\n\nAnother short one.");
  EXPECT_EQ(chunks[0].char_begin, 0);
  EXPECT_EQ(chunks[0].token_count, 6);
  EXPECT_EQ(chunks[0].section, "");
  EXPECT_EQ(chunks[0].page, 0);
}

TEST(ChunkerTest, LongParagraphSplitsAtSentencesWithOverlap) {
  std::string paragraph;
  for (int i = 0; i < 30; ++i) {
    paragraph += "Sentence number " + std::to_string(i) + " talks about topic " +
                 std::to_string(i) + " at some length. ";
  }
  DocumentBuilder builder(kTextPlain);
  builder.AddParagraph(paragraph);
  ParsedDocument doc = builder.Finish();
  ChunkOptions options{300, 80};
  auto chunks = ChunkDocument(doc, options);
  ASSERT_GT(chunks.size(), 3u);
  CheckInvariants(doc, options, chunks);
  for (size_t i = 0; i < chunks.size(); ++i) {
    EXPECT_EQ(chunks[i].text.back(), '.') << "ends at a sentence: " << chunks[i].text;
    if (i > 0) {
      EXPECT_LT(chunks[i].char_begin, chunks[i - 1].char_end) << "overlaps the previous chunk";
      // The overlap starts at a sentence boundary when one is near.
      EXPECT_EQ(chunks[i].text.rfind("Sentence", 0), 0u) << chunks[i].text;
    }
  }
}

TEST(ChunkerTest, NeverStraddlesSectionsOrPages) {
  DocumentBuilder builder(kApplicationPdf);
  builder.AddParagraph("page one text", 1);
  builder.AddParagraph("page two text", 2);
  ParsedDocument pdf = builder.Finish();
  auto chunks = ChunkDocument(pdf, {});
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0].page, 1);
  EXPECT_EQ(chunks[1].page, 2);
  EXPECT_EQ(chunks[1].text, "page two text");

  DocumentBuilder md(kTextMarkdown);
  md.AddHeading("A", 1);
  md.AddParagraph("under a");
  md.AddHeading("B", 2);
  md.AddParagraph("under b");
  md.AddHeading("C", 1);
  md.AddHeading("D", 2);  // "C" alone: a heading-only section gets no chunk
  md.AddParagraph("under d");
  ParsedDocument doc = md.Finish();
  chunks = ChunkDocument(doc, {});
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].text, "A\n\nunder a");
  EXPECT_EQ(chunks[0].section, "A");
  EXPECT_EQ(chunks[1].text, "B\n\nunder b");
  EXPECT_EQ(chunks[1].section, "A > B");
  EXPECT_EQ(chunks[2].text, "D\n\nunder d");
  EXPECT_EQ(chunks[2].section, "C > D");
}

TEST(ChunkerTest, GiantWordIsCutToBoundedPieces) {
  DocumentBuilder builder(kTextPlain);
  std::string word;
  for (int i = 0; i < 2500; ++i) word += "\xC3\xA9";  // 2500 code points, 5000 bytes
  builder.AddParagraph(word);
  ParsedDocument doc = builder.Finish();
  ChunkOptions options{1000, 150};
  auto chunks = ChunkDocument(doc, options);
  ASSERT_EQ(chunks.size(), 3u);
  CheckInvariants(doc, options, chunks);
  EXPECT_EQ(chunks[0].char_end, 1000);
  EXPECT_EQ(chunks[2].char_end, 2500);
  EXPECT_EQ(chunks[1].char_begin, 1000) << "no word boundary: no overlap";
}

TEST(ChunkerTest, EmptyDocumentHasNoChunks) {
  ParsedDocument doc;
  EXPECT_TRUE(ChunkDocument(doc, {}).empty());
}

TEST(ChunkerTest, MalformedBlocksAreToleratedNotTrusted) {
  ParsedDocument doc;
  doc.text = "hello world";
  doc.blocks.push_back({Block::Kind::kParagraph, 0, 5, "", 0});
  doc.blocks.push_back({Block::Kind::kParagraph, 3, 100, "", 0});  // overlaps, past the end
  doc.blocks.push_back({Block::Kind::kParagraph, 9, 2, "", 0});    // backwards
  auto chunks = ChunkDocument(doc, {});
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].text, "hello world");
}

}  // namespace
}  // namespace xnai::ingest
