// batch_norm (with an optional fused activation) and its Node, forward and backward side by
// side.
#include <algorithm>

#include "core/ops.h"

namespace ag {

namespace {

struct BatchNormBackward : Node {
  Tensor x, y;          // x [N, C, *]; y the output (only with a fused activation)
  Tensor mean, invstd;  // [C]: batch statistics (training) or running ones (eval)
  Tensor gamma, beta;   // [C] or undefined (the CPU backward recomputes the activation's input)
  bool training = true;
  Activation act = Activation::none;
  const char* name() const override { return "BatchNormBackward"; }
  void release_saved() override { x = y = mean = invstd = gamma = beta = Tensor(); }
  std::vector<Tensor> apply(const Tensor& g) override {
    const int64_t c = x.size(1);
    Tensor gx, gg, gb;
    if (needs_grad(0)) gx = Tensor::empty(x.shape(), x.dtype(), x.device());
    if (needs_grad(1)) gg = Tensor::empty({c}, x.dtype(), x.device());
    if (needs_grad(2)) gb = Tensor::empty({c}, x.dtype(), x.device());
    batch_norm_backward(gx, gg, gb, g.contiguous(), x, y, mean, invstd, gamma, beta, training, act);
    return {gx, gg, gb};
  }
};

// A [C] tensor argument: undefined, or contiguous [C] of x's dtype and device.
void check_channel_tensor(const Tensor& t, const char* what, const Tensor& x) {
  if (!t.defined()) return;
  AG_CHECK(t.shape() == Shape{x.size(1)} && t.dtype() == x.dtype() && t.device() == x.device() &&
               t.is_contiguous(),
           "batch_norm: " << what << " must be a contiguous [" << x.size(1) << "] " << x.dtype()
                          << " tensor on " << x.device() << " (one value per channel of the input "
                          << shape_str(x.shape()) << "), got " << t.describe());
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps, Activation act) {
  profiler::Scope profile("batch_norm");
  AG_CHECK(
      x.dim() >= 2 && x.dim() <= 4 && is_floating(x.dtype()),
      "batch_norm: input must be a float [N, C], [N, C, L] or [N, C, H, W] tensor, got " << x.describe());
  check_channel_tensor(weight, "weight (gamma)", x);
  check_channel_tensor(bias, "bias (beta)", x);
  check_channel_tensor(running_mean, "running_mean", x);
  check_channel_tensor(running_var, "running_var", x);
  AG_CHECK(eps > 0 && momentum >= 0 && momentum <= 1,
           "batch_norm: needs eps > 0 and momentum in [0, 1], got eps " << eps << ", momentum " << momentum);
  const int64_t c = x.size(1), per_channel = x.numel() / std::max<int64_t>(c, 1);
  Tensor xc = x.detach().contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mean, invstd;
  Tensor gamma = weight.defined() ? weight.detach() : Tensor(),
         beta = bias.defined() ? bias.detach() : Tensor();
  if (training) {
    AG_CHECK(per_channel > 1, "batch_norm: training needs more than one value per channel, got input "
                                  << shape_str(x.shape()));
    mean = Tensor::empty({c}, x.dtype(), x.device());
    invstd = Tensor::empty({c}, x.dtype(), x.device());
    Tensor rm = running_mean, rv = running_var;
    batch_norm_forward_train(y, mean, invstd, rm, rv, xc, gamma, beta, momentum, eps, act);
  } else {
    AG_CHECK(running_mean.defined() && running_var.defined(),
             "batch_norm: eval mode needs running_mean and running_var");
    NoGradGuard no_grad;
    mean = running_mean.detach();
    invstd = pow(add(running_var.detach(), eps), -0.5);
    batch_norm_forward_eval(y, xc, mean, invstd, gamma, beta, act);
  }
  if (any_requires_grad({&x, &weight, &bias})) {
    auto node = std::make_shared<BatchNormBackward>();
    node->x = xc;
    if (act != Activation::none) node->y = y.detach();
    node->mean = training ? mean : mean.clone();  // running stats change in place later
    node->invstd = invstd;
    node->gamma = gamma;
    node->beta = beta;
    node->training = training;
    node->act = act;
    return attach_node(y, node, {&x, &weight, &bias});
  }
  return y;
}

}  // namespace ag
