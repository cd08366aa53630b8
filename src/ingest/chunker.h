// Chunker: splits a parsed document into retrieval units, following its
// structure — sections, then paragraphs, then sentences, then words — so a
// chunk never straddles a section boundary and rarely cuts a sentence.
#pragma once

#include <vector>

#include "ingest/parse.h"
#include "store/store.h"

namespace xnai::ingest {

struct ChunkOptions {
  int target_chars = 1000;  // aim for chunks of about this many code points
  int overlap_chars = 150;  // carried over from the previous chunk of the same section
};

// Deterministic. Every chunk's text equals the document text between its
// char_begin and char_end (code points) and is non-empty; token_count is a
// word-based estimate. No chunk exceeds target_chars + overlap_chars except a
// single word longer than that.
std::vector<store::ChunkInput> ChunkDocument(const ParsedDocument& doc,
                                             const ChunkOptions& options);

}  // namespace xnai::ingest
