// Hand-written CUDA depthwise convolution (groups == C_in == C_out: one filter per
// channel, as in MobileNetV2 and EfficientNet), used by core/cuda/conv.cpp instead of
// cuDNN's grouped convolution, which is slow for this shape in NCHW float32 (PyTorch keeps
// its own kernels for the same reason). Internal to core/cuda/.
#pragma once

#include "core/kernels.h"

namespace ag::cuda {

// Whether w [C_out, C_in / groups, KH, KW] with these params is a plain depthwise filter.
inline bool is_depthwise(const Shape& x, const Shape& w, const Conv2dParams& p) {
  return p.groups > 1 && p.groups == x[1] && w[0] == x[1] && w[1] == 1;
}

// out [N, C, H_out, W_out] = x [N, C, H, W] (*) w [C, 1, KH, KW] + bias [C] (or undefined).
void depthwise_forward(Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                       const Conv2dParams& p);
// grad_x [N, C, H, W] from grad_out [N, C, H_out, W_out] and w [C, 1, KH, KW].
void depthwise_backward_input(Tensor& grad_x, const Tensor& grad_out, const Tensor& w, const Conv2dParams& p);
// grad_w [C, 1, KH, KW] from grad_out [N, C, H_out, W_out] and x [N, C, H, W].
void depthwise_backward_weight(Tensor& grad_w, const Tensor& grad_out, const Tensor& x,
                               const Conv2dParams& p);

}  // namespace ag::cuda
