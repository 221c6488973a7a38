// CPU-vs-CUDA parity of the GEMM kernels (cuBLAS, core/cuda/blas.cu), and TF32 only on
// request. Skipped with a printed reason when no GPU is present.
#include <algorithm>

#include "cuda_parity.h"

using namespace ag;
using namespace ag::testing;

TEST_CASE("cuda parity: gemm with every transpose combination, padded rows and beta") {
  AG_SKIP_WITHOUT_GPU();
  const int64_t m = 37, n = 23, k = 51, pad = 3;
  for (DType dt : float_dtypes())
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (double beta : {0.0, 0.5}) {
          GemmArgs g;
          g.trans_a = ta;
          g.trans_b = tb;
          g.m = m;
          g.n = n;
          g.k = k;
          // Stored row-major with `pad` spare columns per row, so ld exceeds the width.
          const Shape a_shape = ta ? Shape{k, m + pad} : Shape{m, k + pad};
          const Shape b_shape = tb ? Shape{n, k + pad} : Shape{k, n + pad};
          g.lda = a_shape[1];
          g.ldb = b_shape[1];
          g.ldc = n;
          g.alpha = 1.25;
          g.beta = beta;
          Tensor a = rand_cpu(a_shape, dt), b = rand_cpu(b_shape, dt), c0 = rand_cpu({m, n}, dt);
          std::string what = std::string("gemm ") + (ta ? "T" : "N") + (tb ? "T" : "N") + " beta " +
                             std::to_string(beta) + " " + dtype_name(dt);
          check_parity(
              what,
              [&](Device d) -> std::vector<Tensor> {
                // With beta = 0 the old contents must be ignored, so they are poison.
                Tensor out = beta == 0.0 ? poisoned({m, n}, dt, d) : c0.to(d).clone();
                gemm(out, a.to(d), b.to(d), g);
                return {out};
              },
              tol_for(dt, 10));
        }
}

TEST_CASE("cuda parity: batched gemm and row bias") {
  AG_SKIP_WITHOUT_GPU();
  const int64_t batch = 5, m = 17, n = 30, k = 12;
  for (DType dt : float_dtypes())
    for (bool ta : {false, true}) {
      GemmArgs g;
      g.trans_a = ta;
      g.m = m;
      g.n = n;
      g.k = k;
      g.lda = ta ? m : k;
      g.ldb = n;
      g.ldc = n;
      Tensor a = rand_cpu(ta ? Shape{batch, k, m} : Shape{batch, m, k}, dt), b = rand_cpu({batch, k, n}, dt);
      check_parity(
          std::string("gemm_batched ") + (ta ? "T" : "N") + " " + dtype_name(dt),
          [&](Device d) -> std::vector<Tensor> {
            Tensor out = poisoned({batch, m, n}, dt, d);
            gemm_batched(out, a.to(d), b.to(d), g, batch, m * k, k * n, m * n);
            return {out};
          },
          tol_for(dt, 10));
    }
  for (DType dt : float_dtypes()) {
    Tensor x = rand_cpu({33, 19}, dt), bias = rand_cpu({19}, dt);
    check_parity(
        "add_row_bias",
        [&](Device d) -> std::vector<Tensor> {
          Tensor out = x.to(d).clone();
          add_row_bias(out, bias.to(d));
          return {out};
        },
        tol_for(dt));
  }
}

TEST_CASE("cuda: TF32 is used only when asked for") {
  AG_SKIP_WITHOUT_GPU();
  CHECK_FALSE(cuda::allow_tf32());
  const int64_t size = 256;
  Tensor a = rand_cpu({size, size}, DType::f32), b = rand_cpu({size, size}, DType::f32);
  Tensor ref = matmul(a, b);
  Tensor exact = matmul(a.to(kGpu), b.to(kGpu));
  expect_close("fp32 matmul", ref, exact, tol_for(DType::f32, 10));
  cuda::set_allow_tf32(true);
  Tensor fast = matmul(a.to(kGpu), b.to(kGpu));
  cuda::set_allow_tf32(false);
  // TF32 keeps ~10 mantissa bits: close, but not to float32 precision.
  expect_close("tf32 matmul", ref, fast, {0.1, 0.01});
  // Entries are sums of 256 products of magnitude <= 4: float32 rounding leaves ~1e-5,
  // TF32's rounding of the inputs (relative 2^-11) leaves ~1e-2. Both must show.
  const std::vector<double> r = ref.to_vector(), e = exact.to_vector(), t = fast.to_vector();
  double fp32_error = 0, tf32_error = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    fp32_error = std::max(fp32_error, std::abs(e[i] - r[i]));
    tf32_error = std::max(tf32_error, std::abs(t[i] - r[i]));
  }
  MESSAGE("largest difference from the CPU: fp32 " << fp32_error << ", tf32 " << tf32_error);
  CHECK_MESSAGE(fp32_error < 1e-3, "TF32 (or worse) used without being asked: error " << fp32_error);
  CHECK_MESSAGE(tf32_error > 1e-3, "set_allow_tf32(true) made no measurable difference: " << tf32_error);
  CHECK(tf32_error > 10 * fp32_error);
}
