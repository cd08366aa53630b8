#include "engine/json_constraint.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <utility>

#include "engine/tokenizer.h"

namespace xnai::engine {
namespace json_constraint_internal {
namespace {

using OrderedJson = nlohmann::ordered_json;

constexpr uint32_t kNone = 0xFFFFFFFFu;
constexpr uint32_t kMaxNesting = 32;          // open objects/arrays
constexpr uint32_t kUnsat = kMaxNesting + 1;  // min_nesting of a schema nothing satisfies
constexpr uint32_t kMaxWhitespaceRun = 24;    // bytes in one run
constexpr uint32_t kMaxLineBreaks = 2;        // \n or \r in one run
constexpr uint32_t kMaxNumberBytes = 32;
constexpr uint32_t kMaxIntegerDigits = 18;  // integers, and integer parts of bounded numbers
constexpr uint32_t kMaxExponentDigits = 2;  // so that every number is a finite double
constexpr int64_t kMagnitudeLimit = 1000000000000000000;  // 10^18: every magnitude is below
constexpr int64_t kBoundClamp = 2 * kMagnitudeLimit;      // bounds are clamped to +-this
constexpr size_t kMaxStacks = 32;
constexpr int kMaxSchemaDepth = 64;
constexpr size_t kMaxSchemaNodes = 65536;
constexpr size_t kMaxLiterals = 131072;
constexpr size_t kMaxLiteralBytes = 4 << 20;
constexpr size_t kMaxUnionAlternatives = 256;
constexpr size_t kMaxTokenBytes = 1024;

// ---------------------------------------------------------------------------
// The compiled schema.

enum class NodeKind : uint8_t {
  kPending,  // being compiled
  kAlias,    // the same as `target` ($ref, allOf of one, boolean schemas)
  kAny,      // any JSON value
  kObject,
  kArray,
  kString,
  kNumber,
  kLiteral,  // one of a sorted set of byte strings (enum, const, boolean, null)
  kUnion,    // any of `children[alts_begin, alts_end)` (never unions themselves once built)
};

// Built-in nodes, present in every grammar.
constexpr uint32_t kAnyNode = 0;
constexpr uint32_t kAnyObjectNode = 1;
constexpr uint32_t kAnyArrayNode = 2;
constexpr uint32_t kAnyStringNode = 3;
constexpr uint32_t kAnyNumberNode = 4;
constexpr uint32_t kAnyLiteralNode = 5;  // false, null, true
constexpr uint32_t kNeverNode = 6;

struct SchemaNode {
  NodeKind kind = NodeKind::kPending;
  bool integer = false;           // number: integers only
  bool satisfiable = true;        // string, number: the keywords admit some value
  uint32_t min_nesting = kUnsat;  // fewest open objects/arrays a value needs (kUnsat: none exists)
  std::string pointer;            // JSON pointer of the schema, for messages
  uint32_t target = kNone;        // alias
  // object
  uint32_t props_begin = 0, props_end = 0;  // Grammar::props
  uint32_t req_begin = 0;                   // Grammar::required_from[req_begin, +count+1)
  uint32_t additional = kNone;              // schema of extra keys' values; kNone: none allowed
  uint32_t key_trie = kNone;                // KeyTrieNode of the declared names; kNone: none
  // array
  uint32_t prefix_begin = 0, prefix_end = 0;  // Grammar::children
  uint32_t items = kNone;                     // items after the prefix; kNone: none
  uint32_t min_items = 0, max_items = kNone;
  // string
  uint32_t min_length = 0, max_length = kNone;
  // number: bounds on the value, clamped to +-kBoundClamp (integers: closed)
  bool has_min = false, has_max = false, min_exclusive = false, max_exclusive = false;
  int64_t min = 0, max = 0;
  // literal
  uint32_t lits_begin = 0, lits_end = 0;  // Grammar::literals, sorted, distinct
  // union
  uint32_t alts_begin = 0, alts_end = 0;  // Grammar::children
};

struct Property {
  std::string name;  // as written in the schema
  uint32_t node = kNone;
  uint32_t min_nesting = 0;  // copy of the node's, for the key checks
  bool required = false;
};

// A trie of the declared property names of one object (their canonical JSON
// escaped bytes, without quotes).
struct KeyTrieNode {
  uint32_t edges_begin = 0, edges_end = 0;  // Grammar::key_edges, sorted by byte
  int32_t terminal = -1;                    // property whose name ends here
  uint32_t props_begin = 0, props_end = 0;  // Grammar::key_props: properties below, ascending
};
struct KeyEdge {
  uint8_t byte;
  uint32_t child;
};

}  // namespace

struct Grammar {
  std::vector<SchemaNode> nodes;
  std::vector<Property> props;
  std::vector<uint32_t> required_from;  // per object: first required property index >= i, or count
  std::vector<uint32_t> children;
  std::vector<std::string> literals;
  std::vector<KeyTrieNode> key_nodes;
  std::vector<KeyEdge> key_edges;
  std::vector<uint32_t> key_props;
  uint32_t root = kAnyObjectNode;
};

namespace {

// ---------------------------------------------------------------------------
// Frames. Fields by kind:
//   kFrameRoot    phase: kRootBefore/kRootAfter; bits: whitespace run.
//   kFrameObject  phase: ObjPhase; bits: whitespace run; a: index of the next
//                 declared property that may come; b: property whose value is
//                 being written (kNone: an extra key).
//   kFrameArray   phase: ArrPhase; bits: whitespace run; a: items so far.
//   kFrameKey     node: the object; phase/sub: string syntax; bits:
//                 kKeyNonCanonical; a: key trie node (kNone: matches no name).
//   kFrameString  phase/sub: string syntax; a: code points so far.
//   kFrameNumber  phase: NumPhase; sub: bytes so far; bits: kNumNegative,
//                 kNumFracNonzero; a/b: integer part (low/high 32 bits);
//                 c: integer digits (exponent digits once in the exponent).
//   kFrameLiteral a/b: the literals still matching; c: bytes so far.
// A whitespace run is bits: low 5 bits its length, high 3 its line breaks.

enum FrameKind : uint8_t {
  kFrameRoot,
  kFrameObject,
  kFrameArray,
  kFrameKey,
  kFrameString,
  kFrameNumber,
  kFrameLiteral,
};
enum RootPhase : uint8_t { kRootBefore, kRootAfter };
enum ObjPhase : uint8_t { kObjOpen, kObjColon, kObjValue, kObjAfterValue, kObjAfterComma };
enum ArrPhase : uint8_t { kArrOpen, kArrAfterValue, kArrAfterComma };
enum NumPhase : uint8_t {
  kNumStart,
  kNumMinus,  // "-"
  kNumZero,   // "0" or "-0"
  kNumInt,    // integer digits, not starting with 0
  kNumDot,    // "."
  kNumFrac,   // fraction digits
  kNumE,      // "e"
  kNumESign,  // "e+"
  kNumExp,    // exponent digits
};
constexpr uint8_t kNumNegative = 1;
constexpr uint8_t kNumFracNonzero = 2;
constexpr uint8_t kKeyNonCanonical = 1;

bool IsWhitespace(uint8_t byte) {
  return byte == ' ' || byte == '\t' || byte == '\n' || byte == '\r';
}

// Counts one whitespace byte into the frame's run; false when over the caps.
bool AcceptWhitespace(Frame& frame, uint8_t byte) {
  uint32_t run = frame.bits & 0x1F;
  uint32_t breaks = frame.bits >> 5;
  if (run + 1 > kMaxWhitespaceRun) return false;
  if (byte == '\n' || byte == '\r') {
    if (breaks + 1 > kMaxLineBreaks) return false;
    ++breaks;
  }
  frame.bits = static_cast<uint8_t>((breaks << 5) | (run + 1));
  return true;
}

// ---------------------------------------------------------------------------
// JSON string syntax, byte by byte, shared by keys and string values.

enum StrPhase : uint8_t {
  kStrChar,  // between characters
  kStrCont,  // inside a UTF-8 sequence; sub: remaining bytes | range of the next << 2
  kStrEsc,   // after a backslash
  kStrU1,    // \u, expecting hex digit 1..4; sub (U2): digit 1 was D;
  kStrU2,    //   (U3, U4): this is a high surrogate
  kStrU3,
  kStrU4,
  kStrPairBackslash,  // after a high surrogate: its low half "\uDC00".."\uDFFF"
  kStrPairU,
  kStrPairH1,
  kStrPairH2,
  kStrPairH3,
  kStrPairH4,
};
enum StrEventKind : uint8_t {
  kEvReject,
  kEvContent,    // a byte inside a character
  kEvCharStart,  // the first byte of a character (counts toward the length)
  kEvClose,      // the closing quote
};
struct StrEvent {
  uint8_t kind;
  uint8_t phase;
  uint8_t sub;
  bool noncanonical;  // "\/" or "\u": not the canonical spelling of the character
};

// The allowed range of the next UTF-8 continuation byte: excludes overlong
// forms, surrogates and code points above U+10FFFF.
enum Utf8Range : uint8_t { kRangeAny, kRangeA0BF, kRange809F, kRange90BF, kRange808F };
constexpr uint8_t kRangeLow[] = {0x80, 0xA0, 0x80, 0x90, 0x80};
constexpr uint8_t kRangeHigh[] = {0xBF, 0xBF, 0x9F, 0xBF, 0x8F};

constexpr uint8_t Continuation(uint8_t remaining, Utf8Range range) {
  return static_cast<uint8_t>(remaining | (range << 2));
}

int HexValue(uint8_t byte) {
  if (byte >= '0' && byte <= '9') return byte - '0';
  if (byte >= 'a' && byte <= 'f') return byte - 'a' + 10;
  if (byte >= 'A' && byte <= 'F') return byte - 'A' + 10;
  return -1;
}

StrEvent StringStep(uint8_t phase, uint8_t sub, uint8_t byte) {
  constexpr StrEvent kReject{kEvReject, 0, 0, false};
  auto content = [](uint8_t next_phase, uint8_t next_sub = 0) {
    return StrEvent{kEvContent, next_phase, next_sub, false};
  };
  auto char_start = [](uint8_t next_phase, uint8_t next_sub = 0) {
    return StrEvent{kEvCharStart, next_phase, next_sub, false};
  };
  switch (phase) {
    case kStrChar:
      if (byte == '"') return StrEvent{kEvClose, kStrChar, 0, false};
      if (byte == '\\') return char_start(kStrEsc);
      if (byte < 0x20) return kReject;
      if (byte < 0x80) return char_start(kStrChar);
      if (byte < 0xC2) return kReject;
      if (byte < 0xE0) return char_start(kStrCont, Continuation(1, kRangeAny));
      if (byte < 0xF0) {
        Utf8Range range = byte == 0xE0 ? kRangeA0BF : byte == 0xED ? kRange809F : kRangeAny;
        return char_start(kStrCont, Continuation(2, range));
      }
      if (byte < 0xF5) {
        Utf8Range range = byte == 0xF0 ? kRange90BF : byte == 0xF4 ? kRange808F : kRangeAny;
        return char_start(kStrCont, Continuation(3, range));
      }
      return kReject;
    case kStrCont: {
      const uint8_t remaining = sub & 3;
      const uint8_t range = sub >> 2;
      if (byte < kRangeLow[range] || byte > kRangeHigh[range]) return kReject;
      if (remaining == 1) return content(kStrChar);
      return content(kStrCont, Continuation(remaining - 1, kRangeAny));
    }
    case kStrEsc:
      switch (byte) {
        case '"':
        case '\\':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
          return content(kStrChar);
        case '/':
          return StrEvent{kEvContent, kStrChar, 0, true};
        case 'u':
          return StrEvent{kEvContent, kStrU1, 0, true};
        default:
          return kReject;
      }
    case kStrU1: {
      const int h = HexValue(byte);
      if (h < 0) return kReject;
      return content(kStrU2, h == 0xD ? 1 : 0);
    }
    case kStrU2: {
      const int h = HexValue(byte);
      if (h < 0) return kReject;
      if (sub == 1 && h >= 0xC) return kReject;  // a low surrogate without its high half
      return content(kStrU3, sub == 1 && h >= 0x8 ? 1 : 0);
    }
    case kStrU3:
      if (HexValue(byte) < 0) return kReject;
      return content(kStrU4, sub);
    case kStrU4:
      if (HexValue(byte) < 0) return kReject;
      return content(sub == 1 ? kStrPairBackslash : kStrChar);
    case kStrPairBackslash:
      return byte == '\\' ? content(kStrPairU) : kReject;
    case kStrPairU:
      return byte == 'u' ? content(kStrPairH1) : kReject;
    case kStrPairH1:
      return byte == 'd' || byte == 'D' ? content(kStrPairH2) : kReject;
    case kStrPairH2: {
      const int h = HexValue(byte);
      return h >= 0xC ? content(kStrPairH3) : kReject;
    }
    case kStrPairH3:
      return HexValue(byte) >= 0 ? content(kStrPairH4) : kReject;
    case kStrPairH4:
      return HexValue(byte) >= 0 ? content(kStrChar) : kReject;
    default:
      return kReject;
  }
}

// ---------------------------------------------------------------------------
// Number bounds. A bounded number has no exponent and its bounds are whole,
// so the set of values a prefix can still reach is a union of intervals with
// whole endpoints, tested exactly in int64 on the magnitude.

struct Bounds {
  bool has_lo = false, lo_closed = true;
  int64_t lo = 0;
  bool has_hi = false, hi_closed = true;
  int64_t hi = 0;
};

// Bounds on the magnitude m of a number with the given sign (value = +-m),
// intersected with m >= 0.
Bounds MagnitudeBounds(const SchemaNode& n, bool negative) {
  Bounds b;
  if (!negative) {
    b = {n.has_min, !n.min_exclusive, n.min, n.has_max, !n.max_exclusive, n.max};
  } else {  // lo <= -m <= hi  <=>  -hi <= m <= -lo
    b = {n.has_max, !n.max_exclusive, -n.max, n.has_min, !n.min_exclusive, -n.min};
  }
  if (!b.has_lo || b.lo < 0) {
    b.has_lo = true;
    b.lo = 0;
    b.lo_closed = true;
  }
  return b;
}

// True when the interval from a to c (closed or open at each end) meets `b`.
bool Meets(const Bounds& b, int64_t a, bool a_closed, int64_t c, bool c_closed) {
  int64_t lower = a;
  bool lower_closed = a_closed;
  if (b.has_lo) {
    if (b.lo > lower) {
      lower = b.lo;
      lower_closed = b.lo_closed;
    } else if (b.lo == lower) {
      lower_closed = lower_closed && b.lo_closed;
    }
  }
  int64_t upper = c;
  bool upper_closed = c_closed;
  if (b.has_hi) {
    if (b.hi < upper) {
      upper = b.hi;
      upper_closed = b.hi_closed;
    } else if (b.hi == upper) {
      upper_closed = upper_closed && b.hi_closed;
    }
  }
  return lower < upper || (lower == upper && lower_closed && upper_closed);
}

int64_t IntegerPart(const Frame& f) {
  return static_cast<int64_t>((static_cast<uint64_t>(f.b) << 32) | f.a);
}
void SetIntegerPart(Frame& f, int64_t v) {
  f.a = static_cast<uint32_t>(static_cast<uint64_t>(v));
  f.b = static_cast<uint32_t>(static_cast<uint64_t>(v) >> 32);
}

// Bytes a number in `phase` needs at least before it is complete.
uint32_t BytesToFinish(uint8_t phase) {
  switch (phase) {
    case kNumMinus:
    case kNumDot:
    case kNumE:
    case kNumESign:
      return 1;
    default:
      return 0;
  }
}

// Whether a bounded number in state `f` (its last byte just read) can still
// end inside the bounds.
bool NumberViable(const SchemaNode& n, const Frame& f) {
  const Bounds mb = MagnitudeBounds(n, f.bits & kNumNegative);
  const int64_t value = IntegerPart(f);
  switch (f.phase) {
    case kNumMinus:
      return n.integer ? Meets(mb, 0, true, kMagnitudeLimit - 1, true)
                       : Meets(mb, 0, true, kMagnitudeLimit, false);
    case kNumZero:
    case kNumInt: {
      if (Meets(mb, value, true, value, true)) return true;
      if (!n.integer && f.sub + 2u <= kMaxNumberBytes &&
          Meets(mb, value, false, value + 1, false)) {
        return true;
      }
      if (f.phase == kNumZero) return false;
      // More integer digits: [value * 10^j, (value + 1) * 10^j).
      int64_t scale = 1;
      for (uint32_t digits = f.c + 1;
           digits <= kMaxIntegerDigits && f.sub + (digits - f.c) <= kMaxNumberBytes; ++digits) {
        scale *= 10;
        const int64_t lo = value * scale;
        const int64_t hi = (value + 1) * scale;
        if (n.integer ? Meets(mb, lo, true, hi - 1, true) : Meets(mb, lo, true, hi, false)) {
          return true;
        }
      }
      return false;
    }
    case kNumDot:
      return Meets(mb, value, true, value + 1, false);
    case kNumFrac: {
      const bool nonzero = f.bits & kNumFracNonzero;
      if (!nonzero && Meets(mb, value, true, value, true)) return true;
      return (nonzero || f.sub < kMaxNumberBytes) && Meets(mb, value, false, value + 1, false);
    }
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------
// The automaton.

class Machine {
 public:
  explicit Machine(const Grammar& grammar) : g_(grammar) {}

  // out = the stacks `in` becomes after `byte`; none when it is rejected.
  void Step(const Stacks& in, uint8_t byte, Stacks& out);
  bool IsComplete(const Stacks& s) const;

 private:
  // The stack at out.frames[begin, end) (the last one) takes `byte`. On
  // success the resulting stack(s) end(s) are appended to out.ends; on
  // failure out.frames is cut back to `begin`.
  bool Feed(Stacks& out, size_t begin, uint8_t byte);
  // Starts a value of schema `node` whose first byte is `byte` on top of the
  // stack at out.frames[begin, end): one stack per alternative of a union.
  bool StartValue(Stacks& out, size_t begin, uint32_t node, uint8_t byte);
  // Pushes the frame of a non-union `node` and feeds it its first byte.
  bool PushValue(std::vector<Frame>& f, size_t begin, uint32_t node, uint8_t byte);
  // Pops a finished value and moves its container past it.
  static void PopValue(std::vector<Frame>& f);

  bool Fits(uint32_t parent_index, uint32_t node) const {
    return parent_index + g_.nodes[node].min_nesting <= kMaxNesting;
  }
  uint32_t WindowLast(const SchemaNode& n, uint32_t next) const;
  bool PropertyAllowed(const SchemaNode& n, uint32_t prop, uint32_t next, uint32_t ci) const;
  bool KeyPrefixAllowed(const SchemaNode& n, uint32_t trie, uint32_t next, uint32_t ci) const;
  // Extra keys come only once every required property is written, so that
  // extra keys cannot postpone the required ones forever.
  bool FreeKeyAllowed(const SchemaNode& n, uint32_t next, uint32_t ci) const {
    return n.additional != kNone && CanClose(n, next) && Fits(ci, n.additional);
  }
  bool CanStartKey(const SchemaNode& n, uint32_t next, uint32_t ci) const {
    return (n.key_trie != kNone && KeyPrefixAllowed(n, n.key_trie, next, ci)) ||
           FreeKeyAllowed(n, next, ci);
  }
  bool CanClose(const SchemaNode& n, uint32_t next) const {
    return g_.required_from[n.req_begin + next] == n.props_end - n.props_begin;
  }
  uint32_t TrieChild(uint32_t trie, uint8_t byte) const;
  uint32_t ItemNode(const SchemaNode& n, uint32_t index) const {
    const uint32_t prefix = n.prefix_end - n.prefix_begin;
    return index < prefix ? g_.children[n.prefix_begin + index] : n.items;
  }
  bool CanStartItem(const SchemaNode& n, uint32_t index, uint32_t ci) const {
    if (index >= n.max_items) return false;
    const uint32_t item = ItemNode(n, index);
    return item != kNone && Fits(ci, item);
  }
  bool NumberStep(const SchemaNode& n, Frame& f, uint8_t byte) const;
  bool NumberComplete(const SchemaNode& n, const Frame& f) const;
  bool LiteralStep(Frame& f, uint8_t byte) const;
  bool LiteralComplete(const Frame& f) const { return g_.literals[f.a].size() == f.c; }

  const Grammar& g_;
  std::vector<Frame> scratch_;  // a stack being forked
};

void Dedupe(Stacks& s) {
  std::vector<Frame>& f = s.frames;
  uint32_t kept = 0;
  uint32_t write = 0;
  uint32_t read_begin = 0;
  for (size_t t = 0; t < s.ends.size(); ++t) {
    const uint32_t rb = read_begin;
    const uint32_t re = s.ends[t];
    read_begin = re;
    if (kept == kMaxStacks) continue;
    bool duplicate = false;
    uint32_t kb = 0;
    for (uint32_t k = 0; k < kept && !duplicate; ++k) {
      const uint32_t ke = s.ends[k];
      duplicate = ke - kb == re - rb && std::equal(f.begin() + kb, f.begin() + ke, f.begin() + rb);
      kb = ke;
    }
    if (duplicate) continue;
    if (rb != write) std::copy(f.begin() + rb, f.begin() + re, f.begin() + write);
    write += re - rb;
    s.ends[kept++] = write;
  }
  f.resize(write);
  s.ends.resize(kept);
}

void Machine::Step(const Stacks& in, uint8_t byte, Stacks& out) {
  out.frames.clear();
  out.ends.clear();
  uint32_t begin = 0;
  for (uint32_t end : in.ends) {
    const size_t at = out.frames.size();
    out.frames.insert(out.frames.end(), in.frames.begin() + begin, in.frames.begin() + end);
    begin = end;
    Feed(out, at, byte);
  }
  if (out.ends.size() > 1) Dedupe(out);
}

bool Machine::IsComplete(const Stacks& s) const {
  uint32_t begin = 0;
  for (uint32_t end : s.ends) {
    const Frame& top = s.frames[end - 1];
    if (top.kind == kFrameRoot && top.phase == kRootAfter) return true;
    if (end - begin == 2) {
      if (top.kind == kFrameNumber && NumberComplete(g_.nodes[top.node], top)) return true;
      if (top.kind == kFrameLiteral && LiteralComplete(top)) return true;
    }
    begin = end;
  }
  return false;
}

void Machine::PopValue(std::vector<Frame>& f) {
  f.pop_back();
  Frame& parent = f.back();
  parent.bits = 0;
  switch (parent.kind) {
    case kFrameRoot:
      parent.phase = kRootAfter;
      break;
    case kFrameObject:
      parent.phase = kObjAfterValue;
      break;
    case kFrameArray:
      parent.phase = kArrAfterValue;
      if (parent.a < kNone - 1) ++parent.a;
      break;
    default:
      break;
  }
}

uint32_t Machine::WindowLast(const SchemaNode& n, uint32_t next) const {
  const uint32_t count = n.props_end - n.props_begin;
  const uint32_t required = g_.required_from[n.req_begin + next];
  return required < count ? required : count - 1;
}

// A declared property may come next if it is not behind `next`, no required
// property lies between, and its value fits under the nesting cap.
bool Machine::PropertyAllowed(const SchemaNode& n, uint32_t prop, uint32_t next,
                              uint32_t ci) const {
  return prop >= next && prop <= WindowLast(n, next) &&
         ci + g_.props[n.props_begin + prop].min_nesting <= kMaxNesting;
}

bool Machine::KeyPrefixAllowed(const SchemaNode& n, uint32_t trie, uint32_t next,
                               uint32_t ci) const {
  const KeyTrieNode& t = g_.key_nodes[trie];
  const uint32_t last = WindowLast(n, next);
  const auto end = g_.key_props.begin() + t.props_end;
  for (auto it = std::lower_bound(g_.key_props.begin() + t.props_begin, end, next);
       it != end && *it <= last; ++it) {
    if (ci + g_.props[n.props_begin + *it].min_nesting <= kMaxNesting) return true;
  }
  return false;
}

uint32_t Machine::TrieChild(uint32_t trie, uint8_t byte) const {
  const KeyTrieNode& t = g_.key_nodes[trie];
  for (uint32_t e = t.edges_begin; e < t.edges_end; ++e) {
    if (g_.key_edges[e].byte == byte) return g_.key_edges[e].child;
  }
  return kNone;
}

bool Machine::NumberStep(const SchemaNode& n, Frame& f, uint8_t byte) const {
  Frame next = f;
  const bool digit = byte >= '0' && byte <= '9';
  const bool bounded = n.has_min || n.has_max;
  const bool capped_digits = n.integer || bounded;
  auto add_digit = [&] {
    if (next.c < kMaxIntegerDigits) SetIntegerPart(next, IntegerPart(next) * 10 + (byte - '0'));
    ++next.c;
  };
  auto dot_or_exponent = [&] {
    if (byte == '.' && !n.integer) {
      next.phase = kNumDot;
      return true;
    }
    if ((byte == 'e' || byte == 'E') && !n.integer && !bounded) {
      next.phase = kNumE;
      next.c = 0;  // now counts exponent digits
      return true;
    }
    return false;
  };
  switch (f.phase) {
    case kNumStart:
      if (byte == '-') {
        next.phase = kNumMinus;
        next.bits |= kNumNegative;
        break;
      }
      [[fallthrough]];
    case kNumMinus:
      if (byte == '0') {
        next.phase = kNumZero;
        next.c = 1;
      } else if (digit) {
        next.phase = kNumInt;
        add_digit();
      } else {
        return false;
      }
      break;
    case kNumInt:
      if (digit) {
        if (capped_digits && next.c >= kMaxIntegerDigits) return false;
        add_digit();
        break;
      }
      [[fallthrough]];
    case kNumZero:
      if (!dot_or_exponent()) return false;
      break;
    case kNumDot:
      if (!digit) return false;
      next.phase = kNumFrac;
      if (byte != '0') next.bits |= kNumFracNonzero;
      break;
    case kNumFrac:
      if (digit) {
        if (byte != '0') next.bits |= kNumFracNonzero;
      } else if (!((byte == 'e' || byte == 'E') && !bounded)) {
        return false;
      } else {
        next.phase = kNumE;
        next.c = 0;
      }
      break;
    case kNumE:
      if (byte == '+' || byte == '-') {
        next.phase = kNumESign;
        break;
      }
      [[fallthrough]];
    case kNumESign:
    case kNumExp:
      if (!digit || next.c >= kMaxExponentDigits) return false;
      next.phase = kNumExp;
      ++next.c;
      break;
    default:
      return false;
  }
  next.sub = static_cast<uint8_t>(f.sub + 1);
  if (next.sub + BytesToFinish(next.phase) > kMaxNumberBytes) return false;
  if (bounded && !NumberViable(n, next)) return false;
  f = next;
  return true;
}

bool Machine::NumberComplete(const SchemaNode& n, const Frame& f) const {
  if (f.phase != kNumZero && f.phase != kNumInt && f.phase != kNumFrac && f.phase != kNumExp) {
    return false;
  }
  if (!n.has_min && !n.has_max) return true;
  const Bounds mb = MagnitudeBounds(n, f.bits & kNumNegative);
  const int64_t value = IntegerPart(f);
  if (f.phase == kNumFrac && (f.bits & kNumFracNonzero)) {
    return Meets(mb, value, false, value + 1, false);
  }
  return Meets(mb, value, true, value, true);
}

// The literals in [a, b) share their first c bytes and are sorted, so those
// whose byte c is `byte` form a sub-range (literals of length c come first).
bool Machine::LiteralStep(Frame& f, uint8_t byte) const {
  const std::vector<std::string>& lits = g_.literals;
  const uint32_t pos = f.c;
  auto key = [&](uint32_t i) {
    return lits[i].size() > pos ? static_cast<int>(static_cast<uint8_t>(lits[i][pos])) : -1;
  };
  const int target = byte;
  uint32_t first = f.a;
  uint32_t count = f.b - f.a;
  while (count > 0) {  // first index with key >= byte
    const uint32_t half = count / 2;
    if (key(first + half) < target) {
      first += half + 1;
      count -= half + 1;
    } else {
      count = half;
    }
  }
  if (first == f.b || key(first) != target) return false;
  uint32_t last = first;
  count = f.b - first;
  while (count > 0) {  // first index with key > byte
    const uint32_t half = count / 2;
    if (key(last + half) <= target) {
      last += half + 1;
      count -= half + 1;
    } else {
      count = half;
    }
  }
  f.a = first;
  f.b = last;
  f.c = pos + 1;
  return true;
}

bool Machine::PushValue(std::vector<Frame>& f, size_t begin, uint32_t node, uint8_t byte) {
  const uint32_t parent_index = static_cast<uint32_t>(f.size() - 1 - begin);
  const SchemaNode& n = g_.nodes[node];
  if (parent_index + n.min_nesting > kMaxNesting) return false;
  switch (n.kind) {
    case NodeKind::kAny:
      switch (byte) {
        case '{':
          return PushValue(f, begin, kAnyObjectNode, byte);
        case '[':
          return PushValue(f, begin, kAnyArrayNode, byte);
        case '"':
          return PushValue(f, begin, kAnyStringNode, byte);
        case 't':
        case 'f':
        case 'n':
          return PushValue(f, begin, kAnyLiteralNode, byte);
        default:
          return PushValue(f, begin, kAnyNumberNode, byte);
      }
    case NodeKind::kObject:
      if (byte != '{') return false;
      f.push_back(Frame{node, kFrameObject, kObjOpen, 0, 0, 0, kNone, 0});
      return true;
    case NodeKind::kArray:
      if (byte != '[') return false;
      f.push_back(Frame{node, kFrameArray, kArrOpen, 0, 0, 0, 0, 0});
      return true;
    case NodeKind::kString:
      if (byte != '"') return false;
      f.push_back(Frame{node, kFrameString, kStrChar, 0, 0, 0, 0, 0});
      return true;
    case NodeKind::kNumber: {
      Frame frame{node, kFrameNumber, kNumStart, 0, 0, 0, 0, 0};
      if (!NumberStep(n, frame, byte)) return false;
      f.push_back(frame);
      return true;
    }
    case NodeKind::kLiteral: {
      Frame frame{node, kFrameLiteral, 0, 0, 0, n.lits_begin, n.lits_end, 0};
      if (frame.a == frame.b || !LiteralStep(frame, byte)) return false;
      f.push_back(frame);
      return true;
    }
    default:
      return false;
  }
}

bool Machine::StartValue(Stacks& out, size_t begin, uint32_t node, uint8_t byte) {
  std::vector<Frame>& f = out.frames;
  const SchemaNode& n = g_.nodes[node];
  if (n.kind != NodeKind::kUnion || n.alts_end - n.alts_begin == 1) {
    if (n.kind == NodeKind::kUnion) node = g_.children[n.alts_begin];
    if (!PushValue(f, begin, node, byte)) {
      f.resize(begin);
      return false;
    }
    out.ends.push_back(static_cast<uint32_t>(f.size()));
    return true;
  }
  // One stack per alternative that can start with `byte`.
  const uint32_t parent_index = static_cast<uint32_t>(f.size() - 1 - begin);
  scratch_.assign(f.begin() + begin, f.end());
  f.resize(begin);
  bool any = false;
  for (uint32_t k = n.alts_begin; k < n.alts_end; ++k) {
    const uint32_t alt = g_.children[k];
    if (!Fits(parent_index, alt)) continue;
    const size_t at = f.size();
    f.insert(f.end(), scratch_.begin(), scratch_.end());
    if (PushValue(f, at, alt, byte)) {
      out.ends.push_back(static_cast<uint32_t>(f.size()));
      any = true;
    } else {
      f.resize(at);
    }
  }
  return any;
}

bool Machine::Feed(Stacks& out, size_t begin, uint8_t byte) {
  std::vector<Frame>& f = out.frames;
  auto accept = [&] {
    out.ends.push_back(static_cast<uint32_t>(f.size()));
    return true;
  };
  auto reject = [&] {
    f.resize(begin);
    return false;
  };
  for (;;) {
    const uint32_t top_index = static_cast<uint32_t>(f.size() - 1 - begin);
    Frame& top = f.back();
    switch (top.kind) {
      case kFrameRoot:
        if (IsWhitespace(byte)) return AcceptWhitespace(top, byte) ? accept() : reject();
        if (top.phase == kRootAfter) return reject();
        top.bits = 0;
        return StartValue(out, begin, g_.root, byte);

      case kFrameObject: {
        const SchemaNode& n = g_.nodes[top.node];
        if (IsWhitespace(byte)) return AcceptWhitespace(top, byte) ? accept() : reject();
        top.bits = 0;
        switch (top.phase) {
          case kObjOpen:
          case kObjAfterComma:
            if (byte == '"' && (top.phase == kObjAfterComma || CanStartKey(n, top.a, top_index))) {
              f.push_back(Frame{top.node, kFrameKey, kStrChar, 0, 0, n.key_trie, 0, 0});
              return accept();
            }
            if (byte == '}' && top.phase == kObjOpen && CanClose(n, top.a)) {
              PopValue(f);
              return accept();
            }
            return reject();
          case kObjColon:
            if (byte != ':') return reject();
            top.phase = kObjValue;
            return accept();
          case kObjValue: {
            const uint32_t child =
                top.b == kNone ? n.additional : g_.props[n.props_begin + top.b].node;
            return StartValue(out, begin, child, byte);
          }
          case kObjAfterValue:
            if (byte == ',' && CanStartKey(n, top.a, top_index)) {
              top.phase = kObjAfterComma;
              return accept();
            }
            if (byte == '}' && CanClose(n, top.a)) {
              PopValue(f);
              return accept();
            }
            return reject();
          default:
            return reject();
        }
      }

      case kFrameKey: {
        const Frame& obj = f[f.size() - 2];
        const SchemaNode& n = g_.nodes[obj.node];
        const uint32_t ci = top_index - 1;
        const StrEvent ev = StringStep(top.phase, top.sub, byte);
        if (ev.kind == kEvReject) return reject();
        // With declared names, an extra key must differ from all of them
        // byte for byte, which only implies a different decoded key when it
        // spells every character canonically.
        const bool noncanonical = (top.bits & kKeyNonCanonical) || ev.noncanonical;
        const bool free_ok = FreeKeyAllowed(n, obj.a, ci) && !(n.key_trie != kNone && noncanonical);
        if (ev.kind == kEvClose) {
          uint32_t prop = kNone;
          if (top.a != kNone && g_.key_nodes[top.a].terminal >= 0) {
            prop = static_cast<uint32_t>(g_.key_nodes[top.a].terminal);
            if (!PropertyAllowed(n, prop, obj.a, ci)) return reject();
          } else if (!free_ok) {
            return reject();
          }
          f.pop_back();
          Frame& o = f.back();
          o.phase = kObjColon;
          o.bits = 0;
          o.b = prop;
          if (prop != kNone) o.a = prop + 1;
          return accept();
        }
        if (top.a != kNone) {
          const uint32_t child = TrieChild(top.a, byte);
          const bool ok =
              child != kNone ? KeyPrefixAllowed(n, child, obj.a, ci) || free_ok : free_ok;
          if (!ok) return reject();
          top.a = child;
        } else if (!free_ok) {
          return reject();
        }
        top.phase = ev.phase;
        top.sub = ev.sub;
        if (noncanonical) top.bits |= kKeyNonCanonical;
        return accept();
      }

      case kFrameArray: {
        const SchemaNode& n = g_.nodes[top.node];
        if (IsWhitespace(byte)) return AcceptWhitespace(top, byte) ? accept() : reject();
        top.bits = 0;
        if (top.phase == kArrAfterValue) {
          if (byte == ',' && CanStartItem(n, top.a, top_index)) {
            top.phase = kArrAfterComma;
            return accept();
          }
          if (byte == ']' && top.a >= n.min_items) {
            PopValue(f);
            return accept();
          }
          return reject();
        }
        if (top.phase == kArrOpen) {
          if (byte == ']') {
            if (n.min_items > 0) return reject();
            PopValue(f);
            return accept();
          }
          if (!CanStartItem(n, 0, top_index)) return reject();
        }
        return StartValue(out, begin, ItemNode(n, top.a), byte);
      }

      case kFrameString: {
        const SchemaNode& n = g_.nodes[top.node];
        const StrEvent ev = StringStep(top.phase, top.sub, byte);
        switch (ev.kind) {
          case kEvReject:
            return reject();
          case kEvClose:
            if (top.a < n.min_length) return reject();
            PopValue(f);
            return accept();
          case kEvCharStart:
            if (top.a >= n.max_length) return reject();
            ++top.a;
            break;
          default:
            break;
        }
        top.phase = ev.phase;
        top.sub = ev.sub;
        return accept();
      }

      case kFrameNumber: {
        const SchemaNode& n = g_.nodes[top.node];
        if (NumberStep(n, top, byte)) return accept();
        if (!NumberComplete(n, top)) return reject();
        PopValue(f);  // the byte belongs to the container: try it there
        continue;
      }

      case kFrameLiteral:
        if (LiteralStep(top, byte)) return accept();
        if (!LiteralComplete(top)) return reject();
        PopValue(f);
        continue;

      default:
        return reject();
    }
  }
}

// ---------------------------------------------------------------------------
// Schema compilation.

bool IsAnnotation(std::string_view key) {
  static const std::set<std::string_view> kAnnotations = {
      "title",    "description", "examples",      "default", "$schema",
      "$id",      "$anchor",     "$comment",      "format",  "deprecated",
      "readOnly", "writeOnly",   "discriminator", "$defs",   "definitions",
  };
  return kAnnotations.count(key) > 0;
}

enum TypeName : uint8_t { kTObject, kTArray, kTString, kTNumber, kTInteger, kTBoolean, kTNull };
constexpr const char* kTypeNames[] = {"object",  "array",   "string", "number",
                                      "integer", "boolean", "null"};

// The type a type-specific keyword applies to; -1 for the others.
int KeywordType(std::string_view key) {
  if (key == "properties" || key == "required" || key == "additionalProperties") return kTObject;
  if (key == "items" || key == "prefixItems" || key == "minItems" || key == "maxItems") {
    return kTArray;
  }
  if (key == "minLength" || key == "maxLength") return kTString;
  if (key == "minimum" || key == "maximum" || key == "exclusiveMinimum" ||
      key == "exclusiveMaximum") {
    return kTNumber;
  }
  return -1;
}

bool IsKnownKeyword(std::string_view key) {
  return KeywordType(key) >= 0 || key == "type" || key == "enum" || key == "const" ||
         key == "anyOf" || key == "oneOf" || key == "allOf" || key == "$ref";
}

std::string PointerToken(std::string_view key) {
  std::string out;
  for (char ch : key) {
    if (ch == '~') {
      out += "~0";
    } else if (ch == '/') {
      out += "~1";
    } else {
      out += ch;
    }
  }
  return out;
}

std::string Show(const std::string& pointer) { return pointer.empty() ? "/ (root)" : pointer; }

Status Invalid(const std::string& what, const std::string& pointer) {
  return Status::InvalidArgument("json schema: " + what + " at " + Show(pointer));
}

// The canonical JSON spelling of `s` without quotes: the escapes
// nlohmann::json::dump writes (\" \\ \b \f \n \r \t, \u00xx for other
// control characters), everything else as is. Fails on invalid UTF-8.
Result<std::string> CanonicalString(const std::string& s, const std::string& pointer) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 2);
  for (char ch : s) {
    const auto byte = static_cast<uint8_t>(ch);
    switch (byte) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (byte < 0x20) {
          out += "\\u00";
          out += kHex[byte >> 4];
          out += kHex[byte & 15];
        } else {
          out += ch;
        }
    }
  }
  // Validate with the same automaton that will match it.
  uint8_t phase = kStrChar;
  uint8_t sub = 0;
  for (char ch : out) {
    const StrEvent ev = StringStep(phase, sub, static_cast<uint8_t>(ch));
    if (ev.kind == kEvReject || ev.kind == kEvClose) return Err(Invalid("invalid UTF-8", pointer));
    phase = ev.phase;
    sub = ev.sub;
  }
  if (phase != kStrChar) return Err(Invalid("invalid UTF-8", pointer));
  return out;
}

class SchemaCompiler {
 public:
  SchemaCompiler(const OrderedJson& root, Grammar& g) : root_(root), g_(g) {}

  Status Run() {
    const uint32_t root = NewNode("");
    refs_[""] = root;
    XNAI_RETURN_IF_ERROR(CompileInto(root, root_, "", 0));
    g_.root = root;
    return Finish();
  }

 private:
  uint32_t NewNode(const std::string& pointer) {
    g_.nodes.emplace_back();
    g_.nodes.back().pointer = pointer;
    return static_cast<uint32_t>(g_.nodes.size() - 1);
  }
  void SetAlias(uint32_t id, uint32_t target) {
    g_.nodes[id].kind = NodeKind::kAlias;
    g_.nodes[id].target = target;
  }
  Result<uint32_t> Compile(const OrderedJson& s, const std::string& pointer, int depth) {
    if (s.is_boolean()) return s.get<bool>() ? kAnyNode : kNeverNode;
    const uint32_t id = NewNode(pointer);
    XNAI_RETURN_IF_ERROR(CompileInto(id, s, pointer, depth));
    return id;
  }

  Status CompileInto(uint32_t id, const OrderedJson& s, const std::string& pointer, int depth);
  Result<uint32_t> ResolveRef(const OrderedJson& ref, const std::string& pointer, int depth);
  Status CompileEnum(uint32_t id, const OrderedJson& s, const std::string& pointer, int depth);
  Status CompileTyped(uint32_t id, TypeName type, const OrderedJson& s, const std::string& pointer,
                      int depth);
  Result<uint32_t> CompileConst(const OrderedJson& v, const std::string& pointer, int depth);
  Status FillObject(uint32_t id, const std::vector<Property>& props, uint32_t additional,
                    const std::string& pointer);
  Status AddLiterals(uint32_t id, std::vector<std::string> lits, const std::string& pointer);
  Result<std::vector<TypeName>> ParseTypes(const OrderedJson& type, const std::string& pointer);
  Status Finish();

  const OrderedJson& root_;
  Grammar& g_;
  std::map<std::string, uint32_t> refs_;  // JSON pointer -> node
  size_t literal_count_ = 0;
  size_t literal_bytes_ = 0;
};

Result<uint32_t> ReadCount(const OrderedJson& v, const std::string& pointer) {
  if (v.is_number_unsigned())
    return static_cast<uint32_t>(std::min<uint64_t>(v.get<uint64_t>(), kNone - 1));
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    return static_cast<uint32_t>(std::min<int64_t>(v.get<int64_t>(), kNone - 1));
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (d >= 0 && std::floor(d) == d) return static_cast<uint32_t>(std::min<double>(d, kNone - 1));
  }
  return Err(Invalid("expected a non-negative integer", pointer));
}

Status SchemaCompiler::CompileInto(uint32_t id, const OrderedJson& s, const std::string& pointer,
                                   int depth) {
  if (depth > kMaxSchemaDepth) {
    return Invalid("schema nested deeper than " + std::to_string(kMaxSchemaDepth) + " levels",
                   pointer);
  }
  if (g_.nodes.size() > kMaxSchemaNodes) {
    return Invalid("schema too large (more than " + std::to_string(kMaxSchemaNodes) + " nodes)",
                   pointer);
  }
  if (s.is_boolean()) {
    SetAlias(id, s.get<bool>() ? kAnyNode : kNeverNode);
    return Status::Ok();
  }
  if (!s.is_object()) return Invalid("a schema must be an object or a boolean", pointer);

  std::vector<std::string> keys;  // the constraining keywords
  for (auto it = s.begin(); it != s.end(); ++it) {
    if (IsAnnotation(it.key())) continue;
    if (!IsKnownKeyword(it.key())) {
      return Invalid("unsupported keyword \"" + it.key() + "\"",
                     pointer + "/" + PointerToken(it.key()));
    }
    keys.push_back(it.key());
  }
  auto only = [&](std::initializer_list<std::string_view> allowed,
                  std::string_view main) -> Status {
    for (const std::string& key : keys) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        return Invalid(
            "\"" + key + "\" combined with \"" + std::string(main) + "\" is not supported",
            pointer);
      }
    }
    return Status::Ok();
  };

  if (s.contains("$ref")) {
    XNAI_RETURN_IF_ERROR(only({"$ref"}, "$ref"));
    XNAI_ASSIGN_OR_RETURN(uint32_t target, ResolveRef(s["$ref"], pointer + "/$ref", depth));
    SetAlias(id, target);
    return Status::Ok();
  }
  if (s.contains("allOf")) {
    XNAI_RETURN_IF_ERROR(only({"allOf"}, "allOf"));
    const OrderedJson& all = s["allOf"];
    if (!all.is_array() || all.size() != 1) {
      return Invalid("allOf is supported with exactly one schema", pointer + "/allOf");
    }
    XNAI_ASSIGN_OR_RETURN(uint32_t target, Compile(all[0], pointer + "/allOf/0", depth + 1));
    SetAlias(id, target);
    return Status::Ok();
  }
  if (s.contains("anyOf") || s.contains("oneOf")) {
    const std::string word = s.contains("anyOf") ? "anyOf" : "oneOf";
    XNAI_RETURN_IF_ERROR(only({word}, word));
    const OrderedJson& alts = s[word];
    if (!alts.is_array() || alts.empty()) {
      return Invalid(word + " must be a non-empty array", pointer + "/" + word);
    }
    std::vector<uint32_t> ids;
    for (size_t k = 0; k < alts.size(); ++k) {
      XNAI_ASSIGN_OR_RETURN(
          uint32_t alt,
          Compile(alts[k], pointer + "/" + word + "/" + std::to_string(k), depth + 1));
      ids.push_back(alt);
    }
    SchemaNode& n = g_.nodes[id];
    n.kind = NodeKind::kUnion;
    n.alts_begin = static_cast<uint32_t>(g_.children.size());
    g_.children.insert(g_.children.end(), ids.begin(), ids.end());
    n.alts_end = static_cast<uint32_t>(g_.children.size());
    return Status::Ok();
  }
  if (s.contains("enum") || s.contains("const")) {
    if (s.contains("enum") && s.contains("const")) {
      return Invalid("\"enum\" combined with \"const\" is not supported", pointer);
    }
    XNAI_RETURN_IF_ERROR(only({"enum", "const", "type"}, s.contains("enum") ? "enum" : "const"));
    return CompileEnum(id, s, pointer, depth);
  }

  std::vector<TypeName> types;
  if (s.contains("type")) {
    XNAI_ASSIGN_OR_RETURN(types, ParseTypes(s["type"], pointer + "/type"));
  } else {
    bool typed_keywords = false;
    for (const std::string& key : keys) typed_keywords |= KeywordType(key) >= 0;
    if (!typed_keywords) {
      SetAlias(id, kAnyNode);
      return Status::Ok();
    }
    types = {kTObject, kTArray, kTString, kTNumber, kTBoolean, kTNull};
  }
  for (const std::string& key : keys) {
    const int kind = KeywordType(key);
    if (kind < 0) continue;
    bool applies = false;
    for (TypeName t : types) applies |= t == kind || (t == kTInteger && kind == kTNumber);
    if (!applies) {
      return Invalid("keyword \"" + key + "\" does not apply to the schema's type",
                     pointer + "/" + PointerToken(key));
    }
  }
  if (types.size() == 1) return CompileTyped(id, types[0], s, pointer, depth);
  std::vector<uint32_t> ids;
  for (TypeName t : types) {
    const uint32_t alt = NewNode(pointer);
    XNAI_RETURN_IF_ERROR(CompileTyped(alt, t, s, pointer, depth));
    ids.push_back(alt);
  }
  SchemaNode& n = g_.nodes[id];
  n.kind = NodeKind::kUnion;
  n.alts_begin = static_cast<uint32_t>(g_.children.size());
  g_.children.insert(g_.children.end(), ids.begin(), ids.end());
  n.alts_end = static_cast<uint32_t>(g_.children.size());
  return Status::Ok();
}

Result<std::vector<TypeName>> SchemaCompiler::ParseTypes(const OrderedJson& type,
                                                         const std::string& pointer) {
  std::vector<TypeName> types;
  auto add = [&](const OrderedJson& v) -> Status {
    if (!v.is_string()) return Invalid("type must be a string or an array of strings", pointer);
    const std::string name = v.get<std::string>();
    for (uint8_t t = 0; t < 7; ++t) {
      if (name == kTypeNames[t]) {
        if (std::find(types.begin(), types.end(), TypeName(t)) == types.end()) {
          types.push_back(TypeName(t));
        }
        return Status::Ok();
      }
    }
    return Invalid("unknown type \"" + name + "\"", pointer);
  };
  if (type.is_array()) {
    if (type.empty()) return Err(Invalid("type must not be an empty array", pointer));
    for (const OrderedJson& v : type) XNAI_RETURN_IF_ERROR(add(v));
  } else {
    XNAI_RETURN_IF_ERROR(add(type));
  }
  // number includes integer
  if (std::find(types.begin(), types.end(), kTNumber) != types.end()) {
    types.erase(std::remove(types.begin(), types.end(), kTInteger), types.end());
  }
  return types;
}

Result<uint32_t> SchemaCompiler::ResolveRef(const OrderedJson& ref, const std::string& pointer,
                                            int depth) {
  if (!ref.is_string()) return Err(Invalid("$ref must be a string", pointer));
  const std::string target = ref.get<std::string>();
  if (target.empty() || target[0] != '#') {
    return Err(
        Invalid("$ref \"" + target + "\": only local references (#/...) are supported", pointer));
  }
  const std::string path = target.substr(1);
  if (!path.empty() && path[0] != '/') {
    return Err(Invalid("$ref \"" + target + "\": anchors are not supported", pointer));
  }
  if (path.find('%') != std::string::npos) {
    return Err(Invalid("$ref \"" + target + "\": percent-encoding is not supported", pointer));
  }
  if (auto it = refs_.find(path); it != refs_.end()) return it->second;
  const OrderedJson* schema = nullptr;
  try {
    const OrderedJson::json_pointer jp(path);
    if (root_.contains(jp)) schema = &root_.at(jp);
  } catch (const nlohmann::json::exception&) {
    schema = nullptr;
  }
  if (schema == nullptr) {
    return Err(Invalid("$ref \"" + target + "\" does not point into the schema", pointer));
  }
  const uint32_t id = NewNode(path);
  refs_[path] = id;
  XNAI_RETURN_IF_ERROR(CompileInto(id, *schema, path, depth + 1));
  return id;
}

bool MatchesType(const OrderedJson& v, TypeName t) {
  switch (t) {
    case kTObject:
      return v.is_object();
    case kTArray:
      return v.is_array();
    case kTString:
      return v.is_string();
    case kTNumber:
      return v.is_number();
    case kTInteger:
      return v.is_number_integer() ||
             (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
    case kTBoolean:
      return v.is_boolean();
    case kTNull:
      return v.is_null();
  }
  return false;
}

Result<std::string> ScalarLiteral(const OrderedJson& v, const std::string& pointer) {
  if (v.is_string()) {
    XNAI_ASSIGN_OR_RETURN(std::string body, CanonicalString(v.get<std::string>(), pointer));
    return "\"" + body + "\"";
  }
  return v.dump();
}

Status SchemaCompiler::AddLiterals(uint32_t id, std::vector<std::string> lits,
                                   const std::string& pointer) {
  std::sort(lits.begin(), lits.end());
  lits.erase(std::unique(lits.begin(), lits.end()), lits.end());
  literal_count_ += lits.size();
  for (const std::string& lit : lits) literal_bytes_ += lit.size();
  if (literal_count_ > kMaxLiterals || literal_bytes_ > kMaxLiteralBytes) {
    return Invalid("too many enum/const values (at most " + std::to_string(kMaxLiterals) +
                       " values and " + std::to_string(kMaxLiteralBytes >> 20) + " MiB)",
                   pointer);
  }
  SchemaNode& n = g_.nodes[id];
  n.kind = NodeKind::kLiteral;
  n.lits_begin = static_cast<uint32_t>(g_.literals.size());
  for (std::string& lit : lits) g_.literals.push_back(std::move(lit));
  n.lits_end = static_cast<uint32_t>(g_.literals.size());
  return Status::Ok();
}

Status SchemaCompiler::CompileEnum(uint32_t id, const OrderedJson& s, const std::string& pointer,
                                   int depth) {
  std::vector<TypeName> types;
  if (s.contains("type")) {
    XNAI_ASSIGN_OR_RETURN(types, ParseTypes(s["type"], pointer + "/type"));
  }
  const bool is_enum = s.contains("enum");
  const std::string word = is_enum ? "enum" : "const";
  const OrderedJson& values = s[word];
  if (is_enum && !values.is_array()) return Invalid("enum must be an array", pointer + "/enum");
  if (is_enum && values.size() > kMaxLiterals) {
    return Invalid("too many enum values (at most " + std::to_string(kMaxLiterals) + ")",
                   pointer + "/enum");
  }
  std::vector<std::string> lits;
  std::vector<uint32_t> alts;
  const size_t count = is_enum ? values.size() : 1;
  for (size_t k = 0; k < count; ++k) {
    const OrderedJson& v = is_enum ? values[k] : values;
    const std::string where = pointer + "/" + word + (is_enum ? "/" + std::to_string(k) : "");
    bool keep = types.empty();
    for (TypeName t : types) keep |= MatchesType(v, t);
    if (!keep) continue;
    if (v.is_object() || v.is_array()) {
      XNAI_ASSIGN_OR_RETURN(uint32_t alt, CompileConst(v, where, depth + 1));
      alts.push_back(alt);
    } else {
      XNAI_ASSIGN_OR_RETURN(std::string lit, ScalarLiteral(v, where));
      lits.push_back(std::move(lit));
    }
  }
  if (alts.empty()) return AddLiterals(id, std::move(lits), pointer);
  if (!lits.empty()) {
    const uint32_t lit_node = NewNode(pointer);
    XNAI_RETURN_IF_ERROR(AddLiterals(lit_node, std::move(lits), pointer));
    alts.push_back(lit_node);
  }
  SchemaNode& n = g_.nodes[id];
  n.kind = NodeKind::kUnion;
  n.alts_begin = static_cast<uint32_t>(g_.children.size());
  g_.children.insert(g_.children.end(), alts.begin(), alts.end());
  n.alts_end = static_cast<uint32_t>(g_.children.size());
  return Status::Ok();
}

// An object or array value of enum/const: a schema that accepts exactly it
// (keys in its order, whitespace free).
Result<uint32_t> SchemaCompiler::CompileConst(const OrderedJson& v, const std::string& pointer,
                                              int depth) {
  if (depth > kMaxSchemaDepth) {
    return Err(Invalid(
        "const value nested deeper than " + std::to_string(kMaxSchemaDepth) + " levels", pointer));
  }
  if (g_.nodes.size() > kMaxSchemaNodes) {
    return Err(Invalid("schema too large (more than " + std::to_string(kMaxSchemaNodes) + " nodes)",
                       pointer));
  }
  const uint32_t id = NewNode(pointer);
  if (v.is_object()) {
    std::vector<Property> props;
    for (auto it = v.begin(); it != v.end(); ++it) {
      XNAI_ASSIGN_OR_RETURN(
          uint32_t child,
          CompileConst(it.value(), pointer + "/" + PointerToken(it.key()), depth + 1));
      props.push_back(Property{it.key(), child, 0, true});
    }
    XNAI_RETURN_IF_ERROR(FillObject(id, props, kNone, pointer));
  } else if (v.is_array()) {
    std::vector<uint32_t> items;
    for (size_t k = 0; k < v.size(); ++k) {
      XNAI_ASSIGN_OR_RETURN(uint32_t child,
                            CompileConst(v[k], pointer + "/" + std::to_string(k), depth + 1));
      items.push_back(child);
    }
    SchemaNode& n = g_.nodes[id];
    n.kind = NodeKind::kArray;
    n.prefix_begin = static_cast<uint32_t>(g_.children.size());
    g_.children.insert(g_.children.end(), items.begin(), items.end());
    n.prefix_end = static_cast<uint32_t>(g_.children.size());
    n.items = kNone;
    n.min_items = n.max_items = static_cast<uint32_t>(items.size());
  } else {
    XNAI_ASSIGN_OR_RETURN(std::string lit, ScalarLiteral(v, pointer));
    XNAI_RETURN_IF_ERROR(AddLiterals(id, {std::move(lit)}, pointer));
  }
  return id;
}

// Makes `id` an object node with `props` in order, and builds the trie of
// their names.
Status SchemaCompiler::FillObject(uint32_t id, const std::vector<Property>& props,
                                  uint32_t additional, const std::string& pointer) {
  struct TmpNode {
    std::map<uint8_t, uint32_t> kids;
    int32_t terminal = -1;
    std::vector<uint32_t> props;
  };
  std::vector<TmpNode> trie(1);
  for (uint32_t p = 0; p < props.size(); ++p) {
    XNAI_ASSIGN_OR_RETURN(
        std::string bytes,
        CanonicalString(props[p].name, pointer + "/properties/" + PointerToken(props[p].name)));
    uint32_t at = 0;
    trie[at].props.push_back(p);
    for (char ch : bytes) {
      const auto byte = static_cast<uint8_t>(ch);
      auto it = trie[at].kids.find(byte);
      if (it == trie[at].kids.end()) {
        trie.emplace_back();
        it = trie[at].kids.emplace(byte, static_cast<uint32_t>(trie.size() - 1)).first;
      }
      at = it->second;
      trie[at].props.push_back(p);
    }
    trie[at].terminal = static_cast<int32_t>(p);
  }
  SchemaNode& n = g_.nodes[id];
  n.kind = NodeKind::kObject;
  n.additional = additional;
  n.props_begin = static_cast<uint32_t>(g_.props.size());
  g_.props.insert(g_.props.end(), props.begin(), props.end());
  n.props_end = static_cast<uint32_t>(g_.props.size());
  n.req_begin = static_cast<uint32_t>(g_.required_from.size());
  const uint32_t count = static_cast<uint32_t>(props.size());
  std::vector<uint32_t> required_from(count + 1, count);
  for (uint32_t p = count; p-- > 0;) {
    required_from[p] = props[p].required ? p : required_from[p + 1];
  }
  g_.required_from.insert(g_.required_from.end(), required_from.begin(), required_from.end());
  if (props.empty()) {
    n.key_trie = kNone;
    return Status::Ok();
  }
  const uint32_t base = static_cast<uint32_t>(g_.key_nodes.size());
  n.key_trie = base;
  for (const TmpNode& t : trie) {
    KeyTrieNode k;
    k.terminal = t.terminal;
    k.edges_begin = static_cast<uint32_t>(g_.key_edges.size());
    for (const auto& [byte, child] : t.kids) g_.key_edges.push_back(KeyEdge{byte, base + child});
    k.edges_end = static_cast<uint32_t>(g_.key_edges.size());
    k.props_begin = static_cast<uint32_t>(g_.key_props.size());
    g_.key_props.insert(g_.key_props.end(), t.props.begin(), t.props.end());
    k.props_end = static_cast<uint32_t>(g_.key_props.size());
    g_.key_nodes.push_back(k);
  }
  return Status::Ok();
}

Status SchemaCompiler::CompileTyped(uint32_t id, TypeName type, const OrderedJson& s,
                                    const std::string& pointer, int depth) {
  switch (type) {
    case kTObject: {
      std::vector<Property> props;
      if (s.contains("properties")) {
        const OrderedJson& properties = s["properties"];
        if (!properties.is_object()) {
          return Invalid("properties must be an object", pointer + "/properties");
        }
        for (auto it = properties.begin(); it != properties.end(); ++it) {
          XNAI_ASSIGN_OR_RETURN(
              uint32_t child,
              Compile(it.value(), pointer + "/properties/" + PointerToken(it.key()), depth + 1));
          props.push_back(Property{it.key(), child, 0, false});
        }
      }
      if (s.contains("required")) {
        const OrderedJson& required = s["required"];
        if (!required.is_array())
          return Invalid("required must be an array", pointer + "/required");
        for (size_t k = 0; k < required.size(); ++k) {
          const std::string where = pointer + "/required/" + std::to_string(k);
          if (!required[k].is_string()) return Invalid("required names must be strings", where);
          const std::string name = required[k].get<std::string>();
          auto it = std::find_if(props.begin(), props.end(),
                                 [&](const Property& p) { return p.name == name; });
          if (it == props.end()) {
            return Invalid("required property \"" + name + "\" is not in properties", where);
          }
          it->required = true;
        }
      }
      uint32_t additional = kAnyNode;
      if (s.contains("additionalProperties")) {
        XNAI_ASSIGN_OR_RETURN(additional, Compile(s["additionalProperties"],
                                                  pointer + "/additionalProperties", depth + 1));
        if (additional == kNeverNode) additional = kNone;
      }
      return FillObject(id, props, additional, pointer);
    }
    case kTArray: {
      std::vector<uint32_t> prefix;
      if (s.contains("prefixItems")) {
        const OrderedJson& items = s["prefixItems"];
        if (!items.is_array())
          return Invalid("prefixItems must be an array", pointer + "/prefixItems");
        for (size_t k = 0; k < items.size(); ++k) {
          XNAI_ASSIGN_OR_RETURN(
              uint32_t child,
              Compile(items[k], pointer + "/prefixItems/" + std::to_string(k), depth + 1));
          prefix.push_back(child);
        }
      }
      uint32_t items = kAnyNode;
      if (s.contains("items")) {
        if (s["items"].is_array()) {
          return Invalid("items as an array is not supported (use prefixItems)",
                         pointer + "/items");
        }
        XNAI_ASSIGN_OR_RETURN(items, Compile(s["items"], pointer + "/items", depth + 1));
        if (items == kNeverNode) items = kNone;
      }
      uint32_t min_items = 0;
      uint32_t max_items = kNone;
      if (s.contains("minItems")) {
        XNAI_ASSIGN_OR_RETURN(min_items, ReadCount(s["minItems"], pointer + "/minItems"));
      }
      if (s.contains("maxItems")) {
        XNAI_ASSIGN_OR_RETURN(max_items, ReadCount(s["maxItems"], pointer + "/maxItems"));
      }
      SchemaNode& n = g_.nodes[id];
      n.kind = NodeKind::kArray;
      n.prefix_begin = static_cast<uint32_t>(g_.children.size());
      g_.children.insert(g_.children.end(), prefix.begin(), prefix.end());
      n.prefix_end = static_cast<uint32_t>(g_.children.size());
      n.items = items;
      n.min_items = min_items;
      n.max_items = max_items;
      return Status::Ok();
    }
    case kTString: {
      uint32_t min_length = 0;
      uint32_t max_length = kNone;
      if (s.contains("minLength")) {
        XNAI_ASSIGN_OR_RETURN(min_length, ReadCount(s["minLength"], pointer + "/minLength"));
      }
      if (s.contains("maxLength")) {
        XNAI_ASSIGN_OR_RETURN(max_length, ReadCount(s["maxLength"], pointer + "/maxLength"));
      }
      SchemaNode& n = g_.nodes[id];
      n.kind = NodeKind::kString;
      n.min_length = min_length;
      n.max_length = max_length;
      n.satisfiable = min_length <= max_length;
      return Status::Ok();
    }
    case kTNumber:
    case kTInteger: {
      const bool integer = type == kTInteger;
      SchemaNode n;
      n.kind = NodeKind::kNumber;
      n.integer = integer;
      // A lower (upper) bound: the stricter of the inclusive and exclusive one.
      for (const char* word : {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"}) {
        if (!s.contains(word)) continue;
        const std::string where = pointer + "/" + word;
        const OrderedJson& v = s[word];
        if (!v.is_number()) return Invalid(std::string(word) + " must be a number", where);
        double d = v.get<double>();
        if (!std::isfinite(d)) return Invalid(std::string(word) + " must be finite", where);
        const std::string_view name = word;
        const bool lower = name == "minimum" || name == "exclusiveMinimum";
        bool exclusive = name.starts_with("exclusive");
        if (!integer && std::floor(d) != d) {
          return Invalid(std::string(word) + " of a number must be a whole number", where);
        }
        d = std::clamp(d, -static_cast<double>(kBoundClamp), static_cast<double>(kBoundClamp));
        int64_t bound;
        if (integer) {  // closed integer bounds
          if (lower) {
            bound = exclusive ? static_cast<int64_t>(std::floor(d)) + 1
                              : static_cast<int64_t>(std::ceil(d));
          } else {
            bound = exclusive ? static_cast<int64_t>(std::ceil(d)) - 1
                              : static_cast<int64_t>(std::floor(d));
          }
          exclusive = false;
        } else {
          bound = static_cast<int64_t>(d);
        }
        if (lower) {
          if (!n.has_min || bound > n.min || (bound == n.min && exclusive)) {
            n.min = bound;
            n.min_exclusive = exclusive;
          }
          n.has_min = true;
        } else {
          if (!n.has_max || bound < n.max || (bound == n.max && exclusive)) {
            n.max = bound;
            n.max_exclusive = exclusive;
          }
          n.has_max = true;
        }
      }
      // Some number must be reachable from the first byte.
      Frame probe{0, kFrameNumber, kNumStart, 0, 0, 0, 0, 0};
      bool satisfiable = false;
      if (!n.has_min && !n.has_max) {
        satisfiable = true;
      } else {
        for (uint8_t byte : std::string_view("-0123456789")) {
          Frame f = probe;
          f.phase = byte == '-' ? kNumMinus : byte == '0' ? kNumZero : kNumInt;
          f.bits = byte == '-' ? kNumNegative : 0;
          f.sub = 1;
          f.c = byte == '-' ? 0 : 1;
          SetIntegerPart(f, byte == '-' ? 0 : byte - '0');
          satisfiable |= NumberViable(n, f);
        }
      }
      n.satisfiable = satisfiable;
      n.pointer = g_.nodes[id].pointer;
      g_.nodes[id] = n;
      return Status::Ok();
    }
    case kTBoolean:
      return AddLiterals(id, {"false", "true"}, pointer);
    case kTNull:
      return AddLiterals(id, {"null"}, pointer);
  }
  return Status::Ok();
}

// Resolves aliases, flattens unions and computes every node's min_nesting.
Status SchemaCompiler::Finish() {
  std::vector<SchemaNode>& nodes = g_.nodes;
  const uint32_t count = static_cast<uint32_t>(nodes.size());
  // 1. Aliases.
  std::vector<uint32_t> canon(count, kNone);
  for (uint32_t id = 0; id < count; ++id) {
    uint32_t at = id;
    uint32_t hops = 0;
    while (nodes[at].kind == NodeKind::kAlias) {
      at = nodes[at].target;
      if (++hops > count) {
        return Invalid("$ref cycle that never reaches a schema", nodes[id].pointer);
      }
    }
    canon[id] = at;
  }
  auto fix = [&](uint32_t& ref) {
    if (ref != kNone) ref = canon[ref];
  };
  for (Property& p : g_.props) fix(p.node);
  for (uint32_t& c : g_.children) fix(c);
  for (SchemaNode& n : nodes) {
    fix(n.additional);
    fix(n.items);
  }
  fix(g_.root);

  // 2. Unions: alternatives that are unions are replaced by theirs.
  for (uint32_t id = 0; id < count; ++id) {
    if (nodes[id].kind != NodeKind::kUnion) continue;
    std::vector<uint32_t> flat;
    std::vector<uint32_t> stack = {id};
    std::set<uint32_t> seen = {id};
    while (!stack.empty()) {
      const uint32_t u = stack.back();
      stack.pop_back();
      for (uint32_t k = nodes[u].alts_begin; k < nodes[u].alts_end; ++k) {
        const uint32_t alt = g_.children[k];
        if (!seen.insert(alt).second) continue;
        if (nodes[alt].kind == NodeKind::kUnion) {
          stack.push_back(alt);
        } else {
          flat.push_back(alt);
        }
      }
    }
    if (flat.size() > kMaxUnionAlternatives) {
      return Invalid("more than " + std::to_string(kMaxUnionAlternatives) +
                         " alternatives in one anyOf/oneOf/type list",
                     nodes[id].pointer);
    }
    std::sort(flat.begin(), flat.end());
    nodes[id].alts_begin = static_cast<uint32_t>(g_.children.size());
    g_.children.insert(g_.children.end(), flat.begin(), flat.end());
    nodes[id].alts_end = static_cast<uint32_t>(g_.children.size());
  }

  // 3. min_nesting, a least fixpoint: every non-union edge adds a level and
  // unions are flat, so it settles within about 2 * kMaxNesting rounds.
  for (SchemaNode& n : nodes) {
    switch (n.kind) {
      case NodeKind::kAny:
        n.min_nesting = 0;
        break;
      case NodeKind::kString:
      case NodeKind::kNumber:
        n.min_nesting = n.satisfiable ? 0 : kUnsat;
        break;
      case NodeKind::kLiteral:
        n.min_nesting = n.lits_end > n.lits_begin ? 0 : kUnsat;
        break;
      default:
        n.min_nesting = kUnsat;
    }
  }
  auto item_node = [&](const SchemaNode& n, uint32_t index) {
    const uint32_t prefix = n.prefix_end - n.prefix_begin;
    return index < prefix ? g_.children[n.prefix_begin + index] : n.items;
  };
  for (bool changed = true; changed;) {
    changed = false;
    for (SchemaNode& n : nodes) {
      uint32_t m = kUnsat;
      if (n.kind == NodeKind::kObject) {
        m = 1;
        for (uint32_t p = n.props_begin; p < n.props_end; ++p) {
          if (g_.props[p].required) m = std::max(m, 1 + nodes[g_.props[p].node].min_nesting);
        }
      } else if (n.kind == NodeKind::kArray) {
        m = n.min_items <= n.max_items ? 1 : kUnsat;
        const uint32_t prefix = n.prefix_end - n.prefix_begin;
        const uint32_t distinct = std::min(n.min_items, prefix + 1);
        for (uint32_t i = 0; i < distinct && m < kUnsat; ++i) {
          const uint32_t item = item_node(n, i);
          m = item == kNone ? kUnsat : std::max(m, 1 + nodes[item].min_nesting);
        }
      } else if (n.kind == NodeKind::kUnion) {
        for (uint32_t k = n.alts_begin; k < n.alts_end; ++k) {
          m = std::min(m, nodes[g_.children[k]].min_nesting);
        }
      } else {
        continue;
      }
      m = std::min(m, kUnsat);
      if (m < n.min_nesting) {
        n.min_nesting = m;
        changed = true;
      }
    }
  }
  for (Property& p : g_.props) p.min_nesting = nodes[p.node].min_nesting;

  if (nodes[g_.root].min_nesting > kMaxNesting) {
    return Status::InvalidArgument(
        "json schema: no document satisfies the schema within the nesting limit of " +
        std::to_string(kMaxNesting));
  }
  return Status::Ok();
}

void AddBuiltins(Grammar& g) {
  g.nodes.resize(7);
  g.nodes[kAnyNode].kind = NodeKind::kAny;
  g.nodes[kAnyNode].min_nesting = 0;

  SchemaNode& object = g.nodes[kAnyObjectNode];
  object.kind = NodeKind::kObject;
  object.additional = kAnyNode;
  object.req_begin = static_cast<uint32_t>(g.required_from.size());
  g.required_from.push_back(0);
  object.min_nesting = 1;

  SchemaNode& array = g.nodes[kAnyArrayNode];
  array.kind = NodeKind::kArray;
  array.items = kAnyNode;
  array.min_nesting = 1;

  g.nodes[kAnyStringNode].kind = NodeKind::kString;
  g.nodes[kAnyStringNode].min_nesting = 0;
  g.nodes[kAnyNumberNode].kind = NodeKind::kNumber;
  g.nodes[kAnyNumberNode].min_nesting = 0;

  SchemaNode& literal = g.nodes[kAnyLiteralNode];
  literal.kind = NodeKind::kLiteral;
  literal.lits_begin = static_cast<uint32_t>(g.literals.size());
  for (const char* word : {"false", "null", "true"}) g.literals.emplace_back(word);
  literal.lits_end = static_cast<uint32_t>(g.literals.size());
  literal.min_nesting = 0;

  g.nodes[kNeverNode].kind = NodeKind::kUnion;  // no alternatives
  g.nodes[kNeverNode].min_nesting = kUnsat;
}

}  // namespace
}  // namespace json_constraint_internal

using json_constraint_internal::Frame;
using json_constraint_internal::Grammar;
using json_constraint_internal::Machine;
using json_constraint_internal::Stacks;

// ---------------------------------------------------------------------------
// TokenBytesIndex

TokenBytesIndex TokenBytesIndex::FromTokenizer(const Tokenizer& tokenizer) {
  std::vector<std::string> pieces(static_cast<size_t>(tokenizer.vocab_size()));
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) pieces[id] = tokenizer.TokenPiece(id);
  return FromPieces(pieces);
}

TokenBytesIndex TokenBytesIndex::FromPieces(const std::vector<std::string>& pieces) {
  TokenBytesIndex index;
  index.vocab_size_ = static_cast<int32_t>(pieces.size());
  std::vector<int32_t> order;
  for (size_t id = 0; id < pieces.size(); ++id) {
    const size_t len = pieces[id].size();
    if (len > 0 && len <= json_constraint_internal::kMaxTokenBytes) {
      order.push_back(static_cast<int32_t>(id));
    }
  }
  // Sorted byte strings list the trie in pre-order (children by byte).
  std::sort(order.begin(), order.end(), [&](int32_t x, int32_t y) {
    return pieces[x] != pieces[y] ? pieces[x] < pieces[y] : x < y;
  });
  std::vector<uint32_t> path;  // path[k]: node of the previous token's prefix of length k+1
  std::string_view previous;
  for (int32_t id : order) {
    const std::string& s = pieces[id];
    size_t common = 0;
    while (common < s.size() && common < previous.size() && s[common] == previous[common]) {
      ++common;
    }
    path.resize(common);
    for (size_t k = common; k < s.size(); ++k) {
      path.push_back(static_cast<uint32_t>(index.nodes_.size()));
      index.nodes_.push_back(Node{static_cast<uint8_t>(s[k]), 0, static_cast<uint16_t>(k + 1), 0,
                                  static_cast<uint32_t>(index.token_ids_.size())});
    }
    // Equal strings are adjacent and create no node, so the tokens of a node
    // directly follow its creation.
    index.token_ids_.push_back(id);
    index.max_depth_ = std::max(index.max_depth_, static_cast<uint16_t>(s.size()));
    previous = s;
  }
  const uint32_t count = static_cast<uint32_t>(index.nodes_.size());
  std::vector<uint32_t> open;
  for (uint32_t i = 0; i < count; ++i) {
    while (!open.empty() && index.nodes_[open.back()].depth >= index.nodes_[i].depth) {
      index.nodes_[open.back()].skip = i;
      open.pop_back();
    }
    open.push_back(i);
  }
  for (uint32_t i : open) index.nodes_[i].skip = count;
  // Subtrees (contiguous in pre-order) without quote, backslash, control or
  // non-ASCII bytes: inside a string every token in them is allowed.
  std::vector<uint32_t> special_before(count + 1, 0);
  for (uint32_t i = 0; i < count; ++i) {
    const uint8_t b = index.nodes_[i].byte;
    const bool plain = b >= 0x20 && b < 0x80 && b != '"' && b != '\\';
    special_before[i + 1] = special_before[i] + (plain ? 0 : 1);
  }
  for (uint32_t i = 0; i < count; ++i) {
    index.nodes_[i].plain_subtree = special_before[index.nodes_[i].skip] == special_before[i];
  }
  index.nodes_.push_back(Node{0, 0, 0, count, static_cast<uint32_t>(index.token_ids_.size())});
  return index;
}

// ---------------------------------------------------------------------------
// JsonConstraint

JsonConstraint JsonConstraint::FromGrammar(
    std::shared_ptr<const json_constraint_internal::Grammar> grammar) {
  JsonConstraint constraint;
  constraint.grammar_ = std::move(grammar);
  constraint.state_.frames = {Frame{constraint.grammar_->root, json_constraint_internal::kFrameRoot,
                                    json_constraint_internal::kRootBefore, 0, 0, 0, 0, 0}};
  constraint.state_.ends = {1};
  return constraint;
}

Result<JsonConstraint> JsonConstraint::Create(const nlohmann::json* schema) {
  if (schema == nullptr) {
    auto grammar = std::make_shared<Grammar>();
    json_constraint_internal::AddBuiltins(*grammar);
    grammar->root = json_constraint_internal::kAnyObjectNode;
    return FromGrammar(std::move(grammar));
  }
  nlohmann::ordered_json ordered;
  try {
    ordered = nlohmann::ordered_json::parse(schema->dump());
  } catch (const nlohmann::json::exception& e) {
    return Err(Status::InvalidArgument(std::string("json schema: ") + e.what()));
  }
  return Create(ordered);
}

Result<JsonConstraint> JsonConstraint::Create(const nlohmann::ordered_json& schema) {
  auto grammar = std::make_shared<Grammar>();
  json_constraint_internal::AddBuiltins(*grammar);
  try {
    json_constraint_internal::SchemaCompiler compiler(schema, *grammar);
    XNAI_RETURN_IF_ERROR(compiler.Run());
  } catch (const nlohmann::json::exception& e) {
    return Err(Status::InvalidArgument(std::string("json schema: ") + e.what()));
  }
  return FromGrammar(std::move(grammar));
}

bool JsonConstraint::Advance(std::string_view bytes) {
  if (bytes.empty()) return false;
  Machine machine(*grammar_);
  Stacks current = state_;
  Stacks next;
  for (char ch : bytes) {
    machine.Step(current, static_cast<uint8_t>(ch), next);
    if (next.ends.empty()) return false;
    std::swap(current, next);
  }
  state_ = std::move(current);
  return true;
}

bool JsonConstraint::IsComplete() const { return Machine(*grammar_).IsComplete(state_); }

void JsonConstraint::AllowedTokens(const TokenBytesIndex& index,
                                   std::vector<uint8_t>& allowed) const {
  allowed.assign(static_cast<size_t>(index.vocab_size()), 0);
  if (index.nodes_.size() <= 1) return;
  if (WalkStringLeaf(index, allowed)) return;
  std::vector<Stacks> levels(index.max_depth_ + 1u);
  levels[0] = state_;
  WalkGeneric(index, 0, index.nodes_.size() - 1, levels, allowed);
}

// Pre-order walk of trie nodes [begin, end): levels[d] holds the state after
// the node at depth d on the current path, so each prefix is fed once and a
// rejected prefix skips its subtree. levels[depth of the first node - 1]
// must hold the state before it.
void JsonConstraint::WalkGeneric(const TokenBytesIndex& index, size_t begin, size_t end,
                                 std::vector<Stacks>& levels, std::vector<uint8_t>& allowed) const {
  Machine machine(*grammar_);
  const std::vector<TokenBytesIndex::Node>& nodes = index.nodes_;
  for (size_t i = begin; i < end;) {
    const TokenBytesIndex::Node& node = nodes[i];
    Stacks& out = levels[node.depth];
    machine.Step(levels[node.depth - 1], node.byte, out);
    if (out.ends.empty()) {
      i = node.skip;
      continue;
    }
    for (uint32_t t = node.tokens_begin; t < nodes[i + 1].tokens_begin; ++t) {
      allowed[index.token_ids_[t]] = 1;
    }
    ++i;
  }
}

// The common case of a long generation: every live stack's top is a string
// value or an extra key. Until a closing quote only those tops' small string
// states change, so the walk carries just them; a subtree that closes a
// string continues with the full automaton. Returns false (nothing done) for
// other states.
bool JsonConstraint::WalkStringLeaf(const TokenBytesIndex& index,
                                    std::vector<uint8_t>& allowed) const {
  using namespace json_constraint_internal;
  const Grammar& g = *grammar_;
  const size_t stacks = state_.ends.size();
  struct Top {
    uint32_t max_length;
    bool restricted_key;  // an extra key beside declared names: canonical escapes only
  };
  std::vector<Top> tops(stacks);
  for (size_t s = 0; s < stacks; ++s) {
    const Frame& top = state_.frames[state_.ends[s] - 1];
    if (top.kind == kFrameString) {
      tops[s] = {g.nodes[top.node].max_length, false};
    } else if (top.kind == kFrameKey && top.a == kNone) {
      tops[s] = {kNone, g.nodes[top.node].key_trie != kNone};
    } else {
      return false;
    }
  }
  struct Leaf {
    uint8_t alive;
    uint8_t phase;
    uint8_t sub;
    uint32_t count;
  };
  // leaf[depth * stacks + s]: stack s after the path's first `depth` bytes.
  std::vector<Leaf> leaf((index.max_depth_ + 1u) * stacks);
  for (size_t s = 0; s < stacks; ++s) {
    const Frame& top = state_.frames[state_.ends[s] - 1];
    leaf[s] = {1, top.phase, top.sub, top.kind == kFrameString ? top.a : 0};
  }
  std::vector<Stacks> levels;
  Machine machine(g);
  const std::vector<TokenBytesIndex::Node>& nodes = index.nodes_;
  const size_t end = nodes.size() - 1;
  for (size_t i = 0; i < end;) {
    const TokenBytesIndex::Node& node = nodes[i];
    const Leaf* parent = &leaf[(node.depth - 1u) * stacks];
    if (node.plain_subtree) {
      // Each byte below is one plain character: a stack between characters
      // with room for the longest token takes every token of the subtree.
      bool takes_all = false;
      for (size_t s = 0; s < stacks; ++s) {
        takes_all |=
            parent[s].alive && parent[s].phase == kStrChar &&
            static_cast<uint64_t>(parent[s].count) + index.max_depth_ <= tops[s].max_length;
      }
      if (takes_all) {
        const uint32_t tokens_end = nodes[node.skip].tokens_begin;
        for (uint32_t t = node.tokens_begin; t < tokens_end; ++t) {
          allowed[index.token_ids_[t]] = 1;
        }
        i = node.skip;
        continue;
      }
    }
    Leaf* child = &leaf[static_cast<size_t>(node.depth) * stacks];
    bool any = false;
    bool closes = false;
    for (size_t s = 0; s < stacks; ++s) {
      child[s].alive = 0;
      if (!parent[s].alive) continue;
      const StrEvent ev = StringStep(parent[s].phase, parent[s].sub, node.byte);
      if (ev.kind == kEvReject || (tops[s].restricted_key && ev.noncanonical)) continue;
      if (ev.kind == kEvClose) {
        closes = true;
        break;
      }
      uint32_t count = parent[s].count;
      if (ev.kind == kEvCharStart) {
        if (count >= tops[s].max_length) continue;
        ++count;
      }
      child[s] = {1, ev.phase, ev.sub, count};
      any = true;
    }
    if (closes) {
      // Rebuild the full state before this byte and walk the subtree with
      // the automaton.
      if (levels.empty()) levels.resize(index.max_depth_ + 1u);
      Stacks& before = levels[node.depth - 1u];
      before.frames.clear();
      before.ends.clear();
      uint32_t begin = 0;
      for (size_t s = 0; s < stacks; ++s) {
        const uint32_t stack_end = state_.ends[s];
        if (parent[s].alive) {
          before.frames.insert(before.frames.end(), state_.frames.begin() + begin,
                               state_.frames.begin() + stack_end);
          Frame& f = before.frames.back();
          f.phase = parent[s].phase;
          f.sub = parent[s].sub;
          if (f.kind == kFrameString) f.a = parent[s].count;
          before.ends.push_back(static_cast<uint32_t>(before.frames.size()));
        }
        begin = stack_end;
      }
      if (before.ends.size() > 1) Dedupe(before);
      machine.Step(before, node.byte, levels[node.depth]);
      if (!levels[node.depth].ends.empty()) {
        for (uint32_t t = node.tokens_begin; t < nodes[i + 1].tokens_begin; ++t) {
          allowed[index.token_ids_[t]] = 1;
        }
        WalkGeneric(index, i + 1, node.skip, levels, allowed);
      }
      i = node.skip;
      continue;
    }
    if (!any) {
      i = node.skip;
      continue;
    }
    for (uint32_t t = node.tokens_begin; t < nodes[i + 1].tokens_begin; ++t) {
      allowed[index.token_ids_[t]] = 1;
    }
    ++i;
  }
  return true;
}

}  // namespace xnai::engine
