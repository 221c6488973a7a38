// Crash-safe file replacement: the data goes to a temporary file in the target's folder,
// is flushed to disk (fsync), and only then renamed over the target, so a reader sees
// either the old file or the complete new one, never a half-written one. A failed write
// (disk full, I/O error) throws ag::Error naming the file and leaves the old one intact.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ag::serialize {

class AtomicFileWriter {
 public:
  // Creates the temporary file next to path; the folder must exist.
  explicit AtomicFileWriter(std::string path);
  ~AtomicFileWriter();  // without commit(): removes the temporary file
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t size);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  // fsync, close, rename over the target, fsync the folder.
  void commit();

 private:
  void fail(const std::string& what, int err);

  std::string path_, tmp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// The whole file at once.
void write_file_atomic(const std::string& path, std::string_view bytes);

// Removes the temporary files that writers killed mid-write (SIGKILL, power loss) left in
// folder (".<name>.tmp-<pid>-<n>", of processes no longer running); returns how many.
int remove_stale_temporaries(const std::string& folder);

// Testing aid: while on, every AtomicFileWriter::write goes to /dev/full, so the kernel
// answers ENOSPC exactly as on a full disk.
void set_simulate_disk_full(bool on);

}  // namespace ag::serialize
