// CPU-vs-CUDA parity of the softmax family (core/cuda/softmax.cu): softmax, log-softmax
// and l2_normalize forward and backward over the row shapes of cuda_row_shapes.h. Skipped
// with a printed reason when no GPU is present.
#include "cuda_parity.h"
#include "cuda_row_shapes.h"

using namespace ag;
using namespace ag::testing;

TEST_CASE("cuda parity: softmax and log-softmax, forward and backward") {
  AG_SKIP_WITHOUT_GPU();
  for (DType dt : float_dtypes())
    for (const RowShape& s : kRowShapes)
      for (bool log : {false, true}) {
        const Shape shape = {s.outer, s.n, s.inner};
        Tensor x = rand_cpu(shape, dt, -8, 8), g = rand_cpu(shape, dt);
        const char* name = log ? "log_softmax" : "softmax";
        check_parity(
            row_name(name, s, dt),
            [&](Device d) -> std::vector<Tensor> {
              Tensor y = poisoned(shape, dt, d), gx = poisoned(shape, dt, d);
              softmax_forward(y, x.to(d), s.outer, s.n, s.inner, log);
              softmax_backward(gx, g.to(d), y, s.outer, s.n, s.inner, log);
              return {y, gx};
            },
            tol_for(dt, 10));
      }
}

TEST_CASE("cuda parity: l2_normalize forward and backward, including a clamped norm") {
  AG_SKIP_WITHOUT_GPU();
  for (DType dt : float_dtypes())
    for (const RowShape& s : kRowShapes) {
      const Shape shape = {s.outer, s.n, s.inner};
      std::vector<double> values = rand_cpu(shape, DType::f64).to_vector();
      for (int64_t j = 0; j < s.n; ++j) values[j * s.inner] *= 1e-6;  // row 0's norm falls below eps
      Tensor x = Tensor::from_vector(values, shape, dt), g = rand_cpu(shape, dt);
      const double eps = 1e-3;
      check_parity(
          row_name("l2_normalize", s, dt),
          [&](Device d) -> std::vector<Tensor> {
            Tensor y = poisoned(shape, dt, d), norm = poisoned({s.outer, s.inner}, dt, d);
            Tensor gx = poisoned(shape, dt, d), xd = x.to(d);
            l2_normalize_forward(y, norm, xd, s.outer, s.n, s.inner, eps);
            l2_normalize_backward(gx, g.to(d), xd, norm, s.outer, s.n, s.inner, eps);
            return {y, norm, gx};
          },
          tol_for(dt, 10));
    }
}
