// Unit tests of engine::JsonConstraint: acceptance of valid and rejection of
// invalid documents byte by byte, the token mask against brute force, random
// walks through the mask that must end in documents valid for the schema, and
// refusal of unsupported or hostile schemas.
#include "engine/json_constraint.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace xnai::engine {
namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

JsonConstraint Make(std::string_view schema_text) {
  OrderedJson schema = OrderedJson::parse(schema_text);
  Result<JsonConstraint> c = JsonConstraint::Create(schema);
  EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().ToString()) << "\nschema: " << schema_text;
  if (!c) std::abort();
  return std::move(*c);
}

JsonConstraint AnyObject() { return *JsonConstraint::Create(nullptr); }

// Index of the first byte of `doc` the constraint rejects; npos if none.
size_t FirstRejected(JsonConstraint c, std::string_view doc) {
  for (size_t i = 0; i < doc.size(); ++i) {
    if (!c.Advance(doc.substr(i, 1))) return i;
  }
  return std::string_view::npos;
}

bool AcceptsComplete(JsonConstraint c, std::string_view doc) {
  return FirstRejected(c, doc) == std::string_view::npos && [&] {
    for (char ch : doc) c.Advance(std::string_view(&ch, 1));
    return c.IsComplete();
  }();
}

// Feeds `doc` in random chunks of 1..8 bytes; every chunk must be accepted.
bool AcceptsInRandomSplits(JsonConstraint c, std::string_view doc, std::mt19937& rng) {
  for (size_t i = 0; i < doc.size();) {
    const size_t len = std::min<size_t>(doc.size() - i, 1 + rng() % 8);
    if (!c.Advance(doc.substr(i, len))) return false;
    i += len;
  }
  return c.IsComplete();
}

// ---------------------------------------------------------------------------
// A validator for the supported schema subset, independent of the automaton.

size_t CodePoints(const std::string& s) {
  size_t n = 0;
  for (char ch : s) n += (static_cast<uint8_t>(ch) & 0xC0) != 0x80;
  return n;
}

bool Validate(const OrderedJson& root, const OrderedJson& schema, const Json& v, int depth = 0) {
  if (depth > 200) return false;
  if (schema.is_boolean()) return schema.get<bool>();
  if (schema.contains("$ref")) {
    const std::string ref = schema["$ref"].get<std::string>().substr(1);
    return Validate(root, root.at(OrderedJson::json_pointer(ref)), v, depth + 1);
  }
  if (schema.contains("allOf")) return Validate(root, schema["allOf"][0], v, depth + 1);
  for (const char* word : {"anyOf", "oneOf"}) {
    if (!schema.contains(word)) continue;
    for (const OrderedJson& alt : schema[word]) {
      if (Validate(root, alt, v, depth + 1)) return true;
    }
    return false;
  }
  auto equal = [](const OrderedJson& want, const Json& got) {
    return Json::parse(want.dump()) == got;
  };
  if (schema.contains("const") && !equal(schema["const"], v)) return false;
  if (schema.contains("enum")) {
    bool found = false;
    for (const OrderedJson& e : schema["enum"]) found |= equal(e, v);
    if (!found) return false;
  }
  if (schema.contains("type")) {
    std::vector<std::string> types;
    if (schema["type"].is_string()) {
      types.push_back(schema["type"].get<std::string>());
    } else {
      for (const OrderedJson& t : schema["type"]) types.push_back(t.get<std::string>());
    }
    bool ok = false;
    for (const std::string& t : types) {
      ok |= (t == "object" && v.is_object()) || (t == "array" && v.is_array()) ||
            (t == "string" && v.is_string()) || (t == "number" && v.is_number()) ||
            (t == "integer" &&
             (v.is_number_integer() ||
              (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()))) ||
            (t == "boolean" && v.is_boolean()) || (t == "null" && v.is_null());
    }
    if (!ok) return false;
  }
  if (v.is_object()) {
    const OrderedJson empty = OrderedJson::object();
    const OrderedJson& props = schema.contains("properties") ? schema["properties"] : empty;
    if (schema.contains("required")) {
      for (const OrderedJson& r : schema["required"]) {
        if (!v.contains(r.get<std::string>())) return false;
      }
    }
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (props.contains(it.key())) {
        if (!Validate(root, props[it.key()], it.value(), depth + 1)) return false;
      } else if (schema.contains("additionalProperties")) {
        if (!Validate(root, schema["additionalProperties"], it.value(), depth + 1)) return false;
      }
    }
  }
  if (v.is_array()) {
    const size_t prefix = schema.contains("prefixItems") ? schema["prefixItems"].size() : 0;
    for (size_t i = 0; i < v.size(); ++i) {
      if (i < prefix) {
        if (!Validate(root, schema["prefixItems"][i], v[i], depth + 1)) return false;
      } else if (schema.contains("items")) {
        if (!Validate(root, schema["items"], v[i], depth + 1)) return false;
      }
    }
    if (schema.contains("minItems") && v.size() < schema["minItems"].get<size_t>()) return false;
    if (schema.contains("maxItems") && v.size() > schema["maxItems"].get<size_t>()) return false;
  }
  if (v.is_string()) {
    const size_t n = CodePoints(v.get<std::string>());
    if (schema.contains("minLength") && n < schema["minLength"].get<size_t>()) return false;
    if (schema.contains("maxLength") && n > schema["maxLength"].get<size_t>()) return false;
  }
  if (v.is_number()) {
    const double x = v.get<double>();
    if (schema.contains("minimum") && x < schema["minimum"].get<double>()) return false;
    if (schema.contains("maximum") && x > schema["maximum"].get<double>()) return false;
    if (schema.contains("exclusiveMinimum") && x <= schema["exclusiveMinimum"].get<double>()) {
      return false;
    }
    if (schema.contains("exclusiveMaximum") && x >= schema["exclusiveMaximum"].get<double>()) {
      return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------
// Schemas used by several tests.

constexpr const char* kPersonSchema = R"({
  "type": "object",
  "title": "person",
  "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 12, "description": "full name"},
    "age": {"type": "integer", "minimum": 0, "maximum": 150},
    "email": {"type": "string", "format": "email"},
    "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b", "cd"]}, "maxItems": 3},
    "address": {
      "type": "object",
      "properties": {"city": {"type": "string"}, "zip": {"type": "string", "maxLength": 5}},
      "required": ["city"],
      "additionalProperties": false
    }
  },
  "required": ["name", "age"],
  "additionalProperties": false
})";

constexpr const char* kShapeSchema = R"({
  "anyOf": [
    {"type": "object",
     "properties": {"kind": {"const": "circle"}, "r": {"type": "number", "minimum": 0}},
     "required": ["kind", "r"], "additionalProperties": false},
    {"type": "object",
     "properties": {"kind": {"const": "rect"}, "w": {"type": "number"}, "h": {"type": "number"}},
     "required": ["kind", "w", "h"], "additionalProperties": false},
    {"type": "null"}
  ]
})";

constexpr const char* kTreeSchema = R"({
  "$defs": {
    "node": {
      "type": "object",
      "properties": {
        "value": {"type": "integer"},
        "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}
      },
      "required": ["value"],
      "additionalProperties": false
    }
  },
  "$ref": "#/$defs/node"
})";

constexpr const char* kMixedSchema = R"({
  "type": "object",
  "properties": {
    "a": {"type": ["string", "null"], "maxLength": 3},
    "b": {"type": ["number", "boolean"]},
    "c": {"enum": [1, "x", null, true, {"k": [1, 2]}, [3], 2.5, "x\"y\u00e9"]},
    "d": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}],
          "items": false, "minItems": 1},
    "e": {},
    "f": {"type": "number", "exclusiveMinimum": -5, "exclusiveMaximum": 5},
    "g": {"allOf": [{"$ref": "#/definitions/small"}]},
    "h": {"type": "array", "items": {"type": "integer", "minimum": -20, "maximum": 1234},
          "minItems": 2, "maxItems": 4}
  },
  "required": ["d"],
  "additionalProperties": {"type": "integer"},
  "definitions": {"small": {"type": "integer", "exclusiveMinimum": 2.5, "maximum": 7}}
})";

constexpr const char* kOddKeysSchema = R"({
  "type": "object",
  "properties": {
    "a\"b": {"type": "integer"},
    "\u0001x": {"type": "boolean"},
    "é/ü": {"type": "null"},
    "": {"type": "string"},
    "ab": {"type": "boolean"}
  },
  "additionalProperties": {"type": "string", "maxLength": 2}
})";

constexpr const char* kRootNumberSchema = R"({"type": "number", "minimum": -3, "maximum": 70})";

// Several stacks live inside one string (the mask's multi-stack fast path).
constexpr const char* kAmbiguousStringsSchema = R"({
  "type": "array",
  "items": {"anyOf": [
    {"type": "string", "maxLength": 3},
    {"type": "string", "minLength": 2},
    {"type": "object", "properties": {"t": {"type": "string"}},
     "additionalProperties": {"type": "string"}},
    {"type": "object", "properties": {"t": {"type": "string"}, "u": {"type": "integer"}},
     "required": ["t", "u"]}
  ]},
  "maxItems": 5
})";

constexpr const char* kAllSchemas[] = {kPersonSchema,          kShapeSchema,   kTreeSchema,
                                       kMixedSchema,           kOddKeysSchema, kRootNumberSchema,
                                       kAmbiguousStringsSchema};

// ---------------------------------------------------------------------------
// Random valid JSON text (json_object mode), with escapes, UTF-8, every
// number form and bounded whitespace.

class JsonGenerator {
 public:
  explicit JsonGenerator(uint32_t seed) : rng_(seed) {}

  std::string Document() {
    std::string out = Ws();
    Object(out, 0);
    out += Ws();
    return out;
  }

 private:
  size_t Pick(size_t n) { return rng_() % n; }
  std::string Ws() {
    static const char* kWs[] = {"", "", "", " ", "\n  ", "\t", "\r\n", "    "};
    return kWs[Pick(8)];
  }
  void Value(std::string& out, int depth) {
    switch (Pick(depth >= 5 ? 5 : 7)) {
      case 0:
        String(out);
        break;
      case 1:
        Number(out);
        break;
      case 2:
        out += "true";
        break;
      case 3:
        out += Pick(2) ? "false" : "null";
        break;
      case 4:
        String(out);
        break;
      case 5:
        Object(out, depth + 1);
        break;
      default:
        Array(out, depth + 1);
    }
  }
  void Object(std::string& out, int depth) {
    out += "{";
    const size_t n = Pick(4);
    out += Ws();
    for (size_t i = 0; i < n; ++i) {
      if (i > 0) out += "," + Ws();
      String(out);
      out += Ws() + ":" + Ws();
      Value(out, depth);
      out += Ws();
    }
    out += "}";
  }
  void Array(std::string& out, int depth) {
    out += "[";
    const size_t n = Pick(4);
    out += Ws();
    for (size_t i = 0; i < n; ++i) {
      if (i > 0) out += "," + Ws();
      Value(out, depth);
      out += Ws();
    }
    out += "]";
  }
  void String(std::string& out) {
    static const char* kPieces[] = {"a",
                                    "Z",
                                    " ",
                                    "key",
                                    "\\\"",
                                    "\\\\",
                                    "\\/",
                                    "\\b",
                                    "\\f",
                                    "\\n",
                                    "\\r",
                                    "\\t",
                                    "\\u00e9",
                                    "\\u20AC",
                                    "\\uD83D\\uDE00",
                                    "\\ud7ff",
                                    "\\u0000",
                                    "\xc3\xa9",
                                    "\xe2\x82\xac",
                                    "\xf0\x9f\x98\x80",
                                    "\xe4\xb8\xad",
                                    "\xed\x9f\xbf",
                                    "\xf4\x8f\xbf\xbf",
                                    "'",
                                    "{}[],:",
                                    "0",
                                    "~",
                                    "\x7f"};
    out += "\"";
    const size_t n = Pick(6);
    for (size_t i = 0; i < n; ++i) out += kPieces[Pick(std::size(kPieces))];
    out += "\"";
  }
  void Number(std::string& out) {
    if (Pick(3) == 0) out += "-";
    if (Pick(4) == 0) {
      out += "0";
    } else {
      out += static_cast<char>('1' + Pick(9));
      for (size_t k = Pick(8); k > 0; --k) out += static_cast<char>('0' + Pick(10));
    }
    if (Pick(2)) {
      out += ".";
      for (size_t k = 1 + Pick(6); k > 0; --k) out += static_cast<char>('0' + Pick(10));
    }
    if (Pick(3) == 0) {
      out += "eE"[Pick(2)];
      if (Pick(2)) out += "+-"[Pick(2)];
      for (size_t k = 1 + Pick(2); k > 0; --k) out += static_cast<char>('0' + Pick(10));
    }
  }

  std::mt19937 rng_;
};

// ---------------------------------------------------------------------------
// Acceptance.

TEST(JsonConstraintTest, AcceptsHandWrittenObjects) {
  const char* docs[] = {
      "{}",
      " {\n  \"a\": 1\n}\n",
      R"({"a":[1,2,{"b":null}],"c":{"d":true,"e":false},"f":"x"})",
      R"({"n":[0,-0,1.5,-2.25e10,3E-7,1e+2,0.0,123456789]})",
      R"({"s":"quote \" backslash \\ slash \/ \b\f\n\r\t \u00e9 \uD83D\uDE00 é € 😀 中"})",
      R"({"":""})",
      R"({"nested":{"a":{"b":{"c":{"d":[[[[]]]]}}}}})",
      "{\"tab\":\t1,\r\n\"cr\" : 2 }",
  };
  for (const char* doc : docs) {
    ASSERT_TRUE(Json::accept(doc)) << doc;
    EXPECT_TRUE(AcceptsComplete(AnyObject(), doc)) << doc;
  }
}

TEST(JsonConstraintTest, AcceptsGeneratedObjectsByteByByteAndInRandomSplits) {
  std::mt19937 rng(7);
  for (uint32_t seed = 0; seed < 400; ++seed) {
    const std::string doc = JsonGenerator(seed).Document();
    ASSERT_TRUE(Json::accept(doc)) << doc;
    EXPECT_TRUE(AcceptsComplete(AnyObject(), doc)) << doc;
    EXPECT_TRUE(AcceptsInRandomSplits(AnyObject(), doc, rng)) << doc;
  }
}

TEST(JsonConstraintTest, RejectsTheFirstOffendingByte) {
  struct Case {
    std::string doc;
    size_t offending;
  };
  const Case cases[] = {
      {R"({"a":1,})", 7},         // trailing comma
      {R"([1])", 0},              // top level must be an object
      {R"({a:1})", 1},            // unquoted key
      {R"({"a":01})", 6},         // leading zero
      {R"({"a":-})", 6},          // sign without digits
      {R"({"a":1.})", 7},         // fraction without digits
      {R"({"a":1e})", 7},         // exponent without digits
      {R"({"a":.5})", 5},         // no integer part
      {R"({"a":+1})", 5},         // plus sign
      {R"({"a":"\x"})", 7},       // bad escape
      {R"({"a":"\u12G4"})", 10},  // bad hex digit
      {R"({"a":"\ud800"})", 12},  // high surrogate without its low half
      {R"({"a":"\ud800\u0041"})", 14},
      {R"({"a":"\udc00"})", 9},     // lone low surrogate
      {"{\"a\":\"\x01\"}", 6},      // raw control character
      {"{\"a\":\"\xff\"}", 6},      // never valid in UTF-8
      {"{\"a\":\"\xc0\xaf\"}", 6},  // overlong
      {"{\"a\":\"\xe0\x80\x80\"}", 7},
      {"{\"a\":\"\xed\xa0\x80\"}", 7},      // UTF-8 surrogate
      {"{\"a\":\"\xf4\x90\x80\x80\"}", 7},  // above U+10FFFF
      {"{\"a\":\"\xc3\"}", 7},              // truncated sequence
      {R"({"a":tru})", 8},
      {R"({"a":nul})", 8},
      {R"({"a":truee})", 9},
      {R"({"a":1}})", 7},       // nothing after the document
      {R"({"a" 1})", 5},        // missing colon
      {R"({"a":1 "b":2})", 7},  // missing comma
      {R"({,})", 1},
      {R"({"a":[1,]})", 8},
      {R"({"a":[,1]})", 6},
      {"{" + std::string(25, ' ') + "}", 25},  // whitespace run cap
      {"{\n\n\n}", 3},                         // line break cap
  };
  for (const Case& c : cases) {
    EXPECT_EQ(FirstRejected(AnyObject(), c.doc), c.offending) << c.doc;
  }
}

TEST(JsonConstraintTest, SchemaAcceptsValidDocuments) {
  struct Case {
    const char* schema;
    const char* doc;
  };
  const Case cases[] = {
      {kPersonSchema, R"({"name":"Ann","age":31})"},
      {kPersonSchema,
       R"({"name":"Bo","age":0,"email":"b@x","tags":["a","cd"],"address":{"city":"Oslo","zip":"0150"}})"},
      {kPersonSchema, R"({ "name" : "\u00e9\u00e9", "age" : 150 , "tags" : [ ] })"},
      {kShapeSchema, R"({"kind":"circle","r":0.5})"},
      {kShapeSchema, R"({"kind":"rect","w":-1,"h":2e3})"},
      {kShapeSchema, "null"},
      {kTreeSchema, R"({"value":1,"children":[{"value":2},{"value":3,"children":[]}]})"},
      {kMixedSchema, R"({"d":[1]})"},
      {kMixedSchema,
       R"({"a":null,"b":true,"c":{"k":[1,2]},"d":[-4,"s"],"e":[{}],"f":-4.99,"g":3,"h":[-20,1234],"zz":7})"},
      {kMixedSchema, R"({"a":"abc","b":-0.0,"c":"x\"yé","d":[0],"f":4.999})"},
      {kMixedSchema, R"({"a":"abc","b":-1.5e-99,"d":[0]})"},
      {kMixedSchema, R"({"c":[3],"d":[1,"x"],"q":1,"r":-2,"e":0,"s":3})"},
      {kMixedSchema, R"({"c":2.5,"d":[7]})"},
      {kOddKeysSchema, R"({"a\"b":1,"\u0001x":true,"é/ü":null,"":"s","ab":false,"zz":"ok"})"},
      {kOddKeysSchema, R"({"x\n":"","a":"b"})"},
      {kRootNumberSchema, "70"},
      {kRootNumberSchema, "-3"},
      {kRootNumberSchema, "-2.999"},
      {kRootNumberSchema, "69.5"},
      {kRootNumberSchema, "70.000"},
      {kRootNumberSchema, "-0"},
  };
  std::mt19937 rng(3);
  for (const Case& c : cases) {
    const OrderedJson schema = OrderedJson::parse(c.schema);
    ASSERT_TRUE(Validate(schema, schema, Json::parse(c.doc))) << c.doc;
    EXPECT_TRUE(AcceptsComplete(Make(c.schema), c.doc)) << c.doc;
    EXPECT_TRUE(AcceptsInRandomSplits(Make(c.schema), c.doc, rng)) << c.doc;
  }
}

TEST(JsonConstraintTest, SchemaRejectsTheFirstOffendingByte) {
  struct Case {
    const char* schema;
    std::string doc;
    size_t offending;
  };
  const Case cases[] = {
      {kPersonSchema, R"({"name":"Ann"})", 13},                     // missing required age
      {kPersonSchema, R"({"age":3,"name":"A"})", 2},                // out of schema order
      {kPersonSchema, R"({"name":"A","age":3,"x":1})", 21},         // extra property
      {kPersonSchema, R"({"name":"A","age":"3"})", 18},             // wrong type
      {kPersonSchema, R"({"name":"A","age":3.5})", 19},             // integer
      {kPersonSchema, R"({"name":"A","age":151})", 20},             // maximum
      {kPersonSchema, R"({"name":"A","age":-1})", 19},              // minimum ("-0" is fine)
      {kPersonSchema, R"({"name":"","age":1})", 9},                 // minLength
      {kPersonSchema, R"({"name":"abcdefghijklm","age":1})", 21},   // maxLength
      {kPersonSchema, R"({"name":"A","age":1,"tags":["e"]})", 29},  // enum mismatch
      {kPersonSchema, R"({"name":"A","age":1,"tags":["c"]})", 30},  // a prefix only
      {kPersonSchema, R"({"name":"A","age":1,"tags":["a","a","a","a"]})", 39},  // maxItems
      {kPersonSchema, R"({"name":"A","age":1,"address":{}})", 31},              // nested required
      {kPersonSchema, R"({"name":"A","age":1,"name":"B"})", 21},                // repeated property
      {kShapeSchema, R"({"kind":"square"})", 9},
      {kShapeSchema, R"({"kind":"circle","r":-1})", 22},
      {kShapeSchema, R"({"kind":"rect","w":1})", 20},
      {kShapeSchema, R"({"kind":"circle","w":1})", 18},
      {kShapeSchema, "[]", 0},
      {kTreeSchema, R"({"children":[]})", 2},
      {kMixedSchema, R"({})", 1},                    // d is required
      {kMixedSchema, R"({"a":"abcd","d":[1]})", 9},  // maxLength of a string|null
      {kMixedSchema, R"({"c":"y","d":[1]})", 6},
      {kMixedSchema, R"({"c":{"k":[1]},"d":[1]})", 12},
      {kMixedSchema, R"({"d":[1,"s",2]})", 11},    // items: false after the prefix
      {kMixedSchema, R"({"d":[]})", 6},            // minItems 1
      {kMixedSchema, R"({"d":[1],"f":5})", 13},    // exclusiveMaximum
      {kMixedSchema, R"({"d":[1],"f":-5})", 14},   // exclusiveMinimum
      {kMixedSchema, R"({"d":[1],"f":1e1})", 14},  // no exponent when bounded
      {kMixedSchema, R"({"d":[1],"g":2})", 13},    // exclusiveMinimum 2.5 -> 3
      {kMixedSchema, R"({"d":[1],"g":8})", 13},
      {kMixedSchema, R"({"d":[1],"h":[1]})", 15},  // minItems 2
      {kMixedSchema, R"({"d":[1],"h":[1235,1]})", 17},
      {kMixedSchema, R"({"d":[1],"zz":"s"})", 14},          // additionalProperties integer
      {kMixedSchema, R"({"c":"x\"y\u00e9","d":[1]})", 10},  // enum values are canonical
      {kMixedSchema, R"({"b":1e100,"d":[1]})", 9},          // at most 2 exponent digits
      {kMixedSchema, R"({"d":[1],"a":null})", 11},          // a comes before d
      {kMixedSchema, R"({"q":1,"d":[1]})", 2},              // extra keys after the required ones
      {kOddKeysSchema, R"({"ab":"s"})", 6},                 // declared, must be boolean
      {kOddKeysSchema, R"({"a\u0062":true})", 4},           // a declared name spelt otherwise
      {kOddKeysSchema, R"({"x\/":"s"})", 4},
      {kOddKeysSchema, R"({"zz":"abc"})", 9},
      {kRootNumberSchema, "71", 1},
      {kRootNumberSchema, "70.5", 3},
      {kRootNumberSchema, "-3.5", 3},
      {kRootNumberSchema, "-4", 1},
      {kRootNumberSchema, "700", 2},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(FirstRejected(Make(c.schema), c.doc), c.offending) << c.schema << "\n" << c.doc;
  }
}

TEST(JsonConstraintTest, CompletenessAndEmptyInput) {
  JsonConstraint number = Make(kRootNumberSchema);
  EXPECT_FALSE(number.IsComplete());
  EXPECT_FALSE(number.Advance(""));
  ASSERT_TRUE(number.Advance("1"));
  EXPECT_TRUE(number.IsComplete());
  ASSERT_TRUE(number.Advance("2."));
  EXPECT_FALSE(number.IsComplete());
  ASSERT_TRUE(number.Advance("5 "));
  EXPECT_TRUE(number.IsComplete());
  EXPECT_FALSE(number.Advance("1"));  // the state is unchanged by a rejected token
  EXPECT_TRUE(number.IsComplete());

  JsonConstraint object = AnyObject();
  EXPECT_FALSE(object.Advance("{\"a\":1}x"));  // all or nothing
  EXPECT_FALSE(object.IsComplete());
  ASSERT_TRUE(object.Advance("{\"a\":1}"));
  EXPECT_TRUE(object.IsComplete());
  EXPECT_TRUE(object.Advance(" \n"));
  EXPECT_TRUE(object.IsComplete());
}

TEST(JsonConstraintTest, PropertyOrderFollowsTheSchemaOrItsSortedKeys) {
  constexpr const char* kSchema =
      R"({"type":"object","properties":{"b":{"type":"integer"},"a":{"type":"integer"}},
          "required":["a","b"],"additionalProperties":false})";
  EXPECT_TRUE(AcceptsComplete(Make(kSchema), R"({"b":1,"a":2})"));
  EXPECT_EQ(FirstRejected(Make(kSchema), R"({"a":2,"b":1})"), 2u);
  // nlohmann::json sorts keys, so that overload emits alphabetically.
  const Json sorted = Json::parse(kSchema);
  JsonConstraint c = *JsonConstraint::Create(&sorted);
  EXPECT_TRUE(AcceptsComplete(c, R"({"a":2,"b":1})"));
  EXPECT_EQ(FirstRejected(c, R"({"b":1,"a":2})"), 2u);
}

TEST(JsonConstraintTest, NestingIsCappedAt32) {
  std::string doc;
  for (int level = 0; level < 32; ++level) doc += "{\"a\":";
  doc += "1";
  for (int level = 0; level < 32; ++level) doc += "}";
  EXPECT_TRUE(AcceptsComplete(AnyObject(), doc));
  std::string deeper;
  for (int level = 0; level < 33; ++level) deeper += "{\"a\":";
  EXPECT_EQ(FirstRejected(AnyObject(), deeper), deeper.size() - 5);
  std::string arrays = "{\"a\":";
  for (int level = 0; level < 40; ++level) arrays += "[";
  EXPECT_EQ(FirstRejected(AnyObject(), arrays), 5u + 31u);
}

// ---------------------------------------------------------------------------
// Refused schemas.

TEST(JsonConstraintTest, RefusesUnsupportedKeywordsNamingThem) {
  struct Case {
    const char* schema;
    const char* must_mention;
  };
  const Case cases[] = {
      {R"({"type":"string","pattern":"^a"})", "\"pattern\" at /pattern"},
      {R"({"type":"object","properties":{"x":{"type":"string","format":"date","pattern":"x"}}})",
       "/properties/x/pattern"},
      {R"({"type":"object","minProperties":1})", "minProperties"},
      {R"({"type":"array","uniqueItems":true})", "uniqueItems"},
      {R"({"type":"number","multipleOf":2})", "multipleOf"},
      {R"({"not":{}})", "\"not\""},
      {R"({"if":{},"then":{}})", "\"if\""},
      {R"({"type":"object","patternProperties":{"a":{}}})", "patternProperties"},
      {R"({"$ref":"http://example.com/s.json"})", "only local references"},
      {R"({"$ref":"#foo"})", "anchors"},
      {R"({"$ref":"#/$defs/missing"})", "#/$defs/missing"},
      {R"({"type":"number","minimum":0.5})", "minimum"},
      {R"({"allOf":[{},{}]})", "allOf"},
      {R"({"type":"object","required":["x"]})", "\"x\" is not in properties"},
      {R"({"type":"strin"})", "unknown type \"strin\""},
      {R"({"type":"string","maxLength":-1})", "/maxLength"},
      {R"({"type":"string","properties":{}})", "\"properties\" does not apply"},
      {R"({"$ref":"#/$defs/a","type":"object","$defs":{"a":{}}})",
       "\"type\" combined with \"$ref\""},
      {R"({"anyOf":[{}],"type":"object"})", "combined with \"anyOf\""},
      {R"({"enum":["a"],"maxLength":3})", "\"maxLength\" combined with \"enum\""},
      {R"({"type":"array","items":[{}]})", "prefixItems"},
      {R"({"anyOf":[]})", "non-empty"},
      {R"({"$ref":"#"})", "cycle"},
      {R"({"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"})",
       "cycle"},
      {R"({"type":"string","minLength":5,"maxLength":2})", "no document satisfies"},
      {R"({"type":"integer","minimum":1.5,"maximum":1.9})", "no document satisfies"},
      {R"({"enum":[]})", "no document satisfies"},
      {R"({"type":"array","items":false,"minItems":1})", "no document satisfies"},
      // recursion without a base case
      {R"({"$defs":{"a":{"type":"object","properties":{"x":{"$ref":"#/$defs/a"}},"required":["x"]}},
          "$ref":"#/$defs/a"})",
       "no document satisfies"},
      {R"({"type":"array","items":{"$ref":"#"},"minItems":1})", "no document satisfies"},
  };
  for (const Case& c : cases) {
    Result<JsonConstraint> r = JsonConstraint::Create(OrderedJson::parse(c.schema));
    ASSERT_FALSE(r.has_value()) << c.schema;
    EXPECT_EQ(r.error().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(r.error().message().find(c.must_mention), std::string::npos)
        << c.schema << " -> " << r.error().message();
  }
}

TEST(JsonConstraintTest, IgnoresAnnotations) {
  JsonConstraint c = Make(R"({"$schema":"https://json-schema.org/draft/2020-12/schema",
      "$id":"x","$comment":"c","title":"t","description":"d","examples":[1],"default":{},
      "type":"object","deprecated":false,"readOnly":true,
      "properties":{"s":{"type":"string","format":"uuid","writeOnly":true}}})");
  EXPECT_TRUE(AcceptsComplete(c, R"({"s":"not-a-uuid"})"));
}

// ---------------------------------------------------------------------------
// Hostile schemas and inputs.

TEST(JsonConstraintTest, HostileSchemasAreRefusedOrBounded) {
  // Schema nesting far beyond the limit: refused, not a stack overflow.
  std::string deep;
  for (int level = 0; level < 5000; ++level) deep += R"({"type":"object","properties":{"a":)";
  deep += "{}";
  for (int level = 0; level < 5000; ++level) deep += "}}";
  Result<JsonConstraint> r = JsonConstraint::Create(OrderedJson::parse(deep));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("nested deeper"), std::string::npos);

  // Required nesting deeper than the document cap: refused.
  std::string required;
  for (int level = 0; level < 40; ++level) {
    required += R"({"type":"object","required":["a"],"properties":{"a":)";
  }
  required += "{}";
  for (int level = 0; level < 40; ++level) required += "}}";
  r = JsonConstraint::Create(OrderedJson::parse(required));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("nesting limit"), std::string::npos);

  // Union explosion: refused.
  OrderedJson wide = OrderedJson::object();
  OrderedJson level = {{"type", "string"}};
  for (int k = 0; k < 4; ++k) {
    OrderedJson alts = OrderedJson::array();
    for (int i = 0; i < 10; ++i) alts.push_back({{"anyOf", {level, {{"const", i + 100 * k}}}}});
    level = {{"anyOf", alts}};
  }
  r = JsonConstraint::Create(level);
  EXPECT_TRUE(r.has_value() || r.error().message().find("alternatives") != std::string::npos);

  // Too many enum values: refused; many: fine and fast.
  OrderedJson huge = {{"enum", OrderedJson::array()}};
  for (int i = 0; i < 200000; ++i) huge["enum"].push_back("v" + std::to_string(i));
  r = JsonConstraint::Create(huge);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("enum"), std::string::npos);
  OrderedJson big = {{"type", "object"},
                     {"properties", {{"k", {{"enum", OrderedJson::array()}}}}},
                     {"required", {"k"}}};
  for (int i = 0; i < 50000; ++i) big["properties"]["k"]["enum"].push_back("v" + std::to_string(i));
  JsonConstraint c = *JsonConstraint::Create(big);
  EXPECT_TRUE(AcceptsComplete(c, R"({"k":"v31337"})"));
  EXPECT_EQ(FirstRejected(c, R"({"k":"v50000"})"), 11u);

  // Many ambiguous alternatives: the number of live stacks stays bounded.
  OrderedJson ambiguous = {{"anyOf", OrderedJson::array()}};
  for (int i = 0; i < 200; ++i) {
    ambiguous["anyOf"].push_back(
        {{"type", "object"},
         {"properties", {{"k" + std::to_string(i), {{"type", "integer"}}}}},
         {"additionalProperties", false}});
  }
  c = *JsonConstraint::Create(ambiguous);
  EXPECT_TRUE(AcceptsComplete(c, R"({"k7":1})"));
  EXPECT_TRUE(AcceptsComplete(c, R"({})"));

  // Recursion with a base case: bounded by the nesting cap.
  c = Make(R"({"type":"array","items":{"$ref":"#"}})");
  std::string nested(32, '[');
  nested += std::string(32, ']');
  EXPECT_TRUE(AcceptsComplete(c, nested));
  EXPECT_EQ(FirstRejected(c, std::string(40, '[')), 32u);
}

TEST(JsonConstraintTest, NoEndlessWhitespaceOrNumbers) {
  JsonConstraint c = AnyObject();
  ASSERT_TRUE(c.Advance("{\"a\":"));
  size_t accepted = 0;
  while (accepted < 1000 && c.Advance(" ")) ++accepted;
  EXPECT_LE(accepted, 24u);
  JsonConstraint n = AnyObject();
  ASSERT_TRUE(n.Advance("{\"a\":1"));
  accepted = 0;
  while (accepted < 1000 && n.Advance("1")) ++accepted;
  EXPECT_LT(accepted, 32u);
  EXPECT_TRUE(n.Advance("}"));
}

// ---------------------------------------------------------------------------
// The mask against brute force.

// A vocabulary: all single bytes, JSON-ish fragments and random strings.
std::vector<std::string> MakeVocab(uint32_t seed, size_t random_tokens) {
  std::mt19937 rng(seed);
  std::vector<std::string> vocab;
  vocab.push_back("");  // a control token
  for (int b = 0; b < 256; ++b) vocab.push_back(std::string(1, static_cast<char>(b)));
  const char* fragments[] = {
      "{\"",     "\":",      "\", \"",   "\":\"",    "\"}",      "},",      "}}",      "]}",
      "[{",      "[]",       "{}",       "true",     "false",    "null",    "tru",     "ull",
      " \"",     "\n  ",     "\n\n",     "    ",     "\\u",      "\\ud83d", "\\ude00", "\\n",
      "\\\"",    "12",       "0.",       "-0",       "e+",       "1e5",     "00",      "\xc3",
      "\xa9",    "\xc3\xa9", "\xf0\x9f", "\x98\x80", "name",     "age",     "\"name",  "\"age\"",
      "kind",    "circle",   "rect",     "value",    "children", "\":[",    "\":{",    "a\\\"b",
      "\\u0001", "é/ü",      "\"é",      "city",     "zip",      "tags",    "\"a\"",   "\"cd\"",
      "ab",      "\"\":",    "x\"y",     "5.",       "-3",       "70",      "-2.9",    "1234",
      "-20",     ",\"",      ", ",       "\" :",     "0\"",
  };
  for (const char* f : fragments) vocab.push_back(f);
  const std::string alphabet = "{}[]:,\" \n\t\\/aeknrtuxy0129.-+eE\xc3\xa9";
  for (size_t i = 0; i < random_tokens; ++i) {
    std::string t;
    const size_t len = 1 + rng() % 6;
    for (size_t k = 0; k < len; ++k) t += alphabet[rng() % alphabet.size()];
    vocab.push_back(t);
  }
  vocab.push_back(vocab[300]);  // a duplicate
  return vocab;
}

std::vector<uint8_t> BruteForce(const JsonConstraint& c, const std::vector<std::string>& vocab) {
  std::vector<uint8_t> allowed(vocab.size());
  for (size_t id = 0; id < vocab.size(); ++id) {
    JsonConstraint copy = c;
    allowed[id] = copy.Advance(vocab[id]) ? 1 : 0;
  }
  return allowed;
}

std::vector<JsonConstraint> AllConstraints() {
  std::vector<JsonConstraint> all = {AnyObject()};
  for (const char* schema : kAllSchemas) all.push_back(Make(schema));
  return all;
}

TEST(JsonConstraintTest, MaskAgreesWithBruteForce) {
  size_t states = 0;
  size_t allowed_total = 0;
  for (uint32_t seed = 0; seed < 3; ++seed) {
    const std::vector<std::string> vocab = MakeVocab(seed, 1500);
    const TokenBytesIndex index = TokenBytesIndex::FromPieces(vocab);
    ASSERT_EQ(index.vocab_size(), static_cast<int32_t>(vocab.size()));
    std::mt19937 rng(seed + 100);
    for (JsonConstraint c : AllConstraints()) {
      for (int step = 0; step < 60; ++step) {
        std::vector<uint8_t> mask;
        c.AllowedTokens(index, mask);
        const std::vector<uint8_t> expected = BruteForce(c, vocab);
        ASSERT_EQ(mask, expected) << "seed " << seed << " step " << step;
        ++states;
        std::vector<size_t> ids;
        for (size_t id = 0; id < mask.size(); ++id) {
          if (mask[id]) ids.push_back(id);
        }
        allowed_total += ids.size();
        EXPECT_EQ(mask[0], 0);  // no bytes: never allowed
        if (ids.empty()) {
          EXPECT_TRUE(c.IsComplete());
          break;
        }
        ASSERT_TRUE(c.Advance(vocab[ids[rng() % ids.size()]]));
      }
    }
  }
  EXPECT_GT(states, 500u);
  EXPECT_GT(allowed_total, states);  // the walks were not trivial
}

// ---------------------------------------------------------------------------
// Random walks through the mask.

// Walks `c` choosing uniformly among allowed tokens; after `budget` tokens it
// prefers single bytes that close things, then stops once complete.
std::string RandomWalk(JsonConstraint c, const std::vector<std::string>& vocab,
                       const TokenBytesIndex& index, std::mt19937& rng, size_t budget) {
  static const std::string kClosing = "\"}]:,0123456789tfn";
  std::string out;
  std::vector<uint8_t> mask;
  for (size_t step = 0; step < budget + 3000; ++step) {
    if (c.IsComplete() && (step >= budget || rng() % 8 == 0)) return out;
    c.AllowedTokens(index, mask);
    std::string chosen;
    if (step < budget) {
      std::vector<size_t> ids;
      for (size_t id = 0; id < mask.size(); ++id) {
        if (mask[id]) ids.push_back(id);
      }
      if (ids.empty()) {
        EXPECT_TRUE(c.IsComplete()) << "dead end after: " << out;
        return out;  // complete, and the trailing whitespace is used up
      }
      chosen = vocab[ids[rng() % ids.size()]];
    } else {
      auto single = [&](uint8_t b) { return mask[1 + b] != 0; };  // vocab[1 + b] is byte b
      for (char ch : kClosing) {
        if (single(static_cast<uint8_t>(ch))) {
          chosen = std::string(1, ch);
          break;
        }
      }
      for (int b = 0x21; chosen.empty() && b < 256; ++b) {
        if (single(static_cast<uint8_t>(b))) chosen = std::string(1, static_cast<char>(b));
      }
      for (int b = 0; chosen.empty() && b <= 0x20; ++b) {
        if (single(static_cast<uint8_t>(b))) chosen = std::string(1, static_cast<char>(b));
      }
      if (chosen.empty()) {
        EXPECT_TRUE(c.IsComplete()) << "dead end after: " << out;
        return out;
      }
    }
    EXPECT_TRUE(c.Advance(chosen));
    out += chosen;
  }
  ADD_FAILURE() << "walk did not finish: " << out;
  return out;
}

TEST(JsonConstraintTest, RandomWalksYieldValidDocuments) {
  const std::vector<std::string> vocab = MakeVocab(42, 3000);
  const TokenBytesIndex index = TokenBytesIndex::FromPieces(vocab);
  std::mt19937 rng(1);
  size_t documents = 0;
  for (const char* schema_text : kAllSchemas) {
    const OrderedJson schema = OrderedJson::parse(schema_text);
    const JsonConstraint start = Make(schema_text);
    for (int walk = 0; walk < 60; ++walk) {
      const std::string doc = RandomWalk(start, vocab, index, rng, 20 + walk * 3);
      Json value;
      ASSERT_NO_THROW(value = Json::parse(doc)) << schema_text << "\n" << doc;
      EXPECT_TRUE(Validate(schema, schema, value)) << schema_text << "\n" << doc;
      ++documents;
    }
  }
  const JsonConstraint any = AnyObject();
  for (int walk = 0; walk < 100; ++walk) {
    const std::string doc = RandomWalk(any, vocab, index, rng, 10 + walk * 4);
    Json value;
    ASSERT_NO_THROW(value = Json::parse(doc)) << doc;
    EXPECT_TRUE(value.is_object()) << doc;
    ++documents;
  }
  EXPECT_EQ(documents, 520u);
}

TEST(JsonConstraintTest, TokenBytesIndexSharesPrefixes) {
  const TokenBytesIndex index = TokenBytesIndex::FromPieces({"ab", "abc", "a", "", "b", "ab"});
  EXPECT_EQ(index.vocab_size(), 6);
  EXPECT_EQ(index.node_count(), 4u);  // a, ab, abc, b
  JsonConstraint c = AnyObject();
  ASSERT_TRUE(c.Advance("{\"k\":\""));
  std::vector<uint8_t> mask;
  c.AllowedTokens(index, mask);
  EXPECT_EQ(mask, (std::vector<uint8_t>{1, 1, 1, 0, 1, 1}));
}

}  // namespace
}  // namespace xnai::engine
