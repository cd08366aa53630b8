#include "index/lexical.h"

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "store/store.h"
#include "store/store_test_util.h"

namespace xnai::index {
namespace {

using store::kMarkBegin;
using store::kMarkEnd;
using store::testing::MakeDocument;
using store::testing::TempDir;

// True if `s` is well-formed UTF-8.
bool IsValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xE  ? 3
                 : (c >> 3) == 0x1E ? 4
                                    : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

// The shape every expression must have: "t1" OR "t2" ... with non-empty
// terms, balanced quotes, no control bytes, valid UTF-8.
void ExpectWellFormed(const std::string& expression) {
  ASSERT_FALSE(expression.empty());
  EXPECT_TRUE(IsValidUtf8(expression)) << expression;
  for (char c : expression) {
    EXPECT_GE(static_cast<unsigned char>(c), 0x20) << "control byte in " << expression;
  }
  size_t pos = 0;
  while (true) {
    ASSERT_LT(pos, expression.size());
    ASSERT_EQ(expression[pos], '"') << expression;
    size_t close = pos + 1;
    while (true) {
      close = expression.find('"', close);
      ASSERT_NE(close, std::string::npos) << "unterminated string in " << expression;
      if (close + 1 < expression.size() && expression[close + 1] == '"') {
        close += 2;  // a doubled quote inside the string
        continue;
      }
      break;
    }
    EXPECT_GT(close, pos + 1) << "empty term in " << expression;
    pos = close + 1;
    if (pos == expression.size()) break;
    ASSERT_EQ(expression.compare(pos, 4, " OR "), 0) << expression;
    pos += 4;
  }
}

std::string Expr(std::string_view text, int max_terms = 64) {
  auto expression = BuildFtsQuery(text, max_terms);
  EXPECT_TRUE(expression.has_value()) << expression.error().ToString();
  return expression.value_or("");
}

void ExpectNoWords(std::string_view text) {
  auto expression = BuildFtsQuery(text);
  ASSERT_FALSE(expression.has_value()) << "got " << *expression;
  EXPECT_EQ(expression.error().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(expression.error().message(), "query has no searchable words");
}

TEST(BuildFtsQueryTest, QuotesEachWordAndJoinsWithOr) {
  EXPECT_EQ(Expr("hello"), "\"hello\"");
  EXPECT_EQ(Expr("hello world"), "\"hello\" OR \"world\"");
  EXPECT_EQ(Expr("  How do I install it?  "),
            "\"how\" OR \"do\" OR \"i\" OR \"install\" OR \"it\"");
  EXPECT_EQ(Expr("v2.1 release-notes_2024"),
            "\"v2\" OR \"1\" OR \"release\" OR \"notes\" OR \"2024\"");
}

TEST(BuildFtsQueryTest, DropsDuplicatesIgnoringAsciiCase) {
  EXPECT_EQ(Expr("Foo foo FOO bar foo"), "\"foo\" OR \"bar\"");
}

TEST(BuildFtsQueryTest, CapsTheNumberOfTerms) {
  std::string many;
  for (int i = 0; i < 200; ++i) many += "w" + std::to_string(i) + " ";
  std::string expression = Expr(many);
  ExpectWellFormed(expression);
  EXPECT_EQ(std::count(expression.begin(), expression.end(), '"'), 2 * 64);
  EXPECT_EQ(Expr(many, 3), "\"w0\" OR \"w1\" OR \"w2\"");
  // Duplicates do not use up the budget.
  EXPECT_EQ(Expr("a a a a b c", 2), "\"a\" OR \"b\"");
  EXPECT_EQ(BuildFtsQuery("word", 0).error().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(BuildFtsQuery("word", -1).error().code(), Status::Code::kInvalidArgument);
}

TEST(BuildFtsQueryTest, OperatorsBecomePlainWords) {
  EXPECT_EQ(Expr("cats AND dogs"), "\"cats\" OR \"and\" OR \"dogs\"");
  EXPECT_EQ(Expr("AND OR NOT NEAR("), "\"and\" OR \"or\" OR \"not\" OR \"near\"");
  EXPECT_EQ(Expr("NEAR(a b, 5)"), "\"near\" OR \"a\" OR \"b\" OR \"5\"");
  EXPECT_EQ(Expr("col:term"), "\"col\" OR \"term\"");
  EXPECT_EQ(Expr("{text section}: x"), "\"text\" OR \"section\" OR \"x\"");
  EXPECT_EQ(Expr("pre* ^start -not +plus"), "\"pre\" OR \"start\" OR \"not\" OR \"plus\"");
  EXPECT_EQ(Expr("\"exact phrase\""), "\"exact\" OR \"phrase\"");
  EXPECT_EQ(Expr("unbalanced \"quote"), "\"unbalanced\" OR \"quote\"");
  EXPECT_EQ(Expr("back\\slash"), "\"back\" OR \"slash\"");
  EXPECT_EQ(Expr("it's"), "\"it\" OR \"s\"");
}

TEST(BuildFtsQueryTest, NoWordsIsInvalidArgument) {
  ExpectNoWords("");
  ExpectNoWords("   \t\n ");
  ExpectNoWords("!!! ??? ...");
  ExpectNoWords("\"\"\"");
  ExpectNoWords("\"");
  ExpectNoWords("()");
  ExpectNoWords("* ^ : - + ( ) { } [ ] \\ / ' ` ~ @ # $ % & = | < > , ;");
  ExpectNoWords(std::string("\0\0\0", 3));
  ExpectNoWords("…—–“”«»");
  ExpectNoWords("😀🎉👍🏽");
  ExpectNoWords("、。「」");
  ExpectNoWords("\x80\xff\xfe\xc0\xaf");
  ExpectNoWords(std::string(10000, '"'));
}

TEST(BuildFtsQueryTest, NonAsciiWordsSurvive) {
  EXPECT_EQ(Expr("café crème"), "\"café\" OR \"crème\"");
  EXPECT_EQ(Expr("Ünïcödé"), "\"Ünïcödé\"");  // only ASCII is lowercased here; FTS5 folds the rest
  EXPECT_EQ(Expr("東京タワー"), "\"東京タワー\"");
  EXPECT_EQ(Expr("東京、大阪"), "\"東京\" OR \"大阪\"");
  EXPECT_EQ(Expr("Москва and Αθήνα"), "\"Москва\" OR \"and\" OR \"Αθήνα\"");
  EXPECT_EQ(Expr("pizza🍕time"), "\"pizza\" OR \"time\"");
  EXPECT_EQ(Expr("µ-law ½"), "\"µ\" OR \"law\" OR \"½\"");
}

TEST(BuildFtsQueryTest, InvalidUtf8IsDroppedNeverPassedOn) {
  EXPECT_EQ(Expr("ab\xff"
                 "cd"),
            "\"ab\" OR \"cd\"");
  EXPECT_EQ(Expr("caf\xc3"), "\"caf\"");                    // truncated sequence
  EXPECT_EQ(Expr("x\xc0\xafy"), "\"x\" OR \"y\"");          // overlong '/'
  EXPECT_EQ(Expr("x\xed\xa0\x80y"), "\"x\" OR \"y\"");      // UTF-16 surrogate
  EXPECT_EQ(Expr("x\xf4\x90\x80\x80y"), "\"x\" OR \"y\"");  // beyond U+10FFFF
  EXPECT_EQ(Expr("\xe6\x9d\xb1\xe4"), "\"東\"");            // valid then truncated
  EXPECT_EQ(Expr(std::string("foo\0bar", 7)), "\"foo\" OR \"bar\"");
}

TEST(BuildFtsQueryTest, EmbeddedQuotesWouldBeDoubled) {
  // Quotes always separate words, so a term never contains one; the escape
  // is still there for safety. This checks the output stays balanced when a
  // quote is glued to words and non-ASCII text on both sides.
  std::string expression = Expr("é\"é\"\"é");
  ExpectWellFormed(expression);
  EXPECT_EQ(expression, "\"é\"");
}

TEST(BuildFtsQueryTest, LongInputs) {
  ExpectWellFormed(Expr(std::string(10000, 'a')));
  std::string spaced;
  for (int i = 0; i < 2500; ++i) spaced += "ab ";
  EXPECT_EQ(Expr(spaced), "\"ab\"");
  std::string cjk;
  for (int i = 0; i < 3000; ++i) cjk += "字";
  ExpectWellFormed(Expr(cjk));
}

// --- against a real store ---------------------------------------------------------

class LexicalSearchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = store::OpenSqliteStore(dir_.path() / "xnai.db");
    ASSERT_TRUE(store.has_value()) << store.error().ToString();
    store_ = std::move(*store);
    ASSERT_OK(store_->CreateCollection("docs", ""));
    ASSERT_OK(store_->CreateCollection("notes", ""));
    ASSERT_OK(store_->PutDocument(
        MakeDocument("docs", "/install.md",
                     {"Running the installer: download the package and run it as root.",
                      "Configuration lives in /etc/xnai/config.toml; see the reference."},
                     "Install")));
    ASSERT_OK(store_->PutDocument(MakeDocument(
        "docs", "/cafe.md", {"Le café près de la gare sert un très bon crème."}, "Café")));
    ASSERT_OK(store_->PutDocument(MakeDocument(
        "docs", "/cjk.md", {"東京 は 日本 の 首都 です", "emoji 🎉 party and NEAR operators"})));
    ASSERT_OK(store_->PutDocument(
        MakeDocument("notes", "/note.txt", {"a note about running and the installer"})));
  }

  // Success or "no searchable words"; nothing else is acceptable for any
  // user text.
  void ExpectSafe(const std::string& text) {
    LexicalQuery q;
    q.text = text;
    q.k = 5;
    auto hits = LexicalSearch(*store_, q);
    if (!hits) {
      EXPECT_EQ(hits.error().code(), Status::Code::kInvalidArgument)
          << "query " << ::testing::PrintToString(text) << ": " << hits.error().ToString();
      EXPECT_EQ(hits.error().message(), "query has no searchable words")
          << ::testing::PrintToString(text);
      return;
    }
    auto expression = BuildFtsQuery(text);
    ASSERT_TRUE(expression.has_value());
    ExpectWellFormed(*expression);
  }

  std::vector<std::string> Sources(const std::string& text,
                                   std::optional<std::string> collection = std::nullopt) {
    LexicalQuery q;
    q.text = text;
    q.collection = std::move(collection);
    q.k = 10;
    auto hits = LexicalSearch(*store_, q);
    EXPECT_TRUE(hits.has_value()) << hits.error().ToString();
    std::vector<std::string> out;
    if (hits) {
      for (const auto& hit : *hits) out.push_back(hit.source);
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(LexicalSearchTest, FindsNaturalLanguageQueries) {
  auto sources = Sources("How do I run the installer?");
  ASSERT_FALSE(sources.empty());
  EXPECT_EQ(sources[0], "/install.md");
  EXPECT_EQ(Sources("cafe creme"), std::vector<std::string>{"/cafe.md"});
  EXPECT_EQ(Sources("東京"), std::vector<std::string>{"/cjk.md"});
  EXPECT_EQ(Sources("config.toml"), std::vector<std::string>{"/install.md"});
}

TEST_F(LexicalSearchTest, CollectionFilterKAndErrors) {
  EXPECT_EQ(Sources("installer", std::string("notes")), std::vector<std::string>{"/note.txt"});
  EXPECT_EQ(Sources("installer").size(), 2u);
  LexicalQuery q;
  q.text = "installer";
  q.k = 1;
  ASSERT_OK_AND_ASSIGN(auto one, LexicalSearch(*store_, q));
  EXPECT_EQ(one.size(), 1u);
  q.collection = "missing";
  EXPECT_CODE(LexicalSearch(*store_, q), kNotFound);
  q.collection.reset();
  q.k = 0;
  EXPECT_CODE(LexicalSearch(*store_, q), kInvalidArgument);
  q.k = 5;
  q.text = "?!";
  EXPECT_CODE(LexicalSearch(*store_, q), kInvalidArgument);
}

TEST_F(LexicalSearchTest, SnippetRendersAsHtml) {
  LexicalQuery q;
  q.text = "installer";
  ASSERT_OK_AND_ASSIGN(auto hits, LexicalSearch(*store_, q));
  ASSERT_FALSE(hits.empty());
  std::string html = SnippetToHtml(hits[0].snippet);
  EXPECT_NE(html.find("<mark>installer</mark>"), std::string::npos) << html;
  EXPECT_EQ(SnippetToPlain(hits[0].snippet).find(kMarkBegin), std::string::npos);
}

TEST_F(LexicalSearchTest, HostileInputsNeverBreakTheQuery) {
  const std::vector<std::string> inputs = {
      "\"",
      "\"\"",
      "\"unbalanced",
      "a\"b\"c\"",
      "AND",
      "OR",
      "NOT",
      "AND OR NOT NEAR(",
      "NEAR(a b",
      "NEAR(a b, 10)",
      "a AND",
      "OR b",
      "*",
      "run*",
      "^start",
      "^",
      ":",
      "col:term",
      "text:running",
      "section:install",
      "{text}: x",
      "-x",
      "+x",
      "(",
      ")",
      "((a))",
      "(a OR b",
      "\\",
      "\\\"",
      "back\\slash\\\"quote",
      std::string("nul\0byte", 8),
      std::string(1, '\0'),
      "\x80",
      "\xff\xfe\xfd",
      "caf\xc3",
      "\xc3\x28",
      "\xe2\x82",
      "\xf0\x9f\x98",
      "ok \xed\xa0\x80 surrogate",
      std::string(10000, 'x'),
      std::string(10000, '"'),
      std::string(10000, '('),
      [] {
        std::string s;
        for (int i = 0; i < 2000; ++i) s += "w" + std::to_string(i) + " AND ";
        return s;
      }(),
      "😀",
      "😀 installer 🎉",
      "👨‍👩‍👧‍👦",
      "東京",
      "日本の首都",
      "한국어 텍스트",
      "مرحبا بالعالم",
      "\x1b[31mred\x1b[0m",
      "'; DROP TABLE chunks; --",
      "%_%",
      "$1 ?2 :name @x",
      "\x02marker\x03",
  };
  for (const std::string& input : inputs) ExpectSafe(input);
  // The store is intact afterwards.
  EXPECT_EQ(Sources("cafe"), std::vector<std::string>{"/cafe.md"});
}

TEST_F(LexicalSearchTest, ManyTermsAreAccepted) {
  // A large max_terms must still give an expression FTS5 can parse (no
  // expression-depth limit is hit by a flat OR list).
  std::string many = "installer ";
  for (int i = 0; i < 3000; ++i) many += "w" + std::to_string(i) + " ";
  ASSERT_OK_AND_ASSIGN(std::string expression, BuildFtsQuery(many, 3001));
  store::SearchQuery q;
  q.fts_expression = expression;
  ASSERT_OK_AND_ASSIGN(auto hits, store_->SearchChunks(q));
  EXPECT_EQ(hits.size(), 2u);
}

TEST_F(LexicalSearchTest, RandomBytesNeverBreakTheQuery) {
  std::mt19937 rng(20240611);  // fixed seed: failures are reproducible
  const std::string specials = "\"*^:()-+{}[]\\/.,;'`~!@#$%&=|<> \t\n\r";
  const std::vector<std::string> words = {"AND",  "OR", "NOT",  "NEAR", "installer", "café",
                                          "東京", "😀",  "\xff", "\xc3", "\0"};
  for (int n = 0; n < 2000; ++n) {
    std::string text;
    int length = std::uniform_int_distribution<int>(0, 120)(rng);
    int mode = n % 3;
    for (int i = 0; i < length; ++i) {
      if (mode == 0) {
        text.push_back(static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng)));
      } else if (mode == 1) {
        text.push_back(
            specials[std::uniform_int_distribution<size_t>(0, specials.size() - 1)(rng)]);
        if (rng() % 3 == 0) text.push_back(static_cast<char>('a' + rng() % 26));
      } else {
        text += words[rng() % words.size()];
        text.push_back(specials[rng() % specials.size()]);
      }
    }
    ExpectSafe(text);
    if (::testing::Test::HasFailure()) break;  // one clear failure, not 2000
  }
}

// --- snippet rendering ---------------------------------------------------------------

std::string Marked(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '[') {
      out.push_back(kMarkBegin);
    } else if (c == ']') {
      out.push_back(kMarkEnd);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

TEST(SnippetTest, HtmlEscapesAndMarks) {
  EXPECT_EQ(SnippetToHtml(Marked("a <b> & \"c\" 'd' [match] end")),
            "a &lt;b&gt; &amp; &quot;c&quot; &#39;d&#39; <mark>match</mark> end");
  EXPECT_EQ(SnippetToHtml(Marked("<script>[alert(1)]</script>")),
            "&lt;script&gt;<mark>alert(1)</mark>&lt;/script&gt;");
  EXPECT_EQ(SnippetToHtml(Marked("…[one] and [two]…")), "…<mark>one</mark> and <mark>two</mark>…");
  EXPECT_EQ(SnippetToHtml(""), "");
}

TEST(SnippetTest, HtmlRepairsUnbalancedMarkers) {
  EXPECT_EQ(SnippetToHtml(Marked("]x[y")), "x<mark>y</mark>");
  EXPECT_EQ(SnippetToHtml(Marked("[[a]]b")), "<mark>a</mark>b");
  EXPECT_EQ(SnippetToHtml(Marked("[")), "<mark></mark>");
}

TEST(SnippetTest, AnsiBoldsMatchesAndStripsControls) {
  EXPECT_EQ(SnippetToAnsi(Marked("the [hit] here")), "the \x1b[1mhit\x1b[0m here");
  EXPECT_EQ(SnippetToAnsi("\x1b[31mred\x1b[0m\a\b\x7f"), "[31mred[0m");
  EXPECT_EQ(SnippetToAnsi("tab\tand\nnewline"), "tab\tand\nnewline");
  EXPECT_EQ(SnippetToAnsi(Marked("[open")), "\x1b[1mopen\x1b[0m");
  EXPECT_EQ(SnippetToAnsi("<b>&amp;"), "<b>&amp;");  // no HTML escaping for terminals
}

TEST(SnippetTest, PlainStripsMarkers) {
  EXPECT_EQ(SnippetToPlain(Marked("a [b] c [d]")), "a b c d");
  EXPECT_EQ(SnippetToPlain("<b>&"), "<b>&");
}

}  // namespace
}  // namespace xnai::index
