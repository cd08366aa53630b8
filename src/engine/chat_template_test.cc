// Unit tests of engine::ChatTemplate: the Jinja2 language chat templates
// use, Jinja2's whitespace rules (trim_blocks, lstrip_blocks, '-' and '+'),
// Python's formatting of values, errors with positions, and hostile
// templates that must fail cleanly within the limits. The expected strings
// of the table-driven tests are what Jinja2 3.1 renders for the same source
// and context in the reference environment
// (tests/conformance/chat_template_oracle.py); the conformance test checks
// the real model templates the same way.
#include "engine/chat_template.h"

#include <chrono>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace xnai::engine {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// The variables of the table-driven tests.
constexpr const char* kContext = R"json({
  "messages": [
    {"role": "system", "content": "sys"},
    {"role": "user", "content": "héllo"},
    {"role": "assistant", "content": "hi", "tool_calls": [
      {"type": "function", "function": {"name": "f", "arguments": {"b": 1, "a": [1, 2.5, true, null]}}}]}
  ],
  "d": {"a": 1, "b": [1, 2], "items": 5}, "l": [3, 1, 2], "s": "héllo", "n": null, "e": "",
  "t": true, "f": 1.5, "i": 7, "words": ["b", "A", "c"],
  "users": [{"name": "bo", "age": 3}, {"name": "Al", "age": 5}, {"name": "cy", "age": 3}]
})json";

const nlohmann::ordered_json& Context() {
  static const nlohmann::ordered_json context = nlohmann::ordered_json::parse(kContext);
  return context;
}

// 2025-08-01T00:00:00Z: mid-year, so the year is 2025 in every time zone.
constexpr int64_t kPinnedNow = 1754006400;

RenderOptions Pinned() {
  RenderOptions options;
  options.now = [] {
    return std::chrono::system_clock::time_point(std::chrono::seconds(kPinnedNow));
  };
  return options;
}

Result<std::string> Render(std::string_view source,
                           const nlohmann::ordered_json& context = Context(),
                           const RenderOptions& options = Pinned()) {
  XNAI_ASSIGN_OR_RETURN(ChatTemplate parsed, ChatTemplate::Parse(source));
  return parsed.Render(context, options);
}

// The error of a render that must fail (an empty status if it rendered).
Status RenderError(std::string_view source, const nlohmann::ordered_json& context = Context(),
                   const RenderOptions& options = Pinned()) {
  auto result = Render(source, context, options);
  if (result) return Status::Internal("rendered: " + *result);
  return result.error();
}

struct Case {
  const char* source;
  const char* expected;  // Jinja2's rendering
};

void ExpectJinja2Renderings(const Case* begin, const Case* end) {
  for (const Case* c = begin; c != end; ++c) {
    auto result = Render(c->source);
    ASSERT_TRUE(result.has_value()) << c->source << "\n  -> " << result.error().ToString();
    EXPECT_EQ(*result, c->expected) << "template: " << c->source;
  }
}

// ---- Renderings checked against Jinja2 ------------------------------------------

// WhitespaceCases
const Case kWhitespaceCases[] = {
    {"a\n  {% if t %}\n  b\n  {% endif %}\nc", "a\n  b\nc"},
    {"a\n  {%+ if t %}\n  b\n  {%- endif %}\nc", "a\n    bc"},
    {"a  {{- s -}}  b", "ahéllob"},
    {"a  {{ s }}  b", "a  héllo  b"},
    {"a\n  {{ s }}\n  b", "a\n  héllo\n  b"},
    {"a\n\t{# comment #}\nb", "a\nb"},
    {"a\n  {#- comment -#}\n  b", "ab"},
    {"x {%- raw %} {{ s }} {% endraw -%} y", "x {{ s }} y"},
    {"x\n  {% raw %}\n  {{ s }}\n  {% endraw %}\n  y", "x\n\n  {{ s }}\n  y"},
    {"{% raw -%}   a  {%- endraw %}", "a"},
    {"a {%+ if t +%} b {% endif %}\n", "a  b "},
    {"line1\n{% for i in l %}\n  item {{ i }}\n{% endfor %}\nend\n",
     "line1\n  item 3\n  item 1\n  item 2\nend"},
    {"{%- for i in l -%}\n{{ i }},\n{%- endfor -%}", "3,1,2,"},
    {"  {{ s }}  \n  {% set x = 1 %}  \n", "  héllo  \n  "},
    {"{% if t %}\r\nx\r\n{% endif %}\r\n", "x\n"},
    {"{#- a #}\n{#+ b +#}\nc", "\nc"},
    {" {%- if t %} x{% endif %}", " x"},
    {"\n\n{% if t -%}\n\n   x   \n\n{%- endif %}\n\n", "\n\nx"},
    {"{{ \"\n\" }}{% if t %}\n{% endif %}{{ \"\n\" }}", "\n\n"},
    {"trailing newline is dropped\n", "trailing newline is dropped"},
    {"only one\n\n", "only one\n"},
    {"{% if t %}\n{% endif %}\n{% if t %}x{% endif %}", "x"},
};

// ExpressionCases
const Case kExpressionCases[] = {
    {"{{ 1 }} {{ -1 }} {{ 1.0 }} {{ 1.5e3 }} {{ 1e-7 }} {{ 1_000 }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 "
     "}}",
     "1 -1 1.0 1500.0 1e-07 1000 31 15 5"},
    {"{{ true }} {{ True }} {{ false }} {{ none }} {{ None }} {{ \"a\" 'b' }}",
     "True True False None None ab"},
    {"{{ [1, \"a\", none, true, 1.0, {\"k\": (1,)}] }} {{ (1, 2) }} {{ (1,) }} {{ () }} {{ {} }} "
     "{{ [] }}",
     "[1, 'a', None, True, 1.0, {'k': (1,)}] (1, 2) (1,) () {} []"},
    {"{{ \"it's\" }} {{ [\"it's\", \"a\\\"b\", \"x\ny\", \"t\tab\", \"\\x01\", \"é\", \"\\u00a0\", "
     "\"\\\\\"] }}",
     "it's [\"it's\", 'a\"b', 'x\\ny', 't\\tab', '\\x01', 'é', '\\xa0', '\\\\']"},
    {"{{ \"\\x41\\u00e9\\U0001F600\\101\n\t\\\\\\\"\\'\\d\" }}", "Aé😀A\n\t\\\"'\\d"},
    {"{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % -3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 6 / 2 }} {{ 7.5 // 2 }} "
     "{{ -7.5 % 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ -2 ** 2 }}",
     "3 -4 -2 2 3.5 3.0 3.0 0.5 1024 0.5 4"},
    {"{{ 0.1 + 0.2 }} {{ 1 / 3 }} {{ 1e16 }} {{ 1e15 }} {{ 123456789012345678.0 }} {{ -0.0 }} {{ "
     "1e-4 }} {{ 1e-5 }} {{ 2.5 * 2 }}",
     "0.30000000000000004 0.3333333333333333 1e+16 1000000000000000.0 1.2345678901234568e+17 -0.0 "
     "0.0001 1e-05 5.0"},
    {"{{ true + 1 }} {{ \"ab\" * 2 }} {{ 3 * \"x\" }} {{ [1] + [2] }} {{ (1,) + (2,) }} {{ [0] * 3 "
     "}} {{ \"a\" * -1 }}|",
     "2 abab xxx [1, 2] (1, 2) [0, 0, 0] |"},
    {"{{ none ~ 1 }} {{ 1 ~ 2.0 }} {{ [1] ~ \"x\" }} {{ missing ~ \"x\" }}", "None1 12.0 [1]x x"},
    {"{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ true == 1 }} {{ \"1\" == 1 }} {{ [1, 2] < "
     "[1, 3] }} {{ (1, 2) == [1, 2] }} {{ \"a\" < \"b\" }}",
     "True False True True False True False True"},
    {"{{ t and \"yes\" or \"no\" }} {{ e or \"fallback\" }} {{ 0 and 1 }} {{ [] or {} }} {{ not 0 "
     "}} {{ not \"x\" }}",
     "yes fallback 0 {} True False"},
    {"{{ \"a\" in \"cat\" }} {{ \"z\" not in \"cat\" }} {{ 2 in [1, 2] }} {{ \"a\" in d }} {{ "
     "\"z\" in d }} {{ 1 in [1.0] }} {{ \"x\" in missing }}",
     "True True True True False True False"},
    {"{{ 1 if false }}|{{ 1 if true else 2 }}|{{ \"x\" if not t else \"y\" }}", "|1|y"},
    {"{{ {1: 2, \"1\": 3, 1.0: 4, true: 5} }}", "{1: 5, '1': 3}"},
    {"{{ s[1] }} {{ s[-1] }} {{ s[1:3] }} {{ s[::-1] }} {{ s[:-1] }} {{ s[::2] }} {{ l[1:] }} {{ "
     "l[::-1] }} {{ l[-100:100] }} {{ s[9] }}|",
     "é o él olléh héll hlo [1, 2] [2, 1, 3] [3, 1, 2] |"},
    {"{{ messages[0].role }} {{ messages[1][\"content\"] }} {{ messages.1.role }} {{ "
     "messages[-1].tool_calls[0].function.name }}",
     "system héllo user f"},
    {"{{ d.items is defined }}|{{ d[\"items\"] }}|{{ d.update }}|{{ d.update is defined }}|{{ "
     "d.keys() }}|{{ d.values()|list }}|{{ d.items()|list }}",
     "True|5||False|dict_keys(['a', 'b', 'items'])|[1, [1, 2], 5]|[('a', 1), ('b', [1, 2]), "
     "('items', 5)]"},
    {"{{ range(3) }} {{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }} {{ "
     "range(2, 8, 2) }}",
     "range(0, 3) [0, 1, 2] [1, 4, 7] [5, 3, 1] range(2, 8, 2)"},
    {"{{ s.upper() }} {{ s.title() }} {{ \"they're bill's\".title() }} {{ \"hELLO "
     "wORLD\".capitalize() }} {{ \"ÉCOLE\".lower() }} {{ \"straße\".upper() }} {{ "
     "\"ΣΟΦΟΣ\".lower() }}",
     "HÉLLO Héllo They'Re Bill'S Hello world école STRASSE σοφος"},
    {"{{ \"  x  \".strip() }}|{{ \"xxaxx\".strip(\"x\") }}|{{ \"\n\nx\n\".lstrip(\"\n\") }}|{{ "
     "\"abc\".rstrip(\"cb\") }}",
     "x|a|x\n|a"},
    {"{{ \"a,b,,c\".split(\",\") }} {{ \" a  b \".split() }} {{ \"a b c\".split(\" \", 1) }} {{ "
     "\"a,b,c\".rsplit(\",\", 1) }} {{ \"  a b  \".rsplit(None, 1) }} {{ "
     "\"a\nb\r\nc\".splitlines() }}",
     "['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c'] ['a,b', 'c'] ['  a', 'b'] ['a', 'b', 'c']"},
    {"{{ \"hello\".startswith(\"he\") }} {{ \"hello\".startswith((\"x\", \"h\")) }} {{ "
     "\"hello\".endswith(\"lo\") }} {{ \"hello\".startswith(\"l\", 2) }}",
     "True True True True"},
    {"{{ \"aaa\".replace(\"a\", \"b\", 2) }} {{ \"abc\".replace(\"\", \"-\") }} {{ "
     "\"héllo\".find(\"l\") }} {{ \"héllo\".rfind(\"l\") }} {{ \"héllo\".count(\"l\") }} {{ "
     "\"-\".join([\"a\", \"b\"]) }}",
     "bba -a-b-c- 2 3 2 a-b"},
    {"{{ \"{} and {}\".format(1, \"b\") }} {{ \"{0}{1}{0}\".format(\"a\", \"b\") }} {{ "
     "\"{x}!\".format(x=5) }} {{ \"%s-%d\" % (\"a\", 3) }} {{ \"%5.2f|%-4d|%x|%05d\" % (3.14159, "
     "7, 255, 42) }}",
     "1 and b aba 5! a-3  3.14|7   |ff|00042"},
    {"{{ \"abc\".center(9) }}|{{ \"ab\".ljust(5, \".\") }}|{{ \"42\".zfill(5) }}|{{ "
     "\"a=b=c\".partition(\"=\") }}|{{ \"x.txt\".removesuffix(\".txt\") }}|{{ \"123\".isdigit() }}",
     "   abc   |ab...|00042|('a', '=', 'b=c')|x|True"},
    {"{{ l.index(2) }} {{ l.count(1) }} {{ d.get(\"a\") }} {{ d.get(\"z\") }} {{ d.get(\"z\", 3) "
     "}} {{ (1, 2).count(2) }}",
     "2 1 1 None 3 1"},
};

// StatementCases
const Case kStatementCases[] = {
    {"{% if i > 5 %}big{% elif i > 2 %}mid{% else %}small{% endif %}", "big"},
    {"{% if missing %}a{% elif none %}b{% else %}c{% endif %}", "c"},
    {"{% for x in l %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ "
     "loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}",
     "1032TrueFalse3;2121FalseFalse3;3210FalseTrue3;"},
    {"{% for x in l %}[{{ loop.previtem }}|{{ loop.nextitem }}|{{ loop.cycle(\"a\", \"b\") }}]{% "
     "endfor %}",
     "[|1|a][3|2|b][1||a]"},
    {"{% for x in [1, 1, 2] %}{{ loop.changed(x) }}{% endfor %}{% for x in l %}{{ loop }}{% endfor "
     "%}",
     "TrueFalseTrue<LoopContext 1/3><LoopContext 2/3><LoopContext 3/3>"},
    {"{% for x in [] %}x{% else %}empty{% endfor %}{% for x in missing %}x{% else %}undefined is "
     "empty{% endfor %}",
     "emptyundefined is empty"},
    {"{% for x in l if x > 1 %}{{ x }}/{{ loop.length }} {% endfor %}", "3/2 2/2 "},
    {"{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k, v in d|items %}{{ k }};{% "
     "endfor %}{% for k in d %}{{ k }}{% endfor %}",
     "a=1;b=[1, 2];items=5;a;b;items;abitems"},
    {"{% for a, (b, c) in [(1, (2, 3))] %}{{ a }}{{ b }}{{ c }}{% endfor %}{% for ch in \"héllo\" "
     "%}{{ ch }}.{% endfor %}",
     "123h.é.l.l.o."},
    {"{% for x in [1, 2, 3, 4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break "
     "%}{% endif %}{{ x }}{% endfor %}",
     "13"},
    {"{% for x in range(2) %}{% set outer = loop %}{% for y in range(2) %}{{ outer.index }}{{ "
     "loop.index }} {% endfor %}{% endfor %}",
     "11 12 21 22 "},
    {"{% for x in [1, 2, 3] %}{% if x == 1 %}{% set y = \"a\" %}{% endif %}[{{ y }}]{% endfor %}",
     "[a][][]"},
    {"{% set y = 1 %}{% for x in [1, 2] %}{{ y }}{% set y = 2 %}{{ y }}{% endfor %}{{ y }}",
     "12121"},
    {"{% set y = 1 %}{% if true %}{% set y = 2 %}{% endif %}{{ y }}", "2"},
    {"{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c = 1, 2 %}{{ c }}", "12(1, 2)"},
    {"{% set x %}{{ s }} and {{ i }}{% endset %}[{{ x }}]{% set y | upper %}shout{% endset %}{{ y "
     "}}",
     "[héllo and 7]SHOUT"},
    {"{% set ns = namespace(count=0, found=false) %}{% for m in messages %}{% set ns.count = "
     "ns.count + 1 %}{% if m.role == \"user\" %}{% set ns.found = true %}{% endif %}{% endfor %}{{ "
     "ns.count }} {{ ns.found }} {{ ns }}",
     "3 True <Namespace {'count': 3, 'found': True}>"},
    {"{% set ns = namespace() %}{% set ns.x = [1] %}{{ ns.x }} {{ ns.missing }}|{{ namespace(d, "
     "z=1) }} {{ dict(a=1) }}",
     "[1] |<Namespace {'a': 1, 'b': [1, 2], 'items': 5, 'z': 1}> {'a': 1}"},
    {"{% macro greet(name, greeting=\"Hello\") %}{{ greeting }}, {{ name }}!{% endmacro %}{{ "
     "greet(\"Bo\") }} {{ greet(\"Al\", \"Hi\") }} {{ greet(greeting=\"Yo\", name=\"Cy\") }}",
     "Hello, Bo! Hi, Al! Yo, Cy!"},
    {"{% macro m(a, b=a) %}{{ a }}{{ b }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1) }}|{{ m(1, "
     "2, 3, z=4) }}|{{ m }}|{{ m.name }}",
     "11(){}|12(3,){'z': 4}|<Macro 'm'>|m"},
    {"{% macro m(a) %}[{{ a }}]{% endmacro %}{{ m() }}{% macro n() %}{{ x }}{% endmacro %}{% set x "
     "= 5 %}{{ n() }}",
     "[]5"},
    {"{% macro m(x) %}{{ x }}{% if x > 0 %}{{ m(x - 1) }}{% endif %}{% endmacro %}{{ m(5) }}",
     "543210"},
    {"{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap(\"b\") "
     "%}bold {{ s }}{% endcall %}",
     "<b>bold héllo</b>"},
    {"{% macro each(items) %}{% for it in items %}{{ caller(it) }}{% endfor %}{% endmacro %}{% "
     "call(x) each([1, 2]) %}<{{ x }}>{% endcall %}",
     "<1><2>"},
    {"{% filter upper %}shout {{ s }}{% endfilter %}{% filter replace(\"a\", \"o\") | title "
     "%}banana split{% endfilter %}",
     "SHOUT HÉLLOBonono Split"},
    {"{% set a = 5 %}{% with a = 1, b = a %}{{ a }}{{ b }}{% set c = 3 %}{% endwith %}{{ a }}{{ c "
     "}}",
     "155"},
    {"{% print s, i %}", "héllo7"},
};

// FilterCases
const Case kFilterCases[] = {
    {"{{ -5|abs }} {{ -2.5|abs }} {{ s|capitalize }} {{ \"hello-world foo(bar)\"|title }} {{ "
     "s|upper }} {{ \"ABC\"|lower }} {{ s|center(11) }}|",
     "5 2.5 Héllo Hello-World Foo(Bar) HÉLLO abc    héllo   |"},
    {"{{ \"x\"|default(\"y\") }} {{ missing|default(\"y\") }} {{ \"\"|default(\"y\", true) }} {{ "
     "\"\"|d(\"z\", boolean=true) }} {{ none|default(\"w\") }} {{ missing|d }}|",
     "x y y z None |"},
    {"{{ d|dictsort }} {{ {\"b\": 1, \"A\": 2, \"c\": 0}|dictsort }} {{ {\"b\": 1, \"A\": "
     "2}|dictsort(true) }} {{ {\"b\": 1, \"a\": 2}|dictsort(by=\"value\") }} {{ {\"b\": 1, \"a\": "
     "2}|dictsort(reverse=true) }}",
     "[('a', 1), ('b', [1, 2]), ('items', 5)] [('A', 2), ('b', 1), ('c', 0)] [('A', 2), ('b', 1)] "
     "[('b', 1), ('a', 2)] [('b', 1), ('a', 2)]"},
    {"{{ \"<a href='x'>&</a>\"|e }} {{ \"<b>\"|escape|e }} {{ \"<b>\"|safe }} {{ "
     "(\"<b>\"|safe)|forceescape }} {{ \"<a>\"|e + \"<b>\" }} {{ \"<b>\" + \"<a>\"|e }} {{ "
     "(\"<a>\"|e) ~ \"<\" }}",
     "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt; &lt;b&gt; <b> &lt;b&gt; &lt;a&gt;&lt;b&gt; "
     "&lt;b&gt;&lt;a&gt; &lt;a&gt;<"},
    {"{{ l|first }} {{ l|last }} {{ s|first }} {{ s|last }} {{ d|first }} {{ []|first }}|{{ "
     "missing|first }}|",
     "3 2 h o a ||"},
    {"{{ 3|float }} {{ \"3.5x\"|float }} {{ \"1e3\"|float }} {{ none|float(1) }} {{ true|int }} {{ "
     "3.99|int }} {{ -3.99|int }} {{ \"12abc\"|int }} {{ \" 42 \"|int }} {{ \"3.7\"|int }} {{ "
     "\"x\"|int(5) }} {{ \"ff\"|int(base=16) }} {{ \"0b101\"|int(0) }}",
     "3.0 0.0 1000.0 1 1 3 -3 0 42 3 5 255 0"},
    {"{{ \"a\nb\n\nc\"|indent }}|{{ \"a\nb\"|indent(2, true) }}|{{ \"a\n\nb\"|indent(\"> \", "
     "blank=true) }}|{{ \"\"|indent }}",
     "a\n    b\n\n    c|  a\n  b|a\n> \n> b|"},
    {"{{ l|join(\", \") }} {{ users|join(\", \", attribute=\"name\") }} {{ l|join }} {{ [1, none, "
     "\"x\"]|join(\"-\") }}",
     "3, 1, 2 bo, Al, cy 312 1-None-x"},
    {"{{ d|length }} {{ s|count }} {{ missing|length }} {{ (1, 2)|length }} {{ range(5)|length }} "
     "{{ messages|length }}",
     "3 5 0 2 5 3"},
    {"{{ l|list }} {{ s|list }} {{ d|list }} {{ missing|list }} {{ (1, 2)|list }}",
     "[3, 1, 2] ['h', 'é', 'l', 'l', 'o'] ['a', 'b', 'items'] [] [1, 2]"},
    {"{{ users|map(attribute=\"name\")|join(\"/\") }} {{ users|map(attribute=\"zzz\", "
     "default=\"?\")|list }} {{ [\"a\", \"b\"]|map(\"upper\")|list }} {{ [1.5, "
     "2.5]|map(\"round\")|list }}",
     "bo/Al/cy ['?', '?', '?'] ['A', 'B'] [2.0, 2.0]"},
    {"{{ l|max }} {{ l|min }} {{ words|max }} {{ users|max(attribute=\"age\") }} {{ "
     "users|min(attribute=\"name\") }} {{ []|max }}|",
     "3 1 c {'name': 'Al', 'age': 5} {'name': 'Al', 'age': 5} |"},
    {"{{ \"aaa\"|replace(\"a\", \"b\", 1) }} {{ s|replace(\"l\", \"L\") }} {{ 123|replace(\"2\", "
     "\"x\") }}",
     "baa héLLo 1x3"},
    {"{{ l|reverse|list }} {{ s|reverse }} {{ d|reverse|list }}",
     "[2, 1, 3] olléh ['items', 'b', 'a']"},
    {"{{ 5|round }} {{ 2.5|round }} {{ 3.5|round }} {{ 2.675|round(2) }} {{ "
     "5|round(method=\"floor\") }} {{ 2.5|round(method=\"ceil\") }} {{ 1.23456|round(3, \"floor\") "
     "}}",
     "5 2.0 4.0 2.67 5.0 3.0 1.234"},
    {"{{ [0, 1, 2, none]|select|list }} {{ [1, 2, 3, 4]|reject(\"odd\")|list }} {{ [1, 2, "
     "3]|select(\"in\", [2, 3])|list }} {{ messages|selectattr(\"role\", \"equalto\", "
     "\"user\")|list|length }}",
     "[1, 2] [2, 4] [2, 3] 1"},
    {"{{ users|selectattr(\"age\", \"equalto\", 3)|map(attribute=\"name\")|list }} {{ "
     "users|rejectattr(\"age\", \"gt\", 3)|list|length }} {{ "
     "messages|selectattr(\"tool_calls\")|list|length }}",
     "['bo', 'cy'] 2 1"},
    {"{{ l|sort }} {{ words|sort }} {{ words|sort(case_sensitive=true) }} {{ l|sort(reverse=true) "
     "}} {{ users|sort(attribute=\"age,name\")|map(attribute=\"name\")|list }}",
     "[1, 2, 3] ['A', 'b', 'c'] ['A', 'b', 'c'] [3, 2, 1] ['bo', 'cy', 'Al']"},
    {"{{ 255|string }} {{ none|string }} {{ [1]|string }} {{ missing|string }}|{{ 1.0|string }}",
     "255 None [1] |1.0"},
    {"{{ l|sum }} {{ users|sum(attribute=\"age\") }} {{ [1.5, 2]|sum }} {{ [[1], "
     "[2]]|sum(start=[]) }}",
     "6 11 3.5 [1, 2]"},
    {"{{ \"  x \"|trim }}|{{ \"xax\"|trim(\"x\") }}|{{ missing|trim }}|", "x|a||"},
    {"{{ \"hello world foo\"|truncate(9) }}|{{ \"hello world foo\"|truncate(9, true) }}|{{ "
     "\"hello\"|truncate(5) }}|{{ \"hello world, how are you\"|truncate(12, leeway=0) }}",
     "hello...|hello ...|hello|hello..."},
    {"{{ [\"a\", \"A\", \"b\", \"a\"]|unique|list }} {{ [\"a\", "
     "\"A\"]|unique(case_sensitive=true)|list }} {{ "
     "users|unique(attribute=\"age\")|map(attribute=\"name\")|list }}",
     "['a', 'b'] ['a', 'A'] ['bo', 'Al']"},
    {"{{ \"a b\tc, d_e\"|wordcount }} {{ \"Ünïcode wörds\"|wordcount }}", "4 2"},
    {"{{ \"%s=%d\"|format(\"x\", 3) }} {{ d|attr(\"a\") }}|{{ d|attr(\"items\") is defined }}",
     "x=3 |True"},
};

// TojsonCases
const Case kTojsonCases[] = {
    {"{{ d|tojson }}", "{\"a\": 1, \"b\": [1, 2], \"items\": 5}"},
    {"{{ messages[2].tool_calls[0].function.arguments|tojson }}",
     "{\"b\": 1, \"a\": [1, 2.5, true, null]}"},
    {"{{ d|tojson(indent=2) }}",
     "{\n  \"a\": 1,\n  \"b\": [\n    1,\n    2\n  ],\n  \"items\": 5\n}"},
    {"{{ l|tojson(indent=\"\t\") }}", "[\n\t3,\n\t1,\n\t2\n]"},
    {"{{ [[], {}, [1]]|tojson(indent=1) }}", "[\n [],\n {},\n [\n  1\n ]\n]"},
    {"{{ {\"b\": 1, \"a\": [1, 2]}|tojson(sort_keys=true) }}", "{\"a\": [1, 2], \"b\": 1}"},
    {"{{ d|tojson(separators=(\",\", \":\")) }}", "{\"a\":1,\"b\":[1,2],\"items\":5}"},
    {"{{ \"é ✓ \n \\\" \\\\ \\x01 \\x7f\"|tojson }}",
     "\"é ✓ \\n \\\" \\\\ \\u0001 \x7f"
     "\""},
    {"{{ \"é ✓ 😀\"|tojson(ensure_ascii=true) }}", "\"\\u00e9 \\u2713 \\ud83d\\ude00\""},
    {"{{ {\"a\": none, 1: true, 2.5: false, none: 1}|tojson }}",
     "{\"a\": null, \"1\": true, \"2.5\": false, \"null\": 1}"},
    {"{{ [1.0, 1e-7, 1e21, -0.0, 100]|tojson }}", "[1.0, 1e-07, 1e+21, -0.0, 100]"},
    {"{{ (\"x\",)|tojson }}", "[\"x\"]"},
};

// TestCases
const Case kTestCases[] = {
    {"{{ missing is defined }} {{ missing is undefined }} {{ n is none }} {{ t is boolean }} {{ t "
     "is true }} {{ t is false }} {{ 1 is true }}",
     "False True True True True False False"},
    {"{{ i is integer }} {{ t is integer }} {{ f is float }} {{ i is number }} {{ t is number }} "
     "{{ s is string }} {{ d is mapping }} {{ l is mapping }}",
     "True False True True True True True False"},
    {"{{ s is iterable }} {{ i is iterable }} {{ missing is iterable }} {{ n is iterable }} {{ d "
     "is sequence }} {{ l is sequence }} {{ d.items() is sequence }}",
     "True False True False True True False"},
    {"{{ \"abc\" is lower }} {{ \"ABC\" is upper }} {{ \"aB\" is lower }} {{ 3 is odd }} {{ 4 is "
     "even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(2) }}",
     "True True False True True True False"},
    {"{{ t is sameas true }} {{ none is sameas none }} {{ 1 is sameas 1 }} {{ l is sameas l }} {{ "
     "missing is callable }} {{ range is callable }}",
     "True True True True True True"},
    {"{{ 2 is in [1, 2] }} {{ 1 is eq 1 }} {{ 1 is equalto 2 }} {{ 1 is ne 2 }} {{ 2 is gt 1 }} {{ "
     "2 is ge 2 }} {{ 1 is lt 2 }} {{ 1 is le 0 }} {{ 1 is greaterthan 0 }} {{ 1 is lessthan 0 }}",
     "True True False True True True True False True False"},
    {"{{ \"upper\" is filter }} {{ \"nope\" is filter }} {{ \"odd\" is test }} {{ (\"x\"|e) is "
     "escaped }} {{ \"x\" is escaped }} {{ s is not string }}",
     "True False True True False False"},
};

// UndefinedCases
const Case kUndefinedCases[] = {
    {"[{{ missing }}] [{{ d.missing }}] [{{ n.attr }}] [{{ l[10] }}] [{{ missing|length }}] [{{ "
     "missing ~ \"x\" }}] [{{ not missing }}]",
     "[] [] [] [] [0] [x] [True]"},
    {"{{ missing == missing }} {{ missing != 1 }} {{ missing in [1] }} {{ missing is defined }}",
     "True True False False"},
    {"{% for x in missing %}x{% endfor %}{{ missing|join }}|{{ missing|list }}|{{ missing|sort "
     "}}|{{ missing|sum }}|{{ missing|items|list }}|{{ missing|reverse|list }}|{{ missing|upper "
     "}}|{{ missing|wordcount }}",
     "|[]|[]|0|[]|[]||0"},
    {"{{ missing|center(4) }}|{{ missing|title }}|{{ missing|min }}|{{ missing|select|list }}|{{ "
     "missing|unique|list }}",
     "    |||[]|[]"},
};

TEST(ChatTemplateTest, WhitespaceControlMatchesJinja2) {
  ExpectJinja2Renderings(std::begin(kWhitespaceCases), std::end(kWhitespaceCases));
}

TEST(ChatTemplateTest, ExpressionsMatchJinja2) {
  ExpectJinja2Renderings(std::begin(kExpressionCases), std::end(kExpressionCases));
}

TEST(ChatTemplateTest, StatementsMatchJinja2) {
  ExpectJinja2Renderings(std::begin(kStatementCases), std::end(kStatementCases));
}

TEST(ChatTemplateTest, FiltersMatchJinja2) {
  ExpectJinja2Renderings(std::begin(kFilterCases), std::end(kFilterCases));
}

TEST(ChatTemplateTest, TojsonMatchesHuggingFace) {
  ExpectJinja2Renderings(std::begin(kTojsonCases), std::end(kTojsonCases));
}

TEST(ChatTemplateTest, TestsMatchJinja2) {
  ExpectJinja2Renderings(std::begin(kTestCases), std::end(kTestCases));
}

TEST(ChatTemplateTest, UndefinedBehavesAsJinja2Undefined) {
  ExpectJinja2Renderings(std::begin(kUndefinedCases), std::end(kUndefinedCases));
}

// ---- Context ---------------------------------------------------------------------

TEST(ChatTemplateTest, ContextKeyOrderIsKept) {
  auto context =
      nlohmann::ordered_json::parse(R"({"obj": {"z": 1, "a": 2, "m": {"y": 0, "b": 1}}})");
  auto result = Render("{{ obj|tojson }} {{ obj }} {% for k in obj %}{{ k }}{% endfor %}", context);
  ASSERT_TRUE(result.has_value()) << result.error().ToString();
  EXPECT_EQ(
      *result,
      R"({"z": 1, "a": 2, "m": {"y": 0, "b": 1}} {'z': 1, 'a': 2, 'm': {'y': 0, 'b': 1}} zam)");
}

TEST(ChatTemplateTest, ContextMustBeAnObject) {
  Status error = RenderError("x", nlohmann::ordered_json::array());
  EXPECT_EQ(error.code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(error.message(), HasSubstr("JSON object"));
}

TEST(ChatTemplateTest, ContextValuesBecomePythonValues) {
  auto context = nlohmann::ordered_json::parse(
      R"({"i": 9007199254740993, "u": 18446744073709551615, "f": 2.0, "b": false, "n": null})");
  context.erase("u");
  auto result =
      Render("{{ i }} {{ f }} {{ b }} {{ n }} {{ i is integer }} {{ f is float }}", context);
  ASSERT_TRUE(result.has_value()) << result.error().ToString();
  EXPECT_EQ(*result, "9007199254740993 2.0 False None True True");

  // Integers beyond 64 bits are refused rather than rounded.
  auto big = nlohmann::ordered_json::parse(R"({"u": 18446744073709551615})");
  EXPECT_EQ(RenderError("{{ u }}", big).code(), Status::Code::kInvalidArgument);
}

TEST(ChatTemplateTest, DeeplyNestedContextIsRefused) {
  nlohmann::ordered_json value = 1;
  for (int n = 0; n < 1000; ++n) value = nlohmann::ordered_json::array({value});
  nlohmann::ordered_json context = {{"v", value}};
  Status error = RenderError("{{ v|length }}", context);
  EXPECT_EQ(error.code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(error.message(), HasSubstr("nested too deeply"));
}

TEST(ChatTemplateTest, InvalidUtf8PassesThroughUnchanged) {
  std::string source = "a\xff\xfe{{ s }}\xc3";
  auto context = nlohmann::ordered_json::parse(R"({"s": "b"})");
  auto result = Render(source, context);
  ASSERT_TRUE(result.has_value()) << result.error().ToString();
  EXPECT_EQ(*result,
            "a\xff\xfe"
            "b\xc3");
}

// ---- Globals -----------------------------------------------------------------------

TEST(ChatTemplateTest, RaiseExceptionIsFailedPreconditionWithTheExactMessage) {
  // Gemma 2's check, verbatim.
  constexpr const char* kGemma =
      "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
      "supported') }}{% endif %}{% for message in messages %}{{ message['content'] }}{% endfor %}";
  Status error = RenderError(kGemma);
  EXPECT_EQ(error.code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(error.message(), "System role not supported");

  auto user_only = nlohmann::ordered_json::parse(
      R"({"bos_token": "<bos>", "messages": [{"role": "user", "content": "hi"}]})");
  auto result = Render(kGemma, user_only);
  ASSERT_TRUE(result.has_value()) << result.error().ToString();
  EXPECT_EQ(*result, "<bos>hi");

  // The argument is str()-ed, as Python's exception message is.
  EXPECT_EQ(RenderError("{{ raise_exception(5) }}").message(), "5");
  EXPECT_EQ(RenderError("{{ raise_exception('a ' ~ s) }}").message(), "a héllo");
}

TEST(ChatTemplateTest, StrftimeNowUsesTheConfiguredClock) {
  auto result = Render(
      "{{ strftime_now('%Y') }}|{{ strftime_now('%f') }}|{{ strftime_now('%z%Z') }}|"
      "{{ strftime_now('%%') }}|{{ strftime_now is defined }}");
  ASSERT_TRUE(result.has_value()) << result.error().ToString();
  EXPECT_EQ(*result, "2025|000000||%|True");
}

TEST(ChatTemplateTest, RangeIsCappedAsInTheSandbox) {
  EXPECT_THAT(RenderError("{{ range(100001)|length }}").message(), HasSubstr("MAX_RANGE (100000)"));
  auto result = Render("{{ range(100000)|length }}");
  ASSERT_TRUE(result.has_value()) << result.error().ToString();
  EXPECT_EQ(*result, "100000");
}

TEST(ChatTemplateTest, GenerationTagRendersItsBody) {
  auto result = Render("{% generation %}{% set x = 1 %}{{ s }}{% endgeneration %}[{{ x }}]");
  ASSERT_TRUE(result.has_value()) << result.error().ToString();
  EXPECT_EQ(*result, "héllo[]");
}

// ---- Errors ---------------------------------------------------------------------

TEST(ChatTemplateTest, SyntaxErrorsNameTheLineColumnAndWhatWasExpected) {
  struct SyntaxCase {
    const char* source;
    const char* message;
  };
  const SyntaxCase cases[] = {
      {"line1\n{% if x %}\nunterminated",
       "line 3, column 13: unexpected end of template; expected 'elif', 'else' or 'endif' to "
       "close the 'if' block"},
      {"{% for x in l %}\n  {{ x }\n{% endfor %}", "line 2, column 8: unexpected '}'"},
      {"{% for x in l %}{% endif %}",
       "line 1, column 20: unknown tag 'endif'; expected 'endfor' or 'else' to close the 'for' "
       "block"},
      {"{{ x|nofilter }}", "line 1, column 6: no filter named 'nofilter'"},
      {"{{ x is nosuchtest }}", "line 1, column 6: no test named 'nosuchtest'"},
      {"{% for x in l %}{{ x|nofilter if t }}{% endfor %}{{ 1|nofilter2 }}",
       "no filter named 'nofilter2'"},
      {"ok\n\n   {% foo %}", "line 3, column 7: unknown tag 'foo'"},
      {"a\n  {{ 'abc }}", "line 2, column 6: unterminated string literal"},
      {"{# x", "line 1, column 1: missing end of comment tag"},
      {"{% raw %}x", "line 1, column 1: missing end of raw directive"},
      {"{{ 1 +}}", "line 1, column 7: unexpected end of print statement"},
      {"{{ a b }}", "line 1, column 6: expected end of print statement, got 'b'"},
      {"{{ (1 ]}}", "line 1, column 7: unexpected ']', expected ')'"},
      {"{% macro m(a=1, b) %}{% endmacro %}",
       "line 1, column 17: non-default argument follows default argument"},
      {"{% break %}", "line 1, column 4: 'break' outside of a for loop"},
      {"{% for i in l %}{% macro m() %}{% break %}{% endmacro %}{% endfor %}",
       "'break' outside of a for loop"},
      {"{{ x is defined is defined }}", "you cannot chain multiple tests with is"},
      {"{% %}", "line 1, column 4: tag name expected"},
      {"{{ x $ y }}", "line 1, column 6: unexpected character '$'"},
      {"\xc3\xa9\n  \xc3\xa9 {{ x + }}", "line 2, column 12: unexpected end of print statement"},
      {"{% set 1 = 2 %}", "can't assign"},
  };
  for (const SyntaxCase& c : cases) {
    auto parsed = ChatTemplate::Parse(c.source);
    ASSERT_FALSE(parsed.has_value()) << c.source;
    EXPECT_EQ(parsed.error().code(), Status::Code::kInvalidArgument) << c.source;
    EXPECT_THAT(parsed.error().message(), StartsWith("chat template syntax error at line "));
    EXPECT_THAT(parsed.error().message(), HasSubstr(c.message)) << c.source;
  }
}

TEST(ChatTemplateTest, UnknownFiltersInConditionalCodeFailOnlyWhenUsed) {
  // As in Jinja2: inside an if statement or a conditional expression an
  // unknown filter or test is an error only if it is evaluated.
  auto result = Render(
      "{% if false %}{{ x|nofilter }}{% elif false %}{{ x is nosuchtest }}{% endif %}"
      "{{ s|nofilter if false else 'ok' }}");
  ASSERT_TRUE(result.has_value()) << result.error().ToString();
  EXPECT_EQ(*result, "ok");
}

TEST(ChatTemplateTest, UnsupportedConstructsAreRefusedByName) {
  struct Refused {
    const char* source;
    const char* message;
  };
  // Parse-time refusals.
  const Refused at_parse[] = {
      {"{% include 'x' %}", "'include' tag is not supported"},
      {"{% extends 'x' %}", "'extends' tag is not supported"},
      {"{% import 'x' as y %}", "'import' tag is not supported"},
      {"{% from 'x' import y %}", "'from' tag is not supported"},
      {"{% block b %}{% endblock %}", "'block' tag is not supported"},
      {"{% autoescape true %}{% endautoescape %}", "'autoescape' tag is not supported"},
      {"{% for i in l recursive %}{% endfor %}", "recursive for loops are not supported"},
      {"{{ f(*l) }}", "*args and **kwargs in calls are not supported"},
      {"{{ f(**d) }}", "*args and **kwargs in calls are not supported"},
      {"{{ 99999999999999999999 }}", "integer literal too large"},
      {"{{ caf\xc3\xa9 }}", "non-ASCII names are not supported"},
      {"{{ \"\\N{DASH}\" }}", "\\N{...} escapes are not supported"},
      {"{% do x %}", "unknown tag 'do'"},
  };
  for (const Refused& c : at_parse) {
    auto parsed = ChatTemplate::Parse(c.source);
    ASSERT_FALSE(parsed.has_value()) << c.source;
    EXPECT_EQ(parsed.error().code(), Status::Code::kInvalidArgument) << c.source;
    EXPECT_THAT(parsed.error().message(), HasSubstr(c.message)) << c.source;
  }
  // Render-time refusals (Jinja2 knows these; xnai names what it lacks).
  const Refused at_render[] = {
      {"{{ s|pprint }}", "the 'pprint' filter is not supported"},
      {"{{ l|batch(2)|list }}", "the 'batch' filter is not supported"},
      {"{{ l|groupby('x') }}", "the 'groupby' filter is not supported"},
      {"{{ s.encode() }}", "str.encode() is not supported"},
      {"{{ l.pop() }}", "list.pop() (templates cannot modify values) is not supported"},
      {"{{ lipsum() }}", "the global function 'lipsum' is not supported"},
      {"{% set ns = namespace() %}{% set ns.me = [ns] %}",
       "storing a namespace inside a namespace is not supported"},
      {"{{ 2 ** 64 }}", "integer overflow"},
      {"{{ d.keys }}", "cannot print the function 'keys'"},
      {"{{ l|select }}", "cannot print a generator"},
      {"{{ '{:>5}'.format(1) }}", "format specs and field access in str.format()"},
      {"{{ '%c' % 65 }}", "the %c conversion is not supported"},
  };
  for (const Refused& c : at_render) {
    Status error = RenderError(c.source);
    EXPECT_EQ(error.code(), Status::Code::kInvalidArgument) << c.source;
    EXPECT_THAT(error.message(), HasSubstr(c.message)) << c.source;
  }
}

TEST(ChatTemplateTest, RuntimeErrorsAreInvalidArgumentWithTheLine) {
  struct RuntimeCase {
    const char* source;
    const char* message;
  };
  const RuntimeCase cases[] = {
      {"x\n{{ d.c.b }}", "line 2: 'dict object' has no attribute 'c'"},
      {"{{ missing.attr }}", "'missing' is undefined"},
      {"{{ missing + 1 }}", "'missing' is undefined"},
      {"{{ missing() }}", "'missing' is undefined"},
      {"{{ missing|int }}", "'missing' is undefined"},
      {"{{ (1 if false).x }}", "the inline if-expression on line 1 evaluated to false"},
      {"{{ 'a' + 1 }}", "can only concatenate str (not \"int\") to str"},
      {"{{ 1 < 'a' }}", "'<' not supported between instances of 'int' and 'str'"},
      {"{{ 1 / 0 }}", "division by zero"},
      {"{{ s() }}", "'str' object is not callable"},
      {"{% if x is nosuchtest %}{% endif %}", "no test named 'nosuchtest'"},
      {"{% if t %}{{ x|nofilter }}{% endif %}", "no filter named 'nofilter'"},
      {"{{ [1]|map('nofilter')|list }}", "no filter named 'nofilter'"},
      {"{{ 5|length }}", "object of type 'int' has no len()"},
      {"{% for x in 5 %}{% endfor %}", "'int' object is not iterable"},
      {"{% set a, b = [1] %}", "not enough values to unpack (expected 2, got 1)"},
      {"{% set x = 5 %}{% set x.y = 1 %}", "cannot assign attribute on non-namespace object"},
      {"{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}",
       "macro 'm' takes not more than 1 argument(s)"},
      {"{% macro m(a) %}{% endmacro %}{{ m(b=2) }}", "macro 'm' takes no keyword argument 'b'"},
      {"{{ s.strip(1) }}", "must be a string"},
      {"{{ s.upper(1) }}", "upper() takes no arguments"},
      {"{{ [1, 'a']|sort }}", "'<' not supported between instances of 'str' and 'int'"},
      {"{{ {[1]: 2} }}", "unhashable type: 'list'"},
      {"{{ missing|tojson }}", "Object of type Undefined is not JSON serializable"},
      {"{{ l[1:2:0] }}", "slice step cannot be zero"},
      {"{{ d[1:2] }}", "unhashable type: 'slice'"},
      {"{{ '%d' % 'x' }}", "%d format: a real number is required, not str"},
  };
  for (const RuntimeCase& c : cases) {
    Status error = RenderError(c.source);
    EXPECT_EQ(error.code(), Status::Code::kInvalidArgument) << c.source << ": " << error.ToString();
    EXPECT_THAT(error.message(), StartsWith("chat template error at line ")) << c.source;
    EXPECT_THAT(error.message(), HasSubstr(c.message)) << c.source;
  }
}

// ---- Hostile templates ----------------------------------------------------------

std::string Repeat(std::string_view piece, int times) {
  std::string out;
  for (int n = 0; n < times; ++n) out += piece;
  return out;
}

TEST(ChatTemplateTest, DeepNestingFailsToParseCleanly) {
  const std::string sources[] = {
      "{{ " + Repeat("(", 100000) + "1" + Repeat(")", 100000) + " }}",
      "{{ " + Repeat("[", 100000) + "1" + Repeat("]", 100000) + " }}",
      "{{ " + Repeat("{'a': ", 10000) + "1" + Repeat("}", 10000) + " }}",
      "{{ a" + Repeat(".b", 100000) + " }}",
      "{{ 1" + Repeat(" + 1", 100000) + " }}",
      "{{ 1" + Repeat("|abs", 100000) + " }}",
      "{{ " + Repeat("not ", 100000) + "1 }}",
      "{{ " + Repeat("-", 100000) + "1 }}",
      "{{ 1" + Repeat(" if 1 else 1", 100000) + " }}",
      "{{ 1" + Repeat(" ~ 1", 100000) + " }}",
      "{{ 1" + Repeat(" < 1", 100000) + " }}",
      Repeat("{% if 1 %}", 100000) + "x" + Repeat("{% endif %}", 100000),
      Repeat("{% for i in l %}", 100000),
      Repeat("{% macro m() %}", 100000),
  };
  for (const std::string& source : sources) {
    auto parsed = ChatTemplate::Parse(source);
    ASSERT_FALSE(parsed.has_value()) << source.substr(0, 40);
    EXPECT_EQ(parsed.error().code(), Status::Code::kInvalidArgument);
    EXPECT_THAT(parsed.error().message(),
                ::testing::AnyOf(HasSubstr("nested too deeply"), HasSubstr("too long")))
        << source.substr(0, 40);
  }
}

TEST(ChatTemplateTest, ModerateNestingStillWorks) {
  auto result =
      Render("{{ " + Repeat("(", 50) + "1" + Repeat(")", 50) + " }}" + Repeat("{% if 1 %}", 50) +
             "x" + Repeat("{% endif %}", 50) + "{{ 1" + Repeat(" + 1", 150) + " }}");
  ASSERT_TRUE(result.has_value()) << result.error().ToString();
  EXPECT_EQ(*result, "1x151");
}

TEST(ChatTemplateTest, RunawayTemplatesHitALimit) {
  struct Runaway {
    std::string source;
    const char* message;
  };
  const Runaway cases[] = {
      {"{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
       "too many loop iterations"},
      {"{% for i in range(100000) %}{% for j in range(100000) %}xxxxxxxx{% endfor %}{% endfor %}",
       "output exceeds 4194304 bytes"},
      {"{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
       "{% endfor %}",
       "exceeds 4194304 bytes"},
      {"{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}"
       "{% endfor %}",
       "too many items"},
      {"{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}"
       "{% endfor %}",
       "value nested too deeply"},
      {"{% macro m(x) %}{{ m(x) }}{% endmacro %}{{ m(1) }}", "recursion too deep"},
      {"{% macro m(n) %}{% if n > 0 %}{{ m(n - 1) }}{{ m(n - 1) }}{% endif %}{% endmacro %}"
       "{{ m(60) }}",
       "too much work"},
      {"{{ 'x' * 1000000000 }}", "exceeds 4194304 bytes"},
      {"{{ [1] * 1000000000 }}", "too many items"},
      {"{{ ('x' * 100000).replace('x', 'x' * 100000) }}", "exceeds 4194304 bytes"},
      {"{% set s = 'x' * 4000000 %}{{ [s] * 10 }}", "exceeds 4194304 bytes"},
      {"{{ 'x'|center(1000000000) }}", "exceeds 4194304 bytes"},
      {"{{ ('x,' * 2000000).split(',')|length }}", "too many items"},
      {"{{ range(100000)|list|tojson(indent=1000) }}", "exceeds 4194304 bytes"},
  };
  for (const Runaway& c : cases) {
    const auto start = std::chrono::steady_clock::now();
    Status error = RenderError(c.source);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(error.code(), Status::Code::kInvalidArgument) << c.source << ": " << error.ToString();
    EXPECT_THAT(error.message(), HasSubstr(c.message)) << c.source;
    EXPECT_LT(elapsed, std::chrono::seconds(20)) << c.source;
  }
}

TEST(ChatTemplateTest, LimitsAreConfigurable) {
  RenderOptions options = Pinned();
  options.limits.max_output_bytes = 10;
  EXPECT_THAT(RenderError("{{ 'x' * 11 }}", Context(), options).message(),
              HasSubstr("exceeds 10 bytes"));
  EXPECT_TRUE(Render("{{ 'x' * 10 }}", Context(), options).has_value());

  options = Pinned();
  options.limits.max_loop_iterations = 5;
  EXPECT_THAT(RenderError("{% for i in range(6) %}{% endfor %}", Context(), options).message(),
              HasSubstr("too many loop iterations (limit 5)"));

  options = Pinned();
  options.limits.max_depth = 30;
  EXPECT_THAT(RenderError("{% macro m(n) %}{% if n %}{{ m(n - 1) }}{% endif %}{% endmacro %}"
                          "{{ m(20) }}",
                          Context(), options)
                  .message(),
              HasSubstr("recursion too deep (limit 30)"));

  options = Pinned();
  options.limits.max_work = 1000;
  EXPECT_THAT(
      RenderError("{% for i in range(1000) %}{{ i }}{% endfor %}", Context(), options).message(),
      HasSubstr("too much work"));
}

TEST(ChatTemplateTest, GarbageNeverCrashes) {
  // Fragments of template syntax glued together in many orders; each must
  // parse and render, or fail with InvalidArgument/FailedPrecondition.
  const std::string_view pieces[] = {"{{",
                                     "}}",
                                     "{%",
                                     "%}",
                                     "{#",
                                     "#}",
                                     "-",
                                     "+",
                                     "if",
                                     "for",
                                     "in",
                                     "endif",
                                     "endfor",
                                     "x",
                                     "(",
                                     ")",
                                     "[",
                                     "]",
                                     "{",
                                     "}",
                                     "'",
                                     "\"",
                                     "|",
                                     "upper",
                                     "is",
                                     "not",
                                     "defined",
                                     ".",
                                     ",",
                                     "=",
                                     "set",
                                     "macro",
                                     "endmacro",
                                     "raw",
                                     "endraw",
                                     "1",
                                     "1.5",
                                     "~",
                                     "\n",
                                     " ",
                                     "\\",
                                     "\xff",
                                     "messages",
                                     "loop",
                                     "ns",
                                     "namespace",
                                     "raise_exception",
                                     "else",
                                     "call",
                                     "caller"};
  uint64_t seed = 12345;
  auto next = [&seed] {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<size_t>(seed >> 33);
  };
  for (int round = 0; round < 3000; ++round) {
    std::string source;
    const size_t length = next() % 40;
    for (size_t n = 0; n < length; ++n) source += pieces[next() % std::size(pieces)];
    auto parsed = ChatTemplate::Parse(source);
    if (!parsed) {
      EXPECT_EQ(parsed.error().code(), Status::Code::kInvalidArgument) << source;
      continue;
    }
    auto rendered = parsed->Render(Context(), Pinned());
    if (!rendered) {
      EXPECT_THAT(rendered.error().code(), ::testing::AnyOf(Status::Code::kInvalidArgument,
                                                            Status::Code::kFailedPrecondition))
          << source;
    }
  }
}

// ---- Threads --------------------------------------------------------------------

TEST(ChatTemplateTest, ParseOnceRenderConcurrently) {
  constexpr const char* kTemplate =
      "{% set ns = namespace(n=0) %}{% macro show(m) %}<{{ m.role }}:{{ m.content|trim }}>"
      "{% endmacro %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{{ show(m) }}{% endfor %}"
      "{{ ns.n }}{{ messages[2].tool_calls[0].function.arguments|tojson }}";
  auto parsed = ChatTemplate::Parse(kTemplate);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().ToString();
  const ChatTemplate copy = *parsed;  // copies share the parsed program
  auto expected = copy.Render(Context());
  ASSERT_TRUE(expected.has_value()) << expected.error().ToString();
  EXPECT_EQ(*expected,
            "<system:sys><user:héllo><assistant:hi>3{\"b\": 1, \"a\": [1, 2.5, true, null]}");
  std::vector<std::thread> threads;
  std::vector<int> mismatches(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int n = 0; n < 200; ++n) {
        auto result = (n % 2 == 0 ? *parsed : copy).Render(Context());
        if (!result || *result != *expected) ++mismatches[static_cast<size_t>(t)];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

}  // namespace
}  // namespace xnai::engine
