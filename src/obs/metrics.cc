#include "obs/metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <utility>

#include "base/log.h"

namespace xnai::obs {

enum class MetricKind { kCounter, kGauge, kHistogram, kCallbackGauge };

struct Registry::Family {
  struct Series {
    double value = 0;               // counter / gauge
    std::vector<uint64_t> buckets;  // histogram: per bucket, not cumulative; last is +Inf
    double sum = 0;
    uint64_t count = 0;
  };

  MetricKind kind = MetricKind::kCounter;
  std::string help;
  std::vector<double> bounds;  // histogram upper bounds, sorted, +Inf excluded
  std::function<double()> fn;  // callback gauge only
  std::map<Labels, Series> series;
};

namespace {

bool ValidMetricName(const std::string& name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    bool digit = c >= '0' && c <= '9';
    if (!(alpha || (i > 0 && digit))) return false;
  }
  return true;
}

bool ValidLabelName(const std::string& name) {
  if (name.empty() || name.find(':') != std::string::npos) return false;
  return ValidMetricName(name) && name.rfind("__", 0) != 0;
}

bool ValidLabels(const Labels& labels, bool histogram) {
  for (const auto& [key, value] : labels) {
    if (!ValidLabelName(key) || (histogram && key == "le")) return false;
  }
  return true;
}

const char* KindName(MetricKind kind) {
  switch (kind) {
    case MetricKind::kCounter:
      return "counter";
    case MetricKind::kGauge:
      return "gauge";
    case MetricKind::kHistogram:
      return "histogram";
    case MetricKind::kCallbackGauge:
      return "gauge";
  }
  return "untyped";
}

// Prometheus float text: integers without a fraction (readable, stable),
// other values in the shortest form that round-trips.
std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof(buf), "%.0f", v);
    return buf;
  }
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  if (ec != std::errc()) return "NaN";
  return std::string(buf, end);
}

std::string EscapeHelp(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeLabelValue(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// `{a="x",b="y"}` (with an optional trailing extra label), or "" for none.
std::string FormatLabels(const Labels& labels, const char* extra_key = nullptr,
                         const std::string& extra_value = "") {
  if (labels.empty() && extra_key == nullptr) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [key, value] : labels) {
    if (!first) out += ',';
    first = false;
    out += key + "=\"" + EscapeLabelValue(value) + "\"";
  }
  if (extra_key != nullptr) {
    if (!first) out += ',';
    out += std::string(extra_key) + "=\"" + EscapeLabelValue(extra_value) + "\"";
  }
  out += '}';
  return out;
}

void AppendHeader(std::string& out, const std::string& name, const std::string& help,
                  MetricKind kind) {
  out += "# HELP " + name + " " + EscapeHelp(help) + "\n";
  out += "# TYPE " + name + " " + KindName(kind) + "\n";
}

}  // namespace

const std::vector<double>& Registry::DefaultBuckets() {
  static const std::vector<double> buckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                              0.5,   1,    2.5,   5,    10};
  return buckets;
}

namespace {

// Returns false (and logs) when a declaration is invalid.
bool CheckDeclaration(const std::string& name) {
  if (ValidMetricName(name)) return true;
  log::Error("metrics.invalid_name", {{"name", name}});
  return false;
}

}  // namespace

void Registry::DeclareCounter(const std::string& name, const std::string& help) {
  if (!CheckDeclaration(name)) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (families_.count(name)) return;
  auto family = std::make_shared<Family>();
  family->kind = MetricKind::kCounter;
  family->help = help;
  families_[name] = std::move(family);
}

void Registry::DeclareGauge(const std::string& name, const std::string& help) {
  if (!CheckDeclaration(name)) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (families_.count(name)) return;
  auto family = std::make_shared<Family>();
  family->kind = MetricKind::kGauge;
  family->help = help;
  families_[name] = std::move(family);
}

void Registry::DeclareHistogram(const std::string& name, const std::string& help,
                                std::vector<double> bucket_bounds) {
  if (!CheckDeclaration(name)) return;
  // Normalize: sorted, unique, finite (the +Inf bucket is always implied).
  bucket_bounds.erase(std::remove_if(bucket_bounds.begin(), bucket_bounds.end(),
                                     [](double b) { return !std::isfinite(b); }),
                      bucket_bounds.end());
  std::sort(bucket_bounds.begin(), bucket_bounds.end());
  bucket_bounds.erase(std::unique(bucket_bounds.begin(), bucket_bounds.end()), bucket_bounds.end());
  std::lock_guard<std::mutex> lock(mutex_);
  if (families_.count(name)) return;
  auto family = std::make_shared<Family>();
  family->kind = MetricKind::kHistogram;
  family->help = help;
  family->bounds = std::move(bucket_bounds);
  families_[name] = std::move(family);
}

void Registry::DeclareCallbackGauge(const std::string& name, const std::string& help,
                                    std::function<double()> fn) {
  if (!CheckDeclaration(name) || !fn) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (families_.count(name)) return;
  auto family = std::make_shared<Family>();
  family->kind = MetricKind::kCallbackGauge;
  family->help = help;
  family->fn = std::move(fn);
  families_[name] = std::move(family);
}

void Registry::Inc(const std::string& name, const Labels& labels, double by) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = families_.find(name);
    if (it != families_.end()) {
      Family& family = *it->second;
      if (!ValidLabels(labels, false)) return;
      if (family.kind == MetricKind::kCounter) {
        if (!(by >= 0)) return;  // counters are monotonic; also rejects NaN
        family.series[labels].value += by;
      } else if (family.kind == MetricKind::kGauge) {
        family.series[labels].value += by;
      }
      return;
    }
  }
  // Undeclared: declare on the fly (a concurrent declaration wins silently).
  DeclareCounter(name, "");
  if (ValidMetricName(name)) Inc(name, labels, by);
}

void Registry::Set(const std::string& name, const Labels& labels, double value) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = families_.find(name);
    if (it != families_.end()) {
      if (it->second->kind == MetricKind::kGauge && ValidLabels(labels, false)) {
        it->second->series[labels].value = value;
      }
      return;
    }
  }
  DeclareGauge(name, "");
  if (ValidMetricName(name)) Set(name, labels, value);
}

void Registry::Observe(const std::string& name, const Labels& labels, double value) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = families_.find(name);
    if (it != families_.end()) {
      Family& family = *it->second;
      if (family.kind != MetricKind::kHistogram || !ValidLabels(labels, true)) return;
      Family::Series& series = family.series[labels];
      if (series.buckets.empty()) series.buckets.assign(family.bounds.size() + 1, 0);
      // Bucket i counts observations in (bounds[i-1], bounds[i]]; NaN goes to +Inf.
      size_t idx = std::lower_bound(family.bounds.begin(), family.bounds.end(), value) -
                   family.bounds.begin();
      if (std::isnan(value)) idx = family.bounds.size();
      series.buckets[idx]++;
      series.sum += value;
      series.count++;
      return;
    }
  }
  DeclareHistogram(name, "", DefaultBuckets());
  if (ValidMetricName(name)) Observe(name, labels, value);
}

double Registry::Value(const std::string& name, const Labels& labels) const {
  std::function<double()> fn;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = families_.find(name);
    if (it == families_.end()) return 0;
    const Family& family = *it->second;
    if (family.kind == MetricKind::kCallbackGauge) {
      fn = family.fn;
    } else {
      auto series = family.series.find(labels);
      if (series == family.series.end()) return 0;
      return family.kind == MetricKind::kHistogram ? static_cast<double>(series->second.count)
                                                   : series->second.value;
    }
  }
  return labels.empty() ? fn() : 0;
}

std::string Registry::RenderPrometheus() const {
  // Copy what is needed under the lock; callback gauges are evaluated after
  // it is released so a callback may itself use the registry.
  struct Snapshot {
    std::string name;
    Family family;
  };
  std::vector<Snapshot> snapshot;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    snapshot.reserve(families_.size());
    for (const auto& [name, family] : families_) snapshot.push_back({name, *family});
  }
  std::string out;
  for (const Snapshot& entry : snapshot) {  // std::map order: sorted by name
    const std::string& name = entry.name;
    const Family& family = entry.family;
    AppendHeader(out, name, family.help, family.kind);
    switch (family.kind) {
      case MetricKind::kCounter:
      case MetricKind::kGauge:
        for (const auto& [labels, series] : family.series) {
          out += name + FormatLabels(labels) + " " + FormatValue(series.value) + "\n";
        }
        break;
      case MetricKind::kCallbackGauge: {
        double value = std::numeric_limits<double>::quiet_NaN();
        try {
          value = family.fn();
        } catch (const std::exception& e) {
          log::Warn("metrics.callback_failed", {{"name", name}, {"error", e.what()}});
        }
        out += name + " " + FormatValue(value) + "\n";
        break;
      }
      case MetricKind::kHistogram:
        for (const auto& [labels, series] : family.series) {
          uint64_t cumulative = 0;
          for (size_t i = 0; i <= family.bounds.size(); ++i) {
            cumulative += series.buckets[i];
            std::string le = i < family.bounds.size() ? FormatValue(family.bounds[i]) : "+Inf";
            out += name + "_bucket" + FormatLabels(labels, "le", le) + " " +
                   std::to_string(cumulative) + "\n";
          }
          out += name + "_sum" + FormatLabels(labels) + " " + FormatValue(series.sum) + "\n";
          out += name + "_count" + FormatLabels(labels) + " " + std::to_string(series.count) + "\n";
        }
        break;
    }
  }
  return out;
}

int64_t ProcessRssBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size_pages = 0;
  int64_t resident_pages = 0;
  if (!(statm >> size_pages >> resident_pages)) return 0;
  long page_size = sysconf(_SC_PAGESIZE);
  if (page_size <= 0) return 0;
  return resident_pages * page_size;
}

int64_t ProcessOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  int64_t count = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  // The directory stream itself held one descriptor while we counted.
  return count > 0 ? count - 1 : 0;
}

namespace {

// Process start as Unix time: boot time (/proc/stat btime) plus the start
// offset in clock ticks (field 22 of /proc/self/stat). Falls back to "now".
double ProcessStartTimeSeconds() {
  double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // The command name (field 2) is in parentheses and may contain spaces.
  auto close_paren = stat.rfind(')');
  if (close_paren == std::string::npos) return now;
  std::istringstream fields(stat.substr(close_paren + 1));
  std::string field;
  // After ")" come fields 3..; starttime is field 22, i.e. the 20th here.
  for (int i = 3; i <= 22; ++i) {
    if (!(fields >> field)) return now;
  }
  double start_ticks = std::strtod(field.c_str(), nullptr);
  std::ifstream proc_stat("/proc/stat");
  std::string line;
  double boot_time = -1;
  while (std::getline(proc_stat, line)) {
    if (line.rfind("btime ", 0) == 0) boot_time = std::strtod(line.c_str() + 6, nullptr);
  }
  long ticks_per_second = sysconf(_SC_CLK_TCK);
  if (boot_time < 0 || ticks_per_second <= 0) return now;
  return boot_time + start_ticks / static_cast<double>(ticks_per_second);
}

}  // namespace

void RegisterProcessMetrics(Registry& registry) {
  const double start_time = ProcessStartTimeSeconds();
  registry.DeclareCallbackGauge("process_resident_memory_bytes", "Resident memory size in bytes.",
                                [] { return static_cast<double>(ProcessRssBytes()); });
  registry.DeclareCallbackGauge("process_open_fds", "Number of open file descriptors.",
                                [] { return static_cast<double>(ProcessOpenFds()); });
  registry.DeclareCallbackGauge("process_start_time_seconds",
                                "Start time of the process since unix epoch in seconds.",
                                [start_time] { return start_time; });
  registry.DeclareCallbackGauge(
      "xnai_uptime_seconds", "Seconds since the process started.", [start_time] {
        double now =
            std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        return std::max(0.0, now - start_time);
      });
}

}  // namespace xnai::obs
