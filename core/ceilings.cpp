#include "core/ceilings.h"

#include <omp.h>

#include <cstdint>
#include <cstring>

#include "core/cpu/gemm_util.h"

namespace ag {

double sgemm_gflops(int reps) {
  const int64_t n = 2048;
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  const double t = time_median(reps, [&] {
    cpu::gemm_rm<float>(false, false, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n);
  });
  return 2.0 * n * n * n / t / 1e9;
}

double copy_gbps(int reps) {
  const size_t n = size_t{32} << 20;  // floats
  std::vector<float> src(n, 1.f), dst(n, 0.f);
  const double t = time_median(reps, [&] {
#pragma omp parallel
    {
      const size_t parts = omp_get_num_threads(), me = omp_get_thread_num();
      const size_t lo = n * me / parts, hi = n * (me + 1) / parts;
      std::memcpy(dst.data() + lo, src.data() + lo, (hi - lo) * sizeof(float));
    }
  });
  return 2.0 * n * sizeof(float) / t / 1e9;
}

}  // namespace ag
