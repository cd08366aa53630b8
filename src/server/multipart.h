// multipart/form-data parsing (RFC 7578) for uploads. Pure function over the
// whole body (the server has already enforced the body size limit).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace xnai::server {

struct FormPart {
  std::string name;          // the form field name
  std::string filename;      // empty for plain fields
  std::string content_type;  // of the part, may be empty
  std::string_view data;     // points into the body passed to ParseMultipart
};

// Extracts the boundary from a Content-Type header value such as
// `multipart/form-data; boundary=XyZ`. InvalidArgument when absent.
Result<std::string> MultipartBoundary(std::string_view content_type);

// Splits `body` into parts. InvalidArgument (naming what is wrong) for a body
// without the opening boundary, without the closing one, or with a part that
// has no Content-Disposition name. At most `max_parts` parts.
Result<std::vector<FormPart>> ParseMultipart(std::string_view body, std::string_view boundary,
                                             size_t max_parts = 1000);

}  // namespace xnai::server
