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
size_t run_folder(const ag::fuzz::Target& target, const fs::path& folder) {
  if (!fs::is_directory(folder)) return 0;
  size_t count = 0;
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (!entry.is_regular_file()) continue;
    INFO(target.name << " input " << entry.path().string());
    const std::vector<uint8_t> bytes = ag::read_file_bytes(entry.path().string());
    CHECK_NOTHROW(target.run(bytes));
    ++count;
  }
  return count;
}
}  // namespace

TEST_CASE("fuzz seed corpus and crash regressions: only results or ag::Error") {
  const fs::path root = AG_FUZZ_DIR;
  for (const ag::fuzz::Target& target : ag::fuzz::targets()) {
    const size_t seeds = run_folder(target, root / "corpus" / target.name);
    CHECK_MESSAGE(seeds > 0, "no seed corpus for " << target.name);
    run_folder(target, root / "regressions" / target.name);
  }
}
