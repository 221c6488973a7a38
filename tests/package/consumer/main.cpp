// Uses an installed arcgrad: builds a ResNet-20 from the factory, runs a forward and a
// backward pass, and checks a gradient against a hand-computed one.
#include <cmath>
#include <iostream>

#include "core/autograd.h"
#include "core/ops.h"
#include "models/factory.h"

int main() {
  using namespace ag;
  Tensor x = Tensor::from_vector({1, 2, 3}, {3});
  x.set_requires_grad(true);
  Tensor y = sum(mul(x, x));  // d/dx sum(x^2) = 2x
  y.backward();
  const float* g = x.grad().data<float>();
  if (std::abs(g[2] - 6.0f) > 1e-6f) {
    std::cerr << "consumer: wrong gradient " << g[2] << "\n";
    return 1;
  }
  ModelPtr model = make_model("resnet20", 10, "linear");
  model->eval();
  NoGradGuard no_grad;
  Tensor out = (*model)(Tensor::normal({2, 3, 32, 32}, 0, 1));
  if (out.shape() != Shape{2, 10}) {
    std::cerr << "consumer: unexpected output shape\n";
    return 1;
  }
  std::cout << "consumer: ok (" << model->parameter_count() << " parameters)\n";
  return 0;
}
