// CPU-vs-CUDA parity of the optimizer updates (core/cuda/optim.cu). Skipped with a printed
// reason when no GPU is present.
#include "cuda_parity.h"

using namespace ag;
using namespace ag::testing;

TEST_CASE("cuda parity: SGD and AdamW updates over several steps") {
  AG_SKIP_WITHOUT_GPU();
  const Shape shape = {129, 65};
  struct SgdCase {
    double momentum, dampening, weight_decay;
    bool nesterov;
  };
  for (DType dt : float_dtypes()) {
    Tensor p0 = rand_cpu(shape, dt), g = rand_cpu(shape, dt), buf0 = rand_cpu(shape, dt, -0.1, 0.1);
    for (const SgdCase& c :
         {SgdCase{0.0, 0.0, 0.0, false}, SgdCase{0.9, 0.0, 5e-4, false}, SgdCase{0.9, 0.1, 1e-2, true}})
      check_parity(
          "sgd momentum=" + std::to_string(c.momentum) + (c.nesterov ? " nesterov " : " ") + dtype_name(dt),
          [&](Device d) -> std::vector<Tensor> {
            Tensor p = p0.to(d).clone(), buf = c.momentum != 0.0 ? buf0.to(d).clone() : Tensor();
            Tensor gd = g.to(d);
            for (int step = 0; step < 3; ++step)
              sgd_update(p, gd, buf, 0.05, c.momentum, c.dampening, c.weight_decay, c.nesterov);
            return c.momentum != 0.0 ? std::vector<Tensor>{p, buf} : std::vector<Tensor>{p};
          },
          tol_for(dt, 10));
    Tensor m0 = rand_cpu(shape, dt, -0.1, 0.1), v0 = rand_cpu(shape, dt, 0.0, 0.01);
    check_parity(
        std::string("adamw ") + dtype_name(dt),
        [&](Device d) -> std::vector<Tensor> {
          Tensor p = p0.to(d).clone(), m = m0.to(d).clone(), v = v0.to(d).clone(), gd = g.to(d);
          for (int64_t step = 1; step <= 3; ++step)
            adamw_update(p, gd, m, v, 1e-2, 0.9, 0.999, 1e-8, 0.05, step);
          return {p, m, v};
        },
        tol_for(dt, 10));
  }
}
