// CPU-vs-CUDA parity of the activation kernels (core/cuda/elementwise.cu): every
// activation forward and backward, and the fused residual add + activation with its
// backward from the output (core/cuda/batch_norm.cu). Skipped with a printed reason when no
// GPU is present.
#include "cuda_parity.h"

using namespace ag;
using namespace ag::testing;

namespace {

struct ActivationCase {
  Activation act;
  double low, high;  // input range covering every branch of the activation and its derivative
};

const std::vector<ActivationCase> kActivationCases = {
    {Activation::relu, -3, 3},    {Activation::relu6, -2, 8}, {Activation::silu, -5, 5},
    {Activation::sigmoid, -6, 6}, {Activation::tanh, -3, 3},  {Activation::hardswish, -5, 5},
};

}  // namespace

TEST_CASE("cuda parity: activations forward and backward") {
  AG_SKIP_WITHOUT_GPU();
  for (DType dt : float_dtypes())
    for (const ActivationCase& c : kActivationCases) {
      const Shape shape = {37, 129};  // not a multiple of the block size
      Tensor x = rand_cpu(shape, dt, c.low, c.high), g = rand_cpu(shape, dt);
      const std::string what = std::string(activation_name(c.act)) + " " + dtype_name(dt);
      check_parity(
          what + " forward",
          [&](Device d) -> std::vector<Tensor> {
            Tensor out = poisoned(shape, dt, d);
            activation_forward(out, x.to(d), c.act);
            return {out};
          },
          tol_for(dt));
      check_parity(
          what + " backward",
          [&](Device d) -> std::vector<Tensor> {
            Tensor xd = x.to(d), y = poisoned(shape, dt, d), gx = poisoned(shape, dt, d);
            activation_forward(y, xd, c.act);
            activation_backward(gx, g.to(d), xd, y, c.act);
            return {gx};
          },
          tol_for(dt));
    }
}

TEST_CASE("cuda parity: fused residual add + activation and its backward") {
  AG_SKIP_WITHOUT_GPU();
  for (DType dt : float_dtypes())
    for (Activation act : {Activation::none, Activation::relu, Activation::relu6}) {
      const Shape s = {3, 5, 17, 13};
      Tensor a = rand_cpu(s, dt, -4, 5), b = rand_cpu(s, dt, -4, 5), g = rand_cpu(s, dt);
      Tensor y = rand_cpu(s, dt, -1, 8);
      check_parity(
          "add_act act=" + std::string(activation_name(act)) + " " + dtype_name(dt),
          [&](Device d) -> std::vector<Tensor> {
            Tensor out = poisoned(s, dt, d), gx = poisoned(s, dt, d);
            add_act_forward(out, a.to(d), b.to(d), act);
            act_backward_from_output(gx, g.to(d), y.to(d), act);
            return {out, gx};
          },
          tol_for(dt));
    }
}
