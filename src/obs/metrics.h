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

// Contract notes:
//  - Metric names must match [a-zA-Z_:][a-zA-Z0-9_:]* and label names
//    [a-zA-Z_][a-zA-Z0-9_]* (and not "le" on histograms); a declaration with an
//    invalid name is a programmer error: it is logged and ignored.
//  - A series is identified by its label list as given (same names, same
//    order); callers should always pass a family's labels in the same order.
//  - Inc/Set/Observe on a name that was never declared declare it on the fly
//    (counter / gauge / histogram with DefaultBuckets) with an empty HELP, so
//    a missing declaration loses nothing. Calls of the wrong kind (Observe on
//    a counter, Set on a histogram, ...) and negative increments of a counter
//    are ignored: counters only go up.
//  - Inc on a gauge adds `by`, which may be negative (e.g. active connections).
class Registry {
 public:
  // Prometheus' default latency buckets, in seconds.
  static const std::vector<double>& DefaultBuckets();

  // Declare a family once (re-declaring the same name returns silently).
  void DeclareCounter(const std::string& name, const std::string& help);
  void DeclareGauge(const std::string& name, const std::string& help);
  // `bucket_bounds` are upper bounds; they are sorted, de-duplicated and a
  // final +Inf bucket is implied (an explicit +Inf is dropped).
  void DeclareHistogram(const std::string& name, const std::string& help,
                        std::vector<double> bucket_bounds);

  void Inc(const std::string& name, const Labels& labels = {}, double by = 1);
  void Set(const std::string& name, const Labels& labels, double value);
  void Observe(const std::string& name, const Labels& labels, double value);

  // A gauge computed at scrape time (e.g. process RSS). `fn` is called
  // without the registry lock held, from the thread that renders; it must be
  // thread-safe. Re-declaring a name that exists is ignored.
  void DeclareCallbackGauge(const std::string& name, const std::string& help,
                            std::function<double()> fn);

  // Current value of a counter or gauge series, or the observation count of
  // a histogram series; 0 when the series does not exist. For tests and
  // health reporting.
  double Value(const std::string& name, const Labels& labels = {}) const;

  // The whole registry in Prometheus text format: families sorted by name,
  // series sorted by label values, HELP and TYPE lines for each family.
  // Output is deterministic for a given registry state.
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
