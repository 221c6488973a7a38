// The machine's ceilings, measured in the running process so that kernel speeds can be
// reported as a fraction of what this machine does right now (a shared machine's figures
// drift; same-run ratios do not): OpenBLAS sgemm throughput for GEMM-bound kernels and
// copy bandwidth for memory-bound ones. apps/bench prints every layer beside them.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

namespace ag {

inline double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Median seconds of reps calls of f after one warm-up call.
template <typename F>
double time_median(int reps, F&& f) {
  f();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const double t0 = seconds_now();
    f();
    t.push_back(seconds_now() - t0);
  }
  return median(t);
}

// GFLOP/s of a 2048^3 float product through OpenBLAS (median of reps after a warm-up).
double sgemm_gflops(int reps);
// GFLOP/s of a register-only FMA loop on every OpenMP thread, on the widest vectors the
// build targets (AVX-512, else AVX2 + FMA): the arithmetic ceiling (0 where it has
// neither). 12 independent chains per thread, started from different values so that no
// compiler can merge them (GCC merges chains that start equal:
// ../shared/tools/peers/fma512.cpp built as its header says runs one chain and reports
// three times this machine's peak).
double fma_peak_gflops(int reps);
// Which vectors fma_peak_gflops runs on: "AVX-512", "AVX2" or "no".
#if defined(__AVX512F__)
inline constexpr const char* kFmaWidth = "AVX-512";
#elif defined(__FMA__)
inline constexpr const char* kFmaWidth = "AVX2";
#else
inline constexpr const char* kFmaWidth = "no";
#endif
// The same for AVX512-BF16's vdpbf16ps (2 products per float lane; 0 without it).
double bf16_dot_peak_gflops(int reps);
// GB/s (bytes read + written) of a 128 MiB copy, well past the caches, split across the
// OpenMP threads (median of reps after a warm-up).
double copy_gbps(int reps);

}  // namespace ag
