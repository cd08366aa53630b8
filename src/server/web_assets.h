// The web UI's files, embedded into the binary at build time: web/ is built
// with Vite and cmake/embed_web.cmake turns its output into a generated
// source that defines WebAssets(). Served by routes/web_routes.cc.
#pragma once

#include <span>
#include <string_view>

namespace xnai::server {

struct WebAsset {
  std::string_view path;          // relative to the UI root: "index.html", "assets/index-1a2b.js"
  std::string_view content_type;  // "text/javascript; charset=utf-8"
  std::string_view body;          // the file's bytes (static storage)
  std::string_view etag;          // hex digest of the bytes, without quotes
};

// Every embedded file, sorted by path; empty when the UI was not built
// (configured with XNAI_WEB_UI=OFF). Thread-safe (static data).
std::span<const WebAsset> WebAssets();

// The asset at `path` ("assets/x.js"), or null.
const WebAsset* FindWebAsset(std::string_view path);

}  // namespace xnai::server
