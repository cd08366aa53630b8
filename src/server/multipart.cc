#include "server/multipart.h"

#include <algorithm>
#include <cctype>

namespace xnai::server {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view TrimView(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Value of `param` in a header like `form-data; name="file"; filename="a.txt"`.
// Handles quoted values with backslash escapes and bare tokens.
std::string HeaderParam(std::string_view header, std::string_view param) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t semi = header.find(';', pos);
    if (semi == std::string_view::npos) return "";
    pos = semi + 1;
    while (pos < header.size() && header[pos] == ' ') ++pos;
    size_t eq = header.find('=', pos);
    if (eq == std::string_view::npos) return "";
    std::string key = Lower(TrimView(header.substr(pos, eq - pos)));
    size_t vpos = eq + 1;
    std::string value;
    if (vpos < header.size() && header[vpos] == '"') {
      ++vpos;
      while (vpos < header.size() && header[vpos] != '"') {
        if (header[vpos] == '\\' && vpos + 1 < header.size()) ++vpos;
        value += header[vpos++];
      }
      ++vpos;  // closing quote
    } else {
      size_t end = header.find(';', vpos);
      value = std::string(TrimView(header.substr(vpos, end == std::string_view::npos
                                                           ? std::string_view::npos
                                                           : end - vpos)));
      vpos = end == std::string_view::npos ? header.size() : end;
    }
    if (key == param) return value;
    pos = vpos;
  }
  return "";
}

}  // namespace

Result<std::string> MultipartBoundary(std::string_view content_type) {
  if (Lower(content_type).rfind("multipart/form-data", 0) != 0) {
    return Err(Status::InvalidArgument("expected Content-Type multipart/form-data"));
  }
  std::string boundary = HeaderParam(content_type, "boundary");
  if (boundary.empty() || boundary.size() > 200) {
    return Err(Status::InvalidArgument("multipart/form-data without a valid boundary parameter"));
  }
  return boundary;
}

Result<std::vector<FormPart>> ParseMultipart(std::string_view body, std::string_view boundary,
                                             size_t max_parts) {
  const std::string delimiter = "--" + std::string(boundary);
  std::vector<FormPart> parts;
  size_t pos = body.find(delimiter);
  if (pos == std::string_view::npos) {
    return Err(Status::InvalidArgument("multipart body does not contain its boundary"));
  }
  pos += delimiter.size();
  while (true) {
    // After a delimiter: "--" ends the body, else CRLF starts a part.
    if (body.substr(pos, 2) == "--") return parts;
    if (body.substr(pos, 2) != "\r\n") {
      return Err(Status::InvalidArgument("malformed multipart body: expected CRLF after boundary"));
    }
    pos += 2;
    size_t headers_end = body.find("\r\n\r\n", pos);
    if (headers_end == std::string_view::npos) {
      return Err(Status::InvalidArgument("malformed multipart body: part headers not terminated"));
    }
    FormPart part;
    std::string_view headers = body.substr(pos, headers_end - pos);
    size_t line_start = 0;
    while (line_start <= headers.size()) {
      size_t line_end = headers.find("\r\n", line_start);
      std::string_view line = headers.substr(
          line_start, line_end == std::string_view::npos ? std::string_view::npos
                                                         : line_end - line_start);
      size_t colon = line.find(':');
      if (colon != std::string_view::npos) {
        std::string name = Lower(TrimView(line.substr(0, colon)));
        std::string_view value = TrimView(line.substr(colon + 1));
        if (name == "content-disposition") {
          part.name = HeaderParam(value, "name");
          part.filename = HeaderParam(value, "filename");
        } else if (name == "content-type") {
          part.content_type = std::string(value);
        }
      }
      if (line_end == std::string_view::npos) break;
      line_start = line_end + 2;
    }
    if (part.name.empty()) {
      return Err(Status::InvalidArgument("multipart part without a Content-Disposition name"));
    }
    size_t data_start = headers_end + 4;
    size_t next = body.find("\r\n" + delimiter, data_start);
    if (next == std::string_view::npos) {
      return Err(Status::InvalidArgument("multipart body is truncated: closing boundary missing"));
    }
    part.data = body.substr(data_start, next - data_start);
    parts.push_back(std::move(part));
    if (parts.size() > max_parts) {
      return Err(Status::InvalidArgument("too many multipart parts (limit " +
                                         std::to_string(max_parts) + ")"));
    }
    pos = next + 2 + delimiter.size();
  }
}

}  // namespace xnai::server
