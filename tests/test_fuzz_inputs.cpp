// Every input the fuzz targets keep in the repository, run through the same bodies in the
// normal suite (and so under the CI's ASan + UBSan build): the seed corpus
// (tests/fuzz/corpus/<target>/) and each input fuzzing once crashed a reader with
// (tests/fuzz/regressions/<target>/, fixed since). A reader must answer each with a result
// or an ag::Error, nothing else (see tests/fuzz/fuzz_inputs.h).
#include <doctest/doctest.h>

#include <filesystem>

#include "data/file_io.h"
#include "fuzz/fuzz_inputs.h"

namespace fs = std::filesystem;

namespace {
// Runs every file of folder through the target; returns how many there were. Seeds must be
// accepted (they are valid files, so fuzzing starts from the readers' deep paths).
size_t run_folder(const ag::fuzz::Target& target, const fs::path& folder, bool must_accept) {
  if (!fs::is_directory(folder)) return 0;
  size_t count = 0;
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (!entry.is_regular_file()) continue;
    INFO(std::string(target.name) << " input " << entry.path().string());
    const std::vector<uint8_t> bytes = ag::read_file_bytes(entry.path().string());
    bool accepted = false;
    CHECK_NOTHROW(accepted = target.run(bytes));
    if (must_accept) CHECK(accepted);
    ++count;
  }
  return count;
}
}  // namespace

TEST_CASE("fuzz seed corpus: valid files every reader accepts") {
  for (const ag::fuzz::Target& target : ag::fuzz::targets())
    CHECK_MESSAGE(run_folder(target, fs::path(AG_FUZZ_DIR) / "corpus" / target.name, true) > 0,
                  "no seed corpus for " << std::string(target.name));
}

TEST_CASE("fuzz crash regressions: each is now a result or an ag::Error") {
  for (const ag::fuzz::Target& target : ag::fuzz::targets())
    run_folder(target, fs::path(AG_FUZZ_DIR) / "regressions" / target.name, false);
}
