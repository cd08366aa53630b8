// BlobStore: original files kept content-addressed under DIR/ab/abcdef...
// (the SHA-256 of the bytes). Writes are atomic (temp file + rename), so a
// crash never leaves a partial blob under its final name.
//
// Thread safety: all methods may be called concurrently (each Put writes a
// temporary file and renames it into place; same name means same bytes).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "base/status.h"

namespace xnai::store {

class BlobStore {
 public:
  // Creates `dir` if needed.
  static Result<BlobStore> Open(const std::filesystem::path& dir);

  // Stores the bytes (no-op if already present). Returns the sha256 hex.
  // Disk full -> ResourceExhausted, and nothing is left behind.
  Result<std::string> Put(std::string_view bytes);
  // The same, for a caller that has already hashed the bytes: `sha256` must
  // be Sha256Hex(bytes) (saves a second pass over large files).
  Result<std::string> Put(std::string_view bytes, const std::string& sha256);
  bool Has(const std::string& sha256) const;
  // NotFound if absent; Corruption if the file no longer hashes to its name;
  // InvalidArgument if `sha256` is not 64 lowercase hex digits.
  Result<std::string> Read(const std::string& sha256) const;  // NotFound
  // DIR/ab/abcdef...; an empty path when `sha256` is not 64 lowercase hex
  // digits (so a hostile name can never point outside DIR).
  std::filesystem::path PathFor(const std::string& sha256) const;
  Status Remove(const std::string& sha256);  // missing is OK

  const std::filesystem::path& dir() const { return dir_; }

 private:
  explicit BlobStore(std::filesystem::path dir) : dir_(std::move(dir)) {}
  std::filesystem::path dir_;
};

}  // namespace xnai::store
