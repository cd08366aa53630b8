#include "ingest/test_pdf.h"

#include <cstdio>

namespace xnai::ingest::testing {

namespace {

std::string EscapePdfString(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '(' || c == ')' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string MakePdf(const std::vector<PdfPage>& pages, const std::string& title) {
  // Object numbers: 1 catalog, 2 page tree, 3 font, then (page, contents)
  // pairs, then the info dictionary.
  const int n_pages = static_cast<int>(pages.size());
  const int info_obj = 4 + 2 * n_pages;
  const int n_objects = title.empty() ? info_obj - 1 : info_obj;
  std::vector<size_t> offsets(n_objects + 1, 0);
  std::string pdf = "%PDF-1.4\n%\xE2\xE3\xCF\xD3\n";

  auto begin_obj = [&](int num) {
    offsets[num] = pdf.size();
    pdf += std::to_string(num) + " 0 obj\n";
  };

  begin_obj(1);
  pdf += "<< /Type /Catalog /Pages 2 0 R >>\nendobj\n";
  begin_obj(2);
  pdf += "<< /Type /Pages /Kids [";
  for (int i = 0; i < n_pages; ++i) pdf += std::to_string(4 + 2 * i) + " 0 R ";
  pdf += "] /Count " + std::to_string(n_pages) + " >>\nendobj\n";
  begin_obj(3);
  pdf +=
      "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>\n"
      "endobj\n";
  for (int i = 0; i < n_pages; ++i) {
    int page_obj = 4 + 2 * i;
    begin_obj(page_obj);
    pdf +=
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R"
        " >> >> /Contents " +
        std::to_string(page_obj + 1) + " 0 R >>\nendobj\n";
    std::string content;
    if (!pages[i].lines.empty()) {
      content = "BT\n/F1 12 Tf\n14 TL\n72 720 Td\n";
      for (const std::string& line : pages[i].lines) {
        content += "(" + EscapePdfString(line) + ") Tj T*\n";
      }
      content += "ET\n";
    }
    begin_obj(page_obj + 1);
    pdf += "<< /Length " + std::to_string(content.size()) + " >>\nstream\n" + content +
           "endstream\nendobj\n";
  }
  if (!title.empty()) {
    begin_obj(info_obj);
    pdf += "<< /Title (" + EscapePdfString(title) + ") /Producer (xnai test) >>\nendobj\n";
  }
  size_t xref = pdf.size();
  pdf += "xref\n0 " + std::to_string(n_objects + 1) + "\n";
  pdf += "0000000000 65535 f \n";
  for (int num = 1; num <= n_objects; ++num) {
    char entry[32];
    std::snprintf(entry, sizeof(entry), "%010zu 00000 n \n", offsets[num]);
    pdf += entry;
  }
  pdf += "trailer\n<< /Size " + std::to_string(n_objects + 1) + " /Root 1 0 R";
  if (!title.empty()) pdf += " /Info " + std::to_string(info_obj) + " 0 R";
  pdf += " >>\nstartxref\n" + std::to_string(xref) + "\n%%EOF\n";
  return pdf;
}

}  // namespace xnai::ingest::testing
