// The differentiable operations: each records an autograd node when an input requires
// grad (core/ops/<family>.cpp holds the wrapper and its Node side by side).
// Shapes follow NumPy/PyTorch conventions; negative dims count from the end.
#pragma once

#include <vector>

#include "core/autograd.h"
#include "core/kernels.h"
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

// ---- activations
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
