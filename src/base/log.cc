#include "base/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <random>

namespace xnai::log {
namespace {

std::mutex g_mutex;
std::atomic<int> g_min_level{static_cast<int>(Level::kInfo)};
std::atomic<bool> g_json{true};
std::string* g_capture = nullptr;
thread_local std::string t_request_id;

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

std::string Timestamp(bool iso) {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  tm parts{};
  gmtime_r(&tv.tv_sec, &parts);
  char buf[64];
  if (iso) {
    std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900,
                  parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec,
                  static_cast<int>(tv.tv_usec / 1000));
  } else {
    std::snprintf(buf, sizeof(buf), "%02d:%02d:%02d.%03d", parts.tm_hour, parts.tm_min,
                  parts.tm_sec, static_cast<int>(tv.tv_usec / 1000));
  }
  return buf;
}

}  // namespace

void Configure(Level min_level, Format format) {
  g_min_level = static_cast<int>(min_level);
  bool json = format == Format::kJson || (format == Format::kAuto && !isatty(STDERR_FILENO));
  g_json = json;
}

Level ParseLevel(std::string_view text) {
  if (text == "debug") return Level::kDebug;
  if (text == "warn") return Level::kWarn;
  if (text == "error") return Level::kError;
  return Level::kInfo;
}

Format ParseFormat(std::string_view text) {
  if (text == "json") return Format::kJson;
  if (text == "text") return Format::kText;
  return Format::kAuto;
}

void Write(Level level, std::string_view event, const Fields& fields) {
  if (static_cast<int>(level) < g_min_level.load()) return;
  std::string line;
  if (g_json) {
    Fields obj = Fields::object();
    obj["ts"] = Timestamp(true);
    obj["level"] = LevelName(level);
    obj["event"] = std::string(event);
    if (!t_request_id.empty()) obj["request_id"] = t_request_id;
    if (fields.is_object()) {
      for (auto it = fields.begin(); it != fields.end(); ++it) obj[it.key()] = it.value();
    }
    line = obj.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line = Timestamp(false) + " " + LevelName(level) + " " + std::string(event);
    if (!t_request_id.empty()) line += " request_id=" + t_request_id;
    if (fields.is_object()) {
      for (auto it = fields.begin(); it != fields.end(); ++it) {
        line += " " + it.key() + "=";
        line += it.value().is_string() ? it.value().get<std::string>()
                                       : it.value().dump(-1, ' ', false,
                                                         nlohmann::json::error_handler_t::replace);
      }
    }
  }
  line += '\n';
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_capture) {
    *g_capture += line;
  } else {
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
}

ScopedRequestId::ScopedRequestId(std::string id) : previous_(std::move(t_request_id)) {
  t_request_id = std::move(id);
}
ScopedRequestId::~ScopedRequestId() { t_request_id = std::move(previous_); }

std::string NewRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

void TEST_CaptureTo(std::string* sink) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_capture = sink;
}

}  // namespace xnai::log
