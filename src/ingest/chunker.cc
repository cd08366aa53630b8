#include "ingest/chunker.h"

#include <algorithm>

#include "ingest/text_util.h"

namespace xnai::ingest {

namespace {

// A span of the document text, in bytes and (once known) code points.
struct Span {
  size_t begin = 0;
  size_t end = 0;
  int64_t cp_begin = 0;
  int64_t cp_end = 0;
};

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

// Characters that may follow sentence punctuation before the space: closing
// quotes and brackets (ASCII; the UTF-8 closers are multi-byte and would only
// delay the split by a sentence, which is harmless).
bool IsCloser(char c) { return c == '"' || c == '\'' || c == ')' || c == ']'; }

// Whether a sentence may start with this byte: an ASCII capital or digit, an
// opening quote/bracket, or any non-ASCII byte (accented capitals, CJK; case
// is unknowable without tables, and a missed split only costs chunk balance).
bool StartsSentence(char ch) {
  auto c = static_cast<unsigned char>(ch);
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '"' || c == '\'' || c == '(' ||
         c == '[' || c >= 0x80;
}

// Length of an ideographic sentence end (。！？) at text[pos], else 0.
size_t CjkStopLength(std::string_view text, size_t pos, size_t end) {
  if (pos + 3 > end) return 0;
  std::string_view s = text.substr(pos, 3);
  return (s == "\xE3\x80\x82" || s == "\xEF\xBC\x81" || s == "\xEF\xBC\x9F") ? 3 : 0;
}

// Splits [b, e) into sentences (trimmed of surrounding whitespace). A line
// break also ends a sentence: in plain text and PDFs lines are the only
// structure below the paragraph that is reliably there.
void SplitSentences(std::string_view text, size_t b, size_t e, std::vector<Span>& out) {
  size_t pos = b;
  while (pos < e) {
    while (pos < e && IsSpace(text[pos])) ++pos;
    if (pos >= e) break;
    size_t start = pos;
    size_t end = e;
    while (pos < e) {
      char c = text[pos];
      if (c == '\n') {
        end = pos;
        break;
      }
      if (c == '.' || c == '!' || c == '?') {
        size_t k = pos + 1;
        while (k < e && IsCloser(text[k])) ++k;
        if (k < e && (text[k] == ' ' || text[k] == '\t')) {
          size_t m = k;
          while (m < e && IsSpace(text[m])) ++m;
          if (m < e && StartsSentence(text[m])) {
            end = k;
            break;
          }
        }
        pos = k;
        continue;
      }
      if (size_t n = CjkStopLength(text, pos, e); n > 0) {
        end = pos + n;
        break;
      }
      ++pos;
    }
    size_t trimmed = end;
    while (trimmed > start && IsSpace(text[trimmed - 1])) --trimmed;
    if (trimmed > start) out.push_back({start, trimmed});
    pos = end;
  }
}

// Appends the words of [b, e) as spans; a word longer than `max_cp` code
// points is cut into pieces of at most that many (a 10 MB base64 line must
// still become bounded chunks).
void SplitWords(std::string_view text, size_t b, size_t e, int64_t max_cp, std::vector<Span>& out) {
  size_t pos = b;
  while (pos < e) {
    while (pos < e && IsSpace(text[pos])) ++pos;
    if (pos >= e) break;
    size_t start = pos;
    int64_t cps = 0;
    while (pos < e && !IsSpace(text[pos])) {
      if (cps == max_cp) {
        out.push_back({start, pos});
        start = pos;
        cps = 0;
      }
      pos += Utf8SequenceLength(static_cast<unsigned char>(text[pos]));
      ++cps;
    }
    pos = std::min(pos, e);
    out.push_back({start, pos});
  }
}

// Units of a block: the block itself if it fits, else its sentences, and
// words (or word pieces) for sentences that do not fit.
void SplitBlock(std::string_view text, size_t b, size_t e, int64_t target,
                std::vector<Span>& units) {
  if (CountCodePoints(text.substr(b, e - b)) <= target) {
    units.push_back({b, e});
    return;
  }
  std::vector<Span> sentences;
  SplitSentences(text, b, e, sentences);
  for (const Span& s : sentences) {
    if (CountCodePoints(text.substr(s.begin, s.end - s.begin)) <= target) {
      units.push_back(s);
    } else {
      SplitWords(text, s.begin, s.end, target, units);
    }
  }
}

int32_t CountWords(std::string_view text) {
  int32_t words = 0;
  bool in_word = false;
  for (char c : text) {
    bool space = IsSpace(c);
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

bool IsWordStart(std::string_view text, size_t p) {
  return p > 0 && p < text.size() && !IsSpace(text[p]) && IsSpace(text[p - 1]);
}

// A word start that also begins a sentence: the whitespace before it holds a
// newline or follows sentence punctuation.
bool IsSentenceStart(std::string_view text, size_t p) {
  if (!IsWordStart(text, p)) return false;
  size_t k = p;
  while (k > 0 && IsSpace(text[k - 1])) {
    if (text[k - 1] == '\n') return true;
    --k;
  }
  while (k > 0 && IsCloser(text[k - 1])) --k;
  return k > 0 && (text[k - 1] == '.' || text[k - 1] == '!' || text[k - 1] == '?');
}

struct Group {
  size_t first_block;
  size_t end_block;
};

}  // namespace

std::vector<store::ChunkInput> ChunkDocument(const ParsedDocument& doc,
                                             const ChunkOptions& options) {
  const int64_t target = std::max(options.target_chars, 1);
  const int64_t overlap = std::clamp<int64_t>(options.overlap_chars, 0, target - 1);
  std::string_view text = doc.text;
  Utf8Index index(text);
  std::vector<store::ChunkInput> chunks;

  // Blocks as validated byte spans, in order and non-overlapping.
  std::vector<Span> blocks(doc.blocks.size());
  std::vector<bool> usable(doc.blocks.size(), false);
  int64_t previous_end = 0;
  for (size_t i = 0; i < doc.blocks.size(); ++i) {
    const Block& block = doc.blocks[i];
    int64_t begin = std::max(block.begin, previous_end);
    int64_t end = std::min(block.end, index.code_points());
    if (begin >= end) continue;
    blocks[i] = {index.ByteOffset(begin), index.ByteOffset(end), begin, end};
    usable[i] = true;
    previous_end = end;
  }

  size_t i = 0;
  while (i < doc.blocks.size()) {
    if (!usable[i]) {
      ++i;
      continue;
    }
    // A group: consecutive blocks sharing section and page.
    size_t g_end = i + 1;
    while (g_end < doc.blocks.size() &&
           (!usable[g_end] || (doc.blocks[g_end].section == doc.blocks[i].section &&
                               doc.blocks[g_end].page == doc.blocks[i].page))) {
      ++g_end;
    }
    const std::string& section = doc.blocks[i].section;
    const int32_t page = doc.blocks[i].page;

    // A group of headings alone ("# A" directly followed by "## B") would be
    // a chunk of a few words that BM25 ranks far too high; the heading text
    // still reaches the index through the section of the chunks below it.
    bool has_paragraph = false;
    std::vector<Span> units;
    for (size_t k = i; k < g_end; ++k) {
      if (!usable[k]) continue;
      has_paragraph |= doc.blocks[k].kind == Block::Kind::kParagraph;
      SplitBlock(text, blocks[k].begin, blocks[k].end, target, units);
    }
    size_t group_first = i;
    i = g_end;
    if (!has_paragraph || units.empty()) continue;

    // Code point offsets of the units, by counting forward once.
    size_t run_byte = blocks[group_first].begin;
    int64_t run_cp = blocks[group_first].cp_begin;
    for (Span& u : units) {
      run_cp += CountCodePoints(text.substr(run_byte, u.begin - run_byte));
      u.cp_begin = run_cp;
      run_cp += CountCodePoints(text.substr(u.begin, u.end - u.begin));
      u.cp_end = run_cp;
      run_byte = u.end;
    }

    // Greedy packing; each chunk after the first starts with the tail of the
    // previous one (at a word, preferably a sentence, boundary).
    bool have_previous = false;
    Span previous;
    size_t u = 0;
    while (u < units.size()) {
      size_t chunk_byte = units[u].begin;
      int64_t chunk_cp = units[u].cp_begin;
      if (have_previous && overlap > 0) {
        int64_t window_cp = std::max(
            {previous.cp_end - overlap, units[u].cp_end - target - overlap, previous.cp_begin + 1});
        if (window_cp < previous.cp_end) {
          size_t window = index.ByteOffset(window_cp);
          size_t half = window + (previous.end - window) / 2;
          size_t found = std::string_view::npos;
          for (size_t p = window; p < half; ++p) {
            if (IsSentenceStart(text, p)) {
              found = p;
              break;
            }
          }
          for (size_t p = window; found == std::string_view::npos && p < previous.end; ++p) {
            if (IsWordStart(text, p)) found = p;
          }
          if (found != std::string_view::npos) {
            chunk_byte = found;
            chunk_cp = window_cp + CountCodePoints(text.substr(window, found - window));
          }
        }
      }
      size_t next = u + 1;
      while (next < units.size() && units[next].cp_end - units[u].cp_begin <= target &&
             units[next].cp_end - chunk_cp <= target + overlap) {
        ++next;
      }
      const Span& last = units[next - 1];
      store::ChunkInput chunk;
      chunk.text = std::string(text.substr(chunk_byte, last.end - chunk_byte));
      chunk.char_begin = chunk_cp;
      chunk.char_end = last.cp_end;
      // An estimate until a tokenizer is configured: whitespace-separated words.
      chunk.token_count = CountWords(chunk.text);
      chunk.section = section;
      chunk.page = page;
      chunks.push_back(std::move(chunk));
      previous = {chunk_byte, last.end, chunk_cp, last.cp_end};
      have_previous = true;
      u = next;
    }
  }
  return chunks;
}

}  // namespace xnai::ingest
