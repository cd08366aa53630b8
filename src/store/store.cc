// Parts of the Store contract shared by every implementation.
#include "store/store.h"

namespace xnai::store {

bool IsValidCollectionName(const std::string& name) {
  // [A-Za-z0-9][A-Za-z0-9_.-]{0,63}: safe in URLs, file names and shell
  // arguments without quoting.
  if (name.empty() || name.size() > 64) return false;
  auto is_alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!is_alnum(name[0])) return false;
  for (char c : name) {
    if (!is_alnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

}  // namespace xnai::store
