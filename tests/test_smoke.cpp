// A first end-to-end check: ops, autograd and a tiny regression fit.
#include "core/ops.h"
#include "gradcheck.h"

using namespace ag;

TEST_CASE("autograd through a small expression") {
  Tensor x = Tensor::from_vector({1, 2, 3}, {3}, DType::f64).set_requires_grad(true);
  Tensor y = sum(mul(x, x));  // dy/dx = 2x
  y.backward();
  CHECK(x.grad().to_vector() == std::vector<double>{2, 4, 6});
}
