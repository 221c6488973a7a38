// Atomic file replacement with POSIX calls (temporary file + fsync + rename + folder fsync).
#include "core/serialize/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <regex>
#include <vector>

#include "core/error.h"

namespace ag::serialize {

namespace {
std::atomic<bool> g_disk_full{false};
std::atomic<uint64_t> g_counter{0};

std::string folder_of(const std::string& path) {
  const std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}
}  // namespace

void set_simulate_disk_full(bool on) { g_disk_full = on; }

AtomicFileWriter::AtomicFileWriter(std::string path) : path_(std::move(path)) {
  AG_CHECK(!path_.empty(), "cannot write a file with an empty path");
  const std::filesystem::path p(path_);
  AG_CHECK(!std::filesystem::is_directory(p), "cannot write '" << path_ << "': it is a folder");
  // Same folder as the target, so the rename never crosses file systems.
  std::string tmp_name = ".";  // appended piece by piece: GCC 12 warns falsely on a chain of +
  tmp_name += p.filename().string();
  tmp_name += ".tmp-";
  tmp_name += std::to_string(::getpid());
  tmp_name += '-';
  tmp_name += std::to_string(g_counter++);
  tmp_path_ = (p.parent_path() / tmp_name).string();
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot create a temporary file in '" + folder_of(path_) + "'", errno);
  if (g_disk_full) {
    // Route the data to /dev/full; the temporary file stays and is cleaned up as usual.
    const int full = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
    AG_CHECK(full >= 0, "set_simulate_disk_full: cannot open /dev/full: " << std::strerror(errno));
    ::dup2(full, fd_);
    ::close(full);
  }
}

AtomicFileWriter::~AtomicFileWriter() {
  if (committed_) return;
  if (fd_ >= 0) ::close(fd_);
  if (!tmp_path_.empty()) ::unlink(tmp_path_.c_str());
}

void AtomicFileWriter::fail(const std::string& what, int err) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!tmp_path_.empty()) ::unlink(tmp_path_.c_str());
  tmp_path_.clear();
  AG_FAIL("writing '" << path_ << "' failed: " << what << ": " << std::strerror(err)
                      << " (any previous version of the file is left unchanged)");
}

void AtomicFileWriter::write(const void* data, size_t size) {
  AG_CHECK(fd_ >= 0 && !committed_, "writing '" << path_ << "': the writer is already closed");
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("write", n < 0 ? errno : EIO);
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void AtomicFileWriter::commit() {
  AG_CHECK(fd_ >= 0 && !committed_, "writing '" << path_ << "': the writer is already closed");
  if (::fsync(fd_) != 0) fail("fsync", errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("close", errno);
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) fail("rename", errno);
  committed_ = true;
  // Make the rename itself durable; a failure here cannot undo it, so it is not an error.
  const int dir = ::open(folder_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

int remove_stale_temporaries(const std::string& folder) {
  static const std::regex temporary(R"(^\..+\.tmp-([0-9]+)-[0-9]+$)");
  std::error_code ec;
  std::vector<std::filesystem::path> stale;
  for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    std::smatch match;
    if (!std::regex_match(name, match, temporary)) continue;
    const pid_t pid = static_cast<pid_t>(std::stoll(match[1].str()));
    if (pid == ::getpid() || ::kill(pid, 0) == 0) continue;  // its writer may still be at work
    stale.push_back(entry.path());
  }
  int removed = 0;
  for (const auto& path : stale) removed += std::filesystem::remove(path, ec) ? 1 : 0;
  return removed;
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  AtomicFileWriter w(path);
  w.write(bytes);
  w.commit();
}

}  // namespace ag::serialize
