// Files and hashing: the small set of OS calls the rest of xnai goes through,
// each returning a Status that names the path and the reason.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "base/status.h"

namespace xnai {

// Maps an errno value to a Status: ENOENT -> NotFound, EACCES/EPERM ->
// PermissionDenied, ENOSPC/EDQUOT -> ResourceExhausted ("disk full"), else IOError.
Status StatusFromErrno(int err, const std::string& context);

// Reads a whole regular file. Fails with TooLarge when it exceeds max_bytes
// (checked before reading), NotFound when it does not exist (or vanished).
Result<std::string> ReadFileToString(const std::filesystem::path& path,
                                     int64_t max_bytes = INT64_MAX);

// Writes `data` to `path` atomically: a temporary file in the same directory,
// fsync, then rename. On failure the old content (if any) is untouched and
// the temporary file is removed.
Status WriteFileAtomic(const std::filesystem::path& path, std::string_view data);

// Lowercase hex SHA-256 of `data` (libsodium).
std::string Sha256Hex(std::string_view data);

}  // namespace xnai
