#include "base/config.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>
#include <variant>
#include <cmath>
#include <cstdlib>

#include <toml++/toml.h>

extern char** environ;

namespace xnai {
namespace {

using FieldPtr = std::variant<std::string*, int*, int64_t*, double*, std::vector<std::string>*>;

struct Field {
  const char* key;  // "section.name"
  FieldPtr ptr;
  bool secret = false;
  bool byte_size = false;  // int64 fields that accept "64MiB"
};

// The one table of keys. Config::Keys, Show, Set, MergeToml and MergeEnv all
// read it, so a new key is added here once.
std::vector<Field> Fields(Config& c) {
  return {
      {"server.listen", &c.server.listen},
      {"server.threads", &c.server.threads},
      {"server.max_body_bytes", &c.server.max_body_bytes, false, true},
      {"server.max_header_bytes", &c.server.max_header_bytes, false, true},
      {"server.read_timeout_ms", &c.server.read_timeout_ms},
      {"server.write_timeout_ms", &c.server.write_timeout_ms},
      {"server.idle_timeout_ms", &c.server.idle_timeout_ms},
      {"server.max_connections", &c.server.max_connections},
      {"server.shutdown_grace_ms", &c.server.shutdown_grace_ms},
      {"server.api_key", &c.server.api_key, true},
      {"data.dir", &c.data.dir},
      {"data.busy_timeout_ms", &c.data.busy_timeout_ms},
      {"ingest.chunk_target_chars", &c.ingest.chunk_target_chars},
      {"ingest.chunk_overlap_chars", &c.ingest.chunk_overlap_chars},
      {"ingest.max_file_bytes", &c.ingest.max_file_bytes, false, true},
      {"ingest.threads", &c.ingest.threads},
      {"ingest.allowed_roots", &c.ingest.allowed_roots},
      {"ingest.include", &c.ingest.include},
      {"ingest.exclude", &c.ingest.exclude},
      {"search.default_k", &c.search.default_k},
      {"search.max_k", &c.search.max_k},
      {"search.max_query_chars", &c.search.max_query_chars},
      {"search.rrf_k", &c.search.rrf_k},
      {"search.lexical_weight", &c.search.lexical_weight},
      {"search.dense_weight", &c.search.dense_weight},
      {"search.hnsw_threshold", &c.search.hnsw_threshold},
      {"search.embed_batch", &c.search.embed_batch},
      {"log.level", &c.log.level},
      {"log.format", &c.log.format},
  };
}

std::string Trim(std::string s) {
  auto not_space = [](unsigned char ch) { return !std::isspace(ch); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

Result<std::string> ReadSecretFile(const std::string& path, const std::string& key) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Err(Status::NotFound(key + "_file: cannot read '" + path + "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string value = Trim(ss.str());
  if (value.empty()) return Err(Status::InvalidArgument(key + "_file: '" + path + "' is empty"));
  return value;
}

Result<int64_t> ParseInt(const std::string& text, const std::string& key) {
  std::string t = Trim(text);
  int64_t v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || p != t.data() + t.size() || t.empty()) {
    return Err(Status::InvalidArgument(key + ": expected an integer, got '" + text + "'"));
  }
  return v;
}

// Assigns a textual value (env var or flag) to a field.
Status AssignText(const Field& f, const std::string& value) {
  const std::string key = f.key;
  if (auto* s = std::get_if<std::string*>(&f.ptr)) {
    **s = value;
  } else if (auto* i = std::get_if<int*>(&f.ptr)) {
    auto v = ParseInt(value, key);
    if (!v) return v.error();
    if (*v < INT32_MIN || *v > INT32_MAX) return Status::InvalidArgument(key + ": out of range");
    **i = static_cast<int>(*v);
  } else if (auto* l = std::get_if<int64_t*>(&f.ptr)) {
    auto v = f.byte_size ? ParseByteSize(value) : ParseInt(value, key);
    if (!v) return v.error().WithContext(key);
    **l = *v;
  } else if (auto* d = std::get_if<double*>(&f.ptr)) {
    const std::string t = Trim(value);
    char* end = nullptr;
    const double v = t.empty() ? 0 : std::strtod(t.c_str(), &end);
    if (t.empty() || end != t.c_str() + t.size() || !std::isfinite(v)) {
      return Status::InvalidArgument(key + ": expected a number, got '" + value + "'");
    }
    **d = v;
  } else if (auto* list = std::get_if<std::vector<std::string>*>(&f.ptr)) {
    (*list)->clear();
    std::stringstream ss(value);
    std::string item;
    while (std::getline(ss, item, ',')) {
      item = Trim(item);
      if (!item.empty()) (*list)->push_back(item);
    }
  }
  return Status::Ok();
}

Status AssignToml(const Field& f, const toml::node& node, const std::string& origin) {
  const std::string where = origin + ": " + f.key;
  if (auto* s = std::get_if<std::string*>(&f.ptr)) {
    if (!node.is_string()) return Status::InvalidArgument(where + ": expected a string");
    **s = *node.value<std::string>();
  } else if (auto* i = std::get_if<int*>(&f.ptr)) {
    if (!node.is_integer()) return Status::InvalidArgument(where + ": expected an integer");
    int64_t v = *node.value<int64_t>();
    if (v < INT32_MIN || v > INT32_MAX) return Status::InvalidArgument(where + ": out of range");
    **i = static_cast<int>(v);
  } else if (auto* l = std::get_if<int64_t*>(&f.ptr)) {
    if (node.is_integer()) {
      **l = *node.value<int64_t>();
    } else if (node.is_string() && f.byte_size) {
      auto v = ParseByteSize(*node.value<std::string>());
      if (!v) return v.error().WithContext(where);
      **l = *v;
    } else {
      return Status::InvalidArgument(where + ": expected an integer" +
                                     (f.byte_size ? " or a size like \"64MiB\"" : ""));
    }
  } else if (auto* d = std::get_if<double*>(&f.ptr)) {
    if (!node.is_number()) return Status::InvalidArgument(where + ": expected a number");
    **d = *node.value<double>();
  } else if (auto* list = std::get_if<std::vector<std::string>*>(&f.ptr)) {
    const toml::array* arr = node.as_array();
    if (!arr) return Status::InvalidArgument(where + ": expected an array of strings");
    std::vector<std::string> out;
    for (const auto& el : *arr) {
      if (!el.is_string()) return Status::InvalidArgument(where + ": expected an array of strings");
      out.push_back(*el.value<std::string>());
    }
    **list = std::move(out);
  }
  return Status::Ok();
}

std::string TomlQuote(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default: out += ch;
    }
  }
  return out + "\"";
}

}  // namespace

std::vector<std::string> Config::Keys() {
  Config c;
  std::vector<std::string> keys;
  for (const auto& f : Fields(c)) keys.push_back(f.key);
  return keys;
}

Status Config::MergeToml(const std::string& toml_text, const std::string& origin) {
  toml::table root;
  try {
    root = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << origin << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
        << e.description();
    return Status::InvalidArgument(msg.str());
  }
  auto fields = Fields(*this);
  for (const auto& [section_key, section_node] : root) {
    std::string section(section_key.str());
    const toml::table* table = section_node.as_table();
    if (!table) return Status::InvalidArgument(origin + ": '" + section + "' must be a table");
    for (const auto& [name_key, node] : *table) {
      std::string name(name_key.str());
      std::string dotted = section + "." + name;
      // Secret indirection: `api_key_file = "/run/secrets/key"`.
      if (name.size() > 5 && name.ends_with("_file")) {
        std::string base_key = dotted.substr(0, dotted.size() - 5);
        auto it = std::find_if(fields.begin(), fields.end(),
                               [&](const Field& f) { return base_key == f.key; });
        if (it != fields.end() && it->secret) {
          if (!node.is_string()) {
            return Status::InvalidArgument(origin + ": " + dotted + ": expected a path string");
          }
          auto secret = ReadSecretFile(*node.value<std::string>(), base_key);
          if (!secret) return secret.error();
          XNAI_RETURN_IF_ERROR(AssignText(*it, *secret));
          continue;
        }
      }
      auto it = std::find_if(fields.begin(), fields.end(),
                             [&](const Field& f) { return dotted == f.key; });
      if (it == fields.end()) {
        return Status::InvalidArgument(origin + ": unknown key '" + dotted + "'");
      }
      XNAI_RETURN_IF_ERROR(AssignToml(*it, node, origin));
    }
  }
  return Status::Ok();
}

Status Config::MergeTomlFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("config file '" + path + "' cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  return MergeToml(ss.str(), path);
}

Status Config::MergeEnv(const std::map<std::string, std::string>& env) {
  for (const auto& f : Fields(*this)) {
    std::string name = std::string("XNAI_") + f.key;
    for (char& ch : name) ch = ch == '.' ? '_' : static_cast<char>(std::toupper(ch));
    if (auto it = env.find(name); it != env.end()) {
      XNAI_RETURN_IF_ERROR(AssignText(f, it->second).WithContext(name));
    }
    if (f.secret) {
      if (auto it = env.find(name + "_FILE"); it != env.end()) {
        auto secret = ReadSecretFile(it->second, f.key);
        if (!secret) return secret.error().WithContext(name + "_FILE");
        XNAI_RETURN_IF_ERROR(AssignText(f, *secret));
      }
    }
  }
  return Status::Ok();
}

Status Config::Set(const std::string& dotted_key, const std::string& value) {
  auto fields = Fields(*this);
  for (const auto& f : fields) {
    if (dotted_key == f.key) return AssignText(f, value);
    if (f.secret && dotted_key == std::string(f.key) + "_file") {
      auto secret = ReadSecretFile(value, f.key);
      if (!secret) return secret.error();
      return AssignText(f, *secret);
    }
  }
  return Status::InvalidArgument("unknown configuration key '" + dotted_key + "'");
}

Status Config::Validate() const {
  auto hp = ParseHostPort(server.listen);
  if (!hp) return hp.error().WithContext("server.listen");
  auto positive = [](const char* key, int64_t v) -> Status {
    if (v <= 0) return Status::InvalidArgument(std::string(key) + " must be positive");
    return Status::Ok();
  };
  XNAI_RETURN_IF_ERROR(positive("server.threads", server.threads));
  XNAI_RETURN_IF_ERROR(positive("server.max_body_bytes", server.max_body_bytes));
  XNAI_RETURN_IF_ERROR(positive("server.max_header_bytes", server.max_header_bytes));
  XNAI_RETURN_IF_ERROR(positive("server.read_timeout_ms", server.read_timeout_ms));
  XNAI_RETURN_IF_ERROR(positive("server.write_timeout_ms", server.write_timeout_ms));
  XNAI_RETURN_IF_ERROR(positive("server.idle_timeout_ms", server.idle_timeout_ms));
  XNAI_RETURN_IF_ERROR(positive("server.max_connections", server.max_connections));
  XNAI_RETURN_IF_ERROR(positive("ingest.chunk_target_chars", ingest.chunk_target_chars));
  XNAI_RETURN_IF_ERROR(positive("ingest.max_file_bytes", ingest.max_file_bytes));
  XNAI_RETURN_IF_ERROR(positive("data.busy_timeout_ms", data.busy_timeout_ms));
  XNAI_RETURN_IF_ERROR(positive("search.default_k", search.default_k));
  XNAI_RETURN_IF_ERROR(positive("search.max_k", search.max_k));
  XNAI_RETURN_IF_ERROR(positive("search.max_query_chars", search.max_query_chars));
  if (server.threads > 256) return Status::InvalidArgument("server.threads must be <= 256");
  if (ingest.threads < 0 || ingest.threads > 64) {
    return Status::InvalidArgument("ingest.threads must be between 0 (automatic) and 64");
  }
  if (ingest.chunk_overlap_chars < 0 || ingest.chunk_overlap_chars >= ingest.chunk_target_chars) {
    return Status::InvalidArgument(
        "ingest.chunk_overlap_chars must be >= 0 and below ingest.chunk_target_chars");
  }
  XNAI_RETURN_IF_ERROR(positive("search.rrf_k", search.rrf_k));
  XNAI_RETURN_IF_ERROR(positive("search.hnsw_threshold", search.hnsw_threshold));
  XNAI_RETURN_IF_ERROR(positive("search.embed_batch", search.embed_batch));
  if (search.lexical_weight < 0 || search.dense_weight < 0 ||
      search.lexical_weight + search.dense_weight <= 0) {
    return Status::InvalidArgument(
        "search.lexical_weight and search.dense_weight must be >= 0, not both 0");
  }
  if (search.default_k > search.max_k) {
    return Status::InvalidArgument("search.default_k must not exceed search.max_k");
  }
  if (data.dir.empty()) return Status::InvalidArgument("data.dir must not be empty");
  const std::vector<std::string> levels = {"debug", "info", "warn", "error"};
  if (std::find(levels.begin(), levels.end(), log.level) == levels.end()) {
    return Status::InvalidArgument("log.level must be one of debug, info, warn, error");
  }
  if (log.format != "auto" && log.format != "json" && log.format != "text") {
    return Status::InvalidArgument("log.format must be one of auto, json, text");
  }
  if (!IsLoopbackHost(hp->host) && server.api_key.empty()) {
    return Status::FailedPrecondition(
        "refusing to listen on " + server.listen +
        " without auth: set server.api_key (or server.api_key_file / XNAI_SERVER_API_KEY_FILE),"
        " or listen on 127.0.0.1");
  }
  return Status::Ok();
}

std::string Config::Show() const {
  Config copy = *this;
  std::ostringstream out;
  std::string current_section;
  for (const auto& f : Fields(copy)) {
    std::string key = f.key;
    std::string section = key.substr(0, key.find('.'));
    std::string name = key.substr(key.find('.') + 1);
    if (section != current_section) {
      if (!current_section.empty()) out << "\n";
      out << "[" << section << "]\n";
      current_section = section;
    }
    out << name << " = ";
    if (auto* s = std::get_if<std::string*>(&f.ptr)) {
      out << (f.secret ? ((*s)->empty() ? "\"\"" : "\"********\"") : TomlQuote(**s));
    } else if (auto* i = std::get_if<int*>(&f.ptr)) {
      out << **i;
    } else if (auto* l = std::get_if<int64_t*>(&f.ptr)) {
      out << **l;
    } else if (auto* d = std::get_if<double*>(&f.ptr)) {
      out << **d;
    } else if (auto* list = std::get_if<std::vector<std::string>*>(&f.ptr)) {
      out << "[";
      for (size_t idx = 0; idx < (*list)->size(); ++idx) {
        out << (idx ? ", " : "") << TomlQuote((**list)[idx]);
      }
      out << "]";
    }
    out << "\n";
  }
  return out.str();
}

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string entry(*e);
    auto eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return env;
}

Result<int64_t> ParseByteSize(const std::string& text) {
  std::string t = Trim(text);
  size_t digits = 0;
  while (digits < t.size() && std::isdigit(static_cast<unsigned char>(t[digits]))) ++digits;
  if (digits == 0) return Err(Status::InvalidArgument("expected a size like 64MiB, got '" + text + "'"));
  int64_t number = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + digits, number);
  if (ec != std::errc()) return Err(Status::InvalidArgument("size out of range: '" + text + "'"));
  std::string unit = Trim(t.substr(digits));
  for (char& ch : unit) ch = static_cast<char>(std::tolower(ch));
  int64_t mult = 1;
  if (unit.empty() || unit == "b") mult = 1;
  else if (unit == "k" || unit == "kb" || unit == "kib") mult = 1ll << 10;
  else if (unit == "m" || unit == "mb" || unit == "mib") mult = 1ll << 20;
  else if (unit == "g" || unit == "gb" || unit == "gib") mult = 1ll << 30;
  else if (unit == "t" || unit == "tb" || unit == "tib") mult = 1ll << 40;
  else return Err(Status::InvalidArgument("unknown size unit '" + unit + "' in '" + text + "'"));
  if (number > INT64_MAX / mult) return Err(Status::InvalidArgument("size out of range: '" + text + "'"));
  return number * mult;
}

Result<HostPort> ParseHostPort(const std::string& text) {
  HostPort hp;
  std::string port_text;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Err(Status::InvalidArgument("expected [ipv6]:port, got '" + text + "'"));
    }
    hp.host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) {
      return Err(Status::InvalidArgument("expected host:port, got '" + text + "'"));
    }
    hp.host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  if (hp.host.empty()) return Err(Status::InvalidArgument("empty host in '" + text + "'"));
  int port = -1;
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || p != port_text.data() + port_text.size() || port < 0 || port > 65535) {
    return Err(Status::InvalidArgument("invalid port in '" + text + "'"));
  }
  hp.port = static_cast<uint16_t>(port);
  return hp;
}

bool IsLoopbackHost(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace xnai
