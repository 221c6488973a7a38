// The same-run machine ceilings of core/ceilings.h that apps/bench reports kernels against:
// the median and timing helpers, and that both ceilings measure something finite.
#include <doctest/doctest.h>

#include <cmath>

#include "core/ceilings.h"

using namespace ag;

TEST_CASE("median of odd and even counts, in any order") {
  CHECK(median({3, 1, 2}) == 2);
  CHECK(median({4, 1, 3, 2}) == 2.5);
  CHECK(median({7}) == 7);
}

TEST_CASE("time_median warms up once, then times reps calls") {
  int calls = 0;
  const double t = time_median(4, [&] { ++calls; });
  CHECK(calls == 5);
  CHECK(t >= 0);
}

TEST_CASE("the sgemm and copy ceilings are positive and finite") {
  const double gflops = sgemm_gflops(1), gbps = copy_gbps(1);
  CHECK(std::isfinite(gflops));
  CHECK(gflops > 0);
  CHECK(std::isfinite(gbps));
  CHECK(gbps > 0);
}
