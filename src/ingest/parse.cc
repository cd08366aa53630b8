#include "ingest/parse.h"

namespace xnai::ingest {

Result<ParsedDocument> Parse(std::string_view media_type, std::string_view bytes) {
  if (media_type == kTextPlain) return ParseText(bytes);
  if (media_type == kTextMarkdown) return ParseMarkdown(bytes);
  if (media_type == kTextHtml) return ParseHtml(bytes);
  if (media_type == kApplicationPdf) return ParsePdf(bytes);
  return Err(Status::Unsupported("unsupported type " + std::string(media_type)));
}

}  // namespace xnai::ingest
