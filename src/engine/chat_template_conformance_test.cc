// Conformance of engine::ChatTemplate with real Jinja2: every template in
// <testdata>/templates (the chat templates of real models) is rendered with
// every context in tests/conformance/chat_template_cases, by xnai and by
// tests/conformance/chat_template_oracle.py (Jinja2 configured as Hugging
// Face's apply_chat_template configures it, run once for all pairs with
// /usr/bin/python3). The outputs must match byte for byte; where Jinja2
// raises through raise_exception(msg), xnai must fail with
// FailedPrecondition(msg); where Jinja2 fails otherwise, xnai must fail with
// InvalidArgument. strftime_now is pinned to the same instant on both sides.
//
// Exit codes: 0 every pair matches; 1 a mismatch (or a setup error); 77 the
// testdata or python3-jinja2 is absent (ctest SKIP), with a loud message.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "engine/chat_template.h"
#include "gguf/testdata.h"

namespace {

namespace fs = std::filesystem;
using xnai::Status;
using xnai::engine::ChatTemplate;

constexpr const char* kPython = "/usr/bin/python3";
// 2025-08-01T00:00:00Z; both renderers format it in the local time zone.
constexpr int64_t kNow = 1754006400;

int Skip(const std::string& why) {
  std::cerr << "\n*** SKIPPED: " << why
            << "; chat template conformance against Jinja2 was NOT checked ***\n\n";
  return 77;
}

fs::path SourceDir() {
  if (const char* src = std::getenv("XNAI_SOURCE_DIR"); src != nullptr && *src != '\0') {
    return src;
  }
#ifdef XNAI_PROJECT_SOURCE_DIR
  return XNAI_PROJECT_SOURCE_DIR;
#else
  return {};
#endif
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  return out + "'";
}

// Runs `command` and returns its stdout; nullopt when it cannot run or
// exits non-zero.
std::optional<std::string> RunCommand(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return std::nullopt;
  std::string out;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  int status = pclose(pipe);
  if (status != 0) return std::nullopt;
  return out;
}

std::vector<fs::path> ListFiles(const fs::path& dir, const std::string& extension) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == extension) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string Escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Where two renderings first differ, with some context.
std::string Difference(const std::string& expected, const std::string& actual) {
  size_t at = 0;
  while (at < expected.size() && at < actual.size() && expected[at] == actual[at]) ++at;
  size_t from = at > 60 ? at - 60 : 0;
  return "first difference at byte " + std::to_string(at) + " (lengths " +
         std::to_string(expected.size()) + " vs " + std::to_string(actual.size()) +
         ")\n      jinja2: ..." + Escape(expected.substr(from, at - from + 80)) +
         "\n      xnai:   ..." + Escape(actual.substr(from, at - from + 80));
}

}  // namespace

int main() {
  const fs::path testdata = xnai::gguf::FindTestdataDir();
  if (testdata.empty() || !fs::is_directory(testdata / "templates")) {
    return Skip("engine testdata not found (set XNAI_TESTDATA or put it at ../shared/testdata)");
  }
  const fs::path source = SourceDir();
  const fs::path cases_dir = source / "tests" / "conformance" / "chat_template_cases";
  const fs::path oracle = source / "tests" / "conformance" / "chat_template_oracle.py";
  if (source.empty() || !fs::is_directory(cases_dir) || !fs::exists(oracle)) {
    std::cerr << "chat template conformance: cannot find " << cases_dir << " or " << oracle
              << " (set XNAI_SOURCE_DIR)\n";
    return 1;
  }
  if (!fs::exists(kPython) ||
      !RunCommand(std::string(kPython) + " -c 'import jinja2' 2>/dev/null")) {
    return Skip(
        std::string(kPython) +
        " with Jinja2 not found (apt-get install python3-jinja2, see scripts/install-deps)");
  }

  const std::vector<fs::path> templates = ListFiles(testdata / "templates", ".jinja");
  const std::vector<fs::path> cases = ListFiles(cases_dir, ".json");
  if (templates.empty() || cases.empty()) {
    std::cerr << "chat template conformance: no templates or no cases found\n";
    return 1;
  }

  // One oracle process renders every pair.
  std::string command = std::string(kPython) + " " + ShellQuote(oracle.string()) + " --now " +
                        std::to_string(kNow) + " --json";
  for (const fs::path& t : templates) {
    for (const fs::path& c : cases)
      command += " " + ShellQuote(t.string()) + " " + ShellQuote(c.string());
  }
  std::optional<std::string> oracle_out = RunCommand(command);
  if (!oracle_out) {
    std::cerr << "chat template conformance: the oracle failed: " << command.substr(0, 200)
              << "...\n";
    return 1;
  }
  std::map<std::pair<std::string, std::string>, nlohmann::json> expected;
  size_t line_start = 0;
  while (line_start < oracle_out->size()) {
    size_t line_end = oracle_out->find('\n', line_start);
    if (line_end == std::string::npos) line_end = oracle_out->size();
    auto record = nlohmann::json::parse(oracle_out->substr(line_start, line_end - line_start),
                                        nullptr, false);
    line_start = line_end + 1;
    if (record.is_discarded() || !record.is_object()) continue;
    expected[{record.value("template", ""), record.value("context", "")}] = record;
  }

  xnai::engine::RenderOptions options;
  options.now = [] { return std::chrono::system_clock::time_point(std::chrono::seconds(kNow)); };

  int pairs = 0, matched = 0;
  for (const fs::path& template_path : templates) {
    std::string template_source;
    if (!xnai::gguf::ReadTestFile(template_path, template_source)) {
      std::cerr << "cannot read " << template_path << "\n";
      return 1;
    }
    auto parsed = ChatTemplate::Parse(template_source);
    int template_matched = 0;
    std::vector<std::string> failures;
    for (const fs::path& case_path : cases) {
      ++pairs;
      const std::string pair_name = case_path.filename().string();
      auto it = expected.find({template_path.string(), case_path.string()});
      if (it == expected.end()) {
        failures.push_back(pair_name + ": no oracle result");
        continue;
      }
      const nlohmann::json& want = it->second;
      if (!parsed) {
        failures.push_back(pair_name +
                           ": xnai cannot parse the template: " + parsed.error().message());
        continue;
      }
      std::string context_text;
      xnai::gguf::ReadTestFile(case_path, context_text);
      auto context = nlohmann::ordered_json::parse(context_text, nullptr, false);
      if (context.is_discarded()) {
        failures.push_back(pair_name + ": the case is not valid JSON");
        continue;
      }
      auto got = parsed->Render(context, options);
      std::string problem;
      if (want.value("ok", false)) {
        const std::string output = want.value("output", "");
        if (!got) {
          problem = "jinja2 renders, xnai fails: " + got.error().ToString();
        } else if (*got != output) {
          problem = Difference(output, *got);
        }
      } else if (want.value("raised", false)) {
        const std::string message = want.value("message", "");
        if (got) {
          problem = "jinja2 raises \"" + message + "\", xnai renders";
        } else if (got.error().code() != Status::Code::kFailedPrecondition ||
                   got.error().message() != message) {
          problem = "jinja2 raises \"" + message + "\", xnai fails with " + got.error().ToString();
        }
      } else {
        const std::string jinja_error =
            want.value("error_type", "") + ": " + want.value("message", "");
        if (got) {
          problem = "jinja2 fails (" + jinja_error + "), xnai renders";
        } else if (got.error().code() != Status::Code::kInvalidArgument) {
          problem = "jinja2 fails (" + jinja_error + "), xnai fails with " + got.error().ToString();
        }
      }
      if (problem.empty()) {
        ++template_matched;
      } else {
        failures.push_back(pair_name + ": " + problem);
      }
    }
    matched += template_matched;
    std::cout << (failures.empty() ? "OK    " : "FAIL  ") << template_path.filename().string()
              << "  " << template_matched << "/" << cases.size() << "\n";
    for (const std::string& failure : failures) std::cout << "    " << failure << "\n";
  }
  std::cout << "chat template conformance: " << matched << "/" << pairs
            << " template x case pairs match Jinja2 (" << templates.size() << " templates, "
            << cases.size() << " cases)\n";
  return matched == pairs ? 0 : 1;
}
