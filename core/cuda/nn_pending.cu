// CUDA twins of the layer kernels (core/kernel_decls.h, "layers" section) that do not
// exist yet: each raises a clear error so that the CUDA build links and a model on
// --device cuda fails at its first convolution, batch norm or pooling layer with a message
// naming the missing kernel. Issue 9 replaces this file with cuDNN-backed kernels.
#include "core/kernels.h"

namespace ag::cuda {

namespace {
[[noreturn]] void pending(const char* kernel) {
  AG_FAIL(kernel << " on CUDA: not implemented yet (issue 9)");
}
}  // namespace

void conv2d_forward(Tensor&, const Tensor&, const Tensor&, const Tensor&, const Conv2dParams&) {
  pending("conv2d_forward");
}
void conv2d_backward_input(Tensor&, const Tensor&, const Tensor&, const Conv2dParams&) {
  pending("conv2d_backward_input");
}
void conv2d_backward_weight(Tensor&, const Tensor&, const Tensor&, const Conv2dParams&) {
  pending("conv2d_backward_weight");
}
void conv2d_backward_bias(Tensor&, const Tensor&) { pending("conv2d_backward_bias"); }

void batch_norm_forward_train(Tensor&, Tensor&, Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&,
                              const Tensor&, double, double, FusedAct) {
  pending("batch_norm_forward_train");
}
void batch_norm_forward_eval(Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                             const Tensor&, FusedAct) {
  pending("batch_norm_forward_eval");
}
void batch_norm_backward(Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&,
                         const Tensor&, const Tensor&, const Tensor&, bool, FusedAct) {
  pending("batch_norm_backward");
}

void max_pool2d_forward(Tensor&, Tensor&, const Tensor&, const Pool2dParams&) {
  pending("max_pool2d_forward");
}
void max_pool2d_backward(Tensor&, const Tensor&, const Tensor&, const Pool2dParams&) {
  pending("max_pool2d_backward");
}
void avg_pool2d_forward(Tensor&, const Tensor&, const Pool2dParams&) { pending("avg_pool2d_forward"); }
void avg_pool2d_backward(Tensor&, const Tensor&, const Pool2dParams&) { pending("avg_pool2d_backward"); }

void add_act_forward(Tensor&, const Tensor&, const Tensor&, FusedAct) { pending("add_act_forward"); }
void act_backward_from_output(Tensor&, const Tensor&, const Tensor&, FusedAct) {
  pending("act_backward_from_output");
}

}  // namespace ag::cuda
