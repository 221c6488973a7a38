#include "core/ceilings.h"

#include <immintrin.h>
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

namespace {

constexpr int kChains = 12;  // > FMA latency x pipes (4 x 2), so the loop is throughput-bound
constexpr long kPeakIters = 20'000'000;

// Runs kernel(seed) on every OpenMP thread; GFLOP/s for flops_per_iter per loop iteration.
template <typename Kernel>
double peak_of(int reps, double flops_per_iter, Kernel&& kernel) {
  volatile float sink = 0;
  int threads = 1;
  const double t = time_median(reps, [&] {
#pragma omp parallel
    {
#pragma omp single
      threads = omp_get_num_threads();
      const float v = kernel(1.0f + static_cast<float>(omp_get_thread_num()));
#pragma omp critical
      sink = sink + v;
    }
  });
  return flops_per_iter * static_cast<double>(kPeakIters) * threads / t / 1e9;
}

}  // namespace

#if defined(__AVX512F__) || defined(__FMA__)
namespace {

// The widest float vector the build targets: 16 lanes with AVX-512, 8 with AVX2 + FMA.
#ifdef __AVX512F__
using FloatVec = __m512;
constexpr int kLanes = 16;
inline FloatVec broadcast(float v) { return _mm512_set1_ps(v); }
inline FloatVec fma(FloatVec c, FloatVec a, FloatVec b) { return _mm512_fmadd_ps(c, a, b); }
#else
using FloatVec = __m256;
constexpr int kLanes = 8;
inline FloatVec broadcast(float v) { return _mm256_set1_ps(v); }
inline FloatVec fma(FloatVec c, FloatVec a, FloatVec b) { return _mm256_fmadd_ps(c, a, b); }
#endif

// kChains accumulators started from different values (seed, seed + 1/8, ...), each updated
// kPeakIters times by step(c); returns their sum so that nothing is optimised away.
template <typename Vec, typename Set1, typename Step>
float run_chains(float seed, Set1&& set1, Step&& step) {
  Vec c[kChains];
  for (int i = 0; i < kChains; ++i) c[i] = set1(seed + 0.125f * static_cast<float>(i));
  for (long it = 0; it < kPeakIters; ++it)
    for (int i = 0; i < kChains; ++i) c[i] = step(c[i]);
  float total = 0;
  for (int i = 0; i < kChains; ++i) {
    alignas(64) float lanes[sizeof(Vec) / sizeof(float)];
    std::memcpy(lanes, &c[i], sizeof(Vec));
    for (float v : lanes) total += v;
  }
  return total;
}

float fma_chains(float seed) {
  const FloatVec a = broadcast(0.999999f), b = broadcast(1e-7f);
  return run_chains<FloatVec>(seed, broadcast, [&](FloatVec c) { return fma(c, a, b); });
}

}  // namespace

double fma_peak_gflops(int reps) { return peak_of(reps, 2.0 * kLanes * kChains, fma_chains); }
#else
double fma_peak_gflops(int) { return 0; }
#endif

#ifdef __AVX512BF16__
namespace {

float bf16_chains(float seed) {
  const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f));
  return run_chains<__m512>(
      seed, [](float v) { return _mm512_set1_ps(v); }, [&](__m512 c) { return _mm512_dpbf16_ps(c, a, a); });
}

}  // namespace

// vdpbf16ps: 16 lanes x 2 products, each a multiply and an add.
double bf16_dot_peak_gflops(int reps) { return peak_of(reps, 2.0 * 32 * kChains, bf16_chains); }
#else
double bf16_dot_peak_gflops(int) { return 0; }
#endif

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
