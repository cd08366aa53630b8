#include "obs/metrics.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

namespace xnai::obs {
namespace {

constexpr const char* kPromtool = "/usr/bin/promtool";

struct PromtoolResult {
  int exit_code = -1;
  std::string output;
};

// Runs `promtool check metrics` with `text` on stdin.
PromtoolResult CheckWithPromtool(const std::string& text) {
  PromtoolResult result;
  char out_path[] = "/tmp/xnai_promtool_XXXXXX";
  int out_fd = mkstemp(out_path);
  if (out_fd < 0) return result;
  close(out_fd);
  std::string command = std::string(kPromtool) + " check metrics > " + out_path + " 2>&1";
  FILE* pipe = popen(command.c_str(), "w");
  if (pipe == nullptr) return result;
  std::fwrite(text.data(), 1, text.size(), pipe);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(out_path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  result.output = buffer.str();
  std::remove(out_path);
  return result;
}

void RequirePromtool() {
  ASSERT_EQ(access(kPromtool, X_OK), 0)
      << kPromtool << " is missing: it is a required test dependency (Debian package "
      << "'prometheus'); run scripts/install-deps";
}

TEST(MetricsTest, RendersSmallRegistryExactly) {
  Registry registry;
  registry.DeclareCounter("b_requests_total", "Requests.");
  registry.DeclareGauge("a_temperature", "Temperature\nin C \\ K.");
  registry.DeclareHistogram("c_latency_seconds", "Latency.", {1, 0.5, 0.5, 2});
  registry.Inc("b_requests_total", {{"route", "/x"}, {"status", "200"}});
  registry.Inc("b_requests_total", {{"route", "/x"}, {"status", "200"}}, 2);
  registry.Inc("b_requests_total", {{"route", "a\"b\\c\nd"}, {"status", "500"}});
  registry.Set("a_temperature", {}, 21.5);
  registry.Observe("c_latency_seconds", {{"route", "/x"}}, 0.5);  // le is inclusive
  registry.Observe("c_latency_seconds", {{"route", "/x"}}, 1.5);
  registry.Observe("c_latency_seconds", {{"route", "/x"}}, 100);
  const std::string expected =
      "# HELP a_temperature Temperature\\nin C \\\\ K.\n"
      "# TYPE a_temperature gauge\n"
      "a_temperature 21.5\n"
      "# HELP b_requests_total Requests.\n"
      "# TYPE b_requests_total counter\n"
      "b_requests_total{route=\"/x\",status=\"200\"} 3\n"
      "b_requests_total{route=\"a\\\"b\\\\c\\nd\",status=\"500\"} 1\n"
      "# HELP c_latency_seconds Latency.\n"
      "# TYPE c_latency_seconds histogram\n"
      "c_latency_seconds_bucket{route=\"/x\",le=\"0.5\"} 1\n"
      "c_latency_seconds_bucket{route=\"/x\",le=\"1\"} 1\n"
      "c_latency_seconds_bucket{route=\"/x\",le=\"2\"} 2\n"
      "c_latency_seconds_bucket{route=\"/x\",le=\"+Inf\"} 3\n"
      "c_latency_seconds_sum{route=\"/x\"} 102\n"
      "c_latency_seconds_count{route=\"/x\"} 3\n";
  EXPECT_EQ(registry.RenderPrometheus(), expected);
  // Stable: rendering twice gives the same text.
  EXPECT_EQ(registry.RenderPrometheus(), expected);
}

TEST(MetricsTest, HistogramWithoutLabelsAndFractionalSum) {
  Registry registry;
  registry.DeclareHistogram("h_seconds", "H.", {0.001, 0.01});
  registry.Observe("h_seconds", {}, 0.0005);
  registry.Observe("h_seconds", {}, 0.002);
  const std::string text = registry.RenderPrometheus();
  EXPECT_NE(text.find("h_seconds_bucket{le=\"0.001\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_bucket{le=\"0.01\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_bucket{le=\"+Inf\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_sum 0.0025\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_count 2\n"), std::string::npos) << text;
  EXPECT_EQ(registry.Value("h_seconds"), 2);
}

TEST(MetricsTest, CountersOnlyGoUpGaugesGoBothWays) {
  Registry registry;
  registry.DeclareCounter("c_total", "C.");
  registry.DeclareGauge("g", "G.");
  registry.Inc("c_total", {}, 5);
  registry.Inc("c_total", {}, -3);  // ignored
  registry.Inc("g", {}, 2);
  registry.Inc("g", {}, -3);
  EXPECT_EQ(registry.Value("c_total"), 5);
  EXPECT_EQ(registry.Value("g"), -1);
  registry.Set("g", {}, 7);
  EXPECT_EQ(registry.Value("g"), 7);
  // Wrong kinds are ignored.
  registry.Set("c_total", {}, 100);
  registry.Observe("c_total", {}, 1);
  EXPECT_EQ(registry.Value("c_total"), 5);
  // Re-declaring with another kind keeps the first declaration.
  registry.DeclareGauge("c_total", "other");
  EXPECT_NE(registry.RenderPrometheus().find("# TYPE c_total counter"), std::string::npos);
  // Missing series read as 0.
  EXPECT_EQ(registry.Value("c_total", {{"x", "y"}}), 0);
  EXPECT_EQ(registry.Value("nope"), 0);
}

TEST(MetricsTest, InvalidNamesAreRejected) {
  Registry registry;
  registry.DeclareCounter("bad-name", "x");
  registry.DeclareCounter("9lives", "x");
  registry.DeclareHistogram("h", "x", {1});
  registry.Observe("h", {{"le", "5"}}, 1);         // "le" is reserved on histograms
  registry.Inc("ok_total", {{"bad-label", "v"}});  // auto-declared, bad series dropped
  const std::string text = registry.RenderPrometheus();
  EXPECT_EQ(text.find("bad-name"), std::string::npos);
  EXPECT_EQ(text.find("9lives"), std::string::npos);
  EXPECT_EQ(text.find("h_bucket"), std::string::npos);
  EXPECT_EQ(text.find("bad-label"), std::string::npos);
}

TEST(MetricsTest, UndeclaredNamesAreDeclaredOnFirstUse) {
  Registry registry;
  registry.Inc("auto_total", {{"a", "b"}});
  registry.Set("auto_gauge", {}, 3);
  registry.Observe("auto_seconds", {}, 0.2);
  const std::string text = registry.RenderPrometheus();
  EXPECT_NE(text.find("# TYPE auto_total counter\nauto_total{a=\"b\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE auto_gauge gauge\nauto_gauge 3\n"), std::string::npos);
  EXPECT_NE(text.find("auto_seconds_bucket{le=\"0.25\"} 1\n"), std::string::npos) << text;
}

TEST(MetricsTest, CallbackGaugeEvaluatedAtScrapeAndMayUseRegistry) {
  Registry registry;
  registry.DeclareCounter("x_total", "X.");
  int calls = 0;
  registry.DeclareCallbackGauge("cb", "Callback.", [&] {
    ++calls;
    return registry.Value("x_total") * 2;  // would deadlock if called under the lock
  });
  registry.Inc("x_total", {}, 4);
  EXPECT_NE(registry.RenderPrometheus().find("cb 8\n"), std::string::npos);
  registry.Inc("x_total");
  EXPECT_NE(registry.RenderPrometheus().find("cb 10\n"), std::string::npos);
  EXPECT_EQ(calls, 2);
}

TEST(MetricsTest, ConcurrentIncrementsAreAllCounted) {
  Registry registry;
  registry.DeclareCounter("n_total", "N.");
  registry.DeclareHistogram("d_seconds", "D.", {0.1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        registry.Inc("n_total", {{"k", "v"}});
        registry.Observe("d_seconds", {}, 0.05);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(registry.Value("n_total", {{"k", "v"}}), 40000);
  EXPECT_EQ(registry.Value("d_seconds"), 40000);
}

TEST(MetricsTest, ProcessMetricsAreSane) {
  EXPECT_GT(ProcessRssBytes(), 1 << 20);  // a test binary uses more than 1 MiB
  int64_t fds_before = ProcessOpenFds();
  EXPECT_GE(fds_before, 3);
  int fd = open("/dev/null", O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(ProcessOpenFds(), fds_before + 1);
  close(fd);
  EXPECT_EQ(ProcessOpenFds(), fds_before);

  Registry registry;
  RegisterProcessMetrics(registry);
  EXPECT_GT(registry.Value("process_resident_memory_bytes"), 0);
  double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  double start = registry.Value("process_start_time_seconds");
  EXPECT_LE(start, now + 1);
  EXPECT_GT(start, now - 3600);  // the test process started less than an hour ago
  double uptime = registry.Value("xnai_uptime_seconds");
  EXPECT_GE(uptime, 0);
  EXPECT_LT(uptime, 3600);
}

TEST(MetricsTest, RenderedOutputPassesPromtool) {
  ASSERT_NO_FATAL_FAILURE(RequirePromtool());
  Registry registry;
  RegisterProcessMetrics(registry);
  registry.DeclareCounter("xnai_http_requests_total", "HTTP requests by route, method, status.");
  registry.DeclareGauge("xnai_http_connections_active", "Open HTTP connections.");
  registry.DeclareHistogram("xnai_http_request_duration_seconds", "Request latency.",
                            {0.001, 0.01, 0.1, 1, 10});
  registry.Inc("xnai_http_requests_total",
               {{"route", "/api/{id}"}, {"method", "GET"}, {"status", "200"}});
  registry.Inc("xnai_http_requests_total",
               {{"route", "we\"ird\\\nroute"}, {"method", "POST"}, {"status", "500"}});
  registry.Set("xnai_http_connections_active", {}, 3);
  registry.Observe("xnai_http_request_duration_seconds", {{"route", "/api/{id}"}}, 0.004);
  registry.Observe("xnai_http_request_duration_seconds", {{"route", "/health"}}, 12);
  const std::string text = registry.RenderPrometheus();
  PromtoolResult result = CheckWithPromtool(text);
  EXPECT_EQ(result.exit_code, 0) << "promtool said:\n" << result.output << "\nfor:\n" << text;
  EXPECT_EQ(result.output, "") << text;
}

TEST(MetricsTest, PromtoolCheckCanFail) {
  // Guards the test above against a harness that always passes.
  ASSERT_NO_FATAL_FAILURE(RequirePromtool());
  PromtoolResult result = CheckWithPromtool("# TYPE x counter\nx{a=\"unterminated} 1\n");
  EXPECT_NE(result.exit_code, 0) << result.output;
}

}  // namespace
}  // namespace xnai::obs
