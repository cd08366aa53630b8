// Configuration: a plain struct, filled in layers. Later layers win:
//   1. built-in defaults (the values below),
//   2. a TOML file (`--config FILE`, else ./xnai.toml if it exists),
//   3. environment variables XNAI_<SECTION>_<KEY> (e.g. XNAI_SERVER_LISTEN),
//   4. command-line flags (`--listen`, `--data`, `--set section.key=value`).
// A key `foo_file` of a secret `foo` reads the secret from that file.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"

namespace xnai {

struct ServerConfig {
  std::string listen = "127.0.0.1:8000";
  int threads = 4;
  int64_t max_body_bytes = 64ll << 20;     // uploads included
  int64_t max_header_bytes = 16 << 10;
  int read_timeout_ms = 30'000;            // whole request must arrive in this time
  int write_timeout_ms = 30'000;
  int idle_timeout_ms = 60'000;            // keep-alive connection with no request
  int max_connections = 256;
  int shutdown_grace_ms = 10'000;          // drain in-flight requests on SIGTERM
  std::string api_key;                     // secret; required to listen off loopback
};

struct DataConfig {
  std::string dir = "./data";
  int busy_timeout_ms = 5000;  // wait this long for another process's database lock, then 503
};

struct IngestConfig {
  int chunk_target_chars = 1000;
  int chunk_overlap_chars = 150;
  int64_t max_file_bytes = 64ll << 20;
  int threads = 0;                         // folder ingestion workers; 0 = cores (at most 4)
  std::vector<std::string> allowed_roots;  // paths the HTTP API may ingest from; empty = none
  std::vector<std::string> include;        // globs; empty = every supported file
  std::vector<std::string> exclude;        // globs
};

struct SearchConfig {
  int default_k = 10;
  int max_k = 100;
  int max_query_chars = 1000;
  // Hybrid retrieval: reciprocal-rank fusion, weight / (rrf_k + rank) per list.
  int rrf_k = 60;
  double lexical_weight = 1.0;
  double dense_weight = 1.0;
  // Vectors at which a collection's index turns from exact search to HNSW.
  int64_t hnsw_threshold = 20000;
  // Chunks per call to the embedding model while ingesting.
  int embed_batch = 16;
};

struct LogConfig {
  std::string level = "info";   // debug, info, warn, error
  std::string format = "auto";  // auto (text on a TTY, else json), json, text
};

struct Config {
  ServerConfig server;
  DataConfig data;
  IngestConfig ingest;
  SearchConfig search;
  LogConfig log;

  // Layer 2: merges a TOML document (text) into this config. Unknown keys and
  // wrong types are errors naming the key.
  Status MergeToml(const std::string& toml_text, const std::string& origin);
  // Layer 2 from a file; a missing file is NotFound.
  Status MergeTomlFile(const std::string& path);
  // Layer 3: every XNAI_<SECTION>_<KEY> in `env` (name -> value).
  Status MergeEnv(const std::map<std::string, std::string>& env);
  // Layer 4: one `section.key` = textual value (lists comma-separated).
  Status Set(const std::string& dotted_key, const std::string& value);

  // Checks ranges and cross-field rules (e.g. overlap < target).
  Status Validate() const;

  // TOML text of the effective configuration, secrets masked as "********".
  std::string Show() const;

  // Every known dotted key, in display order.
  static std::vector<std::string> Keys();
};

// The process environment as a map, for MergeEnv.
std::map<std::string, std::string> ProcessEnvironment();

// Parses sizes like "64MiB", "10MB", "512k", "1024". Used for byte limits.
Result<int64_t> ParseByteSize(const std::string& text);

// Splits "host:port" (IPv6 as "[::1]:8000"). Port must be 0..65535.
struct HostPort {
  std::string host;
  uint16_t port = 0;
};
Result<HostPort> ParseHostPort(const std::string& text);
// True for 127.0.0.0/8, ::1 and "localhost".
bool IsLoopbackHost(const std::string& host);

}  // namespace xnai
