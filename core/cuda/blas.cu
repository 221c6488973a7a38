// CUDA matrix products through cuBLAS (float32 and float64; TensorFloat-32 only when
// set_allow_tf32(true) asked for it), and the row-bias add that follows a linear layer's
// GEMM. Twins of core/cpu/blas.cpp.
#include <climits>
#include <type_traits>

#include "core/cuda/launch.cuh"
#include "core/cuda_api.h"
#include "core/kernels.h"

namespace ag::cuda {

namespace {

int as_int(int64_t v, const char* what) {
  AG_CHECK(v >= 0 && v <= INT_MAX, "gemm: " << what << " = " << v << " exceeds cuBLAS's 32-bit range");
  return static_cast<int>(v);
}

// cuBLAS is column-major, and a row-major [M,N] matrix is a column-major [N,M] one. So
// C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T: the operands swap places and keep
// their own transpose flags and leading dimensions.
template <typename T>
void gemm_strided(const Launch& launch, const GemmArgs& g, const T* a, const T* b, T* c, int64_t batch,
                  int64_t stride_a, int64_t stride_b, int64_t stride_c) {
  cublasHandle_t handle = cublas_handle(launch.device);
  const bool tf32 = std::is_same_v<T, float> && allow_tf32();
  AG_CUBLAS_CHECK(cublasSetMathMode(handle, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  const cublasOperation_t op_a = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int m = as_int(g.m, "m"), n = as_int(g.n, "n"), k = as_int(g.k, "k");
  const int lda = as_int(g.lda, "lda"), ldb = as_int(g.ldb, "ldb"), ldc = as_int(g.ldc, "ldc");
  const T alpha = static_cast<T>(g.alpha), beta = static_cast<T>(g.beta);
  if constexpr (std::is_same_v<T, float>) {
    if (batch == 1)
      AG_CUBLAS_CHECK(cublasSgemm(handle, op_b, op_a, n, m, k, &alpha, b, ldb, a, lda, &beta, c, ldc));
    else
      AG_CUBLAS_CHECK(cublasSgemmStridedBatched(handle, op_b, op_a, n, m, k, &alpha, b, ldb, stride_b, a, lda,
                                                stride_a, &beta, c, ldc, stride_c, as_int(batch, "batch")));
  } else {
    if (batch == 1)
      AG_CUBLAS_CHECK(cublasDgemm(handle, op_b, op_a, n, m, k, &alpha, b, ldb, a, lda, &beta, c, ldc));
    else
      AG_CUBLAS_CHECK(cublasDgemmStridedBatched(handle, op_b, op_a, n, m, k, &alpha, b, ldb, stride_b, a, lda,
                                                stride_a, &beta, c, ldc, stride_c, as_int(batch, "batch")));
  }
}

// An empty inner dimension: C = beta * C (cuBLAS rejects the zero leading dims it brings).
void gemm_empty_k(Tensor& out, const GemmArgs& args) {
  if (args.beta == 0.0)
    cuda::fill(out, 0.0);
  else
    cuda::scale(out, out, args.beta);
}

template <typename T>
__global__ void add_row_bias_kernel(T* out, const T* bias, int64_t cols, int64_t total) {
  AG_GRID_STRIDE(i, total) out[i] += bias[i % cols];
}

}  // namespace

void gemm(Tensor& out, const Tensor& a, const Tensor& b, const GemmArgs& args) {
  if (args.m == 0 || args.n == 0) return;
  if (args.k == 0) return gemm_empty_k(out, args);
  Launch launch(out);
  dispatch_float(out.dtype(), "gemm", [&]<typename scalar_t>() {
    gemm_strided<scalar_t>(launch, args, a.data<scalar_t>(), b.data<scalar_t>(), out.data<scalar_t>(), 1, 0,
                           0, 0);
  });
}

void gemm_batched(Tensor& out, const Tensor& a, const Tensor& b, const GemmArgs& args, int64_t batch,
                  int64_t stride_a, int64_t stride_b, int64_t stride_c) {
  if (batch == 0 || args.m == 0 || args.n == 0) return;
  if (args.k == 0) return gemm_empty_k(out, args);
  Launch launch(out);
  dispatch_float(out.dtype(), "gemm_batched", [&]<typename scalar_t>() {
    gemm_strided<scalar_t>(launch, args, a.data<scalar_t>(), b.data<scalar_t>(), out.data<scalar_t>(), batch,
                           stride_a, stride_b, stride_c);
  });
}

void add_row_bias(Tensor& out, const Tensor& bias) {
  const int64_t total = out.numel(), cols = bias.numel();
  if (total == 0 || cols == 0) return;
  Launch launch(out);
  dispatch_float(out.dtype(), "add_row_bias", [&]<typename scalar_t>() {
    add_row_bias_kernel<scalar_t><<<grid_for(total, launch), kThreads, 0, launch.stream>>>(
        out.data<scalar_t>(), bias.data<scalar_t>(), cols, total);
  });
  AG_CUDA_CHECK_LAUNCH();
}

}  // namespace ag::cuda
