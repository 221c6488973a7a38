// CPU-vs-CUDA parity of the pooling kernels (core/cuda/pool.cu): max and average pooling
// forward and backward, ties, and float64 gradchecks of the pooling ops running on the
// GPU. Skipped with a printed reason when no GPU is present.
#include "cuda_parity.h"
#include "gradcheck.h"
#include "core/ops.h"

using namespace ag;
using namespace ag::testing;

TEST_CASE("cuda parity: max and average pooling forward and backward") {
  AG_SKIP_WITHOUT_GPU();
  std::vector<Pool2dParams> params = {{2, 2, 2, 2, 0, 0, true},
                                      {3, 3, 2, 2, 1, 1, true},
                                      {3, 3, 2, 2, 1, 1, false},
                                      {3, 2, 1, 2, 1, 0, true}};
  for (DType dt : float_dtypes())
    for (const Pool2dParams& p : params) {
      const Shape xs = {2, 3, 7, 9};
      const Shape ys = {2, 3, conv_out_size(7, p.kernel_h, p.stride_h, p.pad_h, 1),
                        conv_out_size(9, p.kernel_w, p.stride_w, p.pad_w, 1)};
      Tensor x = rand_cpu(xs, dt), g = rand_cpu(ys, dt);
      const std::string what = "pool k=" + std::to_string(p.kernel_h) + "x" + std::to_string(p.kernel_w) +
                               " stride=" + std::to_string(p.stride_h) + " pad=" + std::to_string(p.pad_h) +
                               (p.count_include_pad ? "" : " exclude_pad ") + dtype_name(dt);
      check_parity(
          what,
          [&](Device d) -> std::vector<Tensor> {
            Tensor out = poisoned(ys, dt, d), idx = poisoned(ys, DType::i64, d), gx = poisoned(xs, dt, d);
            max_pool2d_forward(out, idx, x.to(d), p);
            max_pool2d_backward(gx, g.to(d), idx, p);
            Tensor avg = poisoned(ys, dt, d), gavg = poisoned(xs, dt, d);
            avg_pool2d_forward(avg, x.to(d), p);
            avg_pool2d_backward(gavg, g.to(d), p);
            return {out, idx, gx, avg, gavg};
          },
          tol_for(dt, 10));
    }
}

TEST_CASE("cuda parity: max pooling ties pick the first maximum") {
  AG_SKIP_WITHOUT_GPU();
  const Pool2dParams p{2, 2, 2, 2, 0, 0, true};
  Tensor x = Tensor::ones({1, 2, 4, 4}), g = rand_cpu({1, 2, 2, 2}, DType::f32);
  check_parity(
      "max_pool2d ties",
      [&](Device d) -> std::vector<Tensor> {
        Tensor out = poisoned({1, 2, 2, 2}, DType::f32, d), idx = poisoned({1, 2, 2, 2}, DType::i64, d);
        Tensor gx = poisoned({1, 2, 4, 4}, DType::f32, d);
        max_pool2d_forward(out, idx, x.to(d), p);
        max_pool2d_backward(gx, g.to(d), idx, p);
        return {out, idx, gx};
      },
      tol_for(DType::f32));
}

TEST_CASE("cuda gradcheck: pooling on the GPU") {
  AG_SKIP_WITHOUT_GPU();
  Tensor x = random_leaf({2, 4, 6, 5});
  CHECK_GRADCHECK([&] { return host(max_pool2d(gpu(x), 3, 2, 1)); }, {x});
  CHECK_GRADCHECK([&] { return host(avg_pool2d(gpu(x), 3, 2, 1, false)); }, {x});
}
