// Small helpers shared by the benchmark drivers: a monotonic stopwatch,
// percentiles, "--name value" flags, a scratch directory that cleans up
// after itself, and the one-line failure exit every driver uses.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"

namespace xnai::bench {

class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  void Restart() { start_ = std::chrono::steady_clock::now(); }
  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  double Millis() const { return Seconds() * 1e3; }

 private:
  std::chrono::steady_clock::time_point start_;
};

// Nearest-rank percentile (p in [0, 100]) of an ascending-sorted, non-empty
// vector.
double Percentile(const std::vector<double>& sorted, double p);

// Parses "--name value" and "--name=value" pairs; every flag must be in
// `known` (name -> default). Unknown flags, a missing value or a positional
// argument are InvalidArgument. "--help" is reported as NotFound so the
// caller can print usage.
Result<std::map<std::string, std::string>> ParseFlags(
    int argc, char** argv, const std::map<std::string, std::string>& known);

// Parses a flag value as a number within [lo, hi]; InvalidArgument otherwise.
Result<double> FlagNumber(const std::map<std::string, std::string>& flags, const std::string& name,
                          double lo, double hi);

// A directory for scratch data. When `path` is empty, a fresh directory is
// made under the system temp dir and removed by the destructor (unless
// keep); a given path is created if needed and never removed.
class ScratchDir {
 public:
  static Result<ScratchDir> Make(const std::string& path, const std::string& prefix);
  ScratchDir(ScratchDir&& other) noexcept;
  ScratchDir& operator=(ScratchDir&&) = delete;
  ~ScratchDir();
  const std::filesystem::path& path() const { return path_; }
  void set_keep(bool keep) { owned_ = owned_ && !keep; }

 private:
  ScratchDir(std::filesystem::path path, bool owned) : path_(std::move(path)), owned_(owned) {}
  std::filesystem::path path_;
  bool owned_ = false;
};

// Prints "NAME: <status>" to stderr; returns exit code 1 (2 for usage errors).
int FailWith(const char* name, const Status& status);

// CPU seconds used by the calling thread so far. Unlike wall time it barely
// moves when other processes compete for the cores, so a latency measured
// both ways tells the code's cost from the machine's load.
double ThreadCpuSeconds();

// User + system CPU seconds this process has used so far (all threads).
double ProcessCpuSeconds();

// Bytes resident (VmRSS) of this process, or -1 if /proc is not readable.
int64_t CurrentRssBytes();

}  // namespace xnai::bench
