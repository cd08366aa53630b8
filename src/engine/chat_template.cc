// ChatTemplate: a Jinja2-subset interpreter (lexer -> parser to an AST ->
// tree-walking evaluator over a small Python-like Value type). The lexer
// reproduces Jinja2's whitespace rules byte for byte (trim_blocks,
// lstrip_blocks, '-'/'+' markers, the dropped trailing newline); the
// evaluator reproduces Python's semantics for the values chat templates
// touch (str()/repr() of values, json.dumps, integer division, Undefined).
//
// Layout of this file:
//   1. Unicode helpers (UTF-8, Python's whitespace/printable/case rules)
//   2. Values (none/undefined, bool, int, float, str, list, dict, ...)
//   3. Python formatting: str(), repr(), json.dumps()
//   4. AST
//   5. Lexer
//   6. Parser
//   7. Evaluator (statements, expressions, filters, tests, methods)
//   8. Public interface
#include "engine/chat_template.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <utf8proc.h>
#include <nlohmann/json.hpp>

#include "base/utf8.h"

namespace xnai::engine {
namespace {

// ===========================================================================
// 1. Unicode helpers
// ===========================================================================

// A byte that is not part of valid UTF-8 decodes as kRawByte + byte and
// encodes back to the same byte, so no input is ever altered or rejected.
constexpr char32_t kRawByte = 0x110000;

struct Decoded {
  char32_t cp;
  size_t len;
};

Decoded DecodeAt(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return {b0, 1};
  size_t need = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    need = 1, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    need = 2, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    need = 3, cp = b0 & 0x07, min = 0x10000;
  } else {
    return {kRawByte + b0, 1};
  }
  if (i + need >= s.size()) return {kRawByte + b0, 1};
  for (size_t k = 1; k <= need; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xC0) != 0x80) return {kRawByte + b0, 1};
    cp = (cp << 6) | (c & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {kRawByte + b0, 1};
  return {cp, need + 1};
}

void AppendUtf8(std::string& out, char32_t cp) {
  if (cp >= kRawByte) {
    out.push_back(static_cast<char>(cp - kRawByte));
  } else {
    xnai::AppendUtf8(out, cp);
  }
}

std::u32string ToU32(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    Decoded d = DecodeAt(s, i);
    out.push_back(d.cp);
    i += d.len;
  }
  return out;
}

std::string FromU32(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) AppendUtf8(out, c);
  return out;
}

size_t CodePointCount(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); i += DecodeAt(s, i).len) ++n;
  return n;
}

// Python's str.isspace() (and the `\s` of its re module).
bool IsPySpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

utf8proc_category_t Category(char32_t c) {
  if (c > 0x10FFFF) return UTF8PROC_CATEGORY_CN;
  return static_cast<utf8proc_category_t>(utf8proc_category(static_cast<utf8proc_int32_t>(c)));
}

// Python's str.isprintable() per character (what repr() leaves unescaped).
bool IsPrintable(char32_t c) {
  if (c < 0x20 || c == 0x7F) return false;
  if (c < 0x7F) return true;
  if (c >= kRawByte) return false;
  switch (Category(c)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS:
      return false;
    default:
      return true;
  }
}

bool IsUpperCp(char32_t c) { return c < kRawByte && Category(c) == UTF8PROC_CATEGORY_LU; }
bool IsLowerCp(char32_t c) { return c < kRawByte && Category(c) == UTF8PROC_CATEGORY_LL; }
bool IsTitleCp(char32_t c) { return c < kRawByte && Category(c) == UTF8PROC_CATEGORY_LT; }
bool IsCased(char32_t c) { return IsUpperCp(c) || IsLowerCp(c) || IsTitleCp(c); }
bool IsAlphaCp(char32_t c) {
  if (c >= kRawByte) return false;
  switch (Category(c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      return true;
    default:
      return false;
  }
}
bool IsDecimalCp(char32_t c) { return c < kRawByte && Category(c) == UTF8PROC_CATEGORY_ND; }
bool IsNumericCp(char32_t c) {
  if (c >= kRawByte) return false;
  auto cat = Category(c);
  return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}
bool IsAlnumCp(char32_t c) { return IsAlphaCp(c) || IsNumericCp(c); }
bool IsCaseIgnorable(char32_t c) {
  if (c == '\'' || c == '.' || c == ':' || c == '^' || c == '`' || c == 0xB7 || c == 0x2019) {
    return true;
  }
  if (c >= kRawByte) return false;
  switch (Category(c)) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_SK:
      return true;
    default:
      return false;
  }
}

// Unconditional one-to-many mappings of Unicode's SpecialCasing.txt that
// Python's str.upper()/title() apply (the common ones; the Greek
// iota-subscript forms fall back to the simple mapping).
struct SpecialCase {
  char32_t cp;
  char32_t upper[3];
  char32_t title[3];
};
constexpr SpecialCase kSpecialCases[] = {
    {0x00DF, {0x53, 0x53, 0}, {0x53, 0x73, 0}},
    {0x0149, {0x2BC, 0x4E, 0}, {0x2BC, 0x4E, 0}},
    {0x01F0, {0x4A, 0x30C, 0}, {0x4A, 0x30C, 0}},
    {0x0390, {0x399, 0x308, 0x301}, {0x399, 0x308, 0x301}},
    {0x03B0, {0x3A5, 0x308, 0x301}, {0x3A5, 0x308, 0x301}},
    {0x0587, {0x535, 0x552, 0}, {0x535, 0x582, 0}},
    {0x1E96, {0x48, 0x331, 0}, {0x48, 0x331, 0}},
    {0x1E97, {0x54, 0x308, 0}, {0x54, 0x308, 0}},
    {0x1E98, {0x57, 0x30A, 0}, {0x57, 0x30A, 0}},
    {0x1E99, {0x59, 0x30A, 0}, {0x59, 0x30A, 0}},
    {0x1E9A, {0x41, 0x2BE, 0}, {0x41, 0x2BE, 0}},
    {0xFB00, {0x46, 0x46, 0}, {0x46, 0x66, 0}},
    {0xFB01, {0x46, 0x49, 0}, {0x46, 0x69, 0}},
    {0xFB02, {0x46, 0x4C, 0}, {0x46, 0x6C, 0}},
    {0xFB03, {0x46, 0x46, 0x49}, {0x46, 0x66, 0x69}},
    {0xFB04, {0x46, 0x46, 0x4C}, {0x46, 0x66, 0x6C}},
    {0xFB05, {0x53, 0x54, 0}, {0x53, 0x74, 0}},
    {0xFB06, {0x53, 0x54, 0}, {0x53, 0x74, 0}},
    {0xFB13, {0x544, 0x546, 0}, {0x544, 0x576, 0}},
    {0xFB14, {0x544, 0x535, 0}, {0x544, 0x565, 0}},
    {0xFB15, {0x544, 0x53B, 0}, {0x544, 0x56B, 0}},
    {0xFB16, {0x54E, 0x546, 0}, {0x54E, 0x576, 0}},
    {0xFB17, {0x544, 0x53D, 0}, {0x544, 0x56D, 0}},
};

const SpecialCase* FindSpecialCase(char32_t c) {
  for (const SpecialCase& sc : kSpecialCases) {
    if (sc.cp == c) return &sc;
  }
  return nullptr;
}

void AppendMapped(std::u32string& out, const char32_t (&seq)[3]) {
  for (char32_t c : seq) {
    if (c != 0) out.push_back(c);
  }
}

void AppendUpperCp(std::u32string& out, char32_t c) {
  if (c >= kRawByte) return out.push_back(c);
  if (const SpecialCase* sc = FindSpecialCase(c)) return AppendMapped(out, sc->upper);
  out.push_back(static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(c))));
}

void AppendTitleCp(std::u32string& out, char32_t c) {
  if (c >= kRawByte) return out.push_back(c);
  if (const SpecialCase* sc = FindSpecialCase(c)) return AppendMapped(out, sc->title);
  out.push_back(static_cast<char32_t>(utf8proc_totitle(static_cast<utf8proc_int32_t>(c))));
}

// Lowercases s[i] of `s`, applying the two context rules Python applies:
// U+0130 becomes "i" + U+0307, and capital sigma becomes final sigma at the
// end of a word.
void AppendLowerAt(std::u32string& out, std::u32string_view s, size_t i) {
  char32_t c = s[i];
  if (c >= kRawByte) return out.push_back(c);
  if (c == 0x130) {
    out.push_back('i');
    out.push_back(0x307);
    return;
  }
  if (c == 0x3A3) {
    bool before = false;
    for (size_t j = i; j-- > 0;) {
      if (IsCaseIgnorable(s[j])) continue;
      before = IsCased(s[j]);
      break;
    }
    bool after = false;
    for (size_t j = i + 1; j < s.size(); ++j) {
      if (IsCaseIgnorable(s[j])) continue;
      after = IsCased(s[j]);
      break;
    }
    out.push_back(before && !after ? 0x3C2 : 0x3C3);
    return;
  }
  out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
}

std::string PyLower(std::string_view text) {
  if (std::all_of(text.begin(), text.end(), [](char c) { return (c & 0x80) == 0; })) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  }
  std::u32string s = ToU32(text), out;
  for (size_t i = 0; i < s.size(); ++i) AppendLowerAt(out, s, i);
  return FromU32(out);
}

std::string PyUpper(std::string_view text) {
  if (std::all_of(text.begin(), text.end(), [](char c) { return (c & 0x80) == 0; })) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
  }
  std::u32string out;
  for (char32_t c : ToU32(text)) AppendUpperCp(out, c);
  return FromU32(out);
}

// str.title(): a cased character after an uncased one is titlecased, the
// others are lowercased.
std::string PyTitle(std::string_view text) {
  std::u32string s = ToU32(text), out;
  bool previous_cased = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (previous_cased) {
      AppendLowerAt(out, s, i);
    } else {
      AppendTitleCp(out, s[i]);
    }
    previous_cased = IsCased(s[i]);
  }
  return FromU32(out);
}

// str.capitalize(): the first character titlecased, the rest lowercased.
std::string PyCapitalize(std::string_view text) {
  std::u32string s = ToU32(text), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 0) {
      AppendTitleCp(out, s[i]);
    } else {
      AppendLowerAt(out, s, i);
    }
  }
  return FromU32(out);
}

std::string PySwapcase(std::string_view text) {
  std::u32string s = ToU32(text), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (IsUpperCp(s[i])) {
      AppendLowerAt(out, s, i);
    } else if (IsLowerCp(s[i])) {
      AppendUpperCp(out, s[i]);
    } else {
      out.push_back(s[i]);
    }
  }
  return FromU32(out);
}

// Python's str.strip family. `chars` == nullptr: whitespace.
std::string PyStrip(std::string_view text, const std::string* chars, bool left, bool right) {
  std::u32string s = ToU32(text);
  std::u32string set;
  if (chars != nullptr) set = ToU32(*chars);
  auto strip = [&](char32_t c) {
    return chars == nullptr ? IsPySpace(c) : set.find(c) != std::u32string::npos;
  };
  size_t begin = 0, end = s.size();
  if (left) {
    while (begin < end && strip(s[begin])) ++begin;
  }
  if (right) {
    while (end > begin && strip(s[end - 1])) --end;
  }
  return FromU32(std::u32string_view(s).substr(begin, end - begin));
}

// str.splitlines(keepends): the line boundaries Python recognises. Stops
// after `limit` + 1 lines (the caller reports "too many items").
std::vector<std::string> PySplitLines(std::string_view text, bool keepends,
                                      size_t limit = std::numeric_limits<size_t>::max()) {
  std::u32string s = ToU32(text);
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t i = 0; i < s.size();) {
    char32_t c = s[i];
    size_t eol = 0;
    if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') {
      eol = 2;
    } else if (c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D ||
               c == 0x1E || c == 0x85 || c == 0x2028 || c == 0x2029) {
      eol = 1;
    }
    if (eol == 0) {
      ++i;
      continue;
    }
    size_t end = keepends ? i + eol : i;
    lines.push_back(FromU32(std::u32string_view(s).substr(start, end - start)));
    if (lines.size() > limit) return lines;
    i += eol;
    start = i;
  }
  if (start < s.size()) lines.push_back(FromU32(std::u32string_view(s).substr(start)));
  return lines;
}

// ===========================================================================
// 2. Values
// ===========================================================================

enum class VType : uint8_t {
  kUndefined,
  kNone,
  kBool,
  kInt,
  kFloat,
  kString,
  kList,  // list, tuple, range and the dict views
  kDict,
  kIterator,  // a one-shot generator (the result of map, select, unique, ...)
  kNamespace,
  kLoop,
  kCallable,
};

// Every heap object records how deeply values nest inside it and whether a
// namespace is reachable from it: values never nest deeper than
// kMaxValueDepth (so printing, comparing and destroying them cannot exhaust
// the stack) and namespaces never (transitively) contain namespaces (so no
// reference cycle can form).
struct Object {
  virtual ~Object() = default;
  int depth = 1;
  bool has_namespace = false;
};

constexpr int kMaxValueDepth = 128;

struct Value {
  VType type = VType::kUndefined;
  bool markup = false;  // kString: a Markup string (the result of |escape or |safe)
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::shared_ptr<const std::string> s;  // kString: the text; kUndefined: why (may be null)
  std::shared_ptr<Object> o;             // kList and later kinds

  static Value Undefined(std::string why = {}) {
    Value v;
    if (!why.empty()) v.s = std::make_shared<const std::string>(std::move(why));
    return v;
  }
  static Value None() {
    Value v;
    v.type = VType::kNone;
    return v;
  }
  static Value Bool(bool x) {
    Value v;
    v.type = VType::kBool;
    v.b = x;
    return v;
  }
  static Value Int(int64_t x) {
    Value v;
    v.type = VType::kInt;
    v.i = x;
    return v;
  }
  static Value Float(double x) {
    Value v;
    v.type = VType::kFloat;
    v.f = x;
    return v;
  }
  static Value Str(std::string x, bool is_markup = false) {
    Value v;
    v.type = VType::kString;
    v.markup = is_markup;
    v.s = std::make_shared<const std::string>(std::move(x));
    return v;
  }

  bool is_undefined() const { return type == VType::kUndefined; }
  bool is_string() const { return type == VType::kString; }
  bool is_number() const {
    return type == VType::kBool || type == VType::kInt || type == VType::kFloat;
  }
  bool is_integral() const { return type == VType::kBool || type == VType::kInt; }
  int64_t as_int() const { return type == VType::kBool ? (b ? 1 : 0) : i; }
  double as_double() const { return type == VType::kFloat ? f : static_cast<double>(as_int()); }
  const std::string& str() const { return *s; }
  // Why this undefined exists, as Jinja2's UndefinedError would say it.
  std::string why() const { return s ? *s : std::string("value is undefined"); }
};

enum class SeqKind : uint8_t { kList, kTuple, kRange, kItems, kKeys, kValues };

struct ListObj : Object {
  std::vector<Value> items;
  SeqKind kind = SeqKind::kList;
  int64_t range_start = 0, range_stop = 0, range_step = 1;  // kRange, for repr
};

struct DictEntry {
  std::string hkey;  // HashKey(key): equal keys (1, 1.0, True) share it
  Value key;
  Value value;
};

struct DictObj : Object {
  std::vector<DictEntry> entries;
  std::unordered_map<std::string, size_t> index;  // built once the dict grows past a few entries

  const DictEntry* Find(const std::string& hkey) const {
    if (index.empty()) {
      for (const DictEntry& e : entries) {
        if (e.hkey == hkey) return &e;
      }
      return nullptr;
    }
    auto it = index.find(hkey);
    return it == index.end() ? nullptr : &entries[it->second];
  }
  // Inserts or, for an existing key, replaces the value in place (Python
  // keeps the first key and its position).
  void Set(std::string hkey, Value key, Value value) {
    for (size_t n = 0; index.empty() && n < entries.size(); ++n) {
      if (entries[n].hkey == hkey) {
        entries[n].value = std::move(value);
        return;
      }
    }
    if (!index.empty()) {
      auto it = index.find(hkey);
      if (it != index.end()) {
        entries[it->second].value = std::move(value);
        return;
      }
    }
    entries.push_back({std::move(hkey), std::move(key), std::move(value)});
    if (entries.size() == 9) {
      for (size_t n = 0; n < entries.size(); ++n) index.emplace(entries[n].hkey, n);
    } else if (entries.size() > 9) {
      index.emplace(entries.back().hkey, entries.size() - 1);
    }
  }
};

struct IterObj : Object {
  std::vector<Value> items;
  size_t pos = 0;                       // items before pos were consumed
  const char* type_name = "generator";  // the Python type, for messages
};

struct NamespaceObj : Object {
  DictObj attrs;  // string keys
};

struct LoopObj : Object {
  std::shared_ptr<const std::vector<Value>> items;
  size_t index0 = 0;
  std::optional<Value> last_changed;  // loop.changed() state
};

struct Scope;
struct MacroDef;

enum class Builtin : uint8_t {
  kRange,
  kDict,
  kNamespace,
  kRaiseException,
  kStrftimeNow,
  kLipsum,
  kCycler,
  kJoiner,
};

struct CallableObj : Object {
  enum class Kind : uint8_t { kBuiltin, kMethod, kMacro, kLoopCycle, kLoopChanged } kind;
  Builtin builtin = Builtin::kRange;
  std::string name;  // function or method name
  Value self;        // kMethod: the receiver; kLoop*: the loop
  const MacroDef* macro = nullptr;
  std::weak_ptr<Scope> closure;  // kMacro: where it was defined (weak: scopes own macros)
};

// Variables of one frame (template top level, a loop iteration, a macro
// call, a with/set/filter block body). Lookups walk to the parent.
struct Scope {
  std::shared_ptr<Scope> parent;
  std::unordered_map<std::string, Value> vars;
};

int DepthOf(const Value& v) { return v.o ? v.o->depth : 0; }
bool HasNamespace(const Value& v) { return v.o && v.o->has_namespace; }

const char* TypeName(const Value& v) {
  switch (v.type) {
    case VType::kUndefined:
      return "Undefined";
    case VType::kNone:
      return "NoneType";
    case VType::kBool:
      return "bool";
    case VType::kInt:
      return "int";
    case VType::kFloat:
      return "float";
    case VType::kString:
      return v.markup ? "Markup" : "str";
    case VType::kList:
      switch (static_cast<const ListObj*>(v.o.get())->kind) {
        case SeqKind::kList:
          return "list";
        case SeqKind::kTuple:
          return "tuple";
        case SeqKind::kRange:
          return "range";
        case SeqKind::kItems:
          return "dict_items";
        case SeqKind::kKeys:
          return "dict_keys";
        case SeqKind::kValues:
          return "dict_values";
      }
      return "list";
    case VType::kDict:
      return "dict";
    case VType::kIterator:
      return static_cast<const IterObj*>(v.o.get())->type_name;
    case VType::kNamespace:
      return "Namespace";
    case VType::kLoop:
      return "LoopContext";
    case VType::kCallable: {
      auto* c = static_cast<const CallableObj*>(v.o.get());
      if (c->kind == CallableObj::Kind::kMacro) return "Macro";
      if (c->kind == CallableObj::Kind::kBuiltin) return "builtin_function_or_method";
      return "method";
    }
  }
  return "object";
}

const ListObj& AsList(const Value& v) { return *static_cast<const ListObj*>(v.o.get()); }
const DictObj& AsDict(const Value& v) { return *static_cast<const DictObj*>(v.o.get()); }
IterObj& AsIter(const Value& v) { return *static_cast<IterObj*>(v.o.get()); }
NamespaceObj& AsNamespace(const Value& v) { return *static_cast<NamespaceObj*>(v.o.get()); }
LoopObj& AsLoop(const Value& v) { return *static_cast<LoopObj*>(v.o.get()); }
const CallableObj& AsCallable(const Value& v) {
  return *static_cast<const CallableObj*>(v.o.get());
}

bool IsSeq(const Value& v, SeqKind kind) {
  return v.type == VType::kList && AsList(v).kind == kind;
}

// Containers are built only through these, which record depth and
// has_namespace. The evaluator checks the depth (see Renderer::Check).
void Account(Object& obj, const Value& child) {
  obj.depth = std::max(obj.depth, DepthOf(child) + 1);
  obj.has_namespace = obj.has_namespace || HasNamespace(child);
}

Value MakeList(std::vector<Value> items, SeqKind kind = SeqKind::kList) {
  auto obj = std::make_shared<ListObj>();
  for (const Value& item : items) Account(*obj, item);
  obj->items = std::move(items);
  obj->kind = kind;
  Value v;
  v.type = VType::kList;
  v.o = std::move(obj);
  return v;
}

Value MakeIterator(std::vector<Value> items, const char* type_name = "generator") {
  auto obj = std::make_shared<IterObj>();
  for (const Value& item : items) Account(*obj, item);
  obj->items = std::move(items);
  obj->type_name = type_name;
  Value v;
  v.type = VType::kIterator;
  v.o = std::move(obj);
  return v;
}

Value MakeDict(std::shared_ptr<DictObj> obj) {
  obj->depth = 1;
  obj->has_namespace = false;
  for (const DictEntry& e : obj->entries) {
    Account(*obj, e.key);
    Account(*obj, e.value);
  }
  Value v;
  v.type = VType::kDict;
  v.o = std::move(obj);
  return v;
}

Value MakeCallable(std::shared_ptr<CallableObj> obj) {
  if (obj->self.o) Account(*obj, obj->self);
  Value v;
  v.type = VType::kCallable;
  v.o = std::move(obj);
  return v;
}

Value MakeBuiltin(Builtin which, std::string name) {
  auto obj = std::make_shared<CallableObj>();
  obj->kind = CallableObj::Kind::kBuiltin;
  obj->builtin = which;
  obj->name = std::move(name);
  return MakeCallable(std::move(obj));
}

Value MakeMethod(const Value& self, std::string name) {
  auto obj = std::make_shared<CallableObj>();
  obj->kind = CallableObj::Kind::kMethod;
  obj->self = self;
  obj->name = std::move(name);
  return MakeCallable(std::move(obj));
}

// ===========================================================================
// 3. Python formatting
// ===========================================================================

// repr(float) / str(float): the shortest round-trip digits, in fixed
// notation for exponents in [-4, 16) and scientific notation otherwise.
std::string PyFloatRepr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  bool negative = sci[0] == '-';
  if (negative) sci.erase(0, 1);
  size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  int exp = std::stoi(sci.substr(e + 1));
  std::string out = negative ? "-" : "";
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out += "0.";
      out.append(static_cast<size_t>(-exp - 1), '0');
      out += digits;
    } else {
      const auto point = static_cast<size_t>(exp + 1);
      std::string int_part = digits.substr(0, std::min(digits.size(), point));
      int_part.append(point - int_part.size(), '0');
      std::string frac = digits.size() > point ? digits.substr(point) : "0";
      out += int_part + "." + frac;
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
  return out + exp_buf;
}

// repr(str): single quotes unless the text contains ' and no ", escapes as
// Python prints them.
void AppendStrRepr(std::string& out, std::string_view text) {
  bool has_single = text.find('\'') != std::string_view::npos;
  bool has_double = text.find('"') != std::string_view::npos;
  char quote = has_single && !has_double ? '"' : '\'';
  out.push_back(quote);
  for (size_t i = 0; i < text.size();) {
    Decoded d = DecodeAt(text, i);
    i += d.len;
    char32_t c = d.cp;
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (IsPrintable(c)) {
      AppendUtf8(out, c);
    } else {
      char buf[16];
      if (c >= kRawByte) {
        // Python would hold a lone surrogate here (surrogateescape).
        std::snprintf(buf, sizeof(buf), "\\udc%02x", static_cast<unsigned>(c - kRawByte));
      } else if (c < 0x100) {
        std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(c));
      } else if (c < 0x10000) {
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
      } else {
        std::snprintf(buf, sizeof(buf), "\\U%08x", static_cast<unsigned>(c));
      }
      out += buf;
    }
  }
  out.push_back(quote);
}

// json.dumps' string encoding (ensure_ascii as asked).
void AppendJsonString(std::string& out, std::string_view text, bool ensure_ascii) {
  out.push_back('"');
  for (size_t i = 0; i < text.size();) {
    Decoded d = DecodeAt(text, i);
    i += d.len;
    char32_t c = d.cp;
    switch (c) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    char buf[16];
    if (c < 0x20 || (ensure_ascii && c >= 0x7F)) {
      if (c >= kRawByte) {
        std::snprintf(buf, sizeof(buf), "\\udc%02x", static_cast<unsigned>(c - kRawByte));
      } else if (c >= 0x10000) {
        char32_t v = c - 0x10000;
        std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 | (v >> 10)),
                      static_cast<unsigned>(0xDC00 | (v & 0x3FF)));
      } else {
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
      }
      out += buf;
    } else {
      AppendUtf8(out, c);
    }
  }
  out.push_back('"');
}

// The &, <, >, " and ' escaping of markupsafe.escape.
std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// ===========================================================================
// 4. AST
// ===========================================================================

enum class ExprKind : uint8_t {
  kConst,
  kName,
  kGetAttr,  // a.name
  kGetItem,  // a[b]; b may be a kSlice
  kSlice,    // items: start, stop, step (each may be null)
  kCall,     // a(items..., kwargs...)
  kFilter,   // a|name(items..., kwargs...); a is null for filter blocks
  kTest,     // a is name(items..., kwargs...)
  kNeg,
  kPos,
  kNot,
  kBinary,  // a op b
  kAnd,
  kOr,
  kCompare,  // items[0] cmp_ops[0] items[1] cmp_ops[1] items[2] ...
  kConcat,   // items joined with ~
  kCond,     // a if b else c (c may be null)
  kList,
  kTuple,
  kDict,  // items: key, value, key, value, ...
};

enum class BinOp : uint8_t { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow };
enum class CmpOp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Kwarg {
  std::string name;
  ExprPtr value;
};

struct Expr {
  ExprKind kind = ExprKind::kConst;
  int line = 0;
  size_t pos = 0;  // byte offset in the normalized source, for messages
  int depth = 1;   // of the subtree; bounded by kMaxExprDepth
  Value value;     // kConst
  std::string name;
  BinOp op = BinOp::kAdd;
  ExprPtr a, b, c;
  std::vector<ExprPtr> items;
  std::vector<CmpOp> cmp_ops;
  std::vector<Kwarg> kwargs;
};

enum class StmtKind : uint8_t {
  kData,
  kPrint,
  kIf,
  kFor,
  kSet,
  kSetBlock,
  kMacro,
  kCallBlock,
  kFilterBlock,
  kWith,
  kBreak,
  kContinue,
  kScopeBlock,  // HF's {% generation %}: renders its body in a scope of its own
};

struct Target {
  enum class Kind : uint8_t { kName, kTuple, kNamespaceAttr } kind = Kind::kName;
  std::string name;
  std::string attr;
  std::vector<Target> items;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct MacroDef {
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // one per param; null: no default
  Body body;
  bool catch_varargs = false;
  bool catch_kwargs = false;
  bool uses_caller = false;
};

struct Stmt {
  StmtKind kind = StmtKind::kData;
  int line = 0;
  std::string text;             // kData
  std::vector<ExprPtr> exprs;   // kPrint: one; kIf: a condition per branch; kFor: iterable and
                                // optional filter; kSet: value; kWith: values; kCallBlock: call
  std::vector<Body> bodies;     // kIf: a body per condition, then else; kFor: body, else;
                                // others: the body
  Target target;                // kFor, kSet, kSetBlock
  std::vector<Target> targets;  // kWith
  ExprPtr filter;  // kSetBlock/kFilterBlock: the filter chain (its innermost subject is null)
  std::shared_ptr<MacroDef> macro;  // kMacro; kCallBlock: the caller
};

constexpr int kMaxExprDepth = 200;     // AST depth of one expression
constexpr int kMaxParseNesting = 256;  // parser recursion (about 3 per bracket level)
constexpr int kMaxBlockNesting = 100;  // nested block statements

// The filters and tests Jinja2 knows. Filters outside the list fail at parse
// time (as in Jinja2); the few in it xnai does not implement fail when used.
constexpr std::string_view kJinjaFilters[] = {
    "abs",    "attr",       "batch",       "capitalize", "center",   "count",
    "d",      "default",    "dictsort",    "e",          "escape",   "filesizeformat",
    "first",  "float",      "forceescape", "format",     "groupby",  "indent",
    "int",    "items",      "join",        "last",       "length",   "list",
    "lower",  "map",        "max",         "min",        "pprint",   "random",
    "reject", "rejectattr", "replace",     "reverse",    "round",    "safe",
    "select", "selectattr", "slice",       "sort",       "string",   "striptags",
    "sum",    "title",      "tojson",      "trim",       "truncate", "unique",
    "upper",  "urlencode",  "urlize",      "wordcount",  "wordwrap", "xmlattr",
};
constexpr std::string_view kJinjaTests[] = {
    "odd",     "even",   "divisibleby", "defined",  "undefined", "filter", "test",    "none",
    "boolean", "false",  "true",        "integer",  "float",     "lower",  "upper",   "string",
    "mapping", "number", "sequence",    "iterable", "callable",  "sameas", "escaped", "in",
    "==",      "eq",     "equalto",     "!=",       "ne",        ">",      "gt",      "greaterthan",
    "ge",      ">=",     "<",           "lt",       "lessthan",  "<=",     "le",
};

template <size_t N>
bool Contains(const std::string_view (&list)[N], std::string_view name) {
  return std::find(std::begin(list), std::end(list), name) != std::end(list);
}

// ===========================================================================
// 5. Lexer
// ===========================================================================

enum class Tok : uint8_t {
  kData,
  kVarBegin,
  kVarEnd,
  kBlockBegin,
  kBlockEnd,
  kName,
  kString,
  kInt,
  kFloat,
  kOp,
  kEof,
};

struct Token {
  Tok type = Tok::kEof;
  std::string text;  // data, name, decoded string literal, operator
  int64_t int_value = 0;
  double float_value = 0;
  size_t pos = 0;  // byte offset in the normalized source
};

// Line/column of byte offsets of the normalized source, for messages.
class SourceMap {
 public:
  explicit SourceMap(const std::string& src) : src_(src) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src.size(); ++i) {
      if (src[i] == '\n') line_starts_.push_back(i + 1);
    }
  }
  int Line(size_t pos) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), pos);
    return static_cast<int>(it - line_starts_.begin());
  }
  int Column(size_t pos) const {
    size_t start = line_starts_[static_cast<size_t>(Line(pos) - 1)];
    pos = std::min(pos, src_.size());
    return static_cast<int>(CodePointCount(std::string_view(src_).substr(start, pos - start))) + 1;
  }
  Status Error(size_t pos, const std::string& message) const {
    return Status::InvalidArgument("chat template syntax error at line " +
                                   std::to_string(Line(pos)) + ", column " +
                                   std::to_string(Column(pos)) + ": " + message);
  }

 private:
  const std::string& src_;
  std::vector<size_t> line_starts_;
};

// Jinja2's preprocessing: \r\n and \r become \n, and one trailing newline
// is dropped (keep_trailing_newline=False).
std::string NormalizeSource(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Splits the source into tokens with the rules of Jinja2's lexer for this
// environment (trim_blocks and lstrip_blocks on): text between tags is
// emitted as kData after whitespace control, comments vanish, raw blocks
// become kData.
class Lexer {
 public:
  Lexer(const std::string& src, const SourceMap& map) : s_(src), map_(map) {}

  Result<std::vector<Token>> Run() {
    size_t pos = 0;
    bool line_starting = true;
    while (pos < s_.size()) {
      size_t tag = pos;
      char kind = 0;
      while (true) {
        tag = s_.find('{', tag);
        if (tag == std::string::npos || tag + 1 >= s_.size()) {
          tag = std::string::npos;
          break;
        }
        char k = s_[tag + 1];
        if (k == '%' || k == '{' || k == '#') {
          kind = k;
          break;
        }
        ++tag;
      }
      if (tag == std::string::npos) {
        EmitData(pos, s_.substr(pos));
        break;
      }
      size_t after = tag + 2;
      char sign = 0;
      if (after < s_.size() && (s_[after] == '-' || s_[after] == '+')) sign = s_[after];
      const size_t inner = after + (sign != 0 ? 1 : 0);

      size_t raw_end = 0;
      const bool is_raw = kind == '%' && MatchRawBegin(inner, &raw_end);
      std::string text = s_.substr(pos, tag - pos);
      StripBefore(text, sign, kind != '{', line_starting);
      EmitData(pos, std::move(text));
      line_starting = false;

      if (is_raw) {
        line_starting = s_[raw_end - 1] == '\n';
        size_t q = raw_end;
        char end_sign = 0;
        size_t end_pos = 0;
        while (true) {
          q = s_.find("{%", q);
          if (q == std::string::npos) return Err(map_.Error(tag, "missing end of raw directive"));
          if (MatchRawEnd(q, &end_sign, &end_pos)) break;
          ++q;
        }
        std::string raw = s_.substr(raw_end, q - raw_end);
        StripBefore(raw, end_sign, true, line_starting);
        EmitData(raw_end, std::move(raw));
        line_starting = s_[end_pos - 1] == '\n';
        pos = end_pos;
        continue;
      }
      if (kind == '#') {
        size_t end = std::string::npos;
        for (size_t h = s_.find("#}", inner); h != std::string::npos; h = s_.find("#}", h + 1)) {
          if (h > inner && s_[h - 1] == '+') {
            end = h + 2;
          } else if (h > inner && s_[h - 1] == '-') {
            end = SkipSpaces(h + 2);
          } else {
            end = h + 2;
            if (end < s_.size() && s_[end] == '\n') ++end;
          }
          break;
        }
        if (end == std::string::npos) return Err(map_.Error(tag, "missing end of comment tag"));
        line_starting = s_[end - 1] == '\n';
        pos = end;
        continue;
      }
      Emit(kind == '%' ? Tok::kBlockBegin : Tok::kVarBegin, tag);
      XNAI_ASSIGN_OR_RETURN(pos, LexTag(inner, kind == '%', &line_starting));
    }
    Emit(Tok::kEof, s_.size());
    return std::move(tokens_);
  }

 private:
  bool StartsWith(size_t pos, std::string_view what) const {
    return s_.compare(pos, what.size(), what) == 0;
  }

  size_t SkipSpaces(size_t pos) const {
    while (pos < s_.size()) {
      Decoded d = DecodeAt(s_, pos);
      if (!IsPySpace(d.cp)) break;
      pos += d.len;
    }
    return pos;
  }

  // `{%(-|+|)\s*raw\s*(-%}\s*|%})`, `inner` after the sign.
  bool MatchRawBegin(size_t inner, size_t* end) const {
    size_t p = SkipSpaces(inner);
    if (!StartsWith(p, "raw")) return false;
    p = SkipSpaces(p + 3);
    if (StartsWith(p, "-%}")) {
      *end = SkipSpaces(p + 3);
      return true;
    }
    if (StartsWith(p, "%}")) {
      *end = p + 2;
      return true;
    }
    return false;
  }

  // `{%(-|+|)\s*endraw\s*(+%}|-%}\s*|%}\n?)` at `q` (which holds "{%").
  bool MatchRawEnd(size_t q, char* sign, size_t* end) const {
    size_t p = q + 2;
    *sign = 0;
    if (p < s_.size() && (s_[p] == '-' || s_[p] == '+')) *sign = s_[p++];
    p = SkipSpaces(p);
    if (!StartsWith(p, "endraw")) {
      // Without the sign the regex could still match with the sign as ""
      // only if the sign character were whitespace, which it is not.
      return false;
    }
    p = SkipSpaces(p + 6);
    if (StartsWith(p, "+%}")) {
      *end = p + 3;
    } else if (StartsWith(p, "-%}")) {
      *end = SkipSpaces(p + 3);
    } else if (StartsWith(p, "%}")) {
      *end = p + 2;
      if (*end < s_.size() && s_[*end] == '\n') ++*end;
    } else {
      return false;
    }
    return true;
  }

  // Whitespace control on the text before a tag: '-' strips all trailing
  // whitespace; otherwise lstrip_blocks removes the spaces between the
  // start of the line and a block or comment tag ('+' disables it).
  static void StripBefore(std::string& text, char sign, bool is_block_or_comment,
                          bool line_starting) {
    if (sign == '-') {
      size_t end = text.size();
      while (end > 0) {
        size_t start = end - 1;
        while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
        if (!IsPySpace(DecodeAt(text, start).cp)) break;
        end = start;
      }
      text.resize(end);
      return;
    }
    if (sign == '+' || !is_block_or_comment) return;
    size_t nl = text.rfind('\n');
    size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
    if (l_pos == 0 && !line_starting) return;
    if (l_pos >= text.size()) return;
    for (size_t i = l_pos; i < text.size();) {
      Decoded d = DecodeAt(text, i);
      if (!IsPySpace(d.cp)) return;
      i += d.len;
    }
    text.resize(l_pos);
  }

  void Emit(Tok type, size_t pos, std::string text = {}) {
    Token t;
    t.type = type;
    t.pos = pos;
    t.text = std::move(text);
    tokens_.push_back(std::move(t));
  }

  void EmitData(size_t pos, std::string text) {
    if (!text.empty()) Emit(Tok::kData, pos, std::move(text));
  }

  // `(\d+_)*\d+` at pos: its end, or npos.
  size_t DigitsEnd(size_t pos) const {
    if (pos >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[pos]))) {
      return std::string::npos;
    }
    while (pos < s_.size()) {
      if (std::isdigit(static_cast<unsigned char>(s_[pos]))) {
        ++pos;
      } else if (s_[pos] == '_' && pos + 1 < s_.size() &&
                 std::isdigit(static_cast<unsigned char>(s_[pos + 1]))) {
        pos += 2;
      } else {
        break;
      }
    }
    return pos;
  }

  size_t ExponentEnd(size_t pos) const {
    if (pos >= s_.size() || (s_[pos] != 'e' && s_[pos] != 'E')) return std::string::npos;
    ++pos;
    if (pos < s_.size() && (s_[pos] == '+' || s_[pos] == '-')) ++pos;
    return DigitsEnd(pos);
  }

  size_t FloatEnd(size_t pos) const {
    if (pos > 0 && s_[pos - 1] == '.') return std::string::npos;
    size_t d1 = DigitsEnd(pos);
    if (d1 == std::string::npos) return std::string::npos;
    size_t frac = std::string::npos;
    if (d1 < s_.size() && s_[d1] == '.') frac = DigitsEnd(d1 + 1);
    if (frac != std::string::npos) {
      size_t e = ExponentEnd(frac);
      if (e != std::string::npos) return e;
    }
    size_t e = ExponentEnd(d1);
    if (e != std::string::npos) return e;
    return frac;
  }

  // Jinja2's integer literal: 0b/0o/0x prefixes, digits with '_'.
  size_t IntEnd(size_t pos, int* base) const {
    auto valid = [](char c, int b) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (b == 2) return c == '0' || c == '1';
      if (b == 8) return c >= '0' && c <= '7';
      return std::isxdigit(static_cast<unsigned char>(c)) != 0;
    };
    if (s_[pos] == '0' && pos + 1 < s_.size()) {
      char p = static_cast<char>(std::tolower(static_cast<unsigned char>(s_[pos + 1])));
      int b = p == 'b' ? 2 : p == 'o' ? 8 : p == 'x' ? 16 : 0;
      if (b != 0) {
        size_t q = pos + 2;
        int count = 0;
        while (q < s_.size()) {
          if (s_[q] == '_' && q + 1 < s_.size() && valid(s_[q + 1], b)) {
            q += 2;
          } else if (valid(s_[q], b)) {
            ++q;
          } else {
            break;
          }
          ++count;
        }
        if (count > 0) {
          *base = b;
          return q;
        }
      }
    }
    *base = 10;
    const bool zero = s_[pos] == '0';
    size_t q = pos + 1;
    while (q < s_.size()) {
      char want_ok = s_[q];
      if (want_ok == '_' && q + 1 < s_.size() &&
          (zero ? s_[q + 1] == '0' : std::isdigit(static_cast<unsigned char>(s_[q + 1])) != 0)) {
        q += 2;
      } else if (zero ? want_ok == '0' : std::isdigit(static_cast<unsigned char>(want_ok)) != 0) {
        ++q;
      } else {
        break;
      }
    }
    return q;
  }

  // Python's unicode-escape decoding of a string literal's body (as Jinja2
  // applies it after backslash-replacing non-ASCII characters).
  Result<std::string> DecodeString(size_t pos, std::string_view raw) const {
    std::string out;
    out.reserve(raw.size());
    for (size_t i = 0; i < raw.size();) {
      char c = raw[i];
      if (c != '\\') {
        out.push_back(c);
        ++i;
        continue;
      }
      if (i + 1 >= raw.size()) return Err(map_.Error(pos, "\\ at end of string"));
      const auto next = static_cast<unsigned char>(raw[i + 1]);
      if (next >= 0x80) {
        // "\é" was "\\xe9" after backslashreplace: a backslash and "xe9".
        Decoded d = DecodeAt(raw, i + 1);
        char buf[16];
        char32_t cp = d.cp >= kRawByte ? d.cp - kRawByte : d.cp;
        if (cp < 0x100) {
          std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(cp));
        } else if (cp < 0x10000) {
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(cp));
        } else {
          std::snprintf(buf, sizeof(buf), "\\U%08x", static_cast<unsigned>(cp));
        }
        out += buf;
        i += 1 + d.len;
        continue;
      }
      i += 2;
      switch (next) {
        case '\n':
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '\'':
          out.push_back('\'');
          break;
        case '"':
          out.push_back('"');
          break;
        case 'a':
          out.push_back('\a');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'v':
          out.push_back('\v');
          break;
        case 'x':
        case 'u':
        case 'U': {
          size_t digits = next == 'x' ? 2 : next == 'u' ? 4 : 8;
          char32_t cp = 0;
          for (size_t k = 0; k < digits; ++k) {
            if (i + k >= raw.size() || !std::isxdigit(static_cast<unsigned char>(raw[i + k]))) {
              return Err(map_.Error(pos, std::string("truncated \\") + static_cast<char>(next) +
                                             std::string(digits, 'X') + " escape"));
            }
            char h = raw[i + k];
            cp = cp * 16 + static_cast<char32_t>(std::isdigit(static_cast<unsigned char>(h))
                                                     ? h - '0'
                                                     : std::tolower(h) - 'a' + 10);
          }
          i += digits;
          if (cp > 0x10FFFF) return Err(map_.Error(pos, "illegal Unicode character"));
          if (cp >= 0xD800 && cp <= 0xDFFF) {
            return Err(map_.Error(pos, "surrogate escapes are not supported"));
          }
          AppendUtf8(out, cp);
          break;
        }
        case 'N':
          return Err(map_.Error(pos, "\\N{...} escapes are not supported"));
        default:
          if (next >= '0' && next <= '7') {
            char32_t cp = next - '0';
            for (int k = 0; k < 2 && i < raw.size() && raw[i] >= '0' && raw[i] <= '7'; ++k) {
              cp = cp * 8 + static_cast<char32_t>(raw[i++] - '0');
            }
            AppendUtf8(out, cp);
          } else {
            // An unknown escape stays as written.
            out.push_back('\\');
            i -= 1;
          }
      }
    }
    return out;
  }

  // Tokens inside {% %} or {{ }}, from `pos` to the end tag. Returns the
  // position after the end tag (or the end of the source: the parser then
  // reports the missing end).
  Result<size_t> LexTag(size_t pos, bool is_block, bool* line_starting) {
    static constexpr std::string_view kOps[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/",
                                                "*",  "%",  "~",  "[",  "]",  "(",  ")", "{", "}",
                                                ">",  "<",  "=",  ".",  ":",  "|",  ",", ";"};
    std::vector<char> balance;
    while (pos < s_.size()) {
      if (balance.empty()) {
        size_t end = std::string::npos;
        if (is_block) {
          if (StartsWith(pos, "+%}")) {
            end = pos + 3;
          } else if (StartsWith(pos, "-%}")) {
            end = SkipSpaces(pos + 3);
          } else if (StartsWith(pos, "%}")) {
            end = pos + 2;
            if (end < s_.size() && s_[end] == '\n') ++end;
          }
        } else {
          if (StartsWith(pos, "-}}")) {
            end = SkipSpaces(pos + 3);
          } else if (StartsWith(pos, "}}")) {
            end = pos + 2;
          }
        }
        if (end != std::string::npos) {
          Emit(is_block ? Tok::kBlockEnd : Tok::kVarEnd, pos);
          *line_starting = s_[end - 1] == '\n';
          return end;
        }
      }
      Decoded d = DecodeAt(s_, pos);
      if (IsPySpace(d.cp)) {
        pos += d.len;
        continue;
      }
      const char c = s_[pos];
      if (std::isdigit(static_cast<unsigned char>(c))) {
        size_t end = FloatEnd(pos);
        if (end != std::string::npos) {
          std::string text = s_.substr(pos, end - pos);
          text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
          Token t;
          t.type = Tok::kFloat;
          t.pos = pos;
          std::from_chars(text.data(), text.data() + text.size(), t.float_value);
          tokens_.push_back(std::move(t));
          pos = end;
          continue;
        }
        int base = 10;
        end = IntEnd(pos, &base);
        std::string digits = s_.substr(pos, end - pos);
        digits.erase(std::remove(digits.begin(), digits.end(), '_'), digits.end());
        if (base != 10) digits.erase(0, 2);
        Token t;
        t.type = Tok::kInt;
        t.pos = pos;
        auto res = std::from_chars(digits.data(), digits.data() + digits.size(), t.int_value, base);
        if (res.ec != std::errc()) {
          return Err(map_.Error(pos, "integer literal too large (xnai supports 64-bit integers)"));
        }
        tokens_.push_back(std::move(t));
        pos = end;
        continue;
      }
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t end = pos;
        while (end < s_.size() &&
               (std::isalnum(static_cast<unsigned char>(s_[end])) || s_[end] == '_')) {
          ++end;
        }
        if (end < s_.size() && (static_cast<unsigned char>(s_[end]) & 0x80) != 0 &&
            !IsPySpace(DecodeAt(s_, end).cp)) {
          return Err(map_.Error(end, "non-ASCII names are not supported"));
        }
        Emit(Tok::kName, pos, s_.substr(pos, end - pos));
        pos = end;
        continue;
      }
      if (c == '\'' || c == '"') {
        size_t i = pos + 1;
        while (i < s_.size() && s_[i] != c) i += s_[i] == '\\' ? 2 : 1;
        if (i >= s_.size()) return Err(map_.Error(pos, "unterminated string literal"));
        XNAI_ASSIGN_OR_RETURN(std::string value,
                              DecodeString(pos, std::string_view(s_).substr(pos + 1, i - pos - 1)));
        Emit(Tok::kString, pos, std::move(value));
        pos = i + 1;
        continue;
      }
      std::string_view op;
      for (std::string_view candidate : kOps) {
        if (StartsWith(pos, candidate)) {
          op = candidate;
          break;
        }
      }
      if (op.empty()) {
        if ((static_cast<unsigned char>(c) & 0x80) != 0) {
          return Err(map_.Error(pos, "unexpected character (non-ASCII names are not supported)"));
        }
        return Err(map_.Error(pos, std::string("unexpected character '") + c + "'"));
      }
      if (op == "(" || op == "[" || op == "{") {
        balance.push_back(op == "(" ? ')' : op == "[" ? ']' : '}');
      } else if (op == ")" || op == "]" || op == "}") {
        if (balance.empty()) return Err(map_.Error(pos, "unexpected '" + std::string(op) + "'"));
        if (balance.back() != op[0]) {
          return Err(map_.Error(pos, "unexpected '" + std::string(op) + "', expected '" +
                                         std::string(1, balance.back()) + "'"));
        }
        balance.pop_back();
      }
      Emit(Tok::kOp, pos, std::string(op));
      pos += op.size();
    }
    return pos;
  }

  const std::string& s_;
  const SourceMap& map_;
  std::vector<Token> tokens_;
};

// ===========================================================================
// 6. Parser
// ===========================================================================

// Recursive descent over the tokens with Jinja2's grammar and precedence:
// condexpr < or < and < not < compare < +,- < ~ < *,/,//,% < ** < unary
// minus/plus < postfix (. [] ()) and filters/tests.
class Parser {
 public:
  Parser(const std::vector<Token>& tokens, const SourceMap& map) : toks_(tokens), map_(map) {}

  Result<Body> ParseTemplate() {
    XNAI_ASSIGN_OR_RETURN(Body body, Subparse({}));
    XNAI_RETURN_IF_ERROR(CheckNames(body, false));
    return body;
  }

 private:
  // Counts parser recursion; CheckNesting fails past kMaxParseNesting.
  class Nesting {
   public:
    explicit Nesting(int& counter) : counter_(counter) { ++counter_; }
    ~Nesting() { --counter_; }
    Nesting(const Nesting&) = delete;
    Nesting& operator=(const Nesting&) = delete;

   private:
    int& counter_;
  };

  const Token& Cur() const { return toks_[pos_]; }
  const Token& Look() const { return toks_[std::min(pos_ + 1, toks_.size() - 1)]; }
  void Advance() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }
  static bool IsName(const Token& t, std::string_view name) {
    return t.type == Tok::kName && t.text == name;
  }
  static bool IsOp(const Token& t, std::string_view op) {
    return t.type == Tok::kOp && t.text == op;
  }
  bool SkipName(std::string_view name) {
    if (!IsName(Cur(), name)) return false;
    Advance();
    return true;
  }
  bool SkipOp(std::string_view op) {
    if (!IsOp(Cur(), op)) return false;
    Advance();
    return true;
  }

  static std::string Describe(const Token& t) {
    switch (t.type) {
      case Tok::kData:
        return "template data / text";
      case Tok::kVarBegin:
        return "begin of print statement";
      case Tok::kVarEnd:
        return "end of print statement";
      case Tok::kBlockBegin:
        return "begin of statement block";
      case Tok::kBlockEnd:
        return "end of statement block";
      case Tok::kName:
        return "'" + t.text + "'";
      case Tok::kString:
        return "string";
      case Tok::kInt:
        return "integer";
      case Tok::kFloat:
        return "float";
      case Tok::kOp:
        return "'" + t.text + "'";
      case Tok::kEof:
        return "end of template";
    }
    return "token";
  }

  Status Fail(const Token& t, const std::string& message) const {
    return map_.Error(t.pos, message);
  }

  Status ExpectOp(std::string_view op) {
    if (!IsOp(Cur(), op)) {
      return Fail(Cur(), "expected '" + std::string(op) + "', got " + Describe(Cur()));
    }
    Advance();
    return Status::Ok();
  }

  Status Expect(Tok type, const char* what) {
    if (Cur().type != type) {
      return Fail(Cur(), std::string("expected ") + what + ", got " + Describe(Cur()));
    }
    Advance();
    return Status::Ok();
  }

  Result<std::string> ExpectName() {
    if (Cur().type != Tok::kName)
      return Err(Fail(Cur(), "expected a name, got " + Describe(Cur())));
    std::string name = Cur().text;
    Advance();
    return name;
  }

  ExprPtr NewExpr(ExprKind kind, const Token& at) const {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = map_.Line(at.pos);
    e->pos = at.pos;
    return e;
  }

  StmtPtr NewStmt(StmtKind kind, const Token& at) const {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = map_.Line(at.pos);
    return s;
  }

  // Records the subtree depth; refuses expressions nested too deeply to
  // evaluate (or destroy) without deep recursion.
  Result<ExprPtr> Finish(ExprPtr e, const Token& at) const {
    int depth = 0;
    auto account = [&](const ExprPtr& child) {
      if (child) depth = std::max(depth, child->depth);
    };
    account(e->a);
    account(e->b);
    account(e->c);
    for (const ExprPtr& item : e->items) account(item);
    for (const Kwarg& kw : e->kwargs) account(kw.value);
    e->depth = depth + 1;
    if (e->depth > kMaxExprDepth) return Err(Fail(at, "expression nested too deeply"));
    return e;
  }

  Status CheckNesting(const Token& at) const {
    if (nesting_ > kMaxParseNesting) return Fail(at, "expression nested too deeply");
    return Status::Ok();
  }

  // ---- names of filters and tests ------------------------------------------

  // Jinja2 rejects unknown filter and test names when it compiles the
  // template, except inside an if statement or a conditional expression
  // ("soft" frames), where they fail only if evaluated.
  Status CheckExprNames(const Expr* e, bool soft) const {
    if (e == nullptr) return Status::Ok();
    if (e->kind == ExprKind::kCond) soft = true;
    if (!soft && e->kind == ExprKind::kFilter && !Contains(kJinjaFilters, e->name)) {
      return map_.Error(e->pos, "no filter named '" + e->name + "'");
    }
    if (!soft && e->kind == ExprKind::kTest && !Contains(kJinjaTests, e->name)) {
      return map_.Error(e->pos, "no test named '" + e->name + "'");
    }
    XNAI_RETURN_IF_ERROR(CheckExprNames(e->a.get(), soft));
    XNAI_RETURN_IF_ERROR(CheckExprNames(e->b.get(), soft));
    XNAI_RETURN_IF_ERROR(CheckExprNames(e->c.get(), soft));
    for (const ExprPtr& item : e->items) XNAI_RETURN_IF_ERROR(CheckExprNames(item.get(), soft));
    for (const Kwarg& kw : e->kwargs) XNAI_RETURN_IF_ERROR(CheckExprNames(kw.value.get(), soft));
    return Status::Ok();
  }

  Status CheckNames(const Body& body, bool soft) const {
    for (const StmtPtr& s : body) {
      // An if statement's frame is soft; loops, macros, calls and the block
      // statements open frames of their own, which are not.
      const bool is_if = s->kind == StmtKind::kIf;
      for (size_t n = 0; n < s->exprs.size(); ++n) {
        const bool loop_filter = s->kind == StmtKind::kFor && n == 1;
        XNAI_RETURN_IF_ERROR(CheckExprNames(s->exprs[n].get(), (soft || is_if) && !loop_filter));
      }
      XNAI_RETURN_IF_ERROR(CheckExprNames(s->filter.get(), soft));
      for (const Body& b : s->bodies) XNAI_RETURN_IF_ERROR(CheckNames(b, is_if));
      if (s->macro) {
        for (const ExprPtr& d : s->macro->defaults)
          XNAI_RETURN_IF_ERROR(CheckExprNames(d.get(), false));
        XNAI_RETURN_IF_ERROR(CheckNames(s->macro->body, false));
      }
    }
    return Status::Ok();
  }

  // ---- statements --------------------------------------------------------

  std::string ExpectedTags(const std::vector<std::string_view>& end_tags) const {
    std::string list;
    for (size_t n = 0; n < end_tags.size(); ++n) {
      if (n > 0) list += n + 1 == end_tags.size() ? " or " : ", ";
      list += "'" + std::string(end_tags[n]) + "'";
    }
    return list;
  }

  Result<Body> Subparse(std::vector<std::string_view> end_tags) {
    Body body;
    while (true) {
      const Token& t = Cur();
      switch (t.type) {
        case Tok::kData: {
          StmtPtr s = NewStmt(StmtKind::kData, t);
          s->text = t.text;
          body.push_back(std::move(s));
          Advance();
          break;
        }
        case Tok::kVarBegin: {
          Advance();
          StmtPtr s = NewStmt(StmtKind::kPrint, t);
          XNAI_ASSIGN_OR_RETURN(ExprPtr e, ParseTuple(false, true, {}, false));
          s->exprs.push_back(std::move(e));
          XNAI_RETURN_IF_ERROR(Expect(Tok::kVarEnd, "end of print statement"));
          body.push_back(std::move(s));
          break;
        }
        case Tok::kBlockBegin: {
          Advance();
          if (Cur().type == Tok::kName &&
              std::find(end_tags.begin(), end_tags.end(), Cur().text) != end_tags.end()) {
            return body;
          }
          XNAI_ASSIGN_OR_RETURN(StmtPtr s, ParseStatement(end_tags));
          XNAI_RETURN_IF_ERROR(Expect(Tok::kBlockEnd, "end of statement block"));
          if (s) body.push_back(std::move(s));
          break;
        }
        case Tok::kEof:
          if (!end_tags.empty()) {
            return Err(Fail(t, "unexpected end of template; expected " + ExpectedTags(end_tags) +
                                   " to close the '" + open_blocks_.back() + "' block"));
          }
          return body;
        default:
          return Err(Fail(t, "unexpected " + Describe(t)));
      }
    }
  }

  // After the tag name and arguments: an optional ':', the block end, the
  // body up to one of `end_tags` (left as the current token).
  Result<Body> ParseStatements(const std::string& block, std::vector<std::string_view> end_tags) {
    SkipOp(":");
    XNAI_RETURN_IF_ERROR(Expect(Tok::kBlockEnd, "end of statement block"));
    if (static_cast<int>(open_blocks_.size()) >= kMaxBlockNesting) {
      return Err(Fail(Cur(), "blocks nested too deeply"));
    }
    open_blocks_.push_back(block);
    auto body = Subparse(std::move(end_tags));
    open_blocks_.pop_back();
    return body;
  }

  Result<StmtPtr> ParseStatement(const std::vector<std::string_view>& end_tags) {
    const Token& t = Cur();
    if (t.type != Tok::kName) return Err(Fail(t, "tag name expected"));
    const std::string& name = t.text;
    if (name == "for") return ParseFor();
    if (name == "if") return ParseIf();
    if (name == "set") return ParseSet();
    if (name == "macro") return ParseMacro();
    if (name == "call") return ParseCallBlock();
    if (name == "filter") return ParseFilterBlock();
    if (name == "with") return ParseWith();
    if (name == "print") return ParsePrint();
    if (name == "generation") return ParseGeneration();
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) return Err(Fail(t, "'" + name + "' outside of a for loop"));
      StmtPtr s = NewStmt(name == "break" ? StmtKind::kBreak : StmtKind::kContinue, t);
      Advance();
      return s;
    }
    if (name == "block" || name == "extends" || name == "include" || name == "import" ||
        name == "from") {
      return Err(Fail(
          t,
          "the '" + name + "' tag is not supported: a chat template cannot load other templates"));
    }
    if (name == "autoescape") return Err(Fail(t, "the 'autoescape' tag is not supported"));
    std::string message = "unknown tag '" + name + "'";
    if (!end_tags.empty()) {
      message += "; expected " + ExpectedTags(end_tags) + " to close the '" + open_blocks_.back() +
                 "' block";
    }
    return Err(Fail(t, message));
  }

  // Converts a parsed name/tuple expression into an assignment target.
  Result<Target> ToTarget(const Expr& e, const Token& at) const {
    Target target;
    if (e.kind == ExprKind::kName) {
      target.name = e.name;
      return target;
    }
    if (e.kind == ExprKind::kTuple) {
      target.kind = Target::Kind::kTuple;
      for (const ExprPtr& item : e.items) {
        XNAI_ASSIGN_OR_RETURN(Target sub, ToTarget(*item, at));
        target.items.push_back(std::move(sub));
      }
      return target;
    }
    return Err(Fail(at, "can't assign to this expression"));
  }

  Result<Target> ParseAssignTarget(std::vector<std::string_view> extra_end, bool with_namespace) {
    const Token& at = Cur();
    if (with_namespace && at.type == Tok::kName && IsOp(Look(), ".")) {
      Target target;
      target.kind = Target::Kind::kNamespaceAttr;
      target.name = at.text;
      Advance();
      Advance();
      XNAI_ASSIGN_OR_RETURN(target.attr, ExpectName());
      return target;
    }
    XNAI_ASSIGN_OR_RETURN(ExprPtr e, ParseTuple(true, true, std::move(extra_end), false));
    return ToTarget(*e, at);
  }

  Result<StmtPtr> ParseFor() {
    StmtPtr s = NewStmt(StmtKind::kFor, Cur());
    Advance();
    XNAI_ASSIGN_OR_RETURN(s->target, ParseAssignTarget({"in"}, false));
    if (!SkipName("in")) return Err(Fail(Cur(), "expected 'in', got " + Describe(Cur())));
    XNAI_ASSIGN_OR_RETURN(ExprPtr iter, ParseTuple(false, false, {"recursive"}, false));
    s->exprs.push_back(std::move(iter));
    s->exprs.emplace_back();
    if (SkipName("if")) {
      XNAI_ASSIGN_OR_RETURN(s->exprs[1], ParseExpression(true));
    }
    if (IsName(Cur(), "recursive"))
      return Err(Fail(Cur(), "recursive for loops are not supported"));
    ++loop_depth_;
    auto body = ParseStatements("for", {"endfor", "else"});
    --loop_depth_;
    if (!body) return Err(body.error());
    s->bodies.push_back(std::move(*body));
    s->bodies.emplace_back();
    if (IsName(Cur(), "else")) {
      Advance();
      XNAI_ASSIGN_OR_RETURN(s->bodies[1], ParseStatements("for", {"endfor"}));
    }
    Advance();  // endfor
    return s;
  }

  Result<StmtPtr> ParseIf() {
    StmtPtr s = NewStmt(StmtKind::kIf, Cur());
    Advance();
    while (true) {
      XNAI_ASSIGN_OR_RETURN(ExprPtr cond, ParseTuple(false, false, {}, false));
      s->exprs.push_back(std::move(cond));
      XNAI_ASSIGN_OR_RETURN(Body body, ParseStatements("if", {"elif", "else", "endif"}));
      s->bodies.push_back(std::move(body));
      const std::string tag = Cur().text;
      Advance();
      if (tag == "elif") continue;
      if (tag == "else") {
        XNAI_ASSIGN_OR_RETURN(Body else_body, ParseStatements("if", {"endif"}));
        s->bodies.push_back(std::move(else_body));
        Advance();
      }
      break;
    }
    return s;
  }

  Result<StmtPtr> ParseSet() {
    const Token& at = Cur();
    Advance();
    XNAI_ASSIGN_OR_RETURN(Target target, ParseAssignTarget({}, true));
    if (SkipOp("=")) {
      StmtPtr s = NewStmt(StmtKind::kSet, at);
      s->target = std::move(target);
      XNAI_ASSIGN_OR_RETURN(ExprPtr value, ParseTuple(false, true, {}, false));
      s->exprs.push_back(std::move(value));
      return s;
    }
    StmtPtr s = NewStmt(StmtKind::kSetBlock, at);
    s->target = std::move(target);
    if (IsOp(Cur(), "|")) {
      XNAI_ASSIGN_OR_RETURN(s->filter, ParseFilter(nullptr, false));
    }
    XNAI_ASSIGN_OR_RETURN(Body body, ParseStatements("set", {"endset"}));
    s->bodies.push_back(std::move(body));
    Advance();
    return s;
  }

  Status ParseSignature(MacroDef& macro) {
    XNAI_RETURN_IF_ERROR(ExpectOp("("));
    while (!IsOp(Cur(), ")")) {
      if (!macro.params.empty()) XNAI_RETURN_IF_ERROR(ExpectOp(","));
      const Token& at = Cur();
      XNAI_ASSIGN_OR_RETURN(std::string param, ExpectName());
      ExprPtr default_value;
      if (SkipOp("=")) {
        XNAI_ASSIGN_OR_RETURN(default_value, ParseExpression(true));
      } else if (std::any_of(macro.defaults.begin(), macro.defaults.end(),
                             [](const ExprPtr& d) { return d != nullptr; })) {
        return Fail(at, "non-default argument follows default argument");
      }
      macro.params.push_back(std::move(param));
      macro.defaults.push_back(std::move(default_value));
    }
    return ExpectOp(")");
  }

  // Names a body references: a macro whose body uses varargs, kwargs or
  // caller accepts them.
  static void CollectNames(const Expr* e, std::vector<std::string>& names) {
    if (e == nullptr) return;
    if (e->kind == ExprKind::kName) names.push_back(e->name);
    CollectNames(e->a.get(), names);
    CollectNames(e->b.get(), names);
    CollectNames(e->c.get(), names);
    for (const ExprPtr& item : e->items) CollectNames(item.get(), names);
    for (const Kwarg& kw : e->kwargs) CollectNames(kw.value.get(), names);
  }
  static void CollectNames(const Body& body, std::vector<std::string>& names) {
    for (const StmtPtr& s : body) {
      for (const ExprPtr& e : s->exprs) CollectNames(e.get(), names);
      CollectNames(s->filter.get(), names);
      for (const Body& b : s->bodies) CollectNames(b, names);
      if (s->macro) {
        for (const ExprPtr& d : s->macro->defaults) CollectNames(d.get(), names);
        CollectNames(s->macro->body, names);
      }
    }
  }
  // Jinja2 refuses a 'caller' parameter without a default in a body that
  // uses caller.
  Status AnalyzeMacro(MacroDef& macro, const Token& at) const {
    std::vector<std::string> names;
    CollectNames(macro.body, names);
    auto uses = [&](const char* n) {
      return std::find(names.begin(), names.end(), n) != names.end();
    };
    macro.catch_varargs = uses("varargs");
    macro.catch_kwargs = uses("kwargs");
    macro.uses_caller = uses("caller");
    for (size_t n = 0; n < macro.params.size(); ++n) {
      if (macro.uses_caller && macro.params[n] == "caller" && macro.defaults[n] == nullptr) {
        return Fail(at,
                    "the special 'caller' argument of a macro must be omitted or have a default");
      }
    }
    return Status::Ok();
  }

  // A macro-like body (macro, call block caller, generation): break and
  // continue cannot cross it.
  Result<Body> ParseFunctionBody(const std::string& block, std::string_view end_tag) {
    int saved = loop_depth_;
    loop_depth_ = 0;
    auto body = ParseStatements(block, {end_tag});
    loop_depth_ = saved;
    return body;
  }

  Result<StmtPtr> ParseMacro() {
    const Token& at = Cur();
    StmtPtr s = NewStmt(StmtKind::kMacro, at);
    Advance();
    auto macro = std::make_shared<MacroDef>();
    XNAI_ASSIGN_OR_RETURN(macro->name, ExpectName());
    XNAI_RETURN_IF_ERROR(ParseSignature(*macro));
    XNAI_ASSIGN_OR_RETURN(macro->body, ParseFunctionBody("macro", "endmacro"));
    Advance();
    XNAI_RETURN_IF_ERROR(AnalyzeMacro(*macro, at));
    s->macro = std::move(macro);
    return s;
  }

  Result<StmtPtr> ParseCallBlock() {
    const Token& start = Cur();
    StmtPtr s = NewStmt(StmtKind::kCallBlock, start);
    Advance();
    auto caller = std::make_shared<MacroDef>();
    caller->name = "caller";
    if (IsOp(Cur(), "(")) XNAI_RETURN_IF_ERROR(ParseSignature(*caller));
    const Token& at = Cur();
    XNAI_ASSIGN_OR_RETURN(ExprPtr call, ParseExpression(true));
    if (call->kind != ExprKind::kCall) return Err(Fail(at, "expected a call after 'call'"));
    s->exprs.push_back(std::move(call));
    XNAI_ASSIGN_OR_RETURN(caller->body, ParseFunctionBody("call", "endcall"));
    Advance();
    XNAI_RETURN_IF_ERROR(AnalyzeMacro(*caller, start));
    s->macro = std::move(caller);
    return s;
  }

  Result<StmtPtr> ParseFilterBlock() {
    StmtPtr s = NewStmt(StmtKind::kFilterBlock, Cur());
    Advance();
    XNAI_ASSIGN_OR_RETURN(s->filter, ParseFilter(nullptr, true));
    XNAI_ASSIGN_OR_RETURN(Body body, ParseStatements("filter", {"endfilter"}));
    s->bodies.push_back(std::move(body));
    Advance();
    return s;
  }

  Result<StmtPtr> ParseWith() {
    StmtPtr s = NewStmt(StmtKind::kWith, Cur());
    Advance();
    while (Cur().type != Tok::kBlockEnd) {
      if (!s->targets.empty()) XNAI_RETURN_IF_ERROR(ExpectOp(","));
      XNAI_ASSIGN_OR_RETURN(Target target, ParseAssignTarget({}, false));
      XNAI_RETURN_IF_ERROR(ExpectOp("="));
      XNAI_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
      s->targets.push_back(std::move(target));
      s->exprs.push_back(std::move(value));
    }
    XNAI_ASSIGN_OR_RETURN(Body body, ParseStatements("with", {"endwith"}));
    s->bodies.push_back(std::move(body));
    Advance();
    return s;
  }

  Result<StmtPtr> ParsePrint() {
    StmtPtr s = NewStmt(StmtKind::kPrint, Cur());
    Advance();
    std::vector<ExprPtr> exprs;
    while (Cur().type != Tok::kBlockEnd) {
      if (!exprs.empty()) XNAI_RETURN_IF_ERROR(ExpectOp(","));
      XNAI_ASSIGN_OR_RETURN(ExprPtr e, ParseExpression(true));
      exprs.push_back(std::move(e));
    }
    s->exprs = std::move(exprs);
    return s;
  }

  Result<StmtPtr> ParseGeneration() {
    StmtPtr s = NewStmt(StmtKind::kScopeBlock, Cur());
    Advance();
    XNAI_ASSIGN_OR_RETURN(Body body, ParseFunctionBody("generation", "endgeneration"));
    s->bodies.push_back(std::move(body));
    Advance();
    return s;
  }

  // ---- expressions -------------------------------------------------------

  Result<ExprPtr> ParseExpression(bool with_condexpr) {
    return with_condexpr ? ParseCondExpr() : ParseOr();
  }

  Result<ExprPtr> ParseCondExpr() {
    Nesting nesting(nesting_);
    const Token& at = Cur();
    XNAI_RETURN_IF_ERROR(CheckNesting(at));
    XNAI_ASSIGN_OR_RETURN(ExprPtr expr, ParseOr());
    while (SkipName("if")) {
      ExprPtr node = NewExpr(ExprKind::kCond, at);
      XNAI_ASSIGN_OR_RETURN(node->b, ParseOr());
      if (SkipName("else")) {
        XNAI_ASSIGN_OR_RETURN(node->c, ParseCondExpr());
      }
      node->a = std::move(expr);
      XNAI_ASSIGN_OR_RETURN(expr, Finish(std::move(node), at));
    }
    return expr;
  }

  Result<ExprPtr> ParseOr() {
    const Token& at = Cur();
    XNAI_ASSIGN_OR_RETURN(ExprPtr left, ParseAnd());
    while (SkipName("or")) {
      ExprPtr node = NewExpr(ExprKind::kOr, at);
      node->a = std::move(left);
      XNAI_ASSIGN_OR_RETURN(node->b, ParseAnd());
      XNAI_ASSIGN_OR_RETURN(left, Finish(std::move(node), at));
    }
    return left;
  }

  Result<ExprPtr> ParseAnd() {
    const Token& at = Cur();
    XNAI_ASSIGN_OR_RETURN(ExprPtr left, ParseNot());
    while (SkipName("and")) {
      ExprPtr node = NewExpr(ExprKind::kAnd, at);
      node->a = std::move(left);
      XNAI_ASSIGN_OR_RETURN(node->b, ParseNot());
      XNAI_ASSIGN_OR_RETURN(left, Finish(std::move(node), at));
    }
    return left;
  }

  Result<ExprPtr> ParseNot() {
    Nesting nesting(nesting_);
    const Token& at = Cur();
    XNAI_RETURN_IF_ERROR(CheckNesting(at));
    if (SkipName("not")) {
      ExprPtr node = NewExpr(ExprKind::kNot, at);
      XNAI_ASSIGN_OR_RETURN(node->a, ParseNot());
      return Finish(std::move(node), at);
    }
    return ParseCompare();
  }

  Result<ExprPtr> ParseCompare() {
    const Token& at = Cur();
    XNAI_ASSIGN_OR_RETURN(ExprPtr left, ParseMath1());
    ExprPtr node;
    while (true) {
      const Token& t = Cur();
      std::optional<CmpOp> op;
      if (t.type == Tok::kOp) {
        if (t.text == "==") op = CmpOp::kEq;
        if (t.text == "!=") op = CmpOp::kNe;
        if (t.text == "<") op = CmpOp::kLt;
        if (t.text == "<=") op = CmpOp::kLe;
        if (t.text == ">") op = CmpOp::kGt;
        if (t.text == ">=") op = CmpOp::kGe;
        if (op) Advance();
      } else if (IsName(t, "in")) {
        op = CmpOp::kIn;
        Advance();
      } else if (IsName(t, "not") && IsName(Look(), "in")) {
        op = CmpOp::kNotIn;
        Advance();
        Advance();
      }
      if (!op) break;
      if (!node) {
        node = NewExpr(ExprKind::kCompare, at);
        node->items.push_back(std::move(left));
      }
      node->cmp_ops.push_back(*op);
      XNAI_ASSIGN_OR_RETURN(ExprPtr right, ParseMath1());
      node->items.push_back(std::move(right));
      if (node->items.size() > static_cast<size_t>(kMaxExprDepth)) {
        return Err(Fail(at, "expression nested too deeply"));
      }
    }
    if (!node) return left;
    return Finish(std::move(node), at);
  }

  Result<ExprPtr> ParseBinaryLoop(std::initializer_list<std::pair<std::string_view, BinOp>> ops,
                                  Result<ExprPtr> (Parser::*operand)()) {
    const Token& at = Cur();
    XNAI_ASSIGN_OR_RETURN(ExprPtr left, (this->*operand)());
    while (true) {
      std::optional<BinOp> op;
      for (const auto& [text, bin] : ops) {
        if (IsOp(Cur(), text)) op = bin;
      }
      if (!op) return left;
      Advance();
      ExprPtr node = NewExpr(ExprKind::kBinary, at);
      node->op = *op;
      node->a = std::move(left);
      XNAI_ASSIGN_OR_RETURN(node->b, (this->*operand)());
      XNAI_ASSIGN_OR_RETURN(left, Finish(std::move(node), at));
    }
  }

  Result<ExprPtr> ParseMath1() {
    return ParseBinaryLoop({{"+", BinOp::kAdd}, {"-", BinOp::kSub}}, &Parser::ParseConcat);
  }

  Result<ExprPtr> ParseConcat() {
    const Token& at = Cur();
    XNAI_ASSIGN_OR_RETURN(ExprPtr first, ParseMath2());
    if (!IsOp(Cur(), "~")) return first;
    ExprPtr node = NewExpr(ExprKind::kConcat, at);
    node->items.push_back(std::move(first));
    while (SkipOp("~")) {
      XNAI_ASSIGN_OR_RETURN(ExprPtr next, ParseMath2());
      node->items.push_back(std::move(next));
      if (node->items.size() > static_cast<size_t>(kMaxExprDepth) * 50) {
        return Err(Fail(at, "expression too long"));
      }
    }
    return Finish(std::move(node), at);
  }

  Result<ExprPtr> ParseMath2() {
    return ParseBinaryLoop(
        {{"*", BinOp::kMul}, {"/", BinOp::kDiv}, {"//", BinOp::kFloorDiv}, {"%", BinOp::kMod}},
        &Parser::ParsePow);
  }

  Result<ExprPtr> ParsePow() {
    return ParseBinaryLoop({{"**", BinOp::kPow}}, &Parser::ParseUnaryWithFilter);
  }

  Result<ExprPtr> ParseUnaryWithFilter() { return ParseUnary(true); }

  Result<ExprPtr> ParseUnary(bool with_filter) {
    Nesting nesting(nesting_);
    const Token& at = Cur();
    XNAI_RETURN_IF_ERROR(CheckNesting(at));
    ExprPtr node;
    if (IsOp(at, "-") || IsOp(at, "+")) {
      node = NewExpr(IsOp(at, "-") ? ExprKind::kNeg : ExprKind::kPos, at);
      Advance();
      XNAI_ASSIGN_OR_RETURN(node->a, ParseUnary(false));
      XNAI_ASSIGN_OR_RETURN(node, Finish(std::move(node), at));
    } else {
      XNAI_ASSIGN_OR_RETURN(node, ParsePrimary());
    }
    XNAI_ASSIGN_OR_RETURN(node, ParsePostfix(std::move(node)));
    if (with_filter) {
      XNAI_ASSIGN_OR_RETURN(node, ParseFilterExpr(std::move(node)));
    }
    return node;
  }

  Result<ExprPtr> ParsePrimary() {
    const Token& t = Cur();
    ExprPtr node;
    switch (t.type) {
      case Tok::kName:
        node = NewExpr(ExprKind::kConst, t);
        if (t.text == "true" || t.text == "True") {
          node->value = Value::Bool(true);
        } else if (t.text == "false" || t.text == "False") {
          node->value = Value::Bool(false);
        } else if (t.text == "none" || t.text == "None") {
          node->value = Value::None();
        } else {
          node->kind = ExprKind::kName;
          node->name = t.text;
        }
        Advance();
        return node;
      case Tok::kString: {
        std::string text;
        while (Cur().type == Tok::kString) {
          text += Cur().text;
          Advance();
        }
        node = NewExpr(ExprKind::kConst, t);
        node->value = Value::Str(std::move(text));
        return node;
      }
      case Tok::kInt:
        node = NewExpr(ExprKind::kConst, t);
        node->value = Value::Int(t.int_value);
        Advance();
        return node;
      case Tok::kFloat:
        node = NewExpr(ExprKind::kConst, t);
        node->value = Value::Float(t.float_value);
        Advance();
        return node;
      default:
        break;
    }
    if (IsOp(t, "(")) {
      Advance();
      XNAI_ASSIGN_OR_RETURN(node, ParseTuple(false, true, {}, true));
      XNAI_RETURN_IF_ERROR(ExpectOp(")"));
      return node;
    }
    if (IsOp(t, "[")) return ParseList();
    if (IsOp(t, "{")) return ParseDict();
    return Err(Fail(t, "unexpected " + Describe(t)));
  }

  bool IsTupleEnd(const std::vector<std::string_view>& extra_end) const {
    const Token& t = Cur();
    if (t.type == Tok::kVarEnd || t.type == Tok::kBlockEnd || IsOp(t, ")")) return true;
    if (t.type == Tok::kEof) return true;
    return t.type == Tok::kName &&
           std::find(extra_end.begin(), extra_end.end(), t.text) != extra_end.end();
  }

  // Expressions separated by commas; a tuple when there is a comma.
  // `simplified`: primaries only (assignment targets).
  Result<ExprPtr> ParseTuple(bool simplified, bool with_condexpr,
                             std::vector<std::string_view> extra_end, bool explicit_parens) {
    const Token& at = Cur();
    std::vector<ExprPtr> args;
    bool is_tuple = false;
    while (true) {
      if (!args.empty()) XNAI_RETURN_IF_ERROR(ExpectOp(","));
      if (IsTupleEnd(extra_end)) break;
      ExprPtr arg;
      if (simplified) {
        XNAI_ASSIGN_OR_RETURN(arg, ParsePrimary());
      } else {
        XNAI_ASSIGN_OR_RETURN(arg, ParseExpression(with_condexpr));
      }
      args.push_back(std::move(arg));
      if (IsOp(Cur(), ",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!args.empty()) return std::move(args[0]);
      if (!explicit_parens) {
        return Err(Fail(Cur(), "expected an expression, got " + Describe(Cur())));
      }
    }
    ExprPtr node = NewExpr(ExprKind::kTuple, at);
    node->items = std::move(args);
    return Finish(std::move(node), at);
  }

  Result<ExprPtr> ParseList() {
    const Token& at = Cur();
    Advance();
    ExprPtr node = NewExpr(ExprKind::kList, at);
    while (!IsOp(Cur(), "]")) {
      if (!node->items.empty()) XNAI_RETURN_IF_ERROR(ExpectOp(","));
      if (IsOp(Cur(), "]")) break;
      XNAI_ASSIGN_OR_RETURN(ExprPtr item, ParseExpression(true));
      node->items.push_back(std::move(item));
    }
    XNAI_RETURN_IF_ERROR(ExpectOp("]"));
    return Finish(std::move(node), at);
  }

  Result<ExprPtr> ParseDict() {
    const Token& at = Cur();
    Advance();
    ExprPtr node = NewExpr(ExprKind::kDict, at);
    while (!IsOp(Cur(), "}")) {
      if (!node->items.empty()) XNAI_RETURN_IF_ERROR(ExpectOp(","));
      if (IsOp(Cur(), "}")) break;
      XNAI_ASSIGN_OR_RETURN(ExprPtr key, ParseExpression(true));
      XNAI_RETURN_IF_ERROR(ExpectOp(":"));
      XNAI_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
      node->items.push_back(std::move(key));
      node->items.push_back(std::move(value));
    }
    XNAI_RETURN_IF_ERROR(ExpectOp("}"));
    return Finish(std::move(node), at);
  }

  Result<ExprPtr> ParsePostfix(ExprPtr node) {
    while (true) {
      if (IsOp(Cur(), ".") || IsOp(Cur(), "[")) {
        XNAI_ASSIGN_OR_RETURN(node, ParseSubscript(std::move(node)));
      } else if (IsOp(Cur(), "(")) {
        XNAI_ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
      } else {
        return node;
      }
    }
  }

  Result<ExprPtr> ParseFilterExpr(ExprPtr node) {
    while (true) {
      if (IsOp(Cur(), "|")) {
        XNAI_ASSIGN_OR_RETURN(node, ParseFilter(std::move(node), false));
      } else if (IsName(Cur(), "is")) {
        XNAI_ASSIGN_OR_RETURN(node, ParseTest(std::move(node)));
      } else if (IsOp(Cur(), "(")) {
        XNAI_ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
      } else {
        return node;
      }
    }
  }

  Result<ExprPtr> ParseSubscript(ExprPtr node) {
    const Token& at = Cur();
    Advance();
    if (at.text == ".") {
      const Token& attr = Cur();
      Advance();
      if (attr.type == Tok::kName) {
        ExprPtr e = NewExpr(ExprKind::kGetAttr, at);
        e->a = std::move(node);
        e->name = attr.text;
        return Finish(std::move(e), at);
      }
      if (attr.type != Tok::kInt) return Err(Fail(attr, "expected name or number"));
      ExprPtr e = NewExpr(ExprKind::kGetItem, at);
      e->a = std::move(node);
      e->b = NewExpr(ExprKind::kConst, attr);
      e->b->value = Value::Int(attr.int_value);
      return Finish(std::move(e), at);
    }
    std::vector<ExprPtr> args;
    while (!IsOp(Cur(), "]")) {
      if (!args.empty()) XNAI_RETURN_IF_ERROR(ExpectOp(","));
      XNAI_ASSIGN_OR_RETURN(ExprPtr arg, ParseSubscribed());
      args.push_back(std::move(arg));
      if (Cur().type == Tok::kEof) break;
    }
    XNAI_RETURN_IF_ERROR(ExpectOp("]"));
    ExprPtr e = NewExpr(ExprKind::kGetItem, at);
    e->a = std::move(node);
    if (args.size() == 1) {
      e->b = std::move(args[0]);
    } else {
      ExprPtr tuple = NewExpr(ExprKind::kTuple, at);
      tuple->items = std::move(args);
      XNAI_ASSIGN_OR_RETURN(e->b, Finish(std::move(tuple), at));
    }
    return Finish(std::move(e), at);
  }

  Result<ExprPtr> ParseSubscribed() {
    const Token& at = Cur();
    std::vector<ExprPtr> parts;
    if (SkipOp(":")) {
      parts.emplace_back();
    } else {
      XNAI_ASSIGN_OR_RETURN(ExprPtr first, ParseExpression(true));
      if (!IsOp(Cur(), ":")) return first;
      Advance();
      parts.push_back(std::move(first));
    }
    auto at_end = [&] { return IsOp(Cur(), "]") || IsOp(Cur(), ","); };
    if (IsOp(Cur(), ":")) {
      parts.emplace_back();
    } else if (!at_end()) {
      XNAI_ASSIGN_OR_RETURN(ExprPtr stop, ParseExpression(true));
      parts.push_back(std::move(stop));
    } else {
      parts.emplace_back();
    }
    if (SkipOp(":")) {
      if (!at_end()) {
        XNAI_ASSIGN_OR_RETURN(ExprPtr step, ParseExpression(true));
        parts.push_back(std::move(step));
      } else {
        parts.emplace_back();
      }
    } else {
      parts.emplace_back();
    }
    ExprPtr e = NewExpr(ExprKind::kSlice, at);
    e->items = std::move(parts);
    return Finish(std::move(e), at);
  }

  Status ParseCallArgs(std::vector<ExprPtr>& args, std::vector<Kwarg>& kwargs) {
    const Token& open = Cur();
    XNAI_RETURN_IF_ERROR(ExpectOp("("));
    bool require_comma = false;
    while (!IsOp(Cur(), ")")) {
      if (require_comma) {
        XNAI_RETURN_IF_ERROR(ExpectOp(","));
        if (IsOp(Cur(), ")")) break;
      }
      if (IsOp(Cur(), "*") || IsOp(Cur(), "**")) {
        return Fail(Cur(), "*args and **kwargs in calls are not supported");
      }
      if (Cur().type == Tok::kName && IsOp(Look(), "=")) {
        Kwarg kw;
        kw.name = Cur().text;
        Advance();
        Advance();
        XNAI_ASSIGN_OR_RETURN(kw.value, ParseExpression(true));
        kwargs.push_back(std::move(kw));
      } else {
        if (!kwargs.empty()) return Fail(open, "invalid syntax for function call expression");
        XNAI_ASSIGN_OR_RETURN(ExprPtr arg, ParseExpression(true));
        args.push_back(std::move(arg));
      }
      require_comma = true;
      if (Cur().type == Tok::kEof) break;
    }
    return ExpectOp(")");
  }

  Result<ExprPtr> ParseCall(ExprPtr node) {
    const Token& at = Cur();
    ExprPtr e = NewExpr(ExprKind::kCall, at);
    e->a = std::move(node);
    XNAI_RETURN_IF_ERROR(ParseCallArgs(e->items, e->kwargs));
    return Finish(std::move(e), at);
  }

  Result<std::string> ParseDottedName() {
    XNAI_ASSIGN_OR_RETURN(std::string name, ExpectName());
    while (SkipOp(".")) {
      XNAI_ASSIGN_OR_RETURN(std::string part, ExpectName());
      name += "." + part;
    }
    return name;
  }

  Result<ExprPtr> ParseFilter(ExprPtr node, bool start_inline) {
    while (IsOp(Cur(), "|") || start_inline) {
      if (!start_inline) Advance();
      start_inline = false;
      const Token& at = Cur();
      XNAI_ASSIGN_OR_RETURN(std::string name, ParseDottedName());
      ExprPtr e = NewExpr(ExprKind::kFilter, at);
      e->name = std::move(name);
      e->a = std::move(node);
      if (IsOp(Cur(), "(")) XNAI_RETURN_IF_ERROR(ParseCallArgs(e->items, e->kwargs));
      XNAI_ASSIGN_OR_RETURN(node, Finish(std::move(e), at));
    }
    return node;
  }

  Result<ExprPtr> ParseTest(ExprPtr node) {
    const Token& at = Cur();
    Advance();
    const bool negated = SkipName("not");
    XNAI_ASSIGN_OR_RETURN(std::string name, ParseDottedName());
    ExprPtr e = NewExpr(ExprKind::kTest, at);
    e->name = std::move(name);
    e->a = std::move(node);
    const Token& t = Cur();
    if (IsOp(t, "(")) {
      XNAI_RETURN_IF_ERROR(ParseCallArgs(e->items, e->kwargs));
    } else if ((t.type == Tok::kName || t.type == Tok::kString || t.type == Tok::kInt ||
                t.type == Tok::kFloat || IsOp(t, "[") || IsOp(t, "{")) &&
               !IsName(t, "else") && !IsName(t, "or") && !IsName(t, "and")) {
      if (IsName(t, "is")) return Err(Fail(t, "you cannot chain multiple tests with is"));
      XNAI_ASSIGN_OR_RETURN(ExprPtr arg, ParsePrimary());
      XNAI_ASSIGN_OR_RETURN(arg, ParsePostfix(std::move(arg)));
      e->items.push_back(std::move(arg));
    }
    XNAI_ASSIGN_OR_RETURN(e, Finish(std::move(e), at));
    if (!negated) return e;
    ExprPtr n = NewExpr(ExprKind::kNot, at);
    n->a = std::move(e);
    return Finish(std::move(n), at);
  }

  const std::vector<Token>& toks_;
  const SourceMap& map_;
  size_t pos_ = 0;
  int nesting_ = 0;
  int loop_depth_ = 0;
  std::vector<std::string> open_blocks_;
};

// ===========================================================================
// 7. Evaluator
// ===========================================================================

enum class Flow : uint8_t { kNormal, kBreak, kContinue };

using Args = std::vector<Value>;
using Kwargs = std::vector<std::pair<std::string, Value>>;
using Bound = std::vector<std::optional<Value>>;

constexpr std::string_view kStrMethods[] = {
    "capitalize",   "casefold",    "center",    "count",      "encode",       "endswith",
    "expandtabs",   "find",        "format",    "format_map", "index",        "isalnum",
    "isalpha",      "isascii",     "isdecimal", "isdigit",    "isidentifier", "islower",
    "isnumeric",    "isprintable", "isspace",   "istitle",    "isupper",      "join",
    "ljust",        "lower",       "lstrip",    "maketrans",  "partition",    "removeprefix",
    "removesuffix", "replace",     "rfind",     "rindex",     "rjust",        "rpartition",
    "rsplit",       "rstrip",      "split",     "splitlines", "startswith",   "strip",
    "swapcase",     "title",       "translate", "upper",      "zfill"};
constexpr std::string_view kDictMethods[] = {"copy", "fromkeys", "get", "items", "keys", "values"};
constexpr std::string_view kDictUnsafe[] = {"clear", "pop", "popitem", "setdefault", "update"};
// Jinja2's ImmutableSandboxedEnvironment hides the mutating methods it knows
// (kDictUnsafe, kListUnsafe) but not list.pop/list.clear; those stay visible
// and xnai refuses to call them (values are immutable here).
constexpr std::string_view kListMethods[] = {"clear", "copy", "count", "index", "pop"};
constexpr std::string_view kListUnsafe[] = {"append", "extend",  "insert",
                                            "remove", "reverse", "sort"};
constexpr std::string_view kNumberMethods[] = {
    "as_integer_ratio", "bit_count", "bit_length", "conjugate", "from_bytes",
    "fromhex",          "hex",       "is_integer", "to_bytes"};

bool IsAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c & 0x80) == 0; });
}

// The dictionary key of a string (HashKey for strings, without the Renderer).
std::string StrKey(std::string_view s) { return "s" + std::string(s); }

// Python's str() of a value's type for "'X object' has no attribute" hints.
std::string ObjectTypeRepr(const Value& v) {
  if (v.type == VType::kNone) return "None";
  return std::string(TypeName(v)) + " object";
}

Value MissingAttr(const Value& obj, std::string_view name) {
  std::string what = ObjectTypeRepr(obj);
  return Value::Undefined("'" + what + "' has no attribute '" + std::string(name) + "'");
}

Value UnsafeAttr(const Value& obj, std::string_view name) {
  return Value::Undefined("access to attribute '" + std::string(name) + "' of '" + TypeName(obj) +
                          "' object is unsafe.");
}

// Python's PySlice_AdjustIndices: the first index and the (exclusive) end
// of a[start:stop:step] on a sequence of `len` items.
std::pair<int64_t, int64_t> SliceBounds(int64_t len, std::optional<int64_t> start,
                                        std::optional<int64_t> stop, int64_t step) {
  const int64_t lower = step > 0 ? 0 : -1;
  const int64_t upper = step > 0 ? len : len - 1;
  auto adjust = [&](std::optional<int64_t> v, int64_t fallback) {
    if (!v) return fallback;
    int64_t x = *v;
    if (x < 0) {
      x += len;
      if (x < lower) x = lower;
    } else if (x > upper) {
      x = upper;
    }
    return x;
  };
  return {adjust(start, step > 0 ? lower : upper), adjust(stop, step > 0 ? upper : lower)};
}

// The indices a[start:stop:step] visits.
std::vector<size_t> SliceIndices(int64_t len, std::optional<int64_t> start,
                                 std::optional<int64_t> stop, int64_t step) {
  const auto [begin, end] = SliceBounds(len, start, stop, step);
  std::vector<size_t> out;
  if (step > 0) {
    for (int64_t i = begin; i < end; i += step) out.push_back(static_cast<size_t>(i));
  } else {
    for (int64_t i = begin; i > end; i += step) out.push_back(static_cast<size_t>(i));
  }
  return out;
}

// Python's float(str): surrounding whitespace, a sign, digits with single
// underscores between them, inf/nan spellings.
std::optional<double> ParsePyFloat(std::string_view text) {
  std::string t = PyStrip(text, nullptr, true, true);
  if (t.empty()) return std::nullopt;
  bool negative = false;
  size_t p = 0;
  if (t[0] == '+' || t[0] == '-') {
    negative = t[0] == '-';
    p = 1;
  }
  std::string body;
  for (size_t i = p; i < t.size(); ++i) {
    char c = t[i];
    if (c == '_') {
      if (i == p || i + 1 >= t.size() || !std::isdigit(static_cast<unsigned char>(t[i - 1])) ||
          !std::isdigit(static_cast<unsigned char>(t[i + 1]))) {
        return std::nullopt;
      }
      continue;
    }
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '+' && c != '-') {
      return std::nullopt;
    }
    body.push_back(c);
  }
  std::string lower = PyLower(body);
  double value = 0;
  if (lower == "inf" || lower == "infinity") {
    value = std::numeric_limits<double>::infinity();
  } else if (lower == "nan") {
    value = std::numeric_limits<double>::quiet_NaN();
  } else {
    if (body.empty() || body[0] == '+' || body[0] == '-') return std::nullopt;
    if (lower.find('n') != std::string::npos || lower.find('x') != std::string::npos) {
      return std::nullopt;
    }
    auto res = std::from_chars(body.data(), body.data() + body.size(), value);
    if (res.ec != std::errc() || res.ptr != body.data() + body.size()) return std::nullopt;
  }
  return negative ? -value : value;
}

// Python's int(str, base) for bases 0 and 2..36; nullopt when Python raises
// ValueError. Values beyond 64 bits are reported through `overflow`.
std::optional<int64_t> ParsePyInt(std::string_view text, int base, bool* overflow) {
  *overflow = false;
  std::string t = PyStrip(text, nullptr, true, true);
  size_t p = 0;
  bool negative = false;
  if (p < t.size() && (t[p] == '+' || t[p] == '-')) negative = t[p++] == '-';
  auto has_prefix = [&](char c) {
    return p + 1 < t.size() && t[p] == '0' &&
           std::tolower(static_cast<unsigned char>(t[p + 1])) == c;
  };
  bool prefixed = false;
  if (base == 0) {
    if (has_prefix('x')) {
      base = 16;
    } else if (has_prefix('o')) {
      base = 8;
    } else if (has_prefix('b')) {
      base = 2;
    } else {
      base = 10;
      // Base 0 rejects leading zeros in non-zero decimals.
      if (p + 1 < t.size() && t[p] == '0') {
        for (size_t i = p; i < t.size(); ++i) {
          if (t[i] != '0' && t[i] != '_') return std::nullopt;
        }
      }
    }
    prefixed = base != 10;
  } else if ((base == 16 && has_prefix('x')) || (base == 8 && has_prefix('o')) ||
             (base == 2 && has_prefix('b'))) {
    prefixed = true;
  }
  if (prefixed) p += 2;
  if (p >= t.size()) return std::nullopt;
  unsigned __int128 acc = 0;
  bool need_digit = !prefixed;  // after a prefix one '_' may come first
  bool any = false;
  for (size_t i = p; i < t.size(); ++i) {
    char c = t[i];
    if (c == '_') {
      if (need_digit) return std::nullopt;
      need_digit = true;
      continue;
    }
    int d = std::isdigit(static_cast<unsigned char>(c))   ? c - '0'
            : std::isalpha(static_cast<unsigned char>(c)) ? std::tolower(c) - 'a' + 10
                                                          : 99;
    if (d >= base) return std::nullopt;
    acc = acc * static_cast<unsigned>(base) + static_cast<unsigned>(d);
    if (acc > static_cast<unsigned __int128>(std::numeric_limits<int64_t>::max()) + 1) {
      *overflow = true;
      acc = static_cast<unsigned __int128>(std::numeric_limits<int64_t>::max()) + 2;
    }
    need_digit = false;
    any = true;
  }
  if (!any || need_digit) return std::nullopt;
  if (acc >
      static_cast<unsigned __int128>(std::numeric_limits<int64_t>::max()) + (negative ? 1 : 0)) {
    *overflow = true;
    return std::nullopt;
  }
  if (negative) return static_cast<int64_t>(-static_cast<__int128>(acc));
  return static_cast<int64_t>(acc);
}

// Work units an evaluation step (one expression node or statement) costs;
// a byte or an item built costs one.
constexpr int64_t kStepCost = 16;
// Work units one list/dict item costs (its memory is ~64 bytes).
constexpr int64_t kItemCost = 64;
// The most items one list, dict or split may hold.
constexpr size_t kMaxItems = size_t{1} << 20;

// The state of one Render call: the scopes, the limits' counters and the
// line being evaluated (for messages). Statements write into the output
// string they are given; expressions return Values. Every error is a Status
// (FailedPrecondition only from raise_exception).
class Renderer {
 public:
  explicit Renderer(const RenderOptions& options) : options_(options), limits_(options.limits) {}

  Result<std::string> Run(const Body& body, const nlohmann::ordered_json& context) {
    if (!context.is_object()) {
      return Err(Status::InvalidArgument("chat template context must be a JSON object"));
    }
    top_ = std::make_shared<Scope>();
    for (const auto& [key, value] : context.items()) {
      XNAI_ASSIGN_OR_RETURN(Value v, FromJson(value, 0));
      top_->vars[key] = std::move(v);
    }
    std::string out;
    XNAI_ASSIGN_OR_RETURN(Flow flow, ExecBody(body, top_, out));
    (void)flow;
    return out;
  }

 private:
  // ---- errors, limits -----------------------------------------------------

  Status Error(const std::string& message) const {
    return Status::InvalidArgument("chat template error at line " + std::to_string(line_) + ": " +
                                   message);
  }
  Status UndefinedError(const Value& undefined) const { return Error(undefined.why()); }
  Status Unsupported(const std::string& what) const {
    return Error(what + " is not supported by xnai's chat template renderer");
  }

  class DepthGuard {
   public:
    explicit DepthGuard(Renderer& r) : r_(r) { ++r_.depth_; }
    ~DepthGuard() { --r_.depth_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;

   private:
    Renderer& r_;
  };

  Status CheckDepth() const {
    if (depth_ > limits_.max_depth) {
      return Error("recursion too deep (limit " + std::to_string(limits_.max_depth) + ")");
    }
    return Status::Ok();
  }

  Status Charge(int64_t units) {
    work_ += units;
    if (work_ > limits_.max_work) {
      return Error("template does too much work (limit " + std::to_string(limits_.max_work) +
                   " units)");
    }
    return Status::Ok();
  }

  Status ChargeItems(size_t items) {
    if (items > kMaxItems) {
      return Error("too many items in one value (limit " + std::to_string(kMaxItems) + ")");
    }
    return Charge(static_cast<int64_t>(items) * kItemCost + kStepCost);
  }

  Status CountIteration() {
    if (++iterations_ > limits_.max_loop_iterations) {
      return Error("too many loop iterations (limit " +
                   std::to_string(limits_.max_loop_iterations) + ")");
    }
    return Charge(1);
  }

  Status CheckSize(size_t size) const {
    if (size > limits_.max_output_bytes) {
      return Error("output exceeds " + std::to_string(limits_.max_output_bytes) + " bytes");
    }
    return Status::Ok();
  }

  Status Append(std::string& out, std::string_view text) {
    XNAI_RETURN_IF_ERROR(CheckSize(out.size() + text.size()));
    XNAI_RETURN_IF_ERROR(Charge(static_cast<int64_t>(text.size())));
    out.append(text);
    return Status::Ok();
  }

  Result<Value> NewStr(std::string text, bool markup = false) {
    XNAI_RETURN_IF_ERROR(CheckSize(text.size()));
    XNAI_RETURN_IF_ERROR(Charge(static_cast<int64_t>(text.size())));
    return Value::Str(std::move(text), markup);
  }

  Status CheckNested(const Value& v) const {
    if (DepthOf(v) > kMaxValueDepth) {
      return Error("value nested too deeply (limit " + std::to_string(kMaxValueDepth) + ")");
    }
    return Status::Ok();
  }

  Result<Value> NewList(std::vector<Value> items, SeqKind kind = SeqKind::kList) {
    XNAI_RETURN_IF_ERROR(ChargeItems(items.size()));
    return PrepaidList(std::move(items), kind);
  }

  // A list whose items were already charged (ChargeItems before building).
  Result<Value> PrepaidList(std::vector<Value> items, SeqKind kind) {
    Value v = MakeList(std::move(items), kind);
    XNAI_RETURN_IF_ERROR(CheckNested(v));
    return v;
  }

  Result<Value> NewIter(std::vector<Value> items, const char* type_name = "generator") {
    XNAI_RETURN_IF_ERROR(ChargeItems(items.size()));
    Value v = MakeIterator(std::move(items), type_name);
    XNAI_RETURN_IF_ERROR(CheckNested(v));
    return v;
  }

  Result<Value> NewDict(std::shared_ptr<DictObj> dict) {
    XNAI_RETURN_IF_ERROR(ChargeItems(dict->entries.size()));
    Value v = MakeDict(std::move(dict));
    XNAI_RETURN_IF_ERROR(CheckNested(v));
    return v;
  }

  Result<Value> FromJson(const nlohmann::ordered_json& j, int depth) {
    if (depth > kMaxValueDepth) {
      return Err(Status::InvalidArgument("chat template context nested too deeply (limit " +
                                         std::to_string(kMaxValueDepth) + ")"));
    }
    switch (j.type()) {
      case nlohmann::ordered_json::value_t::null:
        return Value::None();
      case nlohmann::ordered_json::value_t::boolean:
        return Value::Bool(j.get<bool>());
      case nlohmann::ordered_json::value_t::number_integer:
        return Value::Int(j.get<int64_t>());
      case nlohmann::ordered_json::value_t::number_unsigned: {
        uint64_t u = j.get<uint64_t>();
        if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          return Err(Status::InvalidArgument(
              "chat template context: integer too large (xnai supports 64-bit integers)"));
        }
        return Value::Int(static_cast<int64_t>(u));
      }
      case nlohmann::ordered_json::value_t::number_float:
        return Value::Float(j.get<double>());
      case nlohmann::ordered_json::value_t::string:
        return Value::Str(j.get<std::string>());
      case nlohmann::ordered_json::value_t::array: {
        std::vector<Value> items;
        items.reserve(j.size());
        for (const auto& item : j) {
          XNAI_ASSIGN_OR_RETURN(Value v, FromJson(item, depth + 1));
          items.push_back(std::move(v));
        }
        return MakeList(std::move(items));
      }
      case nlohmann::ordered_json::value_t::object: {
        auto dict = std::make_shared<DictObj>();
        for (const auto& [key, item] : j.items()) {
          XNAI_ASSIGN_OR_RETURN(Value v, FromJson(item, depth + 1));
          dict->Set(StrKey(key), Value::Str(key), std::move(v));
        }
        return MakeDict(std::move(dict));
      }
      default:
        return Err(Status::InvalidArgument("chat template context holds binary data"));
    }
  }

  // ---- Python semantics of values ----------------------------------------

  static bool Truthy(const Value& v) {
    switch (v.type) {
      case VType::kUndefined:
      case VType::kNone:
        return false;
      case VType::kBool:
        return v.b;
      case VType::kInt:
        return v.i != 0;
      case VType::kFloat:
        return v.f != 0;
      case VType::kString:
        return !v.s->empty();
      case VType::kList:
        return !AsList(v).items.empty();
      case VType::kDict:
        return !AsDict(v).entries.empty();
      default:
        return true;
    }
  }

  static bool Equals(const Value& a, const Value& b) {
    if (a.is_number() && b.is_number()) {
      if (a.type == VType::kFloat || b.type == VType::kFloat) return a.as_double() == b.as_double();
      return a.as_int() == b.as_int();
    }
    if (a.type != b.type) return false;
    switch (a.type) {
      case VType::kUndefined:
      case VType::kNone:
        return true;
      case VType::kString:
        return *a.s == *b.s;
      case VType::kList: {
        const ListObj& x = AsList(a);
        const ListObj& y = AsList(b);
        auto family = [](SeqKind k) {
          return k == SeqKind::kItems || k == SeqKind::kKeys ? SeqKind::kKeys : k;
        };
        if (family(x.kind) != family(y.kind) || x.items.size() != y.items.size()) return false;
        if (x.kind == SeqKind::kValues) return a.o == b.o;  // dict_values compare by identity
        if (x.kind == SeqKind::kItems || x.kind == SeqKind::kKeys) {
          // Set-like views: same size and every element present.
          for (const Value& item : x.items) {
            if (std::none_of(y.items.begin(), y.items.end(),
                             [&](const Value& other) { return Equals(item, other); })) {
              return false;
            }
          }
          return true;
        }
        for (size_t n = 0; n < x.items.size(); ++n) {
          if (!Equals(x.items[n], y.items[n])) return false;
        }
        return true;
      }
      case VType::kDict: {
        const DictObj& x = AsDict(a);
        const DictObj& y = AsDict(b);
        if (x.entries.size() != y.entries.size()) return false;
        for (const DictEntry& e : x.entries) {
          const DictEntry* other = y.Find(e.hkey);
          if (other == nullptr || !Equals(e.value, other->value)) return false;
        }
        return true;
      }
      default:
        return a.o == b.o;
    }
  }

  // The key under which a dict stores `v`; equal keys (1, 1.0, True) share
  // one. Lists and dicts are unhashable, as in Python.
  Result<std::string> HashKey(const Value& v) const {
    switch (v.type) {
      case VType::kUndefined:
        return std::string("u");
      case VType::kNone:
        return std::string("n");
      case VType::kBool:
      case VType::kInt:
        return "i" + std::to_string(v.as_int());
      case VType::kFloat: {
        double f = v.f;
        if (std::isfinite(f) && f == std::floor(f) && std::fabs(f) < 9.2e18) {
          return "i" + std::to_string(static_cast<int64_t>(f));
        }
        return "f" + PyFloatRepr(f);
      }
      case VType::kString:
        return StrKey(*v.s);
      case VType::kList: {
        const ListObj& l = AsList(v);
        if (l.kind != SeqKind::kTuple) {
          return Err(Error(std::string("unhashable type: '") + TypeName(v) + "'"));
        }
        std::string key = "t" + std::to_string(l.items.size());
        for (const Value& item : l.items) {
          XNAI_ASSIGN_OR_RETURN(std::string part, HashKey(item));
          key += ":" + std::to_string(part.size()) + ":" + part;
        }
        return key;
      }
      case VType::kDict:
        return Err(Error("unhashable type: 'dict'"));
      default: {
        char buf[32];
        std::snprintf(buf, sizeof(buf), "p%p", static_cast<const void*>(v.o.get()));
        return std::string(buf);
      }
    }
  }

  // Python's ordering (<): numbers, strings, lists/tuples of the same kind.
  Result<int> Compare(const Value& a, const Value& b, std::string_view op) const {
    if (a.is_undefined()) return Err(UndefinedError(a));
    if (b.is_undefined()) return Err(UndefinedError(b));
    if (a.is_number() && b.is_number()) {
      if (a.type == VType::kFloat || b.type == VType::kFloat) {
        double x = a.as_double(), y = b.as_double();
        return x < y ? -1 : x > y ? 1 : 0;
      }
      int64_t x = a.as_int(), y = b.as_int();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a.is_string() && b.is_string()) {
      int c = a.s->compare(*b.s);
      return c < 0 ? -1 : c > 0 ? 1 : 0;
    }
    if (a.type == VType::kList && b.type == VType::kList && AsList(a).kind == AsList(b).kind &&
        (AsList(a).kind == SeqKind::kList || AsList(a).kind == SeqKind::kTuple)) {
      const auto& x = AsList(a).items;
      const auto& y = AsList(b).items;
      for (size_t n = 0; n < x.size() && n < y.size(); ++n) {
        if (!Equals(x[n], y[n])) return Compare(x[n], y[n], op);
      }
      return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
    }
    return Err(Error("'" + std::string(op) + "' not supported between instances of '" +
                     TypeName(a) + "' and '" + TypeName(b) + "'"));
  }

  Result<bool> ContainsValue(const Value& container, const Value& item) {
    switch (container.type) {
      case VType::kUndefined:
        return false;
      case VType::kString:
        if (!item.is_string()) {
          return Err(Error(std::string("'in <string>' requires string as left operand, not ") +
                           TypeName(item)));
        }
        return container.s->find(*item.s) != std::string::npos;
      case VType::kList:
        for (const Value& v : AsList(container).items) {
          if (Equals(v, item)) return true;
        }
        return false;
      case VType::kDict: {
        XNAI_ASSIGN_OR_RETURN(std::string key, HashKey(item));
        return AsDict(container).Find(key) != nullptr;
      }
      case VType::kIterator: {
        IterObj& it = AsIter(container);
        while (it.pos < it.items.size()) {
          if (Equals(it.items[it.pos++], item)) return true;
        }
        return false;
      }
      default:
        return Err(
            Error(std::string("argument of type '") + TypeName(container) + "' is not iterable"));
    }
  }

  Result<std::vector<Value>> Iterate(const Value& v) {
    switch (v.type) {
      case VType::kUndefined:
        return std::vector<Value>{};
      case VType::kList:
        return AsList(v).items;
      case VType::kDict: {
        std::vector<Value> keys;
        for (const DictEntry& e : AsDict(v).entries) keys.push_back(e.key);
        return keys;
      }
      case VType::kString: {
        std::vector<Value> chars;
        XNAI_RETURN_IF_ERROR(ChargeItems(CodePointCount(*v.s)));
        for (size_t i = 0; i < v.s->size();) {
          size_t len = DecodeAt(*v.s, i).len;
          chars.push_back(Value::Str(v.s->substr(i, len)));
          i += len;
        }
        return chars;
      }
      case VType::kIterator: {
        IterObj& it = AsIter(v);
        std::vector<Value> rest(it.items.begin() + static_cast<std::ptrdiff_t>(it.pos),
                                it.items.end());
        it.pos = it.items.size();
        return rest;
      }
      default:
        return Err(Error(std::string("'") + TypeName(v) + "' object is not iterable"));
    }
  }

  Result<int64_t> Length(const Value& v) const {
    switch (v.type) {
      case VType::kUndefined:
        return 0;
      case VType::kString:
        return static_cast<int64_t>(CodePointCount(*v.s));
      case VType::kList:
        return static_cast<int64_t>(AsList(v).items.size());
      case VType::kDict:
        return static_cast<int64_t>(AsDict(v).entries.size());
      case VType::kLoop:
        return static_cast<int64_t>(AsLoop(v).items->size());
      default:
        return Err(Error(std::string("object of type '") + TypeName(v) + "' has no len()"));
    }
  }

  // ---- str(), repr(), json.dumps() ----------------------------------------

  Status AppendRepr(std::string& out, const Value& v) const {
    XNAI_RETURN_IF_ERROR(CheckSize(out.size()));
    switch (v.type) {
      case VType::kUndefined:
        out += "Undefined";
        return Status::Ok();
      case VType::kString:
        if (v.markup) {
          out += "Markup(";
          AppendStrRepr(out, *v.s);
          out += ")";
        } else {
          AppendStrRepr(out, *v.s);
        }
        return Status::Ok();
      case VType::kList: {
        const ListObj& l = AsList(v);
        const char* open = "[";
        const char* close = "]";
        switch (l.kind) {
          case SeqKind::kTuple:
            open = "(", close = l.items.size() == 1 ? ",)" : ")";
            break;
          case SeqKind::kRange:
            out += "range(" + std::to_string(l.range_start) + ", " + std::to_string(l.range_stop);
            if (l.range_step != 1) out += ", " + std::to_string(l.range_step);
            out += ")";
            return Status::Ok();
          case SeqKind::kItems:
            open = "dict_items([", close = "])";
            break;
          case SeqKind::kKeys:
            open = "dict_keys([", close = "])";
            break;
          case SeqKind::kValues:
            open = "dict_values([", close = "])";
            break;
          case SeqKind::kList:
            break;
        }
        out += open;
        for (size_t n = 0; n < l.items.size(); ++n) {
          if (n > 0) out += ", ";
          XNAI_RETURN_IF_ERROR(AppendRepr(out, l.items[n]));
        }
        out += close;
        return Status::Ok();
      }
      case VType::kDict:
        return AppendDictRepr(out, AsDict(v));
      default:
        return AppendStr(out, v);
    }
  }

  Status AppendDictRepr(std::string& out, const DictObj& d) const {
    out += "{";
    for (size_t n = 0; n < d.entries.size(); ++n) {
      if (n > 0) out += ", ";
      XNAI_RETURN_IF_ERROR(AppendRepr(out, d.entries[n].key));
      out += ": ";
      XNAI_RETURN_IF_ERROR(AppendRepr(out, d.entries[n].value));
    }
    out += "}";
    return Status::Ok();
  }

  Status AppendStr(std::string& out, const Value& v) const {
    switch (v.type) {
      case VType::kUndefined:
        return Status::Ok();
      case VType::kNone:
        out += "None";
        return Status::Ok();
      case VType::kBool:
        out += v.b ? "True" : "False";
        return Status::Ok();
      case VType::kInt:
        out += std::to_string(v.i);
        return Status::Ok();
      case VType::kFloat:
        out += PyFloatRepr(v.f);
        return Status::Ok();
      case VType::kString:
        out += *v.s;
        return Status::Ok();
      case VType::kList:
      case VType::kDict:
        return AppendRepr(out, v);
      case VType::kNamespace:
        out += "<Namespace ";
        XNAI_RETURN_IF_ERROR(AppendDictRepr(out, AsNamespace(v).attrs));
        out += ">";
        return Status::Ok();
      case VType::kLoop: {
        const LoopObj& loop = AsLoop(v);
        out += "<LoopContext " + std::to_string(loop.index0 + 1) + "/" +
               std::to_string(loop.items->size()) + ">";
        return Status::Ok();
      }
      case VType::kCallable: {
        const CallableObj& c = AsCallable(v);
        if (c.kind == CallableObj::Kind::kMacro) {
          out += "<Macro '" + c.name + "'>";
          return Status::Ok();
        }
        return Error("cannot print the function '" + c.name +
                     "' (Python would print its memory address)");
      }
      case VType::kIterator:
        return Error(std::string("cannot print a ") + TypeName(v) +
                     " (Python would print its memory address; convert it with |list)");
    }
    return Status::Ok();
  }

  Result<std::string> ToStr(const Value& v) const {
    if (v.is_string()) return *v.s;
    std::string out;
    XNAI_RETURN_IF_ERROR(AppendStr(out, v));
    XNAI_RETURN_IF_ERROR(CheckSize(out.size()));
    return out;
  }

  // Jinja2's soft_str: strings (and Markup) as they are, anything else str().
  Result<Value> SoftStr(const Value& v) {
    if (v.is_string()) return v;
    XNAI_ASSIGN_OR_RETURN(std::string text, ToStr(v));
    return NewStr(std::move(text));
  }

  struct JsonStyle {
    bool ensure_ascii = false;
    std::optional<std::string> indent;
    std::string item_sep = ", ";
    std::string key_sep = ": ";
    bool sort_keys = false;
  };

  Status AppendJson(std::string& out, const Value& v, const JsonStyle& style, int level) {
    XNAI_RETURN_IF_ERROR(CheckSize(out.size()));
    switch (v.type) {
      case VType::kNone:
        out += "null";
        return Status::Ok();
      case VType::kBool:
        out += v.b ? "true" : "false";
        return Status::Ok();
      case VType::kInt:
        out += std::to_string(v.i);
        return Status::Ok();
      case VType::kFloat:
        if (std::isnan(v.f)) {
          out += "NaN";
        } else if (std::isinf(v.f)) {
          out += v.f < 0 ? "-Infinity" : "Infinity";
        } else {
          out += PyFloatRepr(v.f);
        }
        return Status::Ok();
      case VType::kString:
        AppendJsonString(out, *v.s, style.ensure_ascii);
        return Status::Ok();
      default:
        break;
    }
    auto newline = [&](int lvl) {
      out += "\n";
      for (int n = 0; n < lvl; ++n) out += *style.indent;
    };
    if (v.type == VType::kList &&
        (AsList(v).kind == SeqKind::kList || AsList(v).kind == SeqKind::kTuple)) {
      const auto& items = AsList(v).items;
      if (items.empty()) {
        out += "[]";
        return Status::Ok();
      }
      out += "[";
      if (style.indent) newline(level + 1);
      for (size_t n = 0; n < items.size(); ++n) {
        if (n > 0) {
          out += style.item_sep;
          if (style.indent) newline(level + 1);
        }
        XNAI_RETURN_IF_ERROR(AppendJson(out, items[n], style, level + 1));
      }
      if (style.indent) newline(level);
      out += "]";
      return Status::Ok();
    }
    if (v.type == VType::kDict) {
      const DictObj& d = AsDict(v);
      if (d.entries.empty()) {
        out += "{}";
        return Status::Ok();
      }
      std::vector<const DictEntry*> entries;
      for (const DictEntry& e : d.entries) entries.push_back(&e);
      if (style.sort_keys) {
        std::optional<Status> failure;
        std::stable_sort(entries.begin(), entries.end(),
                         [&](const DictEntry* x, const DictEntry* y) {
                           if (failure) return false;
                           auto c = Compare(x->key, y->key, "<");
                           if (!c) {
                             failure = c.error();
                             return false;
                           }
                           return *c < 0;
                         });
        if (failure) return *failure;
      }
      out += "{";
      if (style.indent) newline(level + 1);
      for (size_t n = 0; n < entries.size(); ++n) {
        if (n > 0) {
          out += style.item_sep;
          if (style.indent) newline(level + 1);
        }
        const Value& key = entries[n]->key;
        switch (key.type) {
          case VType::kString:
            AppendJsonString(out, *key.s, style.ensure_ascii);
            break;
          case VType::kNone:
            out += "\"null\"";
            break;
          case VType::kBool:
            out += key.b ? "\"true\"" : "\"false\"";
            break;
          case VType::kInt:
            out += "\"" + std::to_string(key.i) + "\"";
            break;
          case VType::kFloat: {
            std::string text;
            XNAI_RETURN_IF_ERROR(AppendJson(text, key, style, level));
            out += "\"" + text + "\"";
            break;
          }
          default:
            return Error(std::string("keys must be str, int, float, bool or None, not ") +
                         TypeName(key));
        }
        out += style.key_sep;
        XNAI_RETURN_IF_ERROR(AppendJson(out, entries[n]->value, style, level + 1));
      }
      if (style.indent) newline(level);
      out += "}";
      return Status::Ok();
    }
    return Error(std::string("Object of type ") + TypeName(v) + " is not JSON serializable");
  }

  // ---- names, attributes, items --------------------------------------------

  Value Lookup(const std::shared_ptr<Scope>& scope, const std::string& name) const {
    for (const Scope* s = scope.get(); s != nullptr; s = s->parent.get()) {
      auto it = s->vars.find(name);
      if (it != s->vars.end()) return it->second;
    }
    static const std::pair<std::string_view, Builtin> kGlobals[] = {
        {"range", Builtin::kRange},
        {"dict", Builtin::kDict},
        {"namespace", Builtin::kNamespace},
        {"raise_exception", Builtin::kRaiseException},
        {"strftime_now", Builtin::kStrftimeNow},
        {"lipsum", Builtin::kLipsum},
        {"cycler", Builtin::kCycler},
        {"joiner", Builtin::kJoiner},
    };
    for (const auto& [global, which] : kGlobals) {
      if (global == name) return MakeBuiltin(which, name);
    }
    return Value::Undefined("'" + name + "' is undefined");
  }

  Result<Value> GetAttr(const Value& obj, const std::string& name) {
    switch (obj.type) {
      case VType::kUndefined:
        return Err(UndefinedError(obj));
      case VType::kString:
        if (Contains(kStrMethods, name)) return MakeMethod(obj, name);
        return MissingAttr(obj, name);
      case VType::kDict: {
        if (Contains(kDictMethods, name)) return MakeMethod(obj, name);
        if (Contains(kDictUnsafe, name) ||
            (name.size() > 4 && name.rfind("__", 0) == 0 && name.substr(name.size() - 2) == "__")) {
          return UnsafeAttr(obj, name);
        }
        if (const DictEntry* e = AsDict(obj).Find(StrKey(name))) return e->value;
        return MissingAttr(obj, name);
      }
      case VType::kList: {
        const ListObj& l = AsList(obj);
        if (l.kind == SeqKind::kList) {
          if (Contains(kListMethods, name)) return MakeMethod(obj, name);
          if (Contains(kListUnsafe, name)) return UnsafeAttr(obj, name);
        } else if (l.kind == SeqKind::kTuple || l.kind == SeqKind::kRange) {
          if (name == "count" || name == "index") return MakeMethod(obj, name);
          if (l.kind == SeqKind::kRange) {
            if (name == "start") return Value::Int(l.range_start);
            if (name == "stop") return Value::Int(l.range_stop);
            if (name == "step") return Value::Int(l.range_step);
          }
        }
        return MissingAttr(obj, name);
      }
      case VType::kNamespace:
        if (const DictEntry* e = AsNamespace(obj).attrs.Find(StrKey(name))) return e->value;
        return MissingAttr(obj, name);
      case VType::kLoop:
        return LoopAttr(obj, name);
      case VType::kCallable: {
        const CallableObj& c = AsCallable(obj);
        if (c.kind == CallableObj::Kind::kMacro) {
          const MacroDef& m = *c.macro;
          if (name == "name") return Value::Str(m.name);
          if (name == "arguments") {
            std::vector<Value> names;
            for (const std::string& p : m.params) names.push_back(Value::Str(p));
            return NewList(std::move(names), SeqKind::kTuple);
          }
          if (name == "catch_kwargs") return Value::Bool(m.catch_kwargs);
          if (name == "catch_varargs") return Value::Bool(m.catch_varargs);
          if (name == "caller") return Value::Bool(m.uses_caller);
        }
        return MissingAttr(obj, name);
      }
      case VType::kBool:
      case VType::kInt:
      case VType::kFloat:
        if (name == "real") return obj.type == VType::kFloat ? obj : Value::Int(obj.as_int());
        if (name == "imag") return obj.type == VType::kFloat ? Value::Float(0) : Value::Int(0);
        if (obj.type != VType::kFloat && name == "numerator") return Value::Int(obj.as_int());
        if (obj.type != VType::kFloat && name == "denominator") return Value::Int(1);
        if (Contains(kNumberMethods, name)) return MakeMethod(obj, name);
        return MissingAttr(obj, name);
      default:
        return MissingAttr(obj, name);
    }
  }

  Result<Value> LoopAttr(const Value& obj, const std::string& name) {
    LoopObj& loop = AsLoop(obj);
    const auto length = static_cast<int64_t>(loop.items->size());
    const auto index0 = static_cast<int64_t>(loop.index0);
    if (name == "index") return Value::Int(index0 + 1);
    if (name == "index0") return Value::Int(index0);
    if (name == "revindex") return Value::Int(length - index0);
    if (name == "revindex0") return Value::Int(length - index0 - 1);
    if (name == "first") return Value::Bool(index0 == 0);
    if (name == "last") return Value::Bool(index0 == length - 1);
    if (name == "length") return Value::Int(length);
    if (name == "depth") return Value::Int(1);
    if (name == "depth0") return Value::Int(0);
    if (name == "previtem") {
      if (index0 == 0) return Value::Undefined("there is no previous item");
      return (*loop.items)[loop.index0 - 1];
    }
    if (name == "nextitem") {
      if (index0 + 1 >= length) return Value::Undefined("there is no next item");
      return (*loop.items)[loop.index0 + 1];
    }
    if (name == "cycle" || name == "changed") {
      auto fn = std::make_shared<CallableObj>();
      fn->kind = name == "cycle" ? CallableObj::Kind::kLoopCycle : CallableObj::Kind::kLoopChanged;
      fn->name = "loop." + name;
      fn->self = obj;
      return MakeCallable(std::move(fn));
    }
    return MissingAttr(obj, name);
  }

  static std::optional<size_t> NormalizeIndex(int64_t index, size_t size) {
    const auto n = static_cast<int64_t>(size);
    if (index < 0) index += n;
    if (index < 0 || index >= n) return std::nullopt;
    return static_cast<size_t>(index);
  }

  Value MissingItem(const Value& obj, const Value& key) const {
    std::string key_text;
    if (!AppendRepr(key_text, key).ok()) key_text = "?";
    return Value::Undefined(ObjectTypeRepr(obj) + " has no element " + key_text);
  }

  Result<Value> GetItem(const Value& obj, const Value& key) {
    if (obj.is_undefined()) return Err(UndefinedError(obj));
    switch (obj.type) {
      case VType::kString:
        if (key.is_integral()) {
          const std::string& s = *obj.s;
          if (IsAscii(s)) {
            auto idx = NormalizeIndex(key.as_int(), s.size());
            if (!idx) return MissingItem(obj, key);
            return Value::Str(s.substr(*idx, 1), obj.markup);
          }
          std::u32string u = ToU32(s);
          auto idx = NormalizeIndex(key.as_int(), u.size());
          if (!idx) return MissingItem(obj, key);
          return Value::Str(FromU32(u.substr(*idx, 1)), obj.markup);
        }
        break;
      case VType::kList: {
        const ListObj& l = AsList(obj);
        if (key.is_integral() &&
            (l.kind == SeqKind::kList || l.kind == SeqKind::kTuple || l.kind == SeqKind::kRange)) {
          auto idx = NormalizeIndex(key.as_int(), l.items.size());
          if (!idx) return MissingItem(obj, key);
          return l.items[*idx];
        }
        break;
      }
      case VType::kDict: {
        auto hkey = HashKey(key);
        if (hkey) {
          if (const DictEntry* e = AsDict(obj).Find(*hkey)) return e->value;
        }
        break;
      }
      default:
        break;
    }
    if (key.is_string()) return GetAttr(obj, *key.s);
    return MissingItem(obj, key);
  }

  Result<Value> GetSlice(const Value& obj, const Value& start, const Value& stop,
                         const Value& step) {
    if (obj.is_undefined()) return Err(UndefinedError(obj));
    auto bound = [](const Value& v) -> std::optional<std::optional<int64_t>> {
      if (v.type == VType::kNone) return std::optional<int64_t>();
      if (v.is_integral()) return std::optional<int64_t>(v.as_int());
      return std::nullopt;  // TypeError: Jinja2 turns it into undefined
    };
    // Jinja2 slices with Python's own subscription (not environment.getitem),
    // so every failure here is an error rather than an undefined value.
    auto b_start = bound(start), b_stop = bound(stop), b_step = bound(step);
    if (!b_start || !b_stop || !b_step) {
      return Err(Error("slice indices must be integers or None or have an __index__ method"));
    }
    int64_t step_value = b_step->value_or(1);
    if (step_value == 0) return Err(Error("slice step cannot be zero"));
    if (obj.is_string()) {
      const std::string& s = *obj.s;
      std::string out;
      if (IsAscii(s)) {
        for (size_t idx :
             SliceIndices(static_cast<int64_t>(s.size()), *b_start, *b_stop, step_value)) {
          out.push_back(s[idx]);
        }
      } else {
        std::u32string u = ToU32(s), picked;
        for (size_t idx :
             SliceIndices(static_cast<int64_t>(u.size()), *b_start, *b_stop, step_value)) {
          picked.push_back(u[idx]);
        }
        out = FromU32(picked);
      }
      return NewStr(std::move(out), obj.markup);
    }
    if (obj.type == VType::kList) {
      const ListObj& l = AsList(obj);
      if (l.kind != SeqKind::kList && l.kind != SeqKind::kTuple && l.kind != SeqKind::kRange) {
        return Err(Error("'" + std::string(TypeName(obj)) + "' object is not subscriptable"));
      }
      std::vector<size_t> indices =
          SliceIndices(static_cast<int64_t>(l.items.size()), *b_start, *b_stop, step_value);
      std::vector<Value> items;
      items.reserve(indices.size());
      for (size_t idx : indices) items.push_back(l.items[idx]);
      XNAI_ASSIGN_OR_RETURN(Value v, NewList(std::move(items), l.kind));
      if (l.kind == SeqKind::kRange) {
        // A slice of a range is the range Python computes from the adjusted
        // bounds (it matters for printing only).
        auto* r = static_cast<ListObj*>(v.o.get());
        const auto [begin, end] =
            SliceBounds(static_cast<int64_t>(l.items.size()), *b_start, *b_stop, step_value);
        r->range_step = l.range_step * step_value;
        r->range_start = l.range_start + begin * l.range_step;
        r->range_stop = l.range_start + end * l.range_step;
      }
      return v;
    }
    if (obj.type == VType::kDict) return Err(Error("unhashable type: 'slice'"));
    return Err(Error("'" + std::string(TypeName(obj)) + "' object is not subscriptable"));
  }

  // ---- assignment ------------------------------------------------------------

  Status Assign(const Target& target, const Value& value, Scope& scope,
                const std::shared_ptr<Scope>& lookup_scope) {
    switch (target.kind) {
      case Target::Kind::kName:
        scope.vars[target.name] = value;
        return Status::Ok();
      case Target::Kind::kTuple: {
        XNAI_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(value));
        if (items.size() > target.items.size()) {
          return Error("too many values to unpack (expected " +
                       std::to_string(target.items.size()) + ")");
        }
        if (items.size() < target.items.size()) {
          return Error("not enough values to unpack (expected " +
                       std::to_string(target.items.size()) + ", got " +
                       std::to_string(items.size()) + ")");
        }
        for (size_t n = 0; n < items.size(); ++n) {
          XNAI_RETURN_IF_ERROR(Assign(target.items[n], items[n], scope, lookup_scope));
        }
        return Status::Ok();
      }
      case Target::Kind::kNamespaceAttr: {
        Value ns = Lookup(lookup_scope, target.name);
        if (ns.type != VType::kNamespace) {
          return Error("cannot assign attribute on non-namespace object");
        }
        if (HasNamespace(value)) {
          return Unsupported("storing a namespace inside a namespace");
        }
        if (DepthOf(value) + 1 > kMaxValueDepth) {
          return Error("value nested too deeply (limit " + std::to_string(kMaxValueDepth) + ")");
        }
        NamespaceObj& obj = AsNamespace(ns);
        obj.attrs.Set(StrKey(target.attr), Value::Str(target.attr), value);
        obj.depth = std::max(obj.depth, DepthOf(value) + 1);
        return Status::Ok();
      }
    }
    return Status::Ok();
  }

  // ---- statements ------------------------------------------------------------

  Result<Flow> ExecBody(const Body& body, const std::shared_ptr<Scope>& scope, std::string& out) {
    for (const StmtPtr& stmt : body) {
      XNAI_ASSIGN_OR_RETURN(Flow flow, Exec(*stmt, scope, out));
      if (flow != Flow::kNormal) return flow;
    }
    return Flow::kNormal;
  }

  static std::shared_ptr<Scope> Child(const std::shared_ptr<Scope>& parent) {
    auto scope = std::make_shared<Scope>();
    scope->parent = parent;
    return scope;
  }

  Status Output(std::string& out, const Value& v) {
    if (v.is_string()) return Append(out, *v.s);
    XNAI_ASSIGN_OR_RETURN(std::string text, ToStr(v));
    return Append(out, text);
  }

  Result<Flow> Exec(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string& out) {
    DepthGuard guard(*this);
    line_ = s.line;
    XNAI_RETURN_IF_ERROR(CheckDepth());
    XNAI_RETURN_IF_ERROR(Charge(kStepCost));
    switch (s.kind) {
      case StmtKind::kData:
        XNAI_RETURN_IF_ERROR(Append(out, s.text));
        return Flow::kNormal;
      case StmtKind::kPrint:
        for (const ExprPtr& e : s.exprs) {
          XNAI_ASSIGN_OR_RETURN(Value v, Eval(*e, scope));
          XNAI_RETURN_IF_ERROR(Output(out, v));
        }
        return Flow::kNormal;
      case StmtKind::kIf:
        for (size_t n = 0; n < s.exprs.size(); ++n) {
          XNAI_ASSIGN_OR_RETURN(Value cond, Eval(*s.exprs[n], scope));
          if (Truthy(cond)) return ExecBody(s.bodies[n], scope, out);
        }
        if (s.bodies.size() > s.exprs.size()) return ExecBody(s.bodies.back(), scope, out);
        return Flow::kNormal;
      case StmtKind::kFor:
        return ExecFor(s, scope, out);
      case StmtKind::kSet: {
        XNAI_ASSIGN_OR_RETURN(Value v, Eval(*s.exprs[0], scope));
        XNAI_RETURN_IF_ERROR(Assign(s.target, v, *scope, scope));
        return Flow::kNormal;
      }
      case StmtKind::kSetBlock: {
        std::string buffer;
        XNAI_ASSIGN_OR_RETURN(Flow flow, ExecBody(s.bodies[0], Child(scope), buffer));
        if (flow != Flow::kNormal) return flow;
        XNAI_ASSIGN_OR_RETURN(Value v, NewStr(std::move(buffer)));
        if (s.filter) {
          XNAI_ASSIGN_OR_RETURN(v, ApplyFilterChain(*s.filter, std::move(v), scope));
        }
        XNAI_RETURN_IF_ERROR(Assign(s.target, v, *scope, scope));
        return Flow::kNormal;
      }
      case StmtKind::kMacro: {
        auto fn = std::make_shared<CallableObj>();
        fn->kind = CallableObj::Kind::kMacro;
        fn->name = s.macro->name;
        fn->macro = s.macro.get();
        fn->closure = scope;
        scope->vars[s.macro->name] = MakeCallable(std::move(fn));
        return Flow::kNormal;
      }
      case StmtKind::kCallBlock: {
        const Expr& call = *s.exprs[0];
        XNAI_ASSIGN_OR_RETURN(Value callee, Eval(*call.a, scope));
        Args args;
        Kwargs kwargs;
        XNAI_RETURN_IF_ERROR(EvalArgs(call, scope, args, kwargs));
        auto caller = std::make_shared<CallableObj>();
        caller->kind = CallableObj::Kind::kMacro;
        caller->name = "caller";
        caller->macro = s.macro.get();
        caller->closure = scope;
        kwargs.emplace_back("caller", MakeCallable(std::move(caller)));
        line_ = s.line;
        XNAI_ASSIGN_OR_RETURN(Value result, CallValue(callee, std::move(args), std::move(kwargs)));
        XNAI_RETURN_IF_ERROR(Output(out, result));
        return Flow::kNormal;
      }
      case StmtKind::kFilterBlock: {
        std::string buffer;
        XNAI_ASSIGN_OR_RETURN(Flow flow, ExecBody(s.bodies[0], Child(scope), buffer));
        if (flow != Flow::kNormal) return flow;
        XNAI_ASSIGN_OR_RETURN(Value v, NewStr(std::move(buffer)));
        XNAI_ASSIGN_OR_RETURN(v, ApplyFilterChain(*s.filter, std::move(v), scope));
        XNAI_RETURN_IF_ERROR(Output(out, v));
        return Flow::kNormal;
      }
      case StmtKind::kWith: {
        std::vector<Value> values;
        for (const ExprPtr& e : s.exprs) {
          XNAI_ASSIGN_OR_RETURN(Value v, Eval(*e, scope));
          values.push_back(std::move(v));
        }
        auto inner = Child(scope);
        for (size_t n = 0; n < values.size(); ++n) {
          XNAI_RETURN_IF_ERROR(Assign(s.targets[n], values[n], *inner, inner));
        }
        return ExecBody(s.bodies[0], inner, out);
      }
      case StmtKind::kBreak:
        return Flow::kBreak;
      case StmtKind::kContinue:
        return Flow::kContinue;
      case StmtKind::kScopeBlock: {
        XNAI_ASSIGN_OR_RETURN(Flow flow, ExecBody(s.bodies[0], Child(scope), out));
        (void)flow;
        return Flow::kNormal;
      }
    }
    return Flow::kNormal;
  }

  Result<Flow> ExecFor(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string& out) {
    XNAI_ASSIGN_OR_RETURN(Value iterable, Eval(*s.exprs[0], scope));
    XNAI_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(iterable));
    if (s.exprs[1]) {
      std::vector<Value> kept;
      for (Value& item : items) {
        XNAI_RETURN_IF_ERROR(CountIteration());
        auto probe = Child(scope);
        XNAI_RETURN_IF_ERROR(Assign(s.target, item, *probe, probe));
        XNAI_ASSIGN_OR_RETURN(Value keep, Eval(*s.exprs[1], probe));
        if (Truthy(keep)) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      if (s.bodies[1].empty()) return Flow::kNormal;
      return ExecBody(s.bodies[1], Child(scope), out);
    }
    auto loop = std::make_shared<LoopObj>();
    for (const Value& item : items) Account(*loop, item);
    loop->items = std::make_shared<const std::vector<Value>>(std::move(items));
    Value loop_value;
    loop_value.type = VType::kLoop;
    loop_value.o = loop;
    const std::vector<Value>& seq = *loop->items;
    for (size_t n = 0; n < seq.size(); ++n) {
      XNAI_RETURN_IF_ERROR(CountIteration());
      loop->index0 = n;
      auto iteration = Child(scope);
      iteration->vars["loop"] = loop_value;
      XNAI_RETURN_IF_ERROR(Assign(s.target, seq[n], *iteration, iteration));
      XNAI_ASSIGN_OR_RETURN(Flow flow, ExecBody(s.bodies[0], iteration, out));
      if (flow == Flow::kBreak) break;
    }
    return Flow::kNormal;
  }

  // ---- expressions -------------------------------------------------------

  Status EvalArgs(const Expr& e, const std::shared_ptr<Scope>& scope, Args& args, Kwargs& kwargs) {
    for (const ExprPtr& arg : e.items) {
      XNAI_ASSIGN_OR_RETURN(Value v, Eval(*arg, scope));
      args.push_back(std::move(v));
    }
    for (const Kwarg& kw : e.kwargs) {
      XNAI_ASSIGN_OR_RETURN(Value v, Eval(*kw.value, scope));
      kwargs.emplace_back(kw.name, std::move(v));
    }
    return Status::Ok();
  }

  Result<Value> ApplyFilterChain(const Expr& filter, Value subject,
                                 const std::shared_ptr<Scope>& scope) {
    if (filter.a) {
      XNAI_ASSIGN_OR_RETURN(subject, ApplyFilterChain(*filter.a, std::move(subject), scope));
    }
    Args args;
    Kwargs kwargs;
    XNAI_RETURN_IF_ERROR(EvalArgs(filter, scope, args, kwargs));
    line_ = filter.line;
    return CallFilter(filter.name, subject, std::move(args), std::move(kwargs));
  }

  Result<Value> Eval(const Expr& e, const std::shared_ptr<Scope>& scope) {
    DepthGuard guard(*this);
    line_ = e.line;
    XNAI_RETURN_IF_ERROR(CheckDepth());
    XNAI_RETURN_IF_ERROR(Charge(kStepCost));
    switch (e.kind) {
      case ExprKind::kConst:
        return e.value;
      case ExprKind::kName:
        return Lookup(scope, e.name);
      case ExprKind::kGetAttr: {
        XNAI_ASSIGN_OR_RETURN(Value obj, Eval(*e.a, scope));
        line_ = e.line;
        return GetAttr(obj, e.name);
      }
      case ExprKind::kGetItem: {
        XNAI_ASSIGN_OR_RETURN(Value obj, Eval(*e.a, scope));
        if (e.b->kind == ExprKind::kSlice) {
          Value parts[3] = {Value::None(), Value::None(), Value::None()};
          for (size_t n = 0; n < 3; ++n) {
            if (e.b->items[n]) {
              XNAI_ASSIGN_OR_RETURN(parts[n], Eval(*e.b->items[n], scope));
            }
          }
          line_ = e.line;
          return GetSlice(obj, parts[0], parts[1], parts[2]);
        }
        XNAI_ASSIGN_OR_RETURN(Value key, Eval(*e.b, scope));
        line_ = e.line;
        return GetItem(obj, key);
      }
      case ExprKind::kSlice:
        return Err(Unsupported("a slice inside a tuple subscript"));
      case ExprKind::kCall: {
        XNAI_ASSIGN_OR_RETURN(Value callee, Eval(*e.a, scope));
        Args args;
        Kwargs kwargs;
        XNAI_RETURN_IF_ERROR(EvalArgs(e, scope, args, kwargs));
        line_ = e.line;
        return CallValue(callee, std::move(args), std::move(kwargs));
      }
      case ExprKind::kFilter: {
        XNAI_ASSIGN_OR_RETURN(Value subject, Eval(*e.a, scope));
        Args args;
        Kwargs kwargs;
        XNAI_RETURN_IF_ERROR(EvalArgs(e, scope, args, kwargs));
        line_ = e.line;
        return CallFilter(e.name, subject, std::move(args), std::move(kwargs));
      }
      case ExprKind::kTest: {
        XNAI_ASSIGN_OR_RETURN(Value subject, Eval(*e.a, scope));
        Args args;
        Kwargs kwargs;
        XNAI_RETURN_IF_ERROR(EvalArgs(e, scope, args, kwargs));
        line_ = e.line;
        XNAI_ASSIGN_OR_RETURN(bool result, CallTest(e.name, subject, args, kwargs));
        return Value::Bool(result);
      }
      case ExprKind::kNeg:
      case ExprKind::kPos: {
        XNAI_ASSIGN_OR_RETURN(Value v, Eval(*e.a, scope));
        line_ = e.line;
        return Unary(e.kind == ExprKind::kNeg, v);
      }
      case ExprKind::kNot: {
        XNAI_ASSIGN_OR_RETURN(Value v, Eval(*e.a, scope));
        return Value::Bool(!Truthy(v));
      }
      case ExprKind::kBinary: {
        XNAI_ASSIGN_OR_RETURN(Value a, Eval(*e.a, scope));
        XNAI_ASSIGN_OR_RETURN(Value b, Eval(*e.b, scope));
        line_ = e.line;
        return Binary(e.op, a, b);
      }
      case ExprKind::kAnd: {
        XNAI_ASSIGN_OR_RETURN(Value a, Eval(*e.a, scope));
        if (!Truthy(a)) return a;
        return Eval(*e.b, scope);
      }
      case ExprKind::kOr: {
        XNAI_ASSIGN_OR_RETURN(Value a, Eval(*e.a, scope));
        if (Truthy(a)) return a;
        return Eval(*e.b, scope);
      }
      case ExprKind::kCompare: {
        XNAI_ASSIGN_OR_RETURN(Value left, Eval(*e.items[0], scope));
        for (size_t n = 0; n < e.cmp_ops.size(); ++n) {
          XNAI_ASSIGN_OR_RETURN(Value right, Eval(*e.items[n + 1], scope));
          line_ = e.line;
          XNAI_ASSIGN_OR_RETURN(bool ok, CompareOp(e.cmp_ops[n], left, right));
          if (!ok) return Value::Bool(false);
          left = std::move(right);
        }
        return Value::Bool(true);
      }
      case ExprKind::kConcat: {
        std::string text;
        for (const ExprPtr& item : e.items) {
          XNAI_ASSIGN_OR_RETURN(Value v, Eval(*item, scope));
          XNAI_RETURN_IF_ERROR(AppendStr(text, v));
          XNAI_RETURN_IF_ERROR(CheckSize(text.size()));
        }
        return NewStr(std::move(text));
      }
      case ExprKind::kCond: {
        XNAI_ASSIGN_OR_RETURN(Value cond, Eval(*e.b, scope));
        if (Truthy(cond)) return Eval(*e.a, scope);
        if (e.c) return Eval(*e.c, scope);
        return Value::Undefined("the inline if-expression on line " + std::to_string(e.line) +
                                " evaluated to false and no else section was defined.");
      }
      case ExprKind::kList:
      case ExprKind::kTuple: {
        std::vector<Value> items;
        for (const ExprPtr& item : e.items) {
          XNAI_ASSIGN_OR_RETURN(Value v, Eval(*item, scope));
          items.push_back(std::move(v));
        }
        return NewList(std::move(items),
                       e.kind == ExprKind::kList ? SeqKind::kList : SeqKind::kTuple);
      }
      case ExprKind::kDict: {
        auto dict = std::make_shared<DictObj>();
        for (size_t n = 0; n + 1 < e.items.size(); n += 2) {
          XNAI_ASSIGN_OR_RETURN(Value key, Eval(*e.items[n], scope));
          XNAI_ASSIGN_OR_RETURN(Value value, Eval(*e.items[n + 1], scope));
          line_ = e.line;
          XNAI_ASSIGN_OR_RETURN(std::string hkey, HashKey(key));
          dict->Set(std::move(hkey), std::move(key), std::move(value));
        }
        return NewDict(std::move(dict));
      }
    }
    return Value::Undefined();
  }

  Result<bool> CompareOp(CmpOp op, const Value& a, const Value& b) {
    switch (op) {
      case CmpOp::kEq:
        return Equals(a, b);
      case CmpOp::kNe:
        return !Equals(a, b);
      case CmpOp::kLt: {
        XNAI_ASSIGN_OR_RETURN(int c, Compare(a, b, "<"));
        return c < 0;
      }
      case CmpOp::kLe: {
        XNAI_ASSIGN_OR_RETURN(int c, Compare(a, b, "<="));
        return c <= 0;
      }
      case CmpOp::kGt: {
        XNAI_ASSIGN_OR_RETURN(int c, Compare(a, b, ">"));
        return c > 0;
      }
      case CmpOp::kGe: {
        XNAI_ASSIGN_OR_RETURN(int c, Compare(a, b, ">="));
        return c >= 0;
      }
      case CmpOp::kIn:
        return ContainsValue(b, a);
      case CmpOp::kNotIn: {
        XNAI_ASSIGN_OR_RETURN(bool in, ContainsValue(b, a));
        return !in;
      }
    }
    return false;
  }

  // ---- arithmetic --------------------------------------------------------

  Status Overflow() const { return Error("integer overflow (xnai supports 64-bit integers)"); }

  Result<Value> Unary(bool negate, const Value& v) {
    if (v.is_undefined()) return Err(UndefinedError(v));
    if (v.type == VType::kFloat) return Value::Float(negate ? -v.f : v.f);
    if (v.is_integral()) {
      int64_t x = v.as_int();
      if (!negate) return Value::Int(x);
      if (x == std::numeric_limits<int64_t>::min()) return Err(Overflow());
      return Value::Int(-x);
    }
    return Err(Error(std::string("bad operand type for unary ") + (negate ? "-" : "+") + ": '" +
                     TypeName(v) + "'"));
  }

  Status BinaryTypeError(BinOp op, const Value& a, const Value& b) const {
    static const char* kSymbols[] = {"+", "-", "*", "/", "//", "%", "** or pow()"};
    if (op == BinOp::kAdd && (a.is_string() || a.type == VType::kList) && a.type == b.type) {
      return Error(std::string("can only concatenate ") + TypeName(a) + " (not \"" + TypeName(b) +
                   "\") to " + TypeName(a));
    }
    if (op == BinOp::kAdd && a.is_string()) {
      return Error(std::string("can only concatenate str (not \"") + TypeName(b) + "\") to str");
    }
    if (op == BinOp::kAdd && a.type == VType::kList && AsList(a).kind == SeqKind::kList) {
      return Error(std::string("can only concatenate list (not \"") + TypeName(b) + "\") to list");
    }
    return Error(std::string("unsupported operand type(s) for ") + kSymbols[static_cast<int>(op)] +
                 ": '" + TypeName(a) + "' and '" + TypeName(b) + "'");
  }

  Result<Value> Repeat(const Value& seq, int64_t times) {
    if (times < 0) times = 0;
    if (seq.is_string()) {
      const uint64_t total = static_cast<uint64_t>(seq.s->size()) * static_cast<uint64_t>(times);
      if (times > 0 && total / static_cast<uint64_t>(times) != seq.s->size()) {
        return Err(CheckSize(std::numeric_limits<size_t>::max()));
      }
      XNAI_RETURN_IF_ERROR(CheckSize(total));
      std::string out;
      out.reserve(total);
      for (int64_t n = 0; n < times; ++n) out += *seq.s;
      return NewStr(std::move(out), seq.markup);
    }
    const ListObj& l = AsList(seq);
    const uint64_t total = static_cast<uint64_t>(l.items.size()) * static_cast<uint64_t>(times);
    if (times > 0 && total / static_cast<uint64_t>(times) != l.items.size()) {
      return Err(ChargeItems(std::numeric_limits<size_t>::max()));
    }
    XNAI_RETURN_IF_ERROR(ChargeItems(total));
    std::vector<Value> items;
    items.reserve(total);
    for (int64_t n = 0; n < times; ++n) items.insert(items.end(), l.items.begin(), l.items.end());
    return PrepaidList(std::move(items), l.kind);
  }

  Result<Value> Binary(BinOp op, const Value& a, const Value& b) {
    if (a.is_undefined()) return Err(UndefinedError(a));
    if (b.is_undefined()) return Err(UndefinedError(b));
    if (a.is_number() && b.is_number()) return Arithmetic(op, a, b);
    switch (op) {
      case BinOp::kAdd:
        if (a.is_string() && b.is_string()) {
          if (a.markup || b.markup) {
            std::string left = a.markup ? *a.s : HtmlEscape(*a.s);
            std::string right = b.markup ? *b.s : HtmlEscape(*b.s);
            return NewStr(left + right, true);
          }
          XNAI_RETURN_IF_ERROR(CheckSize(a.s->size() + b.s->size()));
          return NewStr(*a.s + *b.s);
        }
        if (a.type == VType::kList && b.type == VType::kList && AsList(a).kind == AsList(b).kind &&
            (AsList(a).kind == SeqKind::kList || AsList(a).kind == SeqKind::kTuple)) {
          XNAI_RETURN_IF_ERROR(ChargeItems(AsList(a).items.size() + AsList(b).items.size()));
          std::vector<Value> items = AsList(a).items;
          items.insert(items.end(), AsList(b).items.begin(), AsList(b).items.end());
          return PrepaidList(std::move(items), AsList(a).kind);
        }
        break;
      case BinOp::kMul: {
        auto repeatable = [](const Value& v) {
          return v.is_string() || (v.type == VType::kList && (AsList(v).kind == SeqKind::kList ||
                                                              AsList(v).kind == SeqKind::kTuple));
        };
        if (repeatable(a) && b.is_integral()) return Repeat(a, b.as_int());
        if (a.is_integral() && repeatable(b)) return Repeat(b, a.as_int());
        break;
      }
      case BinOp::kMod:
        if (a.is_string()) return PercentFormat(a, b);
        break;
      default:
        break;
    }
    return Err(BinaryTypeError(op, a, b));
  }

  Result<Value> Arithmetic(BinOp op, const Value& a, const Value& b) {
    const bool use_float = a.type == VType::kFloat || b.type == VType::kFloat;
    if (!use_float) {
      const int64_t x = a.as_int(), y = b.as_int();
      int64_t r = 0;
      switch (op) {
        case BinOp::kAdd:
          if (__builtin_add_overflow(x, y, &r)) return Err(Overflow());
          return Value::Int(r);
        case BinOp::kSub:
          if (__builtin_sub_overflow(x, y, &r)) return Err(Overflow());
          return Value::Int(r);
        case BinOp::kMul:
          if (__builtin_mul_overflow(x, y, &r)) return Err(Overflow());
          return Value::Int(r);
        case BinOp::kDiv:
          if (y == 0) return Err(Error("division by zero"));
          return Value::Float(static_cast<double>(x) / static_cast<double>(y));
        case BinOp::kFloorDiv:
        case BinOp::kMod: {
          if (y == 0) return Err(Error("integer division or modulo by zero"));
          if (x == std::numeric_limits<int64_t>::min() && y == -1) {
            if (op == BinOp::kMod) return Value::Int(0);
            return Err(Overflow());
          }
          int64_t q = x / y, m = x % y;
          if (m != 0 && ((m < 0) != (y < 0))) {
            q -= 1;
            m += y;
          }
          return Value::Int(op == BinOp::kFloorDiv ? q : m);
        }
        case BinOp::kPow: {
          if (y < 0) {
            if (x == 0) return Err(Error("0.0 cannot be raised to a negative power"));
            return Value::Float(std::pow(static_cast<double>(x), static_cast<double>(y)));
          }
          int64_t result = 1, base = x, exp = y;
          while (exp > 0) {
            if (exp & 1) {
              if (__builtin_mul_overflow(result, base, &result)) return Err(Overflow());
            }
            exp >>= 1;
            if (exp > 0 && __builtin_mul_overflow(base, base, &base)) return Err(Overflow());
          }
          return Value::Int(result);
        }
      }
    }
    const double x = a.as_double(), y = b.as_double();
    switch (op) {
      case BinOp::kAdd:
        return Value::Float(x + y);
      case BinOp::kSub:
        return Value::Float(x - y);
      case BinOp::kMul:
        return Value::Float(x * y);
      case BinOp::kDiv:
        if (y == 0) return Err(Error("float division by zero"));
        return Value::Float(x / y);
      case BinOp::kFloorDiv:
      case BinOp::kMod: {
        if (y == 0) return Err(Error("float modulo or floor division by zero"));
        double mod = std::fmod(x, y);
        if (mod != 0) {
          if ((y < 0) != (mod < 0)) mod += y;
        } else {
          mod = std::copysign(0.0, y);
        }
        if (op == BinOp::kMod) return Value::Float(mod);
        double div = (x - mod) / y;
        double floordiv;
        if (div != 0) {
          floordiv = std::floor(div);
          if (div - floordiv > 0.5) floordiv += 1.0;
        } else {
          floordiv = std::copysign(0.0, x / y);
        }
        return Value::Float(floordiv);
      }
      case BinOp::kPow: {
        if (x == 0 && y < 0) return Err(Error("0.0 cannot be raised to a negative power"));
        if (x < 0 && y != std::floor(y)) {
          return Err(Unsupported("a complex result of **"));
        }
        double r = std::pow(x, y);
        if (std::isinf(r) && std::isfinite(x) && std::isfinite(y)) {
          return Err(Error("numerical result out of range"));
        }
        return Value::Float(r);
      }
    }
    return Value::Undefined();
  }

  // Python's printf-style `str % args`: the conversions s r d i u f F e E g
  // G x X o and %, flags - + space 0 #, width and precision, %(key)s with a
  // dict; %c, %a and '*' are refused.
  Result<Value> PercentFormat(const Value& format, const Value& args) {
    std::vector<Value> positional;
    const DictObj* mapping = nullptr;
    if (IsSeq(args, SeqKind::kTuple)) {
      positional = AsList(args).items;
    } else {
      positional.push_back(args);
      if (args.type == VType::kDict) mapping = &AsDict(args);
    }
    auto escape_arg = [&](std::string text) { return format.markup ? HtmlEscape(text) : text; };
    const std::string& f = *format.s;
    std::string out;
    size_t next = 0;
    bool used_mapping = false;
    for (size_t i = 0; i < f.size(); ++i) {
      if (f[i] != '%') {
        out.push_back(f[i]);
        continue;
      }
      if (++i >= f.size()) return Err(Error("incomplete format"));
      if (f[i] == '%') {
        out.push_back('%');
        continue;
      }
      std::optional<Value> arg;
      if (f[i] == '(') {
        size_t close = f.find(')', i);
        if (close == std::string::npos) return Err(Error("incomplete format key"));
        if (mapping == nullptr) return Err(Error("format requires a mapping"));
        const DictEntry* e = mapping->Find(StrKey(f.substr(i + 1, close - i - 1)));
        if (e == nullptr) return Err(Error("KeyError: '" + f.substr(i + 1, close - i - 1) + "'"));
        arg = e->value;
        used_mapping = true;
        i = close + 1;
      }
      std::string flags;
      while (i < f.size() && std::strchr("-+ 0#", f[i]) != nullptr) flags.push_back(f[i++]);
      int width = 0;
      while (i < f.size() && std::isdigit(static_cast<unsigned char>(f[i]))) {
        width = std::min(width * 10 + (f[i++] - '0'), 100000);
        if (width > 1000) return Err(Unsupported("a format width above 1000"));
      }
      if (i < f.size() && f[i] == '*') return Err(Unsupported("'*' in a format"));
      int precision = -1;
      if (i < f.size() && f[i] == '.') {
        ++i;
        precision = 0;
        while (i < f.size() && std::isdigit(static_cast<unsigned char>(f[i]))) {
          precision = std::min(precision * 10 + (f[i++] - '0'), 1000);
          if (precision > 100) return Err(Unsupported("a format precision above 100"));
        }
      }
      while (i < f.size() && (f[i] == 'h' || f[i] == 'l' || f[i] == 'L')) ++i;
      if (i >= f.size()) return Err(Error("incomplete format"));
      const char conv = f[i];
      if (!arg) {
        if (next >= positional.size()) return Err(Error("not enough arguments for format string"));
        arg = positional[next++];
      }
      if (arg->is_undefined() && conv != 's') return Err(UndefinedError(*arg));
      std::string piece;
      if (conv == 's' || conv == 'r') {
        std::string text;
        if (conv == 's') {
          XNAI_ASSIGN_OR_RETURN(text, ToStr(*arg));
          if (!arg->markup) text = escape_arg(text);
        } else {
          XNAI_RETURN_IF_ERROR(AppendRepr(text, *arg));
          text = escape_arg(text);
        }
        if (precision >= 0) {
          std::u32string u = ToU32(text);
          if (u.size() > static_cast<size_t>(precision)) text = FromU32(u.substr(0, precision));
        }
        size_t len = CodePointCount(text);
        if (static_cast<size_t>(width) > len) {
          std::string pad(static_cast<size_t>(width) - len, ' ');
          text = flags.find('-') != std::string::npos ? text + pad : pad + text;
        }
        piece = std::move(text);
      } else if (std::strchr("diouxXeEfFgG", conv) != nullptr) {
        if (!arg->is_number()) {
          return Err(Error(std::string("%") + conv + " format: a real number is required, not " +
                           TypeName(*arg)));
        }
        std::string spec = "%" + flags + (width > 0 ? std::to_string(width) : "");
        if (precision >= 0) spec += "." + std::to_string(precision);
        // Large enough for any width/precision allowed above and a double's
        // 309 integer digits.
        char buf[1500];
        if (std::strchr("diuxXo", conv) != nullptr) {
          double d = arg->as_double();
          if (arg->type == VType::kFloat && !std::isfinite(d)) {
            return Err(Error("cannot convert float infinity or NaN to integer"));
          }
          if (arg->type == VType::kFloat && std::fabs(d) >= 9.2e18) return Err(Overflow());
          const int64_t n =
              arg->type == VType::kFloat ? static_cast<int64_t>(std::trunc(d)) : arg->as_int();
          // Python's integer conversions: the sign, then the digits (zero
          // padded to the precision), then the width.
          const bool negative = n < 0;
          const auto magnitude = static_cast<unsigned long long>(
              negative ? -static_cast<__int128>(n) : static_cast<__int128>(n));
          const char* digit_format = conv == 'x'   ? "%llx"
                                     : conv == 'X' ? "%llX"
                                     : conv == 'o' ? "%llo"
                                                   : "%llu";
          std::snprintf(buf, sizeof(buf), digit_format, magnitude);
          std::string digits = buf;
          if (precision > 0 && digits.size() < static_cast<size_t>(precision)) {
            digits.insert(0, static_cast<size_t>(precision) - digits.size(), '0');
          }
          auto flag = [&](char c) { return flags.find(c) != std::string::npos; };
          std::string sign = negative ? "-" : flag('+') ? "+" : flag(' ') ? " " : "";
          if (flag('#') && (conv == 'x' || conv == 'X' || conv == 'o')) {
            sign += conv == 'x' ? "0x" : conv == 'X' ? "0X" : "0o";
          }
          const size_t len = sign.size() + digits.size();
          const auto target = static_cast<size_t>(width);
          if (target > len && flag('-')) {
            piece = sign + digits + std::string(target - len, ' ');
          } else if (target > len && flag('0')) {
            piece = sign + std::string(target - len, '0') + digits;
          } else if (target > len) {
            piece = std::string(target - len, ' ') + sign + digits;
          } else {
            piece = sign + digits;
          }
        } else {
          std::snprintf(buf, sizeof(buf), (spec + conv).c_str(), arg->as_double());
          piece = buf;
        }
      } else {
        return Err(Unsupported(std::string("the %") + conv + " conversion"));
      }
      out += piece;
      XNAI_RETURN_IF_ERROR(CheckSize(out.size()));
    }
    // Python skips this check when the argument supports item access
    // (a dict, a list, a range), tuples aside.
    const bool item_access = args.type == VType::kDict ||
                             (args.type == VType::kList && (AsList(args).kind == SeqKind::kList ||
                                                            AsList(args).kind == SeqKind::kRange));
    if (!used_mapping && !item_access && next < positional.size()) {
      return Err(Error("not all arguments converted during string formatting"));
    }
    return NewStr(std::move(out), format.markup);
  }

  // ---- calls ---------------------------------------------------------------

  // Binds positional and keyword arguments to a Python signature.
  Result<Bound> Bind(std::string_view fn, std::initializer_list<std::string_view> names,
                     size_t required, Args args, Kwargs kwargs) const {
    std::vector<std::string_view> params(names);
    if (args.size() > params.size()) {
      return Err(Error(std::string(fn) + "() takes at most " + std::to_string(params.size()) +
                       " argument(s) (" + std::to_string(args.size()) + " given)"));
    }
    Bound out(params.size());
    for (size_t n = 0; n < args.size(); ++n) out[n] = std::move(args[n]);
    for (auto& [name, value] : kwargs) {
      auto it = std::find(params.begin(), params.end(), name);
      if (it == params.end()) {
        return Err(Error(std::string(fn) + "() got an unexpected keyword argument '" + name + "'"));
      }
      auto& slot = out[static_cast<size_t>(it - params.begin())];
      if (slot) {
        return Err(Error(std::string(fn) + "() got multiple values for argument '" + name + "'"));
      }
      slot = std::move(value);
    }
    for (size_t n = 0; n < required; ++n) {
      if (!out[n]) {
        return Err(Error(std::string(fn) + "() missing required argument: '" +
                         std::string(params[n]) + "'"));
      }
    }
    return out;
  }

  Result<int64_t> IntArg(const std::optional<Value>& v, int64_t fallback, std::string_view what) {
    if (!v) return fallback;
    if (v->is_integral()) return v->as_int();
    if (v->is_undefined()) return Err(UndefinedError(*v));
    return Err(Error(std::string("'") + TypeName(*v) +
                     "' object cannot be interpreted as an integer (" + std::string(what) + ")"));
  }

  Result<std::string> StrArg(const std::optional<Value>& v, std::string_view what) {
    if (v && v->is_string()) return *v->s;
    if (v && v->is_undefined()) return Err(UndefinedError(*v));
    return Err(
        Error(std::string(what) + " must be a string, not " + (v ? TypeName(*v) : "nothing")));
  }

  Result<Value> CallValue(const Value& callee, Args args, Kwargs kwargs) {
    if (callee.is_undefined()) return Err(UndefinedError(callee));
    if (callee.type != VType::kCallable) {
      return Err(Error(std::string("'") + TypeName(callee) + "' object is not callable"));
    }
    const CallableObj& fn = AsCallable(callee);
    switch (fn.kind) {
      case CallableObj::Kind::kBuiltin:
        return CallBuiltin(fn, std::move(args), std::move(kwargs));
      case CallableObj::Kind::kMethod:
        return CallMethod(fn.self, fn.name, std::move(args), std::move(kwargs));
      case CallableObj::Kind::kMacro:
        return CallMacro(fn, std::move(args), std::move(kwargs));
      case CallableObj::Kind::kLoopCycle: {
        if (!kwargs.empty()) return Err(Error("loop.cycle() takes no keyword arguments"));
        if (args.empty()) return Err(Error("no items for cycling given"));
        return args[AsLoop(fn.self).index0 % args.size()];
      }
      case CallableObj::Kind::kLoopChanged: {
        if (!kwargs.empty()) return Err(Error("loop.changed() takes no keyword arguments"));
        XNAI_ASSIGN_OR_RETURN(Value current, NewList(std::move(args)));
        if (HasNamespace(current)) return Err(Unsupported("loop.changed() of a namespace"));
        LoopObj& loop = AsLoop(fn.self);
        bool changed = !loop.last_changed || !Equals(*loop.last_changed, current);
        if (changed) loop.last_changed = current;
        return Value::Bool(changed);
      }
    }
    return Value::Undefined();
  }

  Result<Value> CallMacro(const CallableObj& fn, Args args, Kwargs kwargs) {
    DepthGuard guard(*this);
    XNAI_RETURN_IF_ERROR(CheckDepth());
    XNAI_RETURN_IF_ERROR(Charge(1));
    const MacroDef& m = *fn.macro;
    auto frame = std::make_shared<Scope>();
    frame->parent = fn.closure.lock();
    if (!frame->parent) frame->parent = top_;
    auto take_kwarg = [&](const std::string& name) -> std::optional<Value> {
      for (auto it = kwargs.begin(); it != kwargs.end(); ++it) {
        if (it->first == name) {
          Value v = std::move(it->second);
          kwargs.erase(it);
          return v;
        }
      }
      return std::nullopt;
    };
    for (size_t n = 0; n < m.params.size(); ++n) {
      const std::string& param = m.params[n];
      std::optional<Value> value;
      if (n < args.size()) {
        value = args[n];
      } else {
        value = take_kwarg(param);
      }
      if (!value) {
        if (m.defaults[n]) {
          XNAI_ASSIGN_OR_RETURN(value, Eval(*m.defaults[n], frame));
        } else {
          value = Value::Undefined("parameter '" + param + "' was not provided");
        }
      }
      frame->vars[param] = std::move(*value);
    }
    if (m.uses_caller && std::find(m.params.begin(), m.params.end(), "caller") == m.params.end()) {
      std::optional<Value> caller = take_kwarg("caller");
      frame->vars["caller"] = caller ? *caller : Value::Undefined("No caller defined");
    }
    if (m.catch_kwargs) {
      auto dict = std::make_shared<DictObj>();
      for (auto& [name, value] : kwargs) dict->Set(StrKey(name), Value::Str(name), value);
      XNAI_ASSIGN_OR_RETURN(frame->vars["kwargs"], NewDict(std::move(dict)));
    } else if (!kwargs.empty()) {
      return Err(
          Error("macro '" + m.name + "' takes no keyword argument '" + kwargs[0].first + "'"));
    }
    if (m.catch_varargs) {
      std::vector<Value> extra;
      for (size_t n = m.params.size(); n < args.size(); ++n) extra.push_back(args[n]);
      XNAI_ASSIGN_OR_RETURN(frame->vars["varargs"], NewList(std::move(extra), SeqKind::kTuple));
    } else if (args.size() > m.params.size()) {
      return Err(Error("macro '" + m.name + "' takes not more than " +
                       std::to_string(m.params.size()) + " argument(s)"));
    }
    std::string buffer;
    XNAI_ASSIGN_OR_RETURN(Flow flow, ExecBody(m.body, frame, buffer));
    (void)flow;
    return NewStr(std::move(buffer));
  }

  // dict(...) / namespace(...): an optional mapping or iterable of pairs,
  // then keyword arguments.
  Result<std::shared_ptr<DictObj>> DictFromArgs(const char* fn, Args args, Kwargs kwargs) {
    if (args.size() > 1) {
      return Err(Error(std::string(fn) + " expected at most 1 argument, got " +
                       std::to_string(args.size())));
    }
    auto dict = std::make_shared<DictObj>();
    if (!args.empty()) {
      const Value& source = args[0];
      if (source.type == VType::kDict) {
        for (const DictEntry& e : AsDict(source).entries) dict->Set(e.hkey, e.key, e.value);
      } else {
        XNAI_ASSIGN_OR_RETURN(std::vector<Value> pairs, Iterate(source));
        for (const Value& pair : pairs) {
          XNAI_ASSIGN_OR_RETURN(std::vector<Value> kv, Iterate(pair));
          if (kv.size() != 2) {
            return Err(Error("dictionary update sequence element has length " +
                             std::to_string(kv.size()) + "; 2 is required"));
          }
          XNAI_ASSIGN_OR_RETURN(std::string hkey, HashKey(kv[0]));
          dict->Set(std::move(hkey), kv[0], kv[1]);
        }
      }
    }
    for (auto& [name, value] : kwargs) dict->Set(StrKey(name), Value::Str(name), value);
    return dict;
  }

  Result<Value> CallBuiltin(const CallableObj& fn, Args args, Kwargs kwargs) {
    switch (fn.builtin) {
      case Builtin::kRange: {
        if (!kwargs.empty()) return Err(Error("range() takes no keyword arguments"));
        if (args.empty() || args.size() > 3) {
          return Err(Error("range expected 1 to 3 arguments, got " + std::to_string(args.size())));
        }
        for (const Value& a : args) {
          if (a.is_undefined()) return Err(UndefinedError(a));
          if (!a.is_integral()) {
            return Err(Error(std::string("'") + TypeName(a) +
                             "' object cannot be interpreted as an integer"));
          }
        }
        int64_t start = 0, stop = 0, step = 1;
        if (args.size() == 1) {
          stop = args[0].as_int();
        } else {
          start = args[0].as_int();
          stop = args[1].as_int();
          if (args.size() == 3) step = args[2].as_int();
        }
        if (step == 0) return Err(Error("range() arg 3 must not be zero"));
        __int128 count = 0;
        if (step > 0 && stop > start) count = ((__int128)stop - start + step - 1) / step;
        if (step < 0 && stop < start) count = ((__int128)start - stop - step - 1) / -(__int128)step;
        if (count > 100000) {
          return Err(
              Error("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000)."));
        }
        std::vector<Value> items;
        for (__int128 n = 0; n < count; ++n) {
          items.push_back(Value::Int(static_cast<int64_t>(start + n * step)));
        }
        XNAI_ASSIGN_OR_RETURN(Value v, NewList(std::move(items), SeqKind::kRange));
        auto* r = static_cast<ListObj*>(v.o.get());
        r->range_start = start;
        r->range_stop = stop;
        r->range_step = step;
        return v;
      }
      case Builtin::kDict: {
        XNAI_ASSIGN_OR_RETURN(auto dict, DictFromArgs("dict", std::move(args), std::move(kwargs)));
        return NewDict(std::move(dict));
      }
      case Builtin::kNamespace: {
        XNAI_ASSIGN_OR_RETURN(auto dict,
                              DictFromArgs("namespace", std::move(args), std::move(kwargs)));
        auto ns = std::make_shared<NamespaceObj>();
        ns->has_namespace = true;
        for (DictEntry& e : dict->entries) {
          if (HasNamespace(e.value) || HasNamespace(e.key)) {
            return Err(Unsupported("storing a namespace inside a namespace"));
          }
          ns->depth = std::max(ns->depth, DepthOf(e.value) + 1);
          ns->attrs.Set(e.hkey, e.key, e.value);
        }
        XNAI_RETURN_IF_ERROR(Charge(static_cast<int64_t>(dict->entries.size()) + 1));
        Value v;
        v.type = VType::kNamespace;
        v.o = std::move(ns);
        XNAI_RETURN_IF_ERROR(CheckNested(v));
        return v;
      }
      case Builtin::kRaiseException: {
        XNAI_ASSIGN_OR_RETURN(
            Bound a, Bind("raise_exception", {"message"}, 1, std::move(args), std::move(kwargs)));
        XNAI_ASSIGN_OR_RETURN(std::string message, ToStr(*a[0]));
        return Err(Status::FailedPrecondition(message));
      }
      case Builtin::kStrftimeNow: {
        XNAI_ASSIGN_OR_RETURN(
            Bound a, Bind("strftime_now", {"format"}, 1, std::move(args), std::move(kwargs)));
        XNAI_ASSIGN_OR_RETURN(std::string format, StrArg(a[0], "strftime_now() format"));
        XNAI_ASSIGN_OR_RETURN(std::string text, StrftimeNow(format));
        return NewStr(std::move(text));
      }
      case Builtin::kLipsum:
      case Builtin::kCycler:
      case Builtin::kJoiner:
        return Err(Unsupported("the global function '" + fn.name + "'"));
    }
    return Value::Undefined();
  }

  // datetime.now().strftime(format): local time; %f is microseconds and
  // %z/%Z are empty (a naive datetime), the rest is the C library's.
  Result<std::string> StrftimeNow(const std::string& format) const {
    const auto now = options_.now ? options_.now() : std::chrono::system_clock::now();
    const auto since_epoch = now.time_since_epoch();
    const auto seconds = std::chrono::floor<std::chrono::seconds>(since_epoch);
    const auto micros =
        std::chrono::duration_cast<std::chrono::microseconds>(since_epoch - seconds).count();
    const std::time_t t = static_cast<std::time_t>(seconds.count());
    std::tm local{};
    if (localtime_r(&t, &local) == nullptr) return Err(Error("strftime_now: time out of range"));
    std::string spec;
    for (size_t i = 0; i < format.size(); ++i) {
      if (format[i] == '%' && i + 1 < format.size()) {
        char c = format[i + 1];
        if (c == 'f') {
          char buf[32];
          std::snprintf(buf, sizeof(buf), "%06lld", static_cast<long long>(micros));
          spec += buf;
          ++i;
          continue;
        }
        if (c == 'z' || c == 'Z') {
          ++i;
          continue;
        }
        spec += format.substr(i, 2);
        ++i;
        continue;
      }
      spec.push_back(format[i]);
    }
    if (spec.empty()) return std::string();
    std::vector<char> buf(spec.size() * 8 + 64);
    while (true) {
      size_t n = std::strftime(buf.data(), buf.size(), spec.c_str(), &local);
      if (n > 0) return std::string(buf.data(), n);
      if (buf.size() > limits_.max_output_bytes) return Err(Error("strftime_now: result too long"));
      buf.resize(buf.size() * 4);
    }
  }

  // ---- methods -------------------------------------------------------------

  Result<Value> CallMethod(const Value& self, const std::string& name, Args args, Kwargs kwargs) {
    switch (self.type) {
      case VType::kString:
        return CallStrMethod(self, name, std::move(args), std::move(kwargs));
      case VType::kDict: {
        if (name == "items" || name == "keys" || name == "values") {
          XNAI_RETURN_IF_ERROR(CheckNoArgs(name, args, kwargs));
          std::vector<Value> items;
          for (const DictEntry& e : AsDict(self).entries) {
            if (name == "keys") {
              items.push_back(e.key);
            } else if (name == "values") {
              items.push_back(e.value);
            } else {
              XNAI_ASSIGN_OR_RETURN(Value pair, NewList({e.key, e.value}, SeqKind::kTuple));
              items.push_back(std::move(pair));
            }
          }
          return NewList(std::move(items), name == "items"  ? SeqKind::kItems
                                           : name == "keys" ? SeqKind::kKeys
                                                            : SeqKind::kValues);
        }
        if (name == "get") {
          XNAI_ASSIGN_OR_RETURN(
              Bound a, Bind("get", {"key", "default"}, 1, std::move(args), std::move(kwargs)));
          XNAI_ASSIGN_OR_RETURN(std::string hkey, HashKey(*a[0]));
          if (const DictEntry* e = AsDict(self).Find(hkey)) return e->value;
          return a[1] ? *a[1] : Value::None();
        }
        if (name == "copy") {
          XNAI_RETURN_IF_ERROR(CheckNoArgs(name, args, kwargs));
          auto dict = std::make_shared<DictObj>(AsDict(self));
          return NewDict(std::move(dict));
        }
        break;
      }
      case VType::kList: {
        const ListObj& l = AsList(self);
        if (name == "copy") {
          XNAI_RETURN_IF_ERROR(CheckNoArgs(name, args, kwargs));
          return NewList(l.items, l.kind);
        }
        if (name == "pop" || name == "clear") {
          return Err(Unsupported("list." + name + "() (templates cannot modify values)"));
        }
        if (name == "count") {
          XNAI_ASSIGN_OR_RETURN(Bound a,
                                Bind("count", {"value"}, 1, std::move(args), std::move(kwargs)));
          int64_t n = 0;
          for (const Value& v : l.items) n += Equals(v, *a[0]) ? 1 : 0;
          return Value::Int(n);
        }
        if (name == "index") {
          XNAI_ASSIGN_OR_RETURN(Bound a, Bind("index", {"value", "start", "stop"}, 1,
                                              std::move(args), std::move(kwargs)));
          const auto size = static_cast<int64_t>(l.items.size());
          XNAI_ASSIGN_OR_RETURN(int64_t start, IntArg(a[1], 0, "start"));
          XNAI_ASSIGN_OR_RETURN(int64_t stop, IntArg(a[2], size, "stop"));
          if (start < 0) start = std::max<int64_t>(0, start + size);
          if (stop < 0) stop = std::max<int64_t>(0, stop + size);
          for (int64_t n = start; n < std::min(stop, size); ++n) {
            if (Equals(l.items[static_cast<size_t>(n)], *a[0])) return Value::Int(n);
          }
          return Err(Error("value is not in " + std::string(TypeName(self))));
        }
        break;
      }
      default:
        break;
    }
    return Err(Unsupported(std::string(TypeName(self)) + "." + name + "()"));
  }

  Result<std::optional<std::string>> OptionalStrArg(const std::optional<Value>& v,
                                                    std::string_view what) {
    if (!v || v->type == VType::kNone) return std::optional<std::string>();
    XNAI_ASSIGN_OR_RETURN(std::string s, StrArg(v, what));
    return std::optional<std::string>(std::move(s));
  }

  // Python's str.split/rsplit.
  // Stops after kMaxItems + 1 parts (the caller reports "too many items").
  static std::vector<std::string> SplitText(const std::string& text,
                                            const std::optional<std::string>& sep, int64_t maxsplit,
                                            bool from_right) {
    std::vector<std::string> parts;
    if (maxsplit < 0 || maxsplit > static_cast<int64_t>(kMaxItems)) {
      maxsplit = static_cast<int64_t>(kMaxItems);
    }
    if (sep) {
      if (!from_right) {
        size_t start = 0;
        while (maxsplit != 0) {
          size_t hit = text.find(*sep, start);
          if (hit == std::string::npos) break;
          parts.push_back(text.substr(start, hit - start));
          start = hit + sep->size();
          --maxsplit;
        }
        parts.push_back(text.substr(start));
      } else {
        size_t end = text.size();
        while (maxsplit != 0 && end >= sep->size()) {
          size_t hit = text.rfind(*sep, end - sep->size());
          if (hit == std::string::npos) break;
          parts.push_back(text.substr(hit + sep->size(), end - hit - sep->size()));
          end = hit;
          --maxsplit;
        }
        parts.push_back(text.substr(0, end));
        std::reverse(parts.begin(), parts.end());
      }
      return parts;
    }
    std::u32string u = ToU32(text);
    if (!from_right) {
      size_t i = 0;
      while (true) {
        while (i < u.size() && IsPySpace(u[i])) ++i;
        if (i >= u.size()) break;
        if (maxsplit == 0) {
          parts.push_back(FromU32(u.substr(i)));  // the rest keeps its trailing whitespace
          break;
        }
        size_t j = i;
        while (j < u.size() && !IsPySpace(u[j])) ++j;
        parts.push_back(FromU32(u.substr(i, j - i)));
        i = j;
        --maxsplit;
      }
    } else {
      size_t i = u.size();
      while (true) {
        while (i > 0 && IsPySpace(u[i - 1])) --i;
        if (i == 0) break;
        if (maxsplit == 0) {
          parts.push_back(FromU32(u.substr(0, i)));  // the rest keeps its leading whitespace
          break;
        }
        size_t j = i;
        while (j > 0 && !IsPySpace(u[j - 1])) --j;
        parts.push_back(FromU32(u.substr(j, i - j)));
        i = j;
        --maxsplit;
      }
      std::reverse(parts.begin(), parts.end());
    }
    return parts;
  }

  // Python's str.replace (on code points, so an empty `old` inserts between
  // characters).
  Result<std::string> ReplaceText(const std::string& text, const std::string& old,
                                  const std::string& replacement, int64_t count) {
    std::string out;
    if (old.empty()) {
      std::u32string u = ToU32(text);
      int64_t done = 0;
      for (size_t i = 0; i <= u.size(); ++i) {
        if (count < 0 || done < count) {
          out += replacement;
          ++done;
        }
        if (i < u.size()) AppendUtf8(out, u[i]);
        XNAI_RETURN_IF_ERROR(CheckSize(out.size()));
      }
      return out;
    }
    size_t start = 0;
    int64_t done = 0;
    while (count < 0 || done < count) {
      size_t hit = text.find(old, start);
      if (hit == std::string::npos) break;
      out.append(text, start, hit - start);
      out += replacement;
      XNAI_RETURN_IF_ERROR(CheckSize(out.size()));
      start = hit + old.size();
      ++done;
    }
    out.append(text, start, std::string::npos);
    return out;
  }

  // Code-point bounds [start, end) of a str method's optional start/end.
  Result<std::pair<size_t, size_t>> SubRange(const std::optional<Value>& start,
                                             const std::optional<Value>& end, size_t len) {
    auto resolve = [&](const std::optional<Value>& v, int64_t fallback) -> Result<int64_t> {
      if (!v || v->type == VType::kNone) return fallback;
      XNAI_ASSIGN_OR_RETURN(int64_t x, IntArg(v, fallback, "slice index"));
      const auto n = static_cast<int64_t>(len);
      if (x < 0) x = std::max<int64_t>(0, x + n);
      return std::min(x, n);
    };
    XNAI_ASSIGN_OR_RETURN(int64_t s, resolve(start, 0));
    XNAI_ASSIGN_OR_RETURN(int64_t e, resolve(end, static_cast<int64_t>(len)));
    return std::make_pair(static_cast<size_t>(s), static_cast<size_t>(std::max(s, e)));
  }

  Result<Value> Pad(const Value& self, int64_t width, const std::string& fill, char align) {
    std::u32string fill_u = ToU32(fill);
    if (fill_u.size() != 1) {
      return Err(Error("The fill character must be exactly one character long"));
    }
    const auto len = static_cast<int64_t>(CodePointCount(*self.s));
    if (width <= len) return self;
    XNAI_RETURN_IF_ERROR(CheckSize(static_cast<size_t>(width) * 4));
    int64_t marg = width - len;
    int64_t left = align == '<' ? 0 : align == '>' ? marg : marg / 2 + (marg & width & 1);
    std::string pad_left, pad_right;
    for (int64_t n = 0; n < left; ++n) pad_left += fill;
    for (int64_t n = 0; n < marg - left; ++n) pad_right += fill;
    return NewStr(pad_left + *self.s + pad_right, self.markup);
  }

  Result<Value> CallStrMethod(const Value& self, const std::string& name, Args args,
                              Kwargs kwargs) {
    const std::string& text = *self.s;
    const bool m = self.markup;
    // Markup's wrapped methods escape their string arguments.
    if (m) {
      static constexpr std::string_view kEscaping[] = {
          "capitalize", "title",     "lower",      "upper",     "replace", "ljust",
          "rjust",      "lstrip",    "rstrip",     "center",    "strip",   "swapcase",
          "zfill",      "partition", "rpartition", "expandtabs"};
      if (Contains(kEscaping, name)) {
        for (Value& a : args) {
          if (a.is_string() && !a.markup) a = Value::Str(HtmlEscape(*a.s), true);
        }
        for (auto& kw : kwargs) {
          if (kw.second.is_string() && !kw.second.markup) {
            kw.second = Value::Str(HtmlEscape(*kw.second.s), true);
          }
        }
      }
    }
    auto no_args = [&]() -> Status { return CheckNoArgs(name, args, kwargs); };
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
      XNAI_ASSIGN_OR_RETURN(Bound a, Bind(name, {"chars"}, 0, std::move(args), std::move(kwargs)));
      XNAI_ASSIGN_OR_RETURN(auto chars, OptionalStrArg(a[0], name + "() arg"));
      return NewStr(PyStrip(text, chars ? &*chars : nullptr, name != "rstrip", name != "lstrip"),
                    m);
    }
    if (name == "split" || name == "rsplit") {
      XNAI_ASSIGN_OR_RETURN(Bound a,
                            Bind(name, {"sep", "maxsplit"}, 0, std::move(args), std::move(kwargs)));
      XNAI_ASSIGN_OR_RETURN(auto sep, OptionalStrArg(a[0], name + "() separator"));
      if (sep && sep->empty()) return Err(Error("empty separator"));
      XNAI_ASSIGN_OR_RETURN(int64_t maxsplit, IntArg(a[1], -1, "maxsplit"));
      std::vector<std::string> pieces = SplitText(text, sep, maxsplit, name == "rsplit");
      XNAI_RETURN_IF_ERROR(ChargeItems(pieces.size()));
      std::vector<Value> parts;
      for (std::string& part : pieces) parts.push_back(Value::Str(std::move(part), m));
      return NewList(std::move(parts));
    }
    if (name == "splitlines") {
      XNAI_ASSIGN_OR_RETURN(Bound a,
                            Bind(name, {"keepends"}, 0, std::move(args), std::move(kwargs)));
      std::vector<std::string> pieces = PySplitLines(text, a[0] && Truthy(*a[0]), kMaxItems);
      XNAI_RETURN_IF_ERROR(ChargeItems(pieces.size()));
      std::vector<Value> lines;
      for (std::string& line : pieces) lines.push_back(Value::Str(std::move(line), m));
      return NewList(std::move(lines));
    }
    if (name == "startswith" || name == "endswith") {
      XNAI_ASSIGN_OR_RETURN(
          Bound a, Bind(name, {"prefix", "start", "end"}, 1, std::move(args), std::move(kwargs)));
      std::vector<std::string> candidates;
      if (a[0]->is_string()) {
        candidates.push_back(*a[0]->s);
      } else if (IsSeq(*a[0], SeqKind::kTuple)) {
        for (const Value& v : AsList(*a[0]).items) {
          if (!v.is_string()) return Err(Error(name + "() tuple items must be str"));
          candidates.push_back(*v.s);
        }
      } else {
        return Err(
            Error(name + " first arg must be str or a tuple of str, not " + TypeName(*a[0])));
      }
      std::string sub = text;
      if (a[1] || a[2]) {
        std::u32string u = ToU32(text);
        XNAI_ASSIGN_OR_RETURN(auto range, SubRange(a[1], a[2], u.size()));
        if (range.first > u.size()) return Value::Bool(false);
        sub = FromU32(u.substr(range.first, range.second - range.first));
      }
      for (const std::string& c : candidates) {
        bool hit = name == "startswith" ? sub.compare(0, c.size(), c) == 0
                                        : sub.size() >= c.size() &&
                                              sub.compare(sub.size() - c.size(), c.size(), c) == 0;
        if (hit) return Value::Bool(true);
      }
      return Value::Bool(false);
    }
    if (name == "replace") {
      XNAI_ASSIGN_OR_RETURN(
          Bound a, Bind(name, {"old", "new", "count"}, 2, std::move(args), std::move(kwargs)));
      XNAI_ASSIGN_OR_RETURN(std::string old, StrArg(a[0], "replace() arg 1"));
      XNAI_ASSIGN_OR_RETURN(std::string repl, StrArg(a[1], "replace() arg 2"));
      XNAI_ASSIGN_OR_RETURN(int64_t count, IntArg(a[2], -1, "count"));
      XNAI_ASSIGN_OR_RETURN(std::string out, ReplaceText(text, old, repl, count));
      return NewStr(std::move(out), m);
    }
    if (name == "lower" || name == "upper" || name == "title" || name == "capitalize" ||
        name == "swapcase" || name == "casefold") {
      XNAI_RETURN_IF_ERROR(no_args());
      if (name == "casefold") {
        if (!IsAscii(text)) return Err(Unsupported("str.casefold() of non-ASCII text"));
        return NewStr(PyLower(text));
      }
      std::string out = name == "lower"        ? PyLower(text)
                        : name == "upper"      ? PyUpper(text)
                        : name == "title"      ? PyTitle(text)
                        : name == "capitalize" ? PyCapitalize(text)
                                               : PySwapcase(text);
      return NewStr(std::move(out), m);
    }
    if (name == "find" || name == "rfind" || name == "index" || name == "rindex" ||
        name == "count") {
      XNAI_ASSIGN_OR_RETURN(
          Bound a, Bind(name, {"sub", "start", "end"}, 1, std::move(args), std::move(kwargs)));
      XNAI_ASSIGN_OR_RETURN(std::string sub_text, StrArg(a[0], name + "() arg"));
      std::u32string u = ToU32(text), sub = ToU32(sub_text);
      XNAI_ASSIGN_OR_RETURN(auto range, SubRange(a[1], a[2], u.size()));
      std::u32string_view hay = std::u32string_view(u).substr(
          std::min(range.first, u.size()), range.second - std::min(range.first, range.second));
      if (name == "count") {
        if (range.first > u.size()) return Value::Int(0);
        if (sub.empty()) return Value::Int(static_cast<int64_t>(hay.size()) + 1);
        int64_t n = 0;
        for (size_t at = hay.find(sub); at != std::u32string_view::npos;
             at = hay.find(sub, at + sub.size())) {
          ++n;
        }
        return Value::Int(n);
      }
      size_t at = std::u32string_view::npos;
      if (range.first <= u.size()) {
        at = name[0] == 'r' ? hay.rfind(sub) : hay.find(sub);
      }
      if (at == std::u32string_view::npos) {
        if (name == "index" || name == "rindex") return Err(Error("substring not found"));
        return Value::Int(-1);
      }
      return Value::Int(static_cast<int64_t>(at + range.first));
    }
    if (name == "join") {
      XNAI_ASSIGN_OR_RETURN(Bound a,
                            Bind(name, {"iterable"}, 1, std::move(args), std::move(kwargs)));
      XNAI_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(*a[0]));
      std::string out;
      for (size_t n = 0; n < items.size(); ++n) {
        if (!items[n].is_string()) {
          return Err(Error("sequence item " + std::to_string(n) + ": expected str instance, " +
                           TypeName(items[n]) + " found"));
        }
        if (n > 0) out += text;
        out += m && !items[n].markup ? HtmlEscape(*items[n].s) : *items[n].s;
        XNAI_RETURN_IF_ERROR(CheckSize(out.size()));
      }
      return NewStr(std::move(out), m);
    }
    if (name == "format") return FormatMethod(self, std::move(args), std::move(kwargs));
    if (name == "center" || name == "ljust" || name == "rjust") {
      XNAI_ASSIGN_OR_RETURN(
          Bound a, Bind(name, {"width", "fillchar"}, 1, std::move(args), std::move(kwargs)));
      XNAI_ASSIGN_OR_RETURN(int64_t width, IntArg(a[0], 0, "width"));
      std::string fill = " ";
      if (a[1]) {
        XNAI_ASSIGN_OR_RETURN(fill, StrArg(a[1], name + "() fill character"));
      }
      return Pad(self, width, fill, name == "center" ? '^' : name == "ljust" ? '<' : '>');
    }
    if (name == "zfill") {
      XNAI_ASSIGN_OR_RETURN(Bound a, Bind(name, {"width"}, 1, std::move(args), std::move(kwargs)));
      XNAI_ASSIGN_OR_RETURN(int64_t width, IntArg(a[0], 0, "width"));
      const auto len = static_cast<int64_t>(CodePointCount(text));
      if (width <= len) return self;
      XNAI_RETURN_IF_ERROR(CheckSize(static_cast<size_t>(width)));
      std::string zeros(static_cast<size_t>(width - len), '0');
      if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
        return NewStr(text.substr(0, 1) + zeros + text.substr(1), m);
      }
      return NewStr(zeros + text, m);
    }
    if (name == "expandtabs") {
      XNAI_ASSIGN_OR_RETURN(Bound a,
                            Bind(name, {"tabsize"}, 0, std::move(args), std::move(kwargs)));
      XNAI_ASSIGN_OR_RETURN(int64_t tabsize, IntArg(a[0], 8, "tabsize"));
      std::u32string out;
      int64_t column = 0;
      for (char32_t c : ToU32(text)) {
        if (c == '\t') {
          if (tabsize > 0) {
            const int64_t spaces = tabsize - column % tabsize;
            XNAI_RETURN_IF_ERROR(CheckSize(out.size() + static_cast<size_t>(spaces)));
            out.append(static_cast<size_t>(spaces), U' ');
            column += spaces;
          }
        } else {
          out.push_back(c);
          column = c == '\n' || c == '\r' ? 0 : column + 1;
        }
      }
      return NewStr(FromU32(out), m);
    }
    if (name == "partition" || name == "rpartition") {
      XNAI_ASSIGN_OR_RETURN(Bound a, Bind(name, {"sep"}, 1, std::move(args), std::move(kwargs)));
      XNAI_ASSIGN_OR_RETURN(std::string sep, StrArg(a[0], name + "() separator"));
      if (sep.empty()) return Err(Error("empty separator"));
      size_t at = name == "partition" ? text.find(sep) : text.rfind(sep);
      std::vector<Value> parts;
      if (at == std::string::npos) {
        if (name == "partition") {
          parts = {Value::Str(text, m), Value::Str("", m), Value::Str("", m)};
        } else {
          parts = {Value::Str("", m), Value::Str("", m), Value::Str(text, m)};
        }
      } else {
        parts = {Value::Str(text.substr(0, at), m), Value::Str(sep, m),
                 Value::Str(text.substr(at + sep.size()), m)};
      }
      return NewList(std::move(parts), SeqKind::kTuple);
    }
    if (name == "removeprefix" || name == "removesuffix") {
      XNAI_ASSIGN_OR_RETURN(Bound a, Bind(name, {"affix"}, 1, std::move(args), std::move(kwargs)));
      XNAI_ASSIGN_OR_RETURN(std::string affix, StrArg(a[0], name + "() arg"));
      if (name == "removeprefix" && text.compare(0, affix.size(), affix) == 0) {
        return NewStr(text.substr(affix.size()));
      }
      if (name == "removesuffix" && !affix.empty() && text.size() >= affix.size() &&
          text.compare(text.size() - affix.size(), affix.size(), affix) == 0) {
        return NewStr(text.substr(0, text.size() - affix.size()));
      }
      return Value::Str(text);
    }
    if (name.rfind("is", 0) == 0) {
      XNAI_RETURN_IF_ERROR(no_args());
      std::u32string u = ToU32(text);
      if (name == "isascii") return Value::Bool(IsAscii(text));
      if (name == "islower" || name == "isupper") {
        bool cased = false;
        for (char32_t c : u) {
          if (name == "islower" ? (IsUpperCp(c) || IsTitleCp(c)) : (IsLowerCp(c) || IsTitleCp(c))) {
            return Value::Bool(false);
          }
          cased = cased || IsCased(c);
        }
        return Value::Bool(cased);
      }
      if (u.empty()) return Value::Bool(false);
      bool (*pred)(char32_t) = nullptr;
      if (name == "isspace") pred = IsPySpace;
      if (name == "isalpha") pred = IsAlphaCp;
      if (name == "isalnum") pred = IsAlnumCp;
      if (name == "isdecimal" || name == "isdigit") pred = IsDecimalCp;
      if (name == "isnumeric") pred = IsNumericCp;
      if (pred == nullptr) return Err(Unsupported("str." + name + "()"));
      return Value::Bool(std::all_of(u.begin(), u.end(), pred));
    }
    return Err(Unsupported("str." + name + "()"));
  }

  // str.format with automatic or explicit positional fields and keyword
  // fields, optional !s/!r conversion; format specs are refused.
  Result<Value> FormatMethod(const Value& self, Args args, Kwargs kwargs) {
    const std::string& f = *self.s;
    std::string out;
    size_t auto_index = 0;
    for (size_t i = 0; i < f.size(); ++i) {
      char c = f[i];
      if (c == '}') {
        if (i + 1 < f.size() && f[i + 1] == '}') {
          out.push_back('}');
          ++i;
          continue;
        }
        return Err(Error("Single '}' encountered in format string"));
      }
      if (c != '{') {
        out.push_back(c);
        continue;
      }
      if (i + 1 < f.size() && f[i + 1] == '{') {
        out.push_back('{');
        ++i;
        continue;
      }
      size_t close = f.find('}', i);
      if (close == std::string::npos) return Err(Error("Single '{' encountered in format string"));
      std::string field = f.substr(i + 1, close - i - 1);
      i = close;
      char conversion = 's';
      if (size_t bang = field.find('!'); bang != std::string::npos) {
        if (bang + 2 != field.size() || (field[bang + 1] != 's' && field[bang + 1] != 'r')) {
          return Err(Unsupported("this str.format() conversion"));
        }
        conversion = field[bang + 1];
        field.resize(bang);
      }
      if (field.find_first_of(":.[") != std::string::npos) {
        return Err(Unsupported("format specs and field access in str.format()"));
      }
      Value arg;
      if (field.empty() || std::all_of(field.begin(), field.end(), [](char d) {
            return std::isdigit(static_cast<unsigned char>(d));
          })) {
        size_t index = field.empty() ? auto_index++ : std::stoul(field.substr(0, 9));
        if (index >= args.size()) {
          return Err(Error("Replacement index " + std::to_string(index) +
                           " out of range for positional args tuple"));
        }
        arg = args[index];
      } else {
        auto it = std::find_if(kwargs.begin(), kwargs.end(),
                               [&](const auto& kw) { return kw.first == field; });
        if (it == kwargs.end()) return Err(Error("KeyError: '" + field + "'"));
        arg = it->second;
      }
      std::string text;
      if (conversion == 'r') {
        XNAI_RETURN_IF_ERROR(AppendRepr(text, arg));
      } else {
        XNAI_ASSIGN_OR_RETURN(text, ToStr(arg));
      }
      out += self.markup && !(arg.markup && conversion == 's') ? HtmlEscape(text) : text;
      XNAI_RETURN_IF_ERROR(CheckSize(out.size()));
    }
    return NewStr(std::move(out), self.markup);
  }

  // ---- filters -------------------------------------------------------------

  Status CheckNoArgs(std::string_view fn, const Args& args, const Kwargs& kwargs) const {
    if (!args.empty() || !kwargs.empty()) return Error(std::string(fn) + "() takes no arguments");
    return Status::Ok();
  }

  // Jinja2's attribute getter for filters: "a.b.0" looks up each part as
  // an item (digits as integers), as environment.getitem does.
  Result<Value> GetAttribute(const Value& item, const Value& attribute,
                             const std::optional<Value>& default_value = std::nullopt) {
    if (!attribute.is_string()) {
      if (attribute.type == VType::kNone) return item;
      XNAI_ASSIGN_OR_RETURN(Value v, GetItem(item, attribute));
      if (default_value && v.is_undefined()) return *default_value;
      return v;
    }
    Value current = item;
    for (const std::string& part : SplitText(*attribute.s, std::string("."), -1, false)) {
      Value key = !part.empty() && std::all_of(part.begin(), part.end(),
                                               [](char c) {
                                                 return std::isdigit(static_cast<unsigned char>(c));
                                               })
                      ? Value::Int(std::strtoll(part.c_str(), nullptr, 10))
                      : Value::Str(part);
      XNAI_ASSIGN_OR_RETURN(current, GetItem(current, key));
      if (default_value && current.is_undefined()) current = *default_value;
    }
    return current;
  }

  static Value IgnoreCase(const Value& v) {
    if (v.is_string()) return Value::Str(PyLower(*v.s));
    return v;
  }

  // Sorts `items` by `keys` (stable; `reverse` keeps equal items in order,
  // as Python's sorted does).
  Status SortByKeys(std::vector<Value>& items, std::vector<Value>& keys, bool reverse) {
    std::vector<size_t> order(items.size());
    for (size_t n = 0; n < order.size(); ++n) order[n] = n;
    std::optional<Status> failure;
    std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
      if (failure) return false;
      auto c = reverse ? Compare(keys[y], keys[x], "<") : Compare(keys[x], keys[y], "<");
      if (!c) {
        failure = c.error();
        return false;
      }
      return *c < 0;
    });
    if (failure) return *failure;
    std::vector<Value> sorted;
    sorted.reserve(items.size());
    for (size_t n : order) sorted.push_back(std::move(items[n]));
    items = std::move(sorted);
    return Status::Ok();
  }

  Result<Value> SelectOrReject(const Value& v, Args args, Kwargs kwargs, bool select,
                               bool by_attribute) {
    if (!Truthy(v)) return NewIter({});  // Jinja2 does not even look at the arguments
    XNAI_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
    size_t offset = 0;
    std::optional<Value> attribute;
    if (by_attribute) {
      if (args.empty()) return Err(Error("Missing parameter for attribute name"));
      attribute = args[0];
      offset = 1;
    }
    std::optional<std::string> test;
    Args test_args;
    if (args.size() > offset) {
      if (!args[offset].is_string()) return Err(Error("test names must be strings"));
      test = *args[offset].s;
      test_args.assign(args.begin() + static_cast<std::ptrdiff_t>(offset) + 1, args.end());
    }
    std::vector<Value> kept;
    for (Value& item : items) {
      XNAI_RETURN_IF_ERROR(Charge(1));
      Value probe = item;
      if (attribute) {
        XNAI_ASSIGN_OR_RETURN(probe, GetAttribute(item, *attribute));
      }
      bool result = false;
      if (test) {
        XNAI_ASSIGN_OR_RETURN(result, CallTest(*test, probe, test_args, kwargs));
      } else {
        result = Truthy(probe);
      }
      if (result == select) kept.push_back(std::move(item));
    }
    return NewIter(std::move(kept));
  }

  Result<Value> MapFilter(const Value& v, Args args, Kwargs kwargs) {
    if (!Truthy(v)) return NewIter({});  // Jinja2 does not even look at the arguments
    XNAI_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
    std::vector<Value> mapped;
    auto attribute_kw = std::find_if(kwargs.begin(), kwargs.end(),
                                     [](const auto& kw) { return kw.first == "attribute"; });
    if (args.empty() && attribute_kw != kwargs.end()) {
      Value attribute = attribute_kw->second;
      kwargs.erase(attribute_kw);
      std::optional<Value> default_value;
      auto default_kw = std::find_if(kwargs.begin(), kwargs.end(),
                                     [](const auto& kw) { return kw.first == "default"; });
      if (default_kw != kwargs.end()) {
        if (default_kw->second.type != VType::kNone) default_value = default_kw->second;
        kwargs.erase(default_kw);
      }
      if (!kwargs.empty()) {
        return Err(Error("Unexpected keyword argument '" + kwargs[0].first + "'"));
      }
      for (const Value& item : items) {
        XNAI_RETURN_IF_ERROR(Charge(1));
        XNAI_ASSIGN_OR_RETURN(Value m, GetAttribute(item, attribute, default_value));
        mapped.push_back(std::move(m));
      }
      return NewIter(std::move(mapped));
    }
    if (args.empty()) return Err(Error("map requires a filter argument"));
    if (!args[0].is_string()) return Err(Error("map filter names must be strings"));
    const std::string name = *args[0].s;
    if (!Contains(kJinjaFilters, name)) return Err(Error("no filter named '" + name + "'"));
    Args rest(args.begin() + 1, args.end());
    for (const Value& item : items) {
      XNAI_RETURN_IF_ERROR(Charge(1));
      XNAI_ASSIGN_OR_RETURN(Value m, CallFilter(name, item, rest, kwargs));
      mapped.push_back(std::move(m));
    }
    return NewIter(std::move(mapped));
  }

  Result<Value> ToJson(const Value& v, Args args, Kwargs kwargs) {
    XNAI_ASSIGN_OR_RETURN(Bound a,
                          Bind("tojson", {"ensure_ascii", "indent", "separators", "sort_keys"}, 0,
                               std::move(args), std::move(kwargs)));
    JsonStyle style;
    style.ensure_ascii = a[0] && Truthy(*a[0]);
    if (a[1] && a[1]->type != VType::kNone) {
      if (a[1]->is_string()) {
        style.indent = *a[1]->s;
      } else if (a[1]->is_integral()) {
        style.indent =
            std::string(static_cast<size_t>(std::clamp<int64_t>(a[1]->as_int(), 0, 1000)), ' ');
      } else {
        return Err(
            Error(std::string("tojson indent must be an int or a string, not ") + TypeName(*a[1])));
      }
      style.item_sep = ",";
    }
    if (a[2] && a[2]->type != VType::kNone) {
      if (a[2]->type != VType::kList || AsList(*a[2]).items.size() != 2 ||
          !AsList(*a[2]).items[0].is_string() || !AsList(*a[2]).items[1].is_string()) {
        return Err(Error("tojson separators must be a pair of strings"));
      }
      style.item_sep = *AsList(*a[2]).items[0].s;
      style.key_sep = *AsList(*a[2]).items[1].s;
    }
    style.sort_keys = a[3] && Truthy(*a[3]);
    std::string out;
    XNAI_RETURN_IF_ERROR(AppendJson(out, v, style, 0));
    return NewStr(std::move(out));
  }

  Result<Value> Indent(const Value& v, Args args, Kwargs kwargs) {
    XNAI_ASSIGN_OR_RETURN(Bound a, Bind("indent", {"width", "first", "blank"}, 0, std::move(args),
                                        std::move(kwargs)));
    if (v.is_undefined()) return Err(UndefinedError(v));
    if (!v.is_string()) {
      return Err(Error(std::string("unsupported operand type(s) for +=: '") + TypeName(v) +
                       "' and 'str'"));
    }
    std::string indention = "    ";
    if (a[0]) {
      if (a[0]->is_string()) {
        indention = *a[0]->s;
      } else if (a[0]->is_integral()) {
        indention.assign(static_cast<size_t>(std::clamp<int64_t>(a[0]->as_int(), 0, 100000)), ' ');
      } else {
        return Err(Error("indent width must be an int or a string"));
      }
    }
    const bool first = a[1] && Truthy(*a[1]);
    const bool blank = a[2] && Truthy(*a[2]);
    std::vector<std::string> lines = PySplitLines(*v.s + "\n", false, kMaxItems);
    XNAI_RETURN_IF_ERROR(ChargeItems(lines.size()));
    std::string out;
    if (blank) {
      for (size_t n = 0; n < lines.size(); ++n) {
        if (n > 0) out += "\n" + indention;
        out += lines[n];
        XNAI_RETURN_IF_ERROR(CheckSize(out.size()));
      }
    } else {
      out = lines.empty() ? std::string() : lines[0];
      for (size_t n = 1; n < lines.size(); ++n) {
        out += "\n";
        if (!lines[n].empty()) out += indention;
        out += lines[n];
        XNAI_RETURN_IF_ERROR(CheckSize(out.size()));
      }
    }
    if (first) out = indention + out;
    return NewStr(std::move(out), v.markup);
  }

  Result<Value> Round(const Value& v, Args args, Kwargs kwargs) {
    XNAI_ASSIGN_OR_RETURN(
        Bound a, Bind("round", {"precision", "method"}, 0, std::move(args), std::move(kwargs)));
    XNAI_ASSIGN_OR_RETURN(int64_t precision, IntArg(a[0], 0, "precision"));
    std::string method = "common";
    if (a[1]) {
      XNAI_ASSIGN_OR_RETURN(method, StrArg(a[1], "round() method"));
    }
    if (method != "common" && method != "ceil" && method != "floor") {
      return Err(Error("method must be common, ceil or floor"));
    }
    if (v.is_undefined()) return Err(Error("type Undefined doesn't define __round__ method"));
    if (!v.is_number()) {
      return Err(Error(std::string("type ") + TypeName(v) + " doesn't define __round__ method"));
    }
    if (method == "common") {
      if (v.is_integral()) {
        if (precision >= 0) return Value::Int(v.as_int());
        return Err(Unsupported("round() of an integer to a negative precision"));
      }
      if (precision < 0) return Err(Unsupported("round() to a negative precision"));
      if (!std::isfinite(v.f) || precision > 330) return v;
      std::vector<char> buf(400 + static_cast<size_t>(precision));
      std::snprintf(buf.data(), buf.size(), "%.*f", static_cast<int>(precision), v.f);
      double rounded = 0;
      std::from_chars(buf.data() + (buf[0] == '-' ? 1 : 0), buf.data() + std::strlen(buf.data()),
                      rounded);
      return Value::Float(buf[0] == '-' ? -rounded : rounded);
    }
    if (precision < 0 || precision > 22) return Err(Unsupported("this round() precision"));
    const double scale = std::pow(10.0, static_cast<double>(precision));
    const double scaled = v.as_double() * scale;
    if (!std::isfinite(scaled))
      return Err(Error("cannot convert float infinity or NaN to integer"));
    const double whole = method == "ceil" ? std::ceil(scaled) : std::floor(scaled);
    return Value::Float(whole / scale);
  }

  Result<Value> ToInt(const Value& v, Args args, Kwargs kwargs) {
    XNAI_ASSIGN_OR_RETURN(Bound a,
                          Bind("int", {"default", "base"}, 0, std::move(args), std::move(kwargs)));
    Value fallback = a[0] ? *a[0] : Value::Int(0);
    XNAI_ASSIGN_OR_RETURN(int64_t base, IntArg(a[1], 10, "base"));
    if (v.is_undefined()) return Err(UndefinedError(v));
    if (v.is_integral()) return Value::Int(v.as_int());
    if (v.type == VType::kFloat) {
      if (std::isnan(v.f)) return fallback;
      if (std::isinf(v.f)) return Err(Error("cannot convert float infinity to integer"));
      if (std::fabs(v.f) >= 9.2e18) return Err(Overflow());
      return Value::Int(static_cast<int64_t>(std::trunc(v.f)));
    }
    if (v.is_string()) {
      if (base != 0 && (base < 2 || base > 36))
        return Err(Error("int() base must be >= 2 and <= 36, or 0"));
      bool overflow = false;
      std::optional<int64_t> parsed = ParsePyInt(*v.s, static_cast<int>(base), &overflow);
      if (overflow) return Err(Overflow());
      if (parsed) return Value::Int(*parsed);
      std::optional<double> f = ParsePyFloat(*v.s);
      if (!f || std::isnan(*f)) return fallback;
      if (std::isinf(*f)) return Err(Error("cannot convert float infinity to integer"));
      if (std::fabs(*f) >= 9.2e18) return Err(Overflow());
      return Value::Int(static_cast<int64_t>(std::trunc(*f)));
    }
    return fallback;
  }

  Result<Value> ToFloat(const Value& v, Args args, Kwargs kwargs) {
    XNAI_ASSIGN_OR_RETURN(Bound a,
                          Bind("float", {"default"}, 0, std::move(args), std::move(kwargs)));
    Value fallback = a[0] ? *a[0] : Value::Float(0);
    if (v.is_undefined()) return Err(UndefinedError(v));
    if (v.is_number()) return Value::Float(v.as_double());
    if (v.is_string()) {
      std::optional<double> f = ParsePyFloat(*v.s);
      if (f) return Value::Float(*f);
    }
    return fallback;
  }

  Result<Value> Truncate(const Value& v, Args args, Kwargs kwargs) {
    XNAI_ASSIGN_OR_RETURN(Bound a, Bind("truncate", {"length", "killwords", "end", "leeway"}, 0,
                                        std::move(args), std::move(kwargs)));
    XNAI_ASSIGN_OR_RETURN(int64_t length, IntArg(a[0], 255, "length"));
    const bool killwords = a[1] && Truthy(*a[1]);
    std::string end = "...";
    if (a[2]) {
      XNAI_ASSIGN_OR_RETURN(end, StrArg(a[2], "truncate() end"));
    }
    int64_t leeway = 5;
    if (a[3] && a[3]->type != VType::kNone) {
      XNAI_ASSIGN_OR_RETURN(leeway, IntArg(a[3], 5, "leeway"));
    }
    const auto end_len = static_cast<int64_t>(CodePointCount(end));
    if (length < end_len) {
      return Err(Error("expected length >= " + std::to_string(end_len) + ", got " +
                       std::to_string(length)));
    }
    if (leeway < 0) return Err(Error("expected leeway >= 0, got " + std::to_string(leeway)));
    if (!v.is_string()) {
      // Jinja2 returns any short enough sized value unchanged; longer ones
      // fail on the string operations that follow.
      XNAI_ASSIGN_OR_RETURN(int64_t size, Length(v));
      if (size <= length + leeway) return v;
      return Err(Error(std::string("cannot truncate a ") + TypeName(v)));
    }
    std::u32string u = ToU32(*v.s);
    if (static_cast<int64_t>(u.size()) <= length + leeway) return v;
    std::u32string head = u.substr(0, static_cast<size_t>(length - end_len));
    if (!killwords) {
      size_t space = head.rfind(U' ');
      if (space != std::u32string::npos) head.resize(space);
    }
    return NewStr(FromU32(head) + end);
  }

  // Jinja2's |title: each run between spaces and -({[< starts uppercase,
  // the rest of the run is lowercased.
  static std::string JinjaTitle(std::string_view text) {
    std::u32string u = ToU32(text), out;
    auto is_sep = [](char32_t c) {
      return IsPySpace(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    };
    size_t i = 0;
    while (i < u.size()) {
      size_t j = i;
      if (is_sep(u[i])) {
        while (j < u.size() && is_sep(u[j])) ++j;
        out.append(u, i, j - i);
      } else {
        while (j < u.size() && !is_sep(u[j])) ++j;
        AppendUpperCp(out, u[i]);
        std::u32string rest = u.substr(i + 1, j - i - 1);
        for (size_t k = 0; k < rest.size(); ++k) AppendLowerAt(out, rest, k);
      }
      i = j;
    }
    return FromU32(out);
  }

  Result<Value> CallFilter(const std::string& name, const Value& v, Args args, Kwargs kwargs) {
    XNAI_RETURN_IF_ERROR(Charge(1));
    if (name == "abs") {
      XNAI_RETURN_IF_ERROR(CheckNoArgs(name, args, kwargs));
      if (v.type == VType::kFloat) return Value::Float(std::fabs(v.f));
      if (v.is_integral()) {
        if (v.as_int() == std::numeric_limits<int64_t>::min()) return Err(Overflow());
        return Value::Int(std::llabs(v.as_int()));
      }
      return Err(Error(std::string("bad operand type for abs(): '") + TypeName(v) + "'"));
    }
    if (name == "attr") {
      XNAI_ASSIGN_OR_RETURN(Bound a, Bind(name, {"name"}, 1, std::move(args), std::move(kwargs)));
      XNAI_ASSIGN_OR_RETURN(std::string attr, StrArg(a[0], "attribute name"));
      if (v.type == VType::kDict) {
        if (Contains(kDictMethods, attr)) return MakeMethod(v, attr);
        if (Contains(kDictUnsafe, attr)) return UnsafeAttr(v, attr);
        return MissingAttr(v, attr);
      }
      return GetAttr(v, attr);
    }
    if (name == "capitalize" || name == "lower" || name == "upper" || name == "title") {
      XNAI_RETURN_IF_ERROR(CheckNoArgs(name, args, kwargs));
      XNAI_ASSIGN_OR_RETURN(Value s, SoftStr(v));
      if (name == "title") return NewStr(JinjaTitle(*s.s));
      std::string out = name == "capitalize" ? PyCapitalize(*s.s)
                        : name == "lower"    ? PyLower(*s.s)
                                             : PyUpper(*s.s);
      return NewStr(std::move(out), s.markup);
    }
    if (name == "center") {
      XNAI_ASSIGN_OR_RETURN(Bound a, Bind(name, {"width"}, 0, std::move(args), std::move(kwargs)));
      XNAI_ASSIGN_OR_RETURN(int64_t width, IntArg(a[0], 80, "width"));
      XNAI_ASSIGN_OR_RETURN(Value s, SoftStr(v));
      return Pad(s, width, " ", '^');
    }
    if (name == "count" || name == "length") {
      XNAI_RETURN_IF_ERROR(CheckNoArgs(name, args, kwargs));
      XNAI_ASSIGN_OR_RETURN(int64_t n, Length(v));
      return Value::Int(n);
    }
    if (name == "default" || name == "d") {
      XNAI_ASSIGN_OR_RETURN(
          Bound a, Bind(name, {"default_value", "boolean"}, 0, std::move(args), std::move(kwargs)));
      const bool boolean = a[1] && Truthy(*a[1]);
      if (v.is_undefined() || (boolean && !Truthy(v))) return a[0] ? *a[0] : Value::Str("");
      return v;
    }
    if (name == "dictsort") {
      XNAI_ASSIGN_OR_RETURN(Bound a, Bind(name, {"case_sensitive", "by", "reverse"}, 0,
                                          std::move(args), std::move(kwargs)));
      if (v.is_undefined()) return Err(UndefinedError(v));
      if (v.type != VType::kDict) {
        return Err(Error(std::string("'") + TypeName(v) + "' object has no attribute 'items'"));
      }
      std::string by = "key";
      if (a[1]) {
        XNAI_ASSIGN_OR_RETURN(by, StrArg(a[1], "dictsort() by"));
      }
      if (by != "key" && by != "value") {
        return Err(Error("You can only sort by either \"key\" or \"value\""));
      }
      const bool case_sensitive = a[0] && Truthy(*a[0]);
      std::vector<Value> pairs, keys;
      for (const DictEntry& e : AsDict(v).entries) {
        XNAI_ASSIGN_OR_RETURN(Value pair, NewList({e.key, e.value}, SeqKind::kTuple));
        pairs.push_back(std::move(pair));
        const Value& key = by == "key" ? e.key : e.value;
        keys.push_back(case_sensitive ? key : IgnoreCase(key));
      }
      XNAI_RETURN_IF_ERROR(SortByKeys(pairs, keys, a[2] && Truthy(*a[2])));
      return NewList(std::move(pairs));
    }
    if (name == "escape" || name == "e" || name == "forceescape") {
      XNAI_RETURN_IF_ERROR(CheckNoArgs(name, args, kwargs));
      if (v.markup && name != "forceescape") return v;
      XNAI_ASSIGN_OR_RETURN(std::string text, ToStr(v));
      return NewStr(HtmlEscape(text), true);
    }
    if (name == "safe") {
      XNAI_RETURN_IF_ERROR(CheckNoArgs(name, args, kwargs));
      XNAI_ASSIGN_OR_RETURN(std::string text, ToStr(v));
      return NewStr(std::move(text), true);
    }
    if (name == "string") {
      XNAI_RETURN_IF_ERROR(CheckNoArgs(name, args, kwargs));
      return SoftStr(v);
    }
    if (name == "first") {
      XNAI_RETURN_IF_ERROR(CheckNoArgs(name, args, kwargs));
      if (v.type == VType::kIterator) {
        IterObj& it = AsIter(v);
        if (it.pos < it.items.size()) return it.items[it.pos++];
      } else {
        XNAI_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
        if (!items.empty()) return items[0];
      }
      return Value::Undefined("No first item, sequence was empty.");
    }
    if (name == "last") {
      XNAI_RETURN_IF_ERROR(CheckNoArgs(name, args, kwargs));
      if (v.type == VType::kIterator) {
        return Err(Error(std::string("'") + TypeName(v) + "' object is not reversible"));
      }
      XNAI_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
      if (!items.empty()) return items.back();
      return Value::Undefined("No last item, sequence was empty.");
    }
    if (name == "float") return ToFloat(v, std::move(args), std::move(kwargs));
    if (name == "int") return ToInt(v, std::move(args), std::move(kwargs));
    if (name == "round") return Round(v, std::move(args), std::move(kwargs));
    if (name == "indent") return Indent(v, std::move(args), std::move(kwargs));
    if (name == "truncate") return Truncate(v, std::move(args), std::move(kwargs));
    if (name == "tojson") return ToJson(v, std::move(args), std::move(kwargs));
    if (name == "map") return MapFilter(v, std::move(args), std::move(kwargs));
    if (name == "select" || name == "reject") {
      return SelectOrReject(v, std::move(args), std::move(kwargs), name == "select", false);
    }
    if (name == "selectattr" || name == "rejectattr") {
      return SelectOrReject(v, std::move(args), std::move(kwargs), name == "selectattr", true);
    }
    if (name == "format") {
      if (!args.empty() && !kwargs.empty()) {
        return Err(Error("can't handle positional and keyword arguments at the same time"));
      }
      XNAI_ASSIGN_OR_RETURN(Value fmt, SoftStr(v));
      if (!kwargs.empty()) {
        auto dict = std::make_shared<DictObj>();
        for (auto& [key, value] : kwargs) dict->Set(StrKey(key), Value::Str(key), value);
        XNAI_ASSIGN_OR_RETURN(Value mapping, NewDict(std::move(dict)));
        return PercentFormat(fmt, mapping);
      }
      XNAI_ASSIGN_OR_RETURN(Value tuple, NewList(std::move(args), SeqKind::kTuple));
      return PercentFormat(fmt, tuple);
    }
    if (name == "items") {
      XNAI_RETURN_IF_ERROR(CheckNoArgs(name, args, kwargs));
      if (v.is_undefined()) return NewIter({});
      if (v.type != VType::kDict) return Err(Error("Can only get item pairs from a mapping."));
      std::vector<Value> pairs;
      for (const DictEntry& e : AsDict(v).entries) {
        XNAI_ASSIGN_OR_RETURN(Value pair, NewList({e.key, e.value}, SeqKind::kTuple));
        pairs.push_back(std::move(pair));
      }
      return NewIter(std::move(pairs));
    }
    if (name == "join") {
      XNAI_ASSIGN_OR_RETURN(Bound a,
                            Bind(name, {"d", "attribute"}, 0, std::move(args), std::move(kwargs)));
      std::string separator;
      if (a[0]) {
        XNAI_ASSIGN_OR_RETURN(separator, ToStr(*a[0]));
      }
      XNAI_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
      std::string out;
      for (size_t n = 0; n < items.size(); ++n) {
        Value item = items[n];
        if (a[1] && a[1]->type != VType::kNone) {
          XNAI_ASSIGN_OR_RETURN(item, GetAttribute(item, *a[1]));
        }
        if (n > 0) out += separator;
        XNAI_RETURN_IF_ERROR(AppendStr(out, item));
        XNAI_RETURN_IF_ERROR(CheckSize(out.size()));
      }
      return NewStr(std::move(out));
    }
    if (name == "list") {
      XNAI_RETURN_IF_ERROR(CheckNoArgs(name, args, kwargs));
      XNAI_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
      return NewList(std::move(items));
    }
    if (name == "max" || name == "min") {
      XNAI_ASSIGN_OR_RETURN(Bound a, Bind(name, {"case_sensitive", "attribute"}, 0, std::move(args),
                                          std::move(kwargs)));
      XNAI_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
      if (items.empty()) return Value::Undefined("No aggregated item, sequence was empty.");
      const bool case_sensitive = a[0] && Truthy(*a[0]);
      std::vector<Value> keys;
      for (const Value& item : items) {
        Value key = item;
        if (a[1] && a[1]->type != VType::kNone) {
          XNAI_ASSIGN_OR_RETURN(key, GetAttribute(item, *a[1]));
        }
        keys.push_back(case_sensitive ? key : IgnoreCase(key));
      }
      size_t best = 0;
      for (size_t n = 1; n < items.size(); ++n) {
        XNAI_ASSIGN_OR_RETURN(int c, Compare(keys[n], keys[best], name == "max" ? ">" : "<"));
        if (name == "max" ? c > 0 : c < 0) best = n;
      }
      return items[best];
    }
    if (name == "replace") {
      XNAI_ASSIGN_OR_RETURN(
          Bound a, Bind(name, {"old", "new", "count"}, 2, std::move(args), std::move(kwargs)));
      XNAI_ASSIGN_OR_RETURN(std::string text, ToStr(v));
      XNAI_ASSIGN_OR_RETURN(std::string old, ToStr(*a[0]));
      XNAI_ASSIGN_OR_RETURN(std::string repl, ToStr(*a[1]));
      int64_t count = -1;
      if (a[2] && a[2]->type != VType::kNone) {
        XNAI_ASSIGN_OR_RETURN(count, IntArg(a[2], -1, "count"));
      }
      XNAI_ASSIGN_OR_RETURN(std::string out, ReplaceText(text, old, repl, count));
      return NewStr(std::move(out));
    }
    if (name == "reverse") {
      XNAI_RETURN_IF_ERROR(CheckNoArgs(name, args, kwargs));
      if (v.is_string()) {
        std::u32string u = ToU32(*v.s);
        std::reverse(u.begin(), u.end());
        return NewStr(FromU32(u), v.markup);
      }
      if (v.type == VType::kIterator) {
        XNAI_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
        std::reverse(items.begin(), items.end());
        return NewList(std::move(items));
      }
      if (v.is_undefined() || v.type == VType::kList || v.type == VType::kDict) {
        XNAI_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
        std::reverse(items.begin(), items.end());
        const char* type_name = v.type == VType::kDict     ? "dict_reversekeyiterator"
                                : IsSeq(v, SeqKind::kList) ? "list_reverseiterator"
                                                           : "reversed";
        return NewIter(std::move(items), type_name);
      }
      return Err(Error("argument must be iterable"));
    }
    if (name == "sort") {
      XNAI_ASSIGN_OR_RETURN(Bound a, Bind(name, {"reverse", "case_sensitive", "attribute"}, 0,
                                          std::move(args), std::move(kwargs)));
      XNAI_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
      const bool case_sensitive = a[1] && Truthy(*a[1]);
      std::vector<Value> attributes;
      if (a[2] && a[2]->is_string()) {
        for (std::string& part : SplitText(*a[2]->s, std::string(","), -1, false)) {
          attributes.push_back(Value::Str(std::move(part)));
        }
      } else if (a[2] && a[2]->type != VType::kNone) {
        attributes.push_back(*a[2]);
      }
      std::vector<Value> keys;
      for (const Value& item : items) {
        std::vector<Value> parts;
        if (attributes.empty()) {
          parts.push_back(case_sensitive ? item : IgnoreCase(item));
        }
        for (const Value& attribute : attributes) {
          XNAI_ASSIGN_OR_RETURN(Value part, GetAttribute(item, attribute));
          parts.push_back(case_sensitive ? part : IgnoreCase(part));
        }
        keys.push_back(MakeList(std::move(parts)));
      }
      XNAI_RETURN_IF_ERROR(Charge(static_cast<int64_t>(items.size()) * 8));
      XNAI_RETURN_IF_ERROR(SortByKeys(items, keys, a[0] && Truthy(*a[0])));
      return NewList(std::move(items));
    }
    if (name == "sum") {
      XNAI_ASSIGN_OR_RETURN(
          Bound a, Bind(name, {"attribute", "start"}, 0, std::move(args), std::move(kwargs)));
      XNAI_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
      Value total = a[1] ? *a[1] : Value::Int(0);
      if (total.is_string())
        return Err(Error("sum() can't sum strings [use ''.join(seq) instead]"));
      for (const Value& item : items) {
        Value term = item;
        if (a[0] && a[0]->type != VType::kNone) {
          XNAI_ASSIGN_OR_RETURN(term, GetAttribute(item, *a[0]));
        }
        XNAI_ASSIGN_OR_RETURN(total, Binary(BinOp::kAdd, total, term));
      }
      return total;
    }
    if (name == "trim") {
      XNAI_ASSIGN_OR_RETURN(Bound a, Bind(name, {"chars"}, 0, std::move(args), std::move(kwargs)));
      XNAI_ASSIGN_OR_RETURN(Value s, SoftStr(v));
      XNAI_ASSIGN_OR_RETURN(auto chars, OptionalStrArg(a[0], "trim() chars"));
      if (chars && s.markup) chars = HtmlEscape(*chars);
      return NewStr(PyStrip(*s.s, chars ? &*chars : nullptr, true, true), s.markup);
    }
    if (name == "unique") {
      XNAI_ASSIGN_OR_RETURN(Bound a, Bind(name, {"case_sensitive", "attribute"}, 0, std::move(args),
                                          std::move(kwargs)));
      XNAI_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
      const bool case_sensitive = a[0] && Truthy(*a[0]);
      std::vector<std::string> seen;
      std::unordered_map<std::string, bool> seen_index;
      std::vector<Value> kept;
      for (Value& item : items) {
        Value key = item;
        if (a[1] && a[1]->type != VType::kNone) {
          XNAI_ASSIGN_OR_RETURN(key, GetAttribute(item, *a[1]));
        }
        if (!case_sensitive) key = IgnoreCase(key);
        XNAI_ASSIGN_OR_RETURN(std::string hkey, HashKey(key));
        if (seen_index.emplace(std::move(hkey), true).second) kept.push_back(std::move(item));
      }
      return NewIter(std::move(kept));
    }
    if (name == "wordcount") {
      XNAI_RETURN_IF_ERROR(CheckNoArgs(name, args, kwargs));
      XNAI_ASSIGN_OR_RETURN(Value s, SoftStr(v));
      int64_t words = 0;
      bool in_word = false;
      for (char32_t c : ToU32(*s.s)) {
        bool word_char = c == '_' || IsAlnumCp(c);
        if (word_char && !in_word) ++words;
        in_word = word_char;
      }
      return Value::Int(words);
    }
    if (!Contains(kJinjaFilters, name)) return Err(Error("no filter named '" + name + "'"));
    return Err(Unsupported("the '" + name + "' filter"));
  }

  // ---- tests ---------------------------------------------------------------

  static bool Iterable(const Value& v) {
    switch (v.type) {
      case VType::kUndefined:
      case VType::kString:
      case VType::kList:
      case VType::kDict:
      case VType::kIterator:
      case VType::kLoop:
        return true;
      default:
        return false;
    }
  }

  static bool SameAs(const Value& a, const Value& b) {
    if (a.type != b.type) return false;
    switch (a.type) {
      case VType::kNone:
        return true;
      case VType::kBool:
        return a.b == b.b;
      case VType::kInt:
        // CPython caches the small integers.
        return a.i == b.i && a.i >= -5 && a.i <= 256;
      case VType::kString:
        return a.s == b.s || (*a.s == *b.s && CodePointCount(*a.s) <= 1 && IsAscii(*a.s));
      case VType::kFloat:
      case VType::kUndefined:
        return false;
      default:
        return a.o == b.o;
    }
  }

  Result<bool> CallTest(const std::string& name, const Value& v, const Args& args,
                        const Kwargs& kwargs) {
    XNAI_RETURN_IF_ERROR(Charge(1));
    auto no_args = [&]() { return CheckNoArgs(name, args, kwargs); };
    auto other = [&]() -> Result<Value> {
      XNAI_ASSIGN_OR_RETURN(Bound a, Bind(name, {"other"}, 1, args, kwargs));
      return *a[0];
    };
    if (name == "defined" || name == "undefined") {
      XNAI_RETURN_IF_ERROR(no_args());
      return v.is_undefined() == (name == "undefined");
    }
    if (name == "none") {
      XNAI_RETURN_IF_ERROR(no_args());
      return v.type == VType::kNone;
    }
    if (name == "boolean" || name == "true" || name == "false") {
      XNAI_RETURN_IF_ERROR(no_args());
      if (v.type != VType::kBool) return false;
      return name == "boolean" || v.b == (name == "true");
    }
    if (name == "integer") {
      XNAI_RETURN_IF_ERROR(no_args());
      return v.type == VType::kInt;
    }
    if (name == "float") {
      XNAI_RETURN_IF_ERROR(no_args());
      return v.type == VType::kFloat;
    }
    if (name == "number") {
      XNAI_RETURN_IF_ERROR(no_args());
      return v.is_number();
    }
    if (name == "string") {
      XNAI_RETURN_IF_ERROR(no_args());
      return v.is_string();
    }
    if (name == "mapping") {
      XNAI_RETURN_IF_ERROR(no_args());
      return v.type == VType::kDict;
    }
    if (name == "iterable") {
      XNAI_RETURN_IF_ERROR(no_args());
      return Iterable(v);
    }
    if (name == "sequence") {
      XNAI_RETURN_IF_ERROR(no_args());
      if (v.type == VType::kList) {
        SeqKind k = AsList(v).kind;
        return k == SeqKind::kList || k == SeqKind::kTuple || k == SeqKind::kRange;
      }
      return v.is_undefined() || v.is_string() || v.type == VType::kDict;
    }
    if (name == "callable") {
      XNAI_RETURN_IF_ERROR(no_args());
      return v.type == VType::kCallable || v.is_undefined() || v.type == VType::kLoop;
    }
    if (name == "escaped") {
      XNAI_RETURN_IF_ERROR(no_args());
      return v.markup;
    }
    if (name == "lower" || name == "upper") {
      XNAI_RETURN_IF_ERROR(no_args());
      XNAI_ASSIGN_OR_RETURN(std::string text, ToStr(v));
      bool cased = false;
      for (char32_t c : ToU32(text)) {
        if (name == "lower" ? (IsUpperCp(c) || IsTitleCp(c)) : (IsLowerCp(c) || IsTitleCp(c))) {
          return false;
        }
        cased = cased || IsCased(c);
      }
      return cased;
    }
    if (name == "odd" || name == "even") {
      XNAI_RETURN_IF_ERROR(no_args());
      XNAI_ASSIGN_OR_RETURN(Value mod, Binary(BinOp::kMod, v, Value::Int(2)));
      return Equals(mod, Value::Int(name == "odd" ? 1 : 0));
    }
    if (name == "divisibleby") {
      XNAI_ASSIGN_OR_RETURN(Bound a, Bind(name, {"num"}, 1, args, kwargs));
      XNAI_ASSIGN_OR_RETURN(Value mod, Binary(BinOp::kMod, v, *a[0]));
      return Equals(mod, Value::Int(0));
    }
    if (name == "sameas") {
      XNAI_ASSIGN_OR_RETURN(Value o, other());
      return SameAs(v, o);
    }
    if (name == "in") {
      XNAI_ASSIGN_OR_RETURN(Bound a, Bind(name, {"seq"}, 1, args, kwargs));
      return ContainsValue(*a[0], v);
    }
    if (name == "==" || name == "eq" || name == "equalto") {
      XNAI_ASSIGN_OR_RETURN(Value o, other());
      return Equals(v, o);
    }
    if (name == "!=" || name == "ne") {
      XNAI_ASSIGN_OR_RETURN(Value o, other());
      return !Equals(v, o);
    }
    if (name == ">" || name == "gt" || name == "greaterthan") {
      XNAI_ASSIGN_OR_RETURN(Value o, other());
      return CompareOp(CmpOp::kGt, v, o);
    }
    if (name == ">=" || name == "ge") {
      XNAI_ASSIGN_OR_RETURN(Value o, other());
      return CompareOp(CmpOp::kGe, v, o);
    }
    if (name == "<" || name == "lt" || name == "lessthan") {
      XNAI_ASSIGN_OR_RETURN(Value o, other());
      return CompareOp(CmpOp::kLt, v, o);
    }
    if (name == "<=" || name == "le") {
      XNAI_ASSIGN_OR_RETURN(Value o, other());
      return CompareOp(CmpOp::kLe, v, o);
    }
    if (name == "filter" || name == "test") {
      XNAI_RETURN_IF_ERROR(no_args());
      if (!v.is_string()) return false;
      return name == "filter" ? Contains(kJinjaFilters, *v.s) : Contains(kJinjaTests, *v.s);
    }
    return Err(Error("no test named '" + name + "'"));
  }

  const RenderOptions& options_;
  const RenderLimits& limits_;
  std::shared_ptr<Scope> top_;
  int line_ = 1;
  int depth_ = 0;
  int64_t iterations_ = 0;
  int64_t work_ = 0;
};

}  // namespace

// ===========================================================================
// 8. Public interface
// ===========================================================================

struct ChatTemplate::Program {
  std::string source;  // normalized; the tokens' positions refer to it
  Body body;
};

Result<ChatTemplate> ChatTemplate::Parse(std::string_view source) {
  auto program = std::make_shared<Program>();
  program->source = NormalizeSource(source);
  SourceMap map(program->source);
  Lexer lexer(program->source, map);
  XNAI_ASSIGN_OR_RETURN(std::vector<Token> tokens, lexer.Run());
  Parser parser(tokens, map);
  XNAI_ASSIGN_OR_RETURN(program->body, parser.ParseTemplate());
  return ChatTemplate(std::move(program));
}

Result<std::string> ChatTemplate::Render(const nlohmann::ordered_json& context) const {
  return Render(context, RenderOptions{});
}

Result<std::string> ChatTemplate::Render(const nlohmann::ordered_json& context,
                                         const RenderOptions& options) const {
  try {
    Renderer renderer(options);
    return renderer.Run(program_->body, context);
  } catch (const std::bad_alloc&) {
    return Err(Status::ResourceExhausted("chat template: out of memory while rendering"));
  }
}

}  // namespace xnai::engine
