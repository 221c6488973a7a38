// Differentiable layer operations (convolution, batch norm, pooling, dropout and the
// fused helpers), in the style of core/ops.h: free functions that record an autograd node
// when an input requires grad. The Modules in layers/*.h are thin owners of parameters
// around these. Image tensors are NCHW; every function checks shapes and dtypes and says
// which argument is wrong.
#pragma once

#include "core/nn_params.h"
#include "core/ops.h"

namespace ag {

// ---- activations by name (used by modules that take an activation as an argument)
enum class Activation { none, relu, relu6, silu, sigmoid, hardswish, tanh };
const char* activation_name(Activation act);
Activation parse_activation(const std::string& name);  // "relu", "silu", ...; error otherwise
// act(x); none returns x itself.
Tensor activate(const Tensor& x, Activation act);

// ---- convolution
// x [N, C_in, H, W], weight [C_out, C_in / groups, KH, KW], bias [C_out] or undefined
// -> [N, C_out, H_out, W_out] with H_out = conv_out_size(H, KH, stride_h, pad_h, dilation_h).
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& params);
// Square-geometry convenience form.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), int64_t stride = 1,
              int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1);

// ---- batch normalisation
// x [N, C] or [N, C, L] or [N, C, H, W]; weight (gamma), bias (beta): [C] or undefined
// (affine off); running_mean, running_var: [C] buffers or undefined.
// training: normalise with the batch statistics (biased variance) and, when the running
//   buffers are given, update them in place: r = (1 - momentum) r + momentum * batch_stat,
//   with the unbiased batch variance for running_var (as PyTorch). Needs N * spatial > 1.
// eval: normalise with running_mean / running_var (both required).
// act: an optional activation fused into the same pass (BatchNorm + ReLU in ResNets).
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5,
                  FusedAct act = FusedAct::none);

// ---- pooling
// x [N, C, H, W] -> [N, C, H_out, W_out]. Max pooling's gradient goes to the first maximum
// of each window; padding counts as -inf.
Tensor max_pool2d(const Tensor& x, const Pool2dParams& params);
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& params);
// Square-window convenience forms; stride <= 0 means stride = kernel (PyTorch's default).
Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride = -1, int64_t padding = 0);
Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride = -1, int64_t padding = 0,
                  bool count_include_pad = true);
// x [N, C, H, W] -> [N, C] (mean over H and W).
Tensor global_avg_pool2d(const Tensor& x);

// ---- regularisation
// Inverted dropout: in training, zeroes each element with probability p (mask drawn from
// the global generator, core/random.h) and scales the rest by 1 / (1 - p); identity when
// not training or p == 0. p in [0, 1).
Tensor dropout(const Tensor& x, double p, bool training);

// ---- residual connections
// act(body + shortcut); both of one shape (an error names both shapes otherwise). The
// ReLU variant is fused into one pass (ResNet basic/bottleneck blocks).
Tensor residual_add(const Tensor& body, const Tensor& shortcut, FusedAct act = FusedAct::none);

}  // namespace ag
