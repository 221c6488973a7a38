// CPU matrix products (row-major) through the BLAS that core/cpu/gemm_util.h picks.
#include "core/cpu/bf16/gemm.h"
#include "core/cpu/gemm_util.h"
#include "core/cpu/strided.h"
#include "core/kernels.h"

#if !AG_BLAS_EIGEN
extern "C" void openblas_set_num_threads(int);
#endif

namespace ag::cpu {

#if !AG_BLAS_EIGEN
void use_single_threaded_blas() { openblas_set_num_threads(1); }
#endif

namespace {
template <typename T>
void gemm_raw(const GemmArgs& g, const T* a, const T* b, T* c) {
  if constexpr (std::is_same_v<T, float>) {
    if (g.bf16) {
      AG_CHECK(g.alpha == 1.0, "gemm: the bf16 GEMM takes alpha 1, got " << g.alpha);
      return gemm_bf16(g.trans_a, g.trans_b, g.m, g.n, g.k, a, g.lda, b, g.ldb, static_cast<float>(g.beta), c,
                       g.ldc);
    }
  }
  gemm_rm<T>(g.trans_a, g.trans_b, g.m, g.n, g.k, static_cast<T>(g.alpha), a, g.lda, b, g.ldb,
             static_cast<T>(g.beta), c, g.ldc);
}
}  // namespace

void gemm(Tensor& out, const Tensor& a, const Tensor& b, const GemmArgs& args) {
  dispatch_float(out.dtype(), "gemm", [&]<typename scalar_t>() {
    gemm_raw<scalar_t>(args, a.data<scalar_t>(), b.data<scalar_t>(), out.data<scalar_t>());
  });
}

void gemm_batched(Tensor& out, const Tensor& a, const Tensor& b, const GemmArgs& args, int64_t batch,
                  int64_t stride_a, int64_t stride_b, int64_t stride_c) {
  dispatch_float(out.dtype(), "gemm_batched", [&]<typename scalar_t>() {
    const scalar_t* pa = a.data<scalar_t>();
    const scalar_t* pb = b.data<scalar_t>();
    scalar_t* pc = out.data<scalar_t>();
    for (int64_t i = 0; i < batch; ++i)
      gemm_raw<scalar_t>(args, pa + i * stride_a, pb + i * stride_b, pc + i * stride_c);
  });
}

void add_row_bias(Tensor& out, const Tensor& bias) {
  dispatch_float(out.dtype(), "add_row_bias", [&]<typename scalar_t>() {
    scalar_t* po = out.data<scalar_t>();
    const scalar_t* pb = bias.data<scalar_t>();
    const int64_t cols = bias.numel(), rows = out.numel() / cols;
#pragma omp parallel for if (out.numel() > kParallelThreshold) schedule(static)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) po[r * cols + c] += pb[c];
  });
}

}  // namespace ag::cpu
