// Lexical (BM25) search: turns whatever a user typed into a safe FTS5
// expression, runs it through the Store, and renders the snippets the Store
// returns (text with store::kMarkBegin/kMarkEnd around each match) for HTML,
// terminals and plain text.
//
// Thread safety: all functions are pure except LexicalSearch, which is as
// thread-safe as the Store (every Store may be used from any thread).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "store/store.h"

namespace xnai::index {

// Builds an FTS5 MATCH expression from arbitrary user text, never one that
// FTS5 can reject: the words (runs of ASCII letters/digits and non-ASCII
// characters; ASCII punctuation, spaces, controls, common Unicode
// punctuation and symbols, and invalid UTF-8 bytes all separate words) are
// lowercased (ASCII), deduplicated, capped at `max_terms`, each quoted as an
// FTS5 string, and joined with " OR " (any term may match; BM25 ranks chunks
// matching more and rarer terms higher). Operators typed by the user (AND,
// NEAR, *, ^, col:) become plain words or separators.
// Returns InvalidArgument("query has no searchable words") when there is no
// word, and InvalidArgument when max_terms < 1.
Result<std::string> BuildFtsQuery(std::string_view user_text, int max_terms = 64);

struct LexicalQuery {
  std::string text;                       // what the user typed
  std::optional<std::string> collection;  // nullopt or empty = all collections
  int k = 10;                             // how many hits at most
};

// BuildFtsQuery + Store::SearchChunks: best hit first. InvalidArgument for a
// query without words or a bad k; NotFound for an unknown collection; other
// Store errors (Unavailable, Corruption, ...) as the Store returns them.
Result<std::vector<store::SearchHit>> LexicalSearch(store::Store& store, const LexicalQuery& q);

// HTML-escapes the snippet (& < > " ') and turns the match markers into
// <mark> and </mark>. Unbalanced markers are repaired (a stray end marker is
// dropped, an open mark is closed at the end), so the output is always
// well-formed.
std::string SnippetToHtml(std::string_view snippet);

// For terminals: matches in bold (ESC[1m ... ESC[0m). Other control
// characters (ESC included) are removed so document text cannot drive the
// terminal; tab and newline are kept.
std::string SnippetToAnsi(std::string_view snippet);

// The snippet without markers.
std::string SnippetToPlain(std::string_view snippet);

}  // namespace xnai::index
