#include "store/blob_store.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <functional>
#include <mutex>
#include <system_error>

#include "base/files.h"

namespace xnai::store {

namespace {

// A blob name is exactly what Sha256Hex produces: 64 lowercase hex digits.
// Checking it also keeps a hostile name ("../../etc/passwd") out of PathFor.
bool IsValidSha256(const std::string& sha256) {
  if (sha256.size() != 64) return false;
  for (char c : sha256) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Puts and Removes of one name are serialized within the process (striped by
// name so different blobs are written in parallel). Two threads writing the
// same blob at once would otherwise race on the final name and, since
// WriteFileAtomic derives its temporary name from the pid and a stack
// address, possibly on the temporary file too.
std::mutex& LockFor(const std::string& sha256) {
  static std::array<std::mutex, 64> stripes;
  size_t hash = std::hash<std::string>{}(sha256);
  return stripes[hash % stripes.size()];
}

Status InvalidSha(const std::string& sha256) {
  return Status::InvalidArgument("not a sha256 blob name: '" + sha256.substr(0, 80) + "'");
}

}  // namespace

Result<BlobStore> BlobStore::Open(const std::filesystem::path& dir) {
  if (dir.empty()) return Err(Status::InvalidArgument("blob directory is empty"));
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Err(StatusFromErrno(ec.value(), "create blob directory '" + dir.string() + "'"));
  if (!std::filesystem::is_directory(dir, ec)) {
    return Err(Status::InvalidArgument("'" + dir.string() + "' is not a directory"));
  }
  return BlobStore(dir);
}

std::filesystem::path BlobStore::PathFor(const std::string& sha256) const {
  if (!IsValidSha256(sha256)) return {};
  return dir_ / sha256.substr(0, 2) / sha256;
}

Result<std::string> BlobStore::Put(std::string_view bytes) { return Put(bytes, Sha256Hex(bytes)); }

Result<std::string> BlobStore::Put(std::string_view bytes, const std::string& sha256) {
  std::filesystem::path path = PathFor(sha256);
  std::lock_guard<std::mutex> lock(LockFor(sha256));
  std::error_code ec;
  // Same name means same bytes, so an existing blob of the right size is
  // this one (the size check catches a file truncated by something else).
  auto existing_size = std::filesystem::file_size(path, ec);
  if (!ec && existing_size == bytes.size()) return sha256;

  std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) {
    return Err(
        StatusFromErrno(ec.value(), "create blob directory '" + path.parent_path().string() + "'"));
  }
  // WriteFileAtomic removes its temporary file on any failure (ENOSPC
  // included), so a failed Put leaves nothing behind.
  Status s = WriteFileAtomic(path, bytes);
  if (!s.ok()) {
    // Another process putting the same bytes may have won the race; its
    // result is as good as ours.
    existing_size = std::filesystem::file_size(path, ec);
    if (!ec && existing_size == bytes.size()) return sha256;
    return Err(std::move(s));
  }
  return sha256;
}

bool BlobStore::Has(const std::string& sha256) const {
  if (!IsValidSha256(sha256)) return false;
  std::error_code ec;
  return std::filesystem::is_regular_file(PathFor(sha256), ec);
}

Result<std::string> BlobStore::Read(const std::string& sha256) const {
  if (!IsValidSha256(sha256)) return Err(InvalidSha(sha256));
  auto data = ReadFileToString(PathFor(sha256));
  if (!data) {
    if (data.error().code() == Status::Code::kNotFound) {
      return Err(Status::NotFound("blob " + sha256 + " does not exist"));
    }
    return Err(data.error());
  }
  // The name is the content's hash: a mismatch means the file was damaged.
  if (Sha256Hex(*data) != sha256) {
    return Err(Status::Corruption("blob " + sha256 + " does not match its hash (file '" +
                                  PathFor(sha256).string() + "' is damaged)"));
  }
  return data;
}

Status BlobStore::Remove(const std::string& sha256) {
  if (!IsValidSha256(sha256)) return InvalidSha(sha256);
  std::filesystem::path path = PathFor(sha256);
  std::lock_guard<std::mutex> lock(LockFor(sha256));
  // The two-level directory stays even when empty: removing it could race
  // with a concurrent Put that just created it.
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return StatusFromErrno(errno, "remove blob '" + path.string() + "'");
  }
  return Status::Ok();
}

}  // namespace xnai::store
