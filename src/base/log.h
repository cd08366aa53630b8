// Structured logging: one line per event on stderr. JSON (one object per line)
// for machines, or a compact human-readable line when stderr is a terminal.
// Every line carries the current request id when one is set on this thread.
// Thread-safe. Secrets must never be passed as fields.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace xnai::log {

enum class Level { kDebug = 0, kInfo, kWarn, kError };
enum class Format { kAuto, kJson, kText };

using Fields = nlohmann::ordered_json;  // an object: {"key": value, ...}

// Sets the minimum level and the format ("auto" picks text on a TTY).
void Configure(Level min_level, Format format);
// Parses "debug"/"info"/"warn"/"error" and "auto"/"json"/"text"; unknown -> info/auto.
Level ParseLevel(std::string_view text);
Format ParseFormat(std::string_view text);

void Write(Level level, std::string_view event, const Fields& fields = Fields::object());
inline void Debug(std::string_view e, const Fields& f = Fields::object()) { Write(Level::kDebug, e, f); }
inline void Info(std::string_view e, const Fields& f = Fields::object()) { Write(Level::kInfo, e, f); }
inline void Warn(std::string_view e, const Fields& f = Fields::object()) { Write(Level::kWarn, e, f); }
inline void Error(std::string_view e, const Fields& f = Fields::object()) { Write(Level::kError, e, f); }

// Sets the request id for log lines written on this thread while in scope.
class ScopedRequestId {
 public:
  explicit ScopedRequestId(std::string id);
  ~ScopedRequestId();
  ScopedRequestId(const ScopedRequestId&) = delete;
  ScopedRequestId& operator=(const ScopedRequestId&) = delete;

 private:
  std::string previous_;
};

// A new random request id (16 hex chars).
std::string NewRequestId();

// TEST_ hook: redirect output to a string instead of stderr (nullptr restores).
void TEST_CaptureTo(std::string* sink);

}  // namespace xnai::log
