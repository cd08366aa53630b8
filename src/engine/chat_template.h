// ChatTemplate: renders the Jinja2 chat templates models ship in their GGUF
// (tokenizer.chat_template) and produces exactly the string that Hugging
// Face's apply_chat_template produces with Jinja2 for the same inputs.
//
// The reference environment is Jinja2 as Hugging Face configures it:
// ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
// extensions=[loopcontrols]) with a `tojson` filter that keeps non-ASCII
// (json.dumps(x, ensure_ascii=False, indent, separators, sort_keys)) and the
// globals raise_exception(msg) and strftime_now(fmt). Values follow Python:
// str() of True/None/lists/floats, integer division, truthiness, Jinja2's
// default Undefined (prints as "", iterates as empty, fails on attribute
// access and arithmetic).
//
// Supported: the whole statement language chat templates use (if/elif/else,
// for with filters, else, tuple unpacking and the loop object, break/continue,
// set, block set, namespace attribute set, macro with defaults, varargs and
// kwargs, call blocks, filter blocks, with, raw, HF's generation tag),
// expressions with Python semantics, the common filters, tests, and the str,
// dict and list methods. Refused with a clear error instead of approximated:
// template loading (extends/include/import/block), recursive for loops,
// *args/**kwargs in calls, a namespace stored inside a namespace, integers
// beyond 64 bits, and the few filters/methods xnai does not implement
// (named in the error). The error never silently changes the output.
//
// Hostile templates: parsing bounds expression and block nesting, and every
// render is bounded by RenderLimits (nesting depth, loop iterations, total
// work, output size); no input crashes or hangs. With the default limits a
// render needs well under 1 MiB of stack.
//
// Thread safety: a parsed ChatTemplate is immutable; Render may be called
// concurrently from any number of threads. Copies share the parsed program.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "base/status.h"

namespace xnai::engine {

// Bounds on one Render call. Exceeding any of them fails the render with
// InvalidArgument naming the limit.
struct RenderLimits {
  size_t max_output_bytes = size_t{4} << 20;  // the rendered string
  int max_depth = 400;                        // nested evaluation: AST nesting plus macro calls
  int64_t max_loop_iterations = 1'000'000;    // summed over all loops of the render
  // A budget of work units: 16 per evaluation step (expression node,
  // statement, macro call), one per byte or item built by string and list
  // operations. About a second of CPU at most.
  int64_t max_work = int64_t{1} << 28;
};

struct RenderOptions {
  RenderLimits limits;
  // The clock behind strftime_now (local time, as Python's datetime.now()).
  // Empty: the system clock. Tests pin it so renders are reproducible.
  std::function<std::chrono::system_clock::time_point()> now;
};

class ChatTemplate {
 public:
  // Parses the template source (Jinja2 syntax, whitespace control and
  // trim_blocks/lstrip_blocks applied as Jinja2 does). Errors:
  // InvalidArgument "chat template syntax error at line L, column C: ..."
  // saying what was expected, for a syntax error, an unknown filter or test
  // (outside if statements and conditional expressions, where Jinja2 too
  // only fails when it is evaluated), or a construct xnai refuses (named).
  static Result<ChatTemplate> Parse(std::string_view source);

  // Renders with `context`, a JSON object whose keys are the template's
  // variables (messages, add_generation_prompt, bos_token, eos_token, tools,
  // and whatever else the caller passes, e.g. enable_thinking). Object key
  // order is kept, as Python dicts keep it, because tojson output depends on
  // it. Errors: FailedPrecondition whose message is exactly the argument of
  // the template's raise_exception(msg) (meant for the user, e.g. "System
  // role not supported"); InvalidArgument for any other runtime error (a
  // type error, an undefined value used where Jinja2 fails, an unsupported
  // filter or method, a limit exceeded), "chat template error at line L:
  // ...". ResourceExhausted if memory runs out. An empty `options.now`
  // reads the system clock.
  Result<std::string> Render(const nlohmann::ordered_json& context) const;
  Result<std::string> Render(const nlohmann::ordered_json& context,
                             const RenderOptions& options) const;

  struct Program;  // the parsed template (defined in chat_template.cc)

 private:
  explicit ChatTemplate(std::shared_ptr<const Program> program) : program_(std::move(program)) {}

  std::shared_ptr<const Program> program_;
};

}  // namespace xnai::engine
