// Row-major GEMM on raw pointers, the one place the CPU backend calls a BLAS: OpenBLAS
// (CBLAS sgemm/dgemm) by default, or Eigen's own GEMM in a BLAS-free build
// (-DAG_BLAS=eigen defines AG_BLAS_EIGEN). Also reusable per-thread workspaces so
// steady-state training allocates no scratch memory.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#if AG_BLAS_EIGEN
#include <Eigen/Core>
#else
#include <cblas.h>
#endif

namespace ag::cpu {

#if AG_BLAS_EIGEN
// A row-major view of a BLAS operand: rows x cols with leading dimension ld.
template <typename T>
using RowMajorMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0,
                               Eigen::OuterStride<>>;

template <typename T>
void eigen_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  // op(a) is m x k: stored k x m when transposed (BLAS's convention); likewise op(b).
  const RowMajorMap<T> A(a, trans_a ? k : m, trans_a ? m : k, Eigen::OuterStride<>(lda));
  const RowMajorMap<T> B(b, trans_b ? n : k, trans_b ? k : n, Eigen::OuterStride<>(ldb));
  Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0, Eigen::OuterStride<>> C(
      c, m, n, Eigen::OuterStride<>(ldc));
  // BLAS semantics: with beta = 0, c is not read (it may hold garbage or NaN).
  if (beta == T(0))
    C.setZero();
  else if (beta != T(1))
    C *= beta;
  if (m == 0 || n == 0 || k == 0) return;
  if (trans_a && trans_b)
    C.noalias() += alpha * (A.transpose() * B.transpose());
  else if (trans_a)
    C.noalias() += alpha * (A.transpose() * B);
  else if (trans_b)
    C.noalias() += alpha * (A * B.transpose());
  else
    C.noalias() += alpha * (A * B);
}
#endif

#if !AG_BLAS_EIGEN
// Pins OpenBLAS to one thread (gemm_rm brings its own threads), so that OpenBLAS's pool
// never spins against OpenMP's. Eigen uses OpenMP's threads already.
void use_single_threaded_blas();

// One BLAS call on the calling thread.
template <typename T>
inline void blas_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                      int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  // Here rather than at startup: a program may call the BLAS without ever touching
  // core/parallel.h (bench_gpu does), and a static initialiser there would not be linked.
  static const bool pinned = (use_single_threaded_blas(), true);
  (void)pinned;
  const auto ta = trans_a ? CblasTrans : CblasNoTrans;
  const auto tb = trans_b ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// Products smaller than this (multiply-adds) stay on one thread.
constexpr int64_t kParallelGemmMacs = int64_t{1} << 20;
#endif

// c[m,n] = alpha * op(a) op(b) + beta * c, op(a) [m,k], op(b) [k,n], leading dims as BLAS.
// With OpenBLAS, a product called outside a parallel region is split into column (or row)
// blocks over the OpenMP threads, each one single-threaded BLAS call; inside a parallel
// region (a convolution's per-chunk loop) it runs on the calling thread. Why OpenMP's
// threads rather than OpenBLAS's own pool: docs/design.md, "One thread pool".
template <typename T>
inline void gemm_rm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                    int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
#if AG_BLAS_EIGEN
  eigen_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#else
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const bool split_columns = n >= 32 * threads, split_rows = !split_columns && m >= 8 * threads;
  if (threads == 1 || m * n * k < kParallelGemmMacs || !(split_columns || split_rows))
    return blas_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  // Block bounds rounded to 16 columns (8 rows) so that every block but the last is whole
  // vectors wide.
  const int64_t extent = split_columns ? n : m, grain = split_columns ? 16 : 8;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int t = 0; t < threads; ++t) {
    const int64_t lo = std::min(extent, (extent * t / threads + grain - 1) / grain * grain);
    const int64_t hi = t + 1 == threads
                           ? extent
                           : std::min(extent, (extent * (t + 1) / threads + grain - 1) / grain * grain);
    if (lo >= hi) continue;
    if (split_columns)  // c[:, lo:hi] = op(a) op(b)[:, lo:hi]
      blas_gemm(trans_a, trans_b, m, hi - lo, k, alpha, a, lda, trans_b ? b + lo * ldb : b + lo, ldb, beta,
                c + lo, ldc);
    else  // c[lo:hi, :] = op(a)[lo:hi, :] op(b)
      blas_gemm(trans_a, trans_b, hi - lo, n, k, alpha, trans_a ? a + lo : a + lo * lda, lda, b, ldb, beta,
                c + lo * ldc, ldc);
  }
#endif
}

// A growable scratch buffer owned by the calling thread; slot tells apart buffers that
// are alive at the same time (0-1: im2col path, 2-3: depthwise, 4-7: the AVX-512 or AVX2 path, 8: the
// strided pointwise route's dense copy, alive while it runs the others, 9: the im2col
// path's per-thread weight-gradient sums, 10: the AVX2 Winograd route's transformed
// weights or its weight gradient's sums dU). Grows to the largest
// request and is then reused, so a training loop stops allocating after its first step.
template <typename T>
T* workspace(int slot, size_t elements) {
  thread_local std::vector<T> buffers[11];
  std::vector<T>& buf = buffers[slot];
  if (buf.size() < elements) buf.resize(elements);
  return buf.data();
}

}  // namespace ag::cpu
