// The compiler builds what the code says. GCC 12.2 with -march=native on AVX-512 stored the
// constant vector {1, 1, 0, 0} as {1, 1, 1, 1} (its SLP vectoriser; CMakeLists.txt turns
// that pass off for GCC). These cases fail if a compiler or flag change brings it back.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

namespace {
// Out of line so the comparison is not folded away at compile time.
__attribute__((noinline)) int64_t first_two_are_one(int i) { return i < 2 ? 1 : 0; }
__attribute__((noinline)) std::vector<int64_t> computed(int n) {
  std::vector<int64_t> v;
  for (int i = 0; i < n; ++i) v.push_back(first_two_are_one(i));
  return v;
}
}  // namespace

TEST_CASE("constant int64 vectors with a repeated leading pair are stored as written") {
  const std::vector<int64_t> expected = {1, 1, 0, 0};
  CHECK(expected[2] == 0);
  CHECK(expected[3] == 0);
  CHECK(computed(4) == expected);
  const std::vector<int64_t> longer = {1, 1, 0, 0, 0, 0};
  CHECK(computed(6) == longer);
}
