// CPU-vs-CUDA parity of the reductions (core/cuda/reduce.cu) over the row shapes of
// cuda_row_shapes.h. Skipped with a printed reason when no GPU is present.
#include "cuda_parity.h"
#include "cuda_row_shapes.h"

using namespace ag;
using namespace ag::testing;

TEST_CASE("cuda parity: reduce_dim sum, mean, max and argmax") {
  AG_SKIP_WITHOUT_GPU();
  for (DType dt : float_dtypes())
    for (const RowShape& s : kRowShapes) {
      Tensor x = rand_cpu({s.outer, s.n, s.inner}, dt);
      const ReduceOp ops[] = {ReduceOp::sum, ReduceOp::mean, ReduceOp::max};
      const char* names[] = {"sum", "mean", "max"};
      for (int k = 0; k < 3; ++k)
        check_parity(
            row_name(names[k], s, dt),
            [&](Device d) -> std::vector<Tensor> {
              Tensor out = poisoned({s.outer, s.inner}, dt, d);
              reduce_dim(out, x.to(d), s.outer, s.n, s.inner, ops[k]);
              return {out};
            },
            tol_for(dt, 10));
      // Few distinct values, so ties are common: both must pick the first maximum.
      std::vector<double> levels = x.to_vector();
      for (double& v : levels) v = std::floor(v * 2);
      Tensor tied = Tensor::from_vector(levels, x.shape(), dt);
      for (const Tensor* input : {&x, &tied})
        check_parity(
            row_name("argmax", s, dt),
            [&](Device d) -> std::vector<Tensor> {
              Tensor out = poisoned({s.outer, s.inner}, DType::i64, d);
              argmax_dim(out, input->to(d), s.outer, s.n, s.inner);
              return {out};
            },
            tol_for(dt));
    }
}

TEST_CASE("cuda parity: broadcast_dim, sum_all and sum_to") {
  AG_SKIP_WITHOUT_GPU();
  for (DType dt : float_dtypes()) {
    Tensor g = rand_cpu({6, 11}, dt);
    check_parity(
        "broadcast_dim",
        [&](Device d) -> std::vector<Tensor> {
          Tensor out = poisoned({6, 9, 11}, dt, d);
          broadcast_dim(out, g.to(d), 6, 9, 11, -0.5);
          return {out};
        },
        tol_for(dt));
    for (int64_t n : {1, 1000, 1 << 20}) {
      Tensor x = rand_cpu({n}, dt, 0.0, 1.0);
      check_parity(
          "sum_all n=" + std::to_string(n),
          [&](Device d) -> std::vector<Tensor> {
            Tensor out = poisoned({}, dt, d);
            sum_all(out, x.to(d));
            return {out};
          },
          tol_for(dt, 10));
    }
    struct Case {
      Shape grad, out;
    };
    const std::vector<Case> cases = {
        {{4, 6, 5, 3}, {6, 1, 1}},    {{4, 6, 5, 3}, {1, 6, 1, 1}}, {{4, 6, 5, 3}, {3}},
        {{4, 6, 5, 3}, {4, 1, 5, 1}}, {{4, 6, 5, 3}, {}},           {{4, 6, 5, 3}, {4, 6, 5, 3}},
        {{2000, 64}, {64}},           {{64, 3000}, {64, 1}},        {{70, 80, 3}, {1, 80, 3}}};
    for (const Case& c : cases) {
      Tensor grad = rand_cpu(c.grad, dt);
      check_parity(
          "sum_to " + shape_str(c.grad) + " -> " + shape_str(c.out),
          [&](Device d) -> std::vector<Tensor> {
            Tensor out = poisoned(c.out, dt, d);
            sum_to(out, grad.to(d));
            return {out};
          },
          tol_for(dt, 10));
    }
  }
}
