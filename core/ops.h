// The differentiable operations: each records an autograd node when an input requires
// grad (core/ops/<family>.cpp holds the wrapper and its Node side by side; every Node of
// the engine lives there). Shapes follow NumPy/PyTorch conventions; negative dims count
// from the end. Image tensors are NCHW. Every op checks its arguments and names the wrong one.
#pragma once

#include <vector>

#include "core/activation.h"
#include "core/autograd.h"
#include "core/kernels.h"
#include "core/nn_params.h"
#include "core/profiler.h"
#include "core/tensor.h"

namespace ag {

// ---- elementwise, with NumPy broadcasting for the binary ones
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor abs(const Tensor& x);
Tensor clamp(const Tensor& x, double low, double high);  // gradient 0 outside [low, high]
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor acos(const Tensor& x);  // x must lie in (-1, 1) for a finite gradient
// cond ? a : b elementwise; cond, a, b of one shape; cond of any dtype (nonzero = true).
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

// ---- activations (core/ops/activation.cpp)
// act(x) elementwise; none returns x itself.
Tensor activate(const Tensor& x, Activation act);
Tensor relu(const Tensor& x);
Tensor relu6(const Tensor& x);
Tensor silu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor hardswish(const Tensor& x);

// ---- reductions
Tensor sum(const Tensor& x);  // all elements -> shape []
Tensor mean(const Tensor& x);
Tensor sum(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor mean(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor max(const Tensor& x, int64_t dim, bool keepdim = false);     // values; gradient to the argmax
Tensor max(const Tensor& x);                                        // over all -> shape []
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);  // int64, not differentiable
// Sums a broadcast gradient back down to shape (the backward of broadcasting).
Tensor sum_to_shape(const Tensor& x, const Shape& shape);

// ---- linear algebra through BLAS
// [M,K] x [K,N] -> [M,N]; or batched [B,M,K] x [B,K,N] -> [B,M,N]. Transposed views of
// contiguous matrices are passed to GEMM as transposes, without a copy.
Tensor matmul(const Tensor& a, const Tensor& b);
// x [N, in], weight [out, in], bias [out] (optional) -> [N, out] = x W^T + b.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// ---- softmax family (numerically stable: the max is subtracted first)
Tensor softmax(const Tensor& x, int64_t dim = -1);
Tensor log_softmax(const Tensor& x, int64_t dim = -1);
// x / max(||x||_2, eps) along dim.
Tensor l2_normalize(const Tensor& x, int64_t dim = -1, double eps = 1e-12);

// ---- indexing
// out[...j...] = x[...index[...j...]...] along dim; index int64 with x's shape except at dim.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// labels int64 [N] -> [N, classes] of 0/1 in dtype; labels checked in [0, classes).
Tensor one_hot(const Tensor& labels, int64_t classes, DType dtype = DType::f32);
// Concatenation along dim; all other dims equal.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);

// ---- convolution (core/ops/conv.cpp)
// x [N, C_in, H, W], weight [C_out, C_in / groups, KH, KW], bias [C_out] or undefined
// -> [N, C_out, H_out, W_out] with H_out = conv_out_size(H, KH, stride_h, pad_h, dilation_h).
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& params);
// Square-geometry convenience form.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), int64_t stride = 1,
              int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1);

// ---- batch normalisation (core/ops/norm.cpp)
// x [N, C] or [N, C, L] or [N, C, H, W]; weight (gamma), bias (beta): [C] or undefined
// (affine off); running_mean, running_var: [C] buffers or undefined.
// training: normalise with the batch statistics (biased variance) and, when the running
//   buffers are given, update them in place: r = (1 - momentum) r + momentum * batch_stat,
//   with the unbiased batch variance for running_var (as PyTorch). Needs N * spatial > 1.
// eval: normalise with running_mean / running_var (both required).
// act: an activation fused into the same pass (BatchNorm + ReLU in ResNets); is_fusable(act).
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5,
                  Activation act = Activation::none);

// ---- pooling (core/ops/pool.cpp)
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

// ---- regularisation (core/ops/dropout.cpp)
// Inverted dropout: in training, zeroes each element with probability p (mask drawn from
// the global generator, core/random.h) and scales the rest by 1 / (1 - p); identity when
// not training or p == 0. p in [0, 1).
Tensor dropout(const Tensor& x, double p, bool training);

// ---- residual connections (core/ops/activation.cpp)
// act(body + shortcut) in one pass; both of one shape (an error names both shapes
// otherwise); is_fusable(act) (ResNet basic/bottleneck blocks use relu).
Tensor residual_add(const Tensor& body, const Tensor& shortcut, Activation act = Activation::none);

// ---- losses (core/ops/loss.cpp; losses/ composes these into the training losses)
// Per-row softmax cross-entropy, fused (log-sum-exp with the row max subtracted first):
// logits float [N, C] (N >= 1), labels int64 [N] on the logits' device, each in [0, C)
// -> [N] with L_i = -sum_j q_ij log softmax(logits_i)_j, q = (1 - label_smoothing)
// one_hot(y_i) + label_smoothing / C; label_smoothing in [0, 1).
Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing = 0.0);

// ---- helpers
int64_t normalize_dim(int64_t dim, int64_t ndim, const char* op);  // checks range
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// ---- operators
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& x) { return neg(x); }
inline Tensor operator+(const Tensor& a, double b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, double b) { return add(a, -b); }
inline Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
inline Tensor operator*(double a, const Tensor& b) { return mul(b, a); }
inline Tensor operator/(const Tensor& a, double b) { return mul(a, 1.0 / b); }

}  // namespace ag
