#include "base/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <sodium.h>

namespace xnai {

Status StatusFromErrno(int err, const std::string& context) {
  std::string msg = context + ": " + std::strerror(err);
  switch (err) {
    case ENOENT: return Status::NotFound(msg);
    case EACCES:
    case EPERM: return Status::PermissionDenied(msg);
    case ENOSPC:
    case EDQUOT: return Status::ResourceExhausted(context + ": disk full (" + std::strerror(err) + ")");
    default: return Status::IOError(msg);
  }
}

Result<std::string> ReadFileToString(const std::filesystem::path& path, int64_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Err(StatusFromErrno(errno, "open '" + path.string() + "'"));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Err(StatusFromErrno(err, "stat '" + path.string() + "'"));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Err(Status::InvalidArgument("'" + path.string() + "' is not a regular file"));
  }
  if (st.st_size > max_bytes) {
    ::close(fd);
    return Err(Status::TooLarge("'" + path.string() + "' is " + std::to_string(st.st_size) +
                                " bytes, over the limit of " + std::to_string(max_bytes)));
  }
  std::string data;
  data.resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (true) {
    if (done == data.size()) data.resize(data.size() + 65536);  // file grew; keep reading
    ssize_t n = ::read(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return Err(StatusFromErrno(err, "read '" + path.string() + "'"));
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
    if (static_cast<int64_t>(done) > max_bytes) {
      ::close(fd);
      return Err(Status::TooLarge("'" + path.string() + "' grew over the limit of " +
                                  std::to_string(max_bytes) + " bytes while being read"));
    }
  }
  ::close(fd);
  data.resize(done);
  return data;
}

Status WriteFileAtomic(const std::filesystem::path& path, std::string_view data) {
  // mkstemp gives every writer its own temporary name, so concurrent writers
  // of one path never share a temporary file.
  std::string tmp = path.string() + ".tmp.XXXXXX";
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return StatusFromErrno(errno, "create temporary file for '" + path.string() + "'");
  ::fchmod(fd, 0644);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return StatusFromErrno(err, "write '" + path.string() + "'");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return StatusFromErrno(err, "fsync '" + path.string() + "'");
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return StatusFromErrno(err, "rename to '" + path.string() + "'");
  }
  // The new name is durable only once its directory is synced.
  std::string dir = path.has_parent_path() ? path.parent_path().string() : ".";
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    int rc = ::fsync(dir_fd);
    int err = errno;
    ::close(dir_fd);
    if (rc != 0 && err != EINVAL) return StatusFromErrno(err, "fsync directory '" + dir + "'");
  }
  return Status::Ok();
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(2 * sizeof(digest));
  for (unsigned char byte : digest) {
    out += kHex[byte >> 4];
    out += kHex[byte & 15];
  }
  return out;
}

}  // namespace xnai
