// Dispatch of every kernel to its CPU or CUDA twin, by the device of the output.
// A CPU-only build answers a CUDA tensor with a clear "built without CUDA" error.
#include "core/dispatch.h"
#include "core/precision.h"

namespace ag {

void unary_forward(Tensor& out, const Tensor& x, UnaryOp op, UnaryParams p) {
  AG_ON_DEVICE("unary_forward", out, unary_forward(out, x, op, p), &x);
}
void unary_backward(Tensor& grad_x, const Tensor& grad_y, const Tensor& x, const Tensor& y, UnaryOp op,
                    UnaryParams p) {
  AG_ON_DEVICE("unary_backward", grad_x, unary_backward(grad_x, grad_y, x, y, op, p), &grad_y, &x, &y);
}
void activation_forward(Tensor& out, const Tensor& x, Activation act) {
  AG_CHECK(act != Activation::none, "activation_forward: needs an activation, got none");
  AG_ON_DEVICE("activation_forward", out, activation_forward(out, x, act), &x);
}
void activation_backward(Tensor& grad_x, const Tensor& grad_y, const Tensor& x, const Tensor& y,
                         Activation act) {
  AG_CHECK(act != Activation::none, "activation_backward: needs an activation, got none");
  AG_ON_DEVICE("activation_backward", grad_x, activation_backward(grad_x, grad_y, x, y, act), &grad_y, &x,
               &y);
}
void binary_forward(Tensor& out, const Tensor& a, const Tensor& b, BinaryOp op) {
  AG_ON_DEVICE("binary_forward", out, binary_forward(out, a, b, op), &a, &b);
}
void axpby(Tensor& out, double alpha, const Tensor& a, double beta, const Tensor& b) {
  AG_ON_DEVICE("axpby", out, axpby(out, alpha, a, beta, b), &a, &b);
}
void scale(Tensor& out, const Tensor& x, double alpha) {
  AG_ON_DEVICE("scale", out, scale(out, x, alpha), &x);
}
void where_forward(Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  AG_ON_DEVICE("where", out, where_forward(out, cond, a, b), &cond, &a, &b);
}
void fill(Tensor& out, double value) { AG_ON_DEVICE("fill", out, fill(out, value)); }
void copy(Tensor& out, const Tensor& src) { AG_ON_DEVICE("copy", out, copy(out, src), &src); }

void copy_between_devices(Tensor& out, const Tensor& src) {
  AG_CHECK(
      out.dtype() == src.dtype() && out.numel() == src.numel() && out.is_contiguous() && src.is_contiguous(),
      "copy_between_devices: needs contiguous tensors of one dtype and size, got "
          << out.describe() << " and " << src.describe());
  if (out.device().is_cpu() && src.device().is_cpu()) return cpu::copy_between_devices(out, src);
#ifdef AG_WITH_CUDA
  return cuda::copy_between_devices(out, src);
#else
  AG_FAIL("copy from " << src.device() << " to " << out.device() << ": arcgrad was built without CUDA");
#endif
}

void reduce_dim(Tensor& out, const Tensor& x, int64_t outer, int64_t n, int64_t inner, ReduceOp op) {
  AG_ON_DEVICE("reduce_dim", out, reduce_dim(out, x, outer, n, inner, op), &x);
}
void argmax_dim(Tensor& out, const Tensor& x, int64_t outer, int64_t n, int64_t inner) {
  AG_ON_DEVICE("argmax_dim", out, argmax_dim(out, x, outer, n, inner), &x);
}
void broadcast_dim(Tensor& out, const Tensor& g, int64_t outer, int64_t n, int64_t inner, double alpha) {
  AG_ON_DEVICE("broadcast_dim", out, broadcast_dim(out, g, outer, n, inner, alpha), &g);
}
void sum_all(Tensor& out, const Tensor& x) { AG_ON_DEVICE("sum_all", out, sum_all(out, x), &x); }
void sum_to(Tensor& out, const Tensor& grad) { AG_ON_DEVICE("sum_to", out, sum_to(out, grad), &grad); }

void gemm(Tensor& out, const Tensor& a, const Tensor& b, const GemmArgs& args) {
  AG_CHECK(!args.bf16 || out.device().is_cpu(),
           "gemm: matmul precision bf16 is CPU-only for now (AVX512-BF16); use fp32 on CUDA");
  AG_ON_DEVICE("gemm", out, gemm(out, a, b, args), &a, &b);
}
void gemm_batched(Tensor& out, const Tensor& a, const Tensor& b, const GemmArgs& args, int64_t batch,
                  int64_t stride_a, int64_t stride_b, int64_t stride_c) {
  AG_ON_DEVICE("gemm_batched", out, gemm_batched(out, a, b, args, batch, stride_a, stride_b, stride_c), &a,
               &b);
}
void add_row_bias(Tensor& out, const Tensor& bias) {
  AG_ON_DEVICE("add_row_bias", out, add_row_bias(out, bias), &bias);
}

void softmax_forward(Tensor& y, const Tensor& x, int64_t outer, int64_t n, int64_t inner, bool log) {
  AG_ON_DEVICE("softmax_forward", y, softmax_forward(y, x, outer, n, inner, log), &x);
}
void softmax_backward(Tensor& grad_x, const Tensor& grad_y, const Tensor& y, int64_t outer, int64_t n,
                      int64_t inner, bool log) {
  AG_ON_DEVICE("softmax_backward", grad_x, softmax_backward(grad_x, grad_y, y, outer, n, inner, log), &grad_y,
               &y);
}
void l2_normalize_forward(Tensor& y, Tensor& norm, const Tensor& x, int64_t outer, int64_t n, int64_t inner,
                          double eps) {
  AG_ON_DEVICE("l2_normalize_forward", y, l2_normalize_forward(y, norm, x, outer, n, inner, eps), &norm, &x);
}
void l2_normalize_backward(Tensor& grad_x, const Tensor& grad_y, const Tensor& x, const Tensor& norm,
                           int64_t outer, int64_t n, int64_t inner, double eps) {
  AG_ON_DEVICE("l2_normalize_backward", grad_x,
               l2_normalize_backward(grad_x, grad_y, x, norm, outer, n, inner, eps), &grad_y, &x, &norm);
}

void gather_dim(Tensor& out, const Tensor& x, const Tensor& index, int64_t outer, int64_t n, int64_t k,
                int64_t inner) {
  AG_ON_DEVICE("gather", out, gather_dim(out, x, index, outer, n, k, inner), &x, &index);
}
void scatter_add_dim(Tensor& grad_x, const Tensor& grad, const Tensor& index, int64_t outer, int64_t n,
                     int64_t k, int64_t inner) {
  AG_ON_DEVICE("scatter_add", grad_x, scatter_add_dim(grad_x, grad, index, outer, n, k, inner), &grad,
               &index);
}
void one_hot(Tensor& out, const Tensor& labels, int64_t classes) {
  AG_ON_DEVICE("one_hot", out, one_hot(out, labels, classes), &labels);
}

}  // namespace ag
