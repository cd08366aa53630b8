// Metrics registry: counters, gauges and histograms with labels, rendered in
// the Prometheus text exposition format (version 0.0.4). Thread-safe; the
// hot path (Inc/Observe on an existing series) takes one short lock.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace xnai::obs {

using Labels = std::vector<std::pair<std::string, std::string>>;  // ordered as declared

class Registry {
 public:
  // Declare a family once (re-declaring the same name returns silently).
  void DeclareCounter(const std::string& name, const std::string& help);
  void DeclareGauge(const std::string& name, const std::string& help);
  void DeclareHistogram(const std::string& name, const std::string& help,
                        std::vector<double> bucket_bounds);

  void Inc(const std::string& name, const Labels& labels = {}, double by = 1);
  void Set(const std::string& name, const Labels& labels, double value);
  void Observe(const std::string& name, const Labels& labels, double value);

  // A gauge computed at scrape time (e.g. process RSS).
  void DeclareCallbackGauge(const std::string& name, const std::string& help,
                            std::function<double()> fn);

  // The whole registry in Prometheus text format.
  std::string RenderPrometheus() const;

 private:
  struct Family;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Family>> families_;
};

// Declares process_resident_memory_bytes, process_open_fds,
// process_start_time_seconds and xnai_uptime_seconds (read from /proc).
void RegisterProcessMetrics(Registry& registry);

// Current resident set size in bytes (from /proc/self/statm); 0 if unknown.
int64_t ProcessRssBytes();
// Number of open file descriptors (entries of /proc/self/fd).
int64_t ProcessOpenFds();

}  // namespace xnai::obs
