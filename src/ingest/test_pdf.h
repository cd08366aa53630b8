// Test helper: writes small, valid PDFs by hand (catalog, page tree, one
// Helvetica content stream per page, an exact xref table), so parser tests
// exercise poppler on real files without checked-in binaries.
#pragma once

#include <string>
#include <vector>

namespace xnai::ingest::testing {

struct PdfPage {
  std::vector<std::string> lines;  // each drawn on its own baseline; "" skips a line
};

// A PDF with the given pages; `title` goes into the Info dictionary when
// non-empty. Lines are ASCII (parentheses and backslashes are escaped).
std::string MakePdf(const std::vector<PdfPage>& pages, const std::string& title = "");

}  // namespace xnai::ingest::testing
