// Cleaning up after writers killed mid-write: only the temporaries of dead processes go.
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/serialize/atomic_file.h"
#include "test_data_util.h"

namespace fs = std::filesystem;

namespace {
// The id of a process that has exited (and been reaped).
pid_t dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}
void touch(const std::string& path) { std::ofstream(path) << "x"; }
}  // namespace

TEST_CASE("remove_stale_temporaries removes what killed writers left, nothing else") {
  ag_test::TempDir dir;
  const std::string dead = std::to_string(dead_pid()), alive = std::to_string(::getpid());
  touch(dir.file(".checkpoint.safetensors.tmp-" + dead + "-3"));
  touch(dir.file(".state.json.tmp-" + dead + "-4"));
  touch(dir.file(".checkpoint.safetensors.tmp-" + alive + "-5"));  // this process: may be writing
  touch(dir.file("checkpoint.safetensors"));
  touch(dir.file("notes.tmp-" + dead + "-1"));  // not hidden: not an AtomicFileWriter's
  CHECK(ag::serialize::remove_stale_temporaries(dir.path()) == 2);
  CHECK_FALSE(fs::exists(dir.file(".checkpoint.safetensors.tmp-" + dead + "-3")));
  CHECK_FALSE(fs::exists(dir.file(".state.json.tmp-" + dead + "-4")));
  CHECK(fs::exists(dir.file(".checkpoint.safetensors.tmp-" + alive + "-5")));
  CHECK(fs::exists(dir.file("checkpoint.safetensors")));
  CHECK(fs::exists(dir.file("notes.tmp-" + dead + "-1")));
  CHECK(ag::serialize::remove_stale_temporaries(dir.file("no-such-folder")) == 0);
}

TEST_CASE("a committed write leaves no temporary; an abandoned one removes its own") {
  ag_test::TempDir dir;
  ag::serialize::write_file_atomic(dir.file("a.txt"), "hello");
  {
    ag::serialize::AtomicFileWriter abandoned(dir.file("b.txt"));
    abandoned.write("partial");
  }
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) files += entry.is_regular_file();
  CHECK(files == 1);
  CHECK_FALSE(fs::exists(dir.file("b.txt")));
}
