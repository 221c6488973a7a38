// Dispatch of the layer kernels (convolution, batch norm, pooling, fused activations) to
// their CPU or CUDA twins, by the device of the first output. Optional tensors (bias,
// gamma, running statistics, unneeded gradients) may be undefined and are skipped by the
// device check.
#include "core/dispatch.h"
#include "core/precision.h"

namespace ag {

namespace {
// The fused loops implement only the activations whose derivative is a mask of the output.
void check_fusable(const char* name, Activation act) {
  AG_CHECK(is_fusable(act), name << ": cannot fuse the activation " << activation_name(act)
                                 << " (fusable: none, relu, relu6)");
}
}  // namespace

void conv2d_forward(Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                    const Conv2dParams& p) {
  check_bf16_device("conv2d_forward", out.dtype(), out.device().is_cpu());
  AG_ON_DEVICE_OPTIONAL("conv2d_forward", out, conv2d_forward(out, x, w, bias, p), &x, &w, &bias);
}
void conv2d_backward_input(Tensor& grad_x, const Tensor& grad_out, const Tensor& w, const Conv2dParams& p) {
  check_bf16_device("conv2d_backward_input", grad_x.dtype(), grad_x.device().is_cpu());
  AG_ON_DEVICE_OPTIONAL("conv2d_backward_input", grad_x, conv2d_backward_input(grad_x, grad_out, w, p),
                        &grad_out, &w);
}
void conv2d_backward_weight(Tensor& grad_w, const Tensor& grad_out, const Tensor& x, const Conv2dParams& p) {
  check_bf16_device("conv2d_backward_weight", grad_w.dtype(), grad_w.device().is_cpu());
  AG_ON_DEVICE_OPTIONAL("conv2d_backward_weight", grad_w, conv2d_backward_weight(grad_w, grad_out, x, p),
                        &grad_out, &x);
}
void conv2d_backward_bias(Tensor& grad_bias, const Tensor& grad_out) {
  AG_ON_DEVICE_OPTIONAL("conv2d_backward_bias", grad_bias, conv2d_backward_bias(grad_bias, grad_out),
                        &grad_out);
}

void batch_norm_forward_train(Tensor& y, Tensor& mean, Tensor& invstd, Tensor& running_mean,
                              Tensor& running_var, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              double momentum, double eps, Activation act) {
  check_fusable("batch_norm_forward_train", act);
  AG_ON_DEVICE_OPTIONAL("batch_norm_forward_train", y,
                        batch_norm_forward_train(y, mean, invstd, running_mean, running_var, x, gamma, beta,
                                                 momentum, eps, act),
                        &mean, &invstd, &running_mean, &running_var, &x, &gamma, &beta);
}
void batch_norm_forward_eval(Tensor& y, const Tensor& x, const Tensor& mean, const Tensor& invstd,
                             const Tensor& gamma, const Tensor& beta, Activation act) {
  check_fusable("batch_norm_forward_eval", act);
  AG_ON_DEVICE_OPTIONAL("batch_norm_forward_eval", y,
                        batch_norm_forward_eval(y, x, mean, invstd, gamma, beta, act), &x, &mean, &invstd,
                        &gamma, &beta);
}
void batch_norm_backward(Tensor& grad_x, Tensor& grad_gamma, Tensor& grad_beta, const Tensor& grad_y,
                         const Tensor& x, const Tensor& y, const Tensor& mean, const Tensor& invstd,
                         const Tensor& gamma, const Tensor& beta, bool training, Activation act) {
  check_fusable("batch_norm_backward", act);
  // The first defined gradient decides the device (any of the three may be unneeded).
  const Tensor& out = grad_x.defined() ? grad_x : (grad_gamma.defined() ? grad_gamma : grad_beta);
  AG_ON_DEVICE_OPTIONAL("batch_norm_backward", out,
                        batch_norm_backward(grad_x, grad_gamma, grad_beta, grad_y, x, y, mean, invstd, gamma,
                                            beta, training, act),
                        &grad_x, &grad_gamma, &grad_beta, &grad_y, &x, &y, &mean, &invstd, &gamma, &beta);
}

void max_pool2d_forward(Tensor& out, Tensor& indices, const Tensor& x, const Pool2dParams& p) {
  AG_ON_DEVICE_OPTIONAL("max_pool2d_forward", out, max_pool2d_forward(out, indices, x, p), &indices, &x);
}
void max_pool2d_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& indices,
                         const Pool2dParams& p) {
  AG_ON_DEVICE_OPTIONAL("max_pool2d_backward", grad_x, max_pool2d_backward(grad_x, grad_out, indices, p),
                        &grad_out, &indices);
}
void avg_pool2d_forward(Tensor& out, const Tensor& x, const Pool2dParams& p) {
  AG_ON_DEVICE_OPTIONAL("avg_pool2d_forward", out, avg_pool2d_forward(out, x, p), &x);
}
void avg_pool2d_backward(Tensor& grad_x, const Tensor& grad_out, const Pool2dParams& p) {
  AG_ON_DEVICE_OPTIONAL("avg_pool2d_backward", grad_x, avg_pool2d_backward(grad_x, grad_out, p), &grad_out);
}

void add_act_forward(Tensor& out, const Tensor& a, const Tensor& b, Activation act) {
  check_fusable("add_act_forward", act);
  AG_ON_DEVICE_OPTIONAL("add_act_forward", out, add_act_forward(out, a, b, act), &a, &b);
}
void act_backward_from_output(Tensor& grad_x, const Tensor& grad_y, const Tensor& y, Activation act) {
  check_fusable("act_backward_from_output", act);
  AG_ON_DEVICE_OPTIONAL("act_backward_from_output", grad_x, act_backward_from_output(grad_x, grad_y, y, act),
                        &grad_y, &y);
}

}  // namespace ag
