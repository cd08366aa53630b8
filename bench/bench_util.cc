#include "bench/bench_util.h"

#include <stdlib.h>
#include <sys/resource.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>

#include "base/files.h"

namespace xnai::bench {

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  // Nearest rank: the smallest value with at least p% of values <= it.
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  if (rank < 1) rank = 1;
  if (rank > sorted.size()) rank = sorted.size();
  return sorted[rank - 1];
}

Result<std::map<std::string, std::string>> ParseFlags(
    int argc, char** argv, const std::map<std::string, std::string>& known) {
  std::map<std::string, std::string> flags = known;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return Err(Status::NotFound("help requested"));
    if (arg.rfind("--", 0) != 0) {
      return Err(Status::InvalidArgument("unexpected argument '" + arg + "'"));
    }
    std::string name = arg.substr(2);
    std::string value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else {
      if (i + 1 >= argc) return Err(Status::InvalidArgument("--" + name + " needs a value"));
      value = argv[++i];
    }
    if (!known.count(name)) return Err(Status::InvalidArgument("unknown flag --" + name));
    flags[name] = value;
  }
  return flags;
}

Result<double> FlagNumber(const std::map<std::string, std::string>& flags, const std::string& name,
                          double lo, double hi) {
  const std::string& text = flags.at(name);
  char* end = nullptr;
  errno = 0;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno != 0 || !(value >= lo && value <= hi)) {
    char range[96];
    std::snprintf(range, sizeof(range), "a number in [%g, %g]", lo, hi);
    return Err(Status::InvalidArgument("--" + name + " must be " + range + ", got '" + text + "'"));
  }
  return value;
}

Result<ScratchDir> ScratchDir::Make(const std::string& path, const std::string& prefix) {
  std::error_code ec;
  if (!path.empty()) {
    std::filesystem::create_directories(path, ec);
    if (ec) return Err(Status::IOError("cannot create " + path + ": " + ec.message()));
    return ScratchDir(path, /*owned=*/false);
  }
  std::string tmpl = (std::filesystem::temp_directory_path(ec) / (prefix + "-XXXXXX")).string();
  if (ec) return Err(Status::IOError("no temp directory: " + ec.message()));
  if (mkdtemp(tmpl.data()) == nullptr) return Err(StatusFromErrno(errno, "mkdtemp " + tmpl));
  return ScratchDir(tmpl, /*owned=*/true);
}

ScratchDir::ScratchDir(ScratchDir&& other) noexcept
    : path_(std::move(other.path_)), owned_(other.owned_) {
  other.owned_ = false;
}

ScratchDir::~ScratchDir() {
  if (!owned_) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);  // best effort: a leftover temp dir is harmless
}

int FailWith(const char* name, const Status& status) {
  std::fprintf(stderr, "%s: %s\n", name, status.ToString().c_str());
  return status.code() == Status::Code::kInvalidArgument ? 2 : 1;
}

double ThreadCpuSeconds() {
  timespec ts{};
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double ProcessCpuSeconds() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec * 1e-6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

int64_t CurrentRssBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;
  }
  return -1;
}

}  // namespace xnai::bench
