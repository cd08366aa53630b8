// Constrained decoding for JSON output (response_format json_object and
// json_schema): at each generation step only the tokens whose bytes keep the
// output a prefix of a document the constraint accepts may be sampled, and
// end-of-generation is allowed only once the document is complete.
//
// The constraint is a pushdown automaton over bytes (a stack of frames: one
// per open object/array, plus the key or scalar being written), driven by a
// schema compiled once per request. Where the schema is ambiguous (anyOf,
// oneOf, a list of types) the automaton runs one stack per live alternative;
// identical stacks are merged, so there is one again once the ambiguous value
// has ended. Every state it accepts can still be completed: it never leads the
// model into a dead end (provided the vocabulary can spell every single byte,
// as byte-level BPE and SentencePiece with byte fallback can).
//
// Output shape:
//   - JSON whitespace is allowed between tokens, at most 24 bytes in a run and
//     at most 2 line breaks in a run, so a model cannot loop on whitespace;
//     whitespace after the top-level value is allowed (bounded the same way).
//   - Objects and arrays nest at most 32 deep (json_object mode and recursive
//     schemas); schemas that need deeper nesting are refused.
//   - Numbers follow the JSON grammar and are at most 32 bytes long with at
//     most 2 exponent digits (every number parses to a finite double);
//     integers have no fraction or exponent and at most 18 digits (int64).
//   - Strings: any JSON string (escapes, \uXXXX with surrogate pairs checked,
//     strictly valid UTF-8 even when a token ends inside a character).
//
// Schema subset (anything else is refused with InvalidArgument naming the
// keyword and its JSON pointer, never silently ignored):
//   type             object, array, string, number, integer, boolean, null, or
//                    a list of these (a union); absent: any value, with the
//                    type-specific keywords applied to their type.
//   properties, required, additionalProperties (true, false or a schema;
//                    default true). Properties are written in schema order:
//                    each may be skipped unless required, none may repeat or
//                    come out of order. Extra keys (when allowed) may appear
//                    once every required property has been written (so they
//                    cannot postpone those forever), interleaved with the
//                    optional ones, but never equal a declared name; with declared
//                    names present they may not use \u or \/ escapes (so that
//                    byte comparison with the names is exact). Duplicate extra
//                    keys are not prevented. Every name in required must be
//                    in properties.
//   items (a schema or false), prefixItems, minItems, maxItems.
//   minLength, maxLength (Unicode code points).
//   minimum, maximum, exclusiveMinimum, exclusiveMaximum: enforced exactly.
//                    For integer any bound works; for number the bounds must
//                    be whole numbers and bounded numbers have no exponent.
//   enum, const:     matched against the compact form nlohmann::json::dump
//                    writes (strings escaped minimally, numbers as dumped);
//                    object and array values become exact-shape schemas.
//                    Combined with type, values of other types are dropped.
//   anyOf, oneOf (treated as anyOf: a value matching several alternatives
//                    is not prevented), allOf with exactly one schema.
//   $ref to a local JSON pointer ("#", "#/$defs/x", "#/definitions/x", ...);
//                    recursion is allowed (bounded by the nesting cap).
//   Annotations are ignored: title, description, examples, default, $schema,
//   $id, $anchor, $comment, format, deprecated, readOnly, writeOnly,
//   discriminator (OpenAPI; oneOf already enforces the shape). $defs and
//   definitions are read only through $ref.
// Refused, among others: pattern, patternProperties, propertyNames,
// multipleOf, minProperties, maxProperties, uniqueItems, contains, not,
// if/then/else, dependentRequired, remote or anchor $refs, $ref/anyOf/enum
// combined with other constraint keywords, non-whole bounds for number.
// Limits (also refused beyond): schema nesting 64, 65536 compiled nodes,
// 131072 enum/const values and 4 MiB of them, 256 alternatives per union.
// When more than 32 alternative stacks are live at once the later ones are
// dropped: the output still matches the schema, but some documents become
// unreachable.
//
// Use, per sequence and step: AllowedTokens(index, mask); set the logits of
// tokens with mask[id] == 0 to -inf; allow the end-of-generation tokens (EOS,
// end of turn) iff IsComplete(), and stop if nothing else is allowed; sample;
// Advance(TokenPiece(id)) with the chosen token (for an end token: stop).
//
// Thread safety: TokenBytesIndex is immutable after construction and may be
// shared by any number of threads. A JsonConstraint is not thread-safe (one
// per sequence); copies are independent and share only immutable data.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace xnai::engine {

class Tokenizer;

// The bytes of every token of a vocabulary in a byte trie laid out in
// pre-order, so that masking evaluates each shared prefix once and skips a
// rejected prefix's whole subtree in one jump. Built once per model.
class TokenBytesIndex {
 public:
  // Token id i has the bytes TokenPiece(i) (control tokens: none).
  static TokenBytesIndex FromTokenizer(const Tokenizer& tokenizer);
  // Token id i has the bytes pieces[i]. Empty pieces, and pieces longer than
  // 1024 bytes, are never allowed.
  static TokenBytesIndex FromPieces(const std::vector<std::string>& pieces);

  int32_t vocab_size() const { return vocab_size_; }
  // Trie nodes (distinct non-empty token prefixes); for diagnostics.
  size_t node_count() const { return nodes_.empty() ? 0 : nodes_.size() - 1; }

 private:
  friend class JsonConstraint;
  struct Node {
    uint8_t byte;           // the byte on the edge into this node
    uint8_t plain_subtree;  // 1: every byte in the subtree is plain string content
    uint16_t depth;         // prefix length, >= 1
    uint32_t skip;          // index of the first node after this node's subtree
    uint32_t tokens_begin;  // token_ids_[tokens_begin, next node's tokens_begin); the
                            // subtree's tokens are [tokens_begin, nodes_[skip].tokens_begin)
  };
  std::vector<Node> nodes_;         // pre-order, plus one sentinel at the end
  std::vector<int32_t> token_ids_;  // tokens whose bytes end at each node
  int32_t vocab_size_ = 0;
  uint16_t max_depth_ = 0;
};

namespace json_constraint_internal {
// One level of the automaton's stack. The meaning of phase/sub/bits/a/b/c
// depends on kind (see json_constraint.cc).
struct Frame {
  uint32_t node;
  uint8_t kind;
  uint8_t phase;
  uint8_t sub;
  uint8_t bits;
  uint32_t a;
  uint32_t b;
  uint32_t c;
  bool operator==(const Frame&) const = default;
};
// The live stacks: stack t is frames[ends[t-1], ends[t]) (ends[-1] = 0),
// bottom first.
struct Stacks {
  std::vector<Frame> frames;
  std::vector<uint32_t> ends;
};
struct Grammar;
}  // namespace json_constraint_internal

// The constraint state of one generating sequence.
class JsonConstraint {
 public:
  // schema == nullptr: json_object mode, any JSON object. Otherwise a JSON
  // Schema in the subset above. nlohmann::json keeps object keys sorted, so
  // properties are emitted in alphabetical order; use the ordered_json
  // overload to keep the order the schema was written in. Errors:
  // InvalidArgument naming the unsupported keyword or construct and its JSON
  // pointer, or saying why no document can satisfy the schema.
  static Result<JsonConstraint> Create(const nlohmann::json* schema);
  static Result<JsonConstraint> Create(const nlohmann::ordered_json& schema);

  // Feeds the bytes of the chosen token. Returns false, leaving the state
  // unchanged, when they are not a valid continuation (also for empty bytes).
  bool Advance(std::string_view bytes);

  // True when the bytes so far form a complete document: end-of-generation
  // (EOS, a stop string) is allowed. More bytes may still be allowed (digits
  // of a top-level number, trailing whitespace).
  bool IsComplete() const;

  // Resizes `allowed` to index.vocab_size() and sets allowed[id] = 1 exactly
  // for the tokens whose bytes may come next (Advance would return true), 0
  // for the others. Tokens without bytes (control tokens such as EOS) are
  // never allowed: the caller allows end-of-generation iff IsComplete().
  void AllowedTokens(const TokenBytesIndex& index, std::vector<uint8_t>& allowed) const;

 private:
  JsonConstraint() = default;
  static JsonConstraint FromGrammar(
      std::shared_ptr<const json_constraint_internal::Grammar> grammar);
  void WalkGeneric(const TokenBytesIndex& index, size_t begin, size_t end,
                   std::vector<json_constraint_internal::Stacks>& levels,
                   std::vector<uint8_t>& allowed) const;
  bool WalkStringLeaf(const TokenBytesIndex& index, std::vector<uint8_t>& allowed) const;

  std::shared_ptr<const json_constraint_internal::Grammar> grammar_;  // the compiled schema
  json_constraint_internal::Stacks state_;
};

}  // namespace xnai::engine
