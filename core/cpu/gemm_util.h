// Row-major GEMM on raw pointers for the CPU layer kernels (float through sgemm, double
// through dgemm), and reusable per-thread workspaces so steady-state training allocates
// no scratch memory.
#pragma once

#include <cblas.h>

#include <cstdint>
#include <type_traits>
#include <vector>

namespace ag::cpu {

// c[m,n] = alpha * op(a) op(b) + beta * c, op(a) [m,k], op(b) [k,n], leading dims as BLAS.
template <typename T>
inline void gemm_rm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                    int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  const auto ta = trans_a ? CblasTrans : CblasNoTrans;
  const auto tb = trans_b ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// A growable scratch buffer owned by the calling thread; slot tells apart buffers that
// are alive at the same time (0-1: im2col path, 2-3: depthwise, 4-7: the AVX-512 path). Grows to the largest
// request and is then reused, so a training loop stops allocating after its first step.
template <typename T>
T* workspace(int slot, size_t elements) {
  thread_local std::vector<T> buffers[8];
  std::vector<T>& buf = buffers[slot];
  if (buf.size() < elements) buf.resize(elements);
  return buf.data();
}

}  // namespace ag::cpu
