// Max, average and global average pooling, forward and backward side by side.
#include "core/ops.h"

namespace ag {

namespace {

struct MaxPool2dBackward : Node {
  Tensor indices;  // int64 [N, C, H_out, W_out]: argmax offsets within each input plane
  Shape x_shape;
  DType dtype = DType::f32;
  Pool2dParams params;
  const char* name() const override { return "MaxPool2dBackward"; }
  void release_saved() override { indices = Tensor(); }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor gx = Tensor::empty(x_shape, dtype, g.device());
    max_pool2d_backward(gx, g.contiguous(), indices, params);
    return {gx};
  }
};

struct AvgPool2dBackward : Node {
  Shape x_shape;
  DType dtype = DType::f32;
  Pool2dParams params;
  const char* name() const override { return "AvgPool2dBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor gx = Tensor::empty(x_shape, dtype, g.device());
    avg_pool2d_backward(gx, g.contiguous(), params);
    return {gx};
  }
};

// Checks the arguments and returns the output shape.
Shape pool_output_shape(const Tensor& x, const Pool2dParams& p, const char* op) {
  AG_CHECK(x.dim() == 4 && is_floating(x.dtype()),
           op << ": input must be a float [N, C, H, W] tensor, got " << x.describe());
  AG_CHECK(p.kernel_h > 0 && p.kernel_w > 0 && p.stride_h > 0 && p.stride_w > 0,
           op << ": kernel and stride must be positive, got kernel " << p.kernel_h << "x" << p.kernel_w
              << ", stride " << p.stride_h << "x" << p.stride_w);
  AG_CHECK(p.pad_h >= 0 && p.pad_w >= 0 && 2 * p.pad_h <= p.kernel_h && 2 * p.pad_w <= p.kernel_w,
           op << ": padding must lie in [0, kernel / 2], got padding " << p.pad_h << "x" << p.pad_w
              << " for kernel " << p.kernel_h << "x" << p.kernel_w);
  const int64_t ho = conv_out_size(x.size(2), p.kernel_h, p.stride_h, p.pad_h, 1);
  const int64_t wo = conv_out_size(x.size(3), p.kernel_w, p.stride_w, p.pad_w, 1);
  AG_CHECK(ho > 0 && wo > 0, op << ": input " << shape_str(x.shape()) << " is smaller than the window "
                                << p.kernel_h << "x" << p.kernel_w);
  return {x.size(0), x.size(1), ho, wo};
}

Pool2dParams square_params(int64_t kernel, int64_t stride, int64_t padding) {
  Pool2dParams p;
  p.kernel_h = p.kernel_w = kernel;
  p.stride_h = p.stride_w = stride <= 0 ? kernel : stride;
  p.pad_h = p.pad_w = padding;
  return p;
}

}  // namespace

Tensor max_pool2d(const Tensor& x, const Pool2dParams& params) {
  profiler::Scope profile("max_pool2d");
  Shape out_shape = pool_output_shape(x, params, "max_pool2d");
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  Tensor indices = Tensor::empty(out_shape, DType::i64, x.device());
  max_pool2d_forward(out, indices, x.detach().contiguous(), params);
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<MaxPool2dBackward>();
    node->indices = indices;
    node->x_shape = x.shape();
    node->dtype = x.dtype();
    node->params = params;
    return attach_node(out, node, {&x});
  }
  return out;
}

Tensor avg_pool2d(const Tensor& x, const Pool2dParams& params) {
  profiler::Scope profile("avg_pool2d");
  Shape out_shape = pool_output_shape(x, params, "avg_pool2d");
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  avg_pool2d_forward(out, x.detach().contiguous(), params);
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<AvgPool2dBackward>();
    node->x_shape = x.shape();
    node->dtype = x.dtype();
    node->params = params;
    return attach_node(out, node, {&x});
  }
  return out;
}

Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  return max_pool2d(x, square_params(kernel, stride, padding));
}

Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding, bool count_include_pad) {
  Pool2dParams p = square_params(kernel, stride, padding);
  p.count_include_pad = count_include_pad;
  return avg_pool2d(x, p);
}

Tensor global_avg_pool2d(const Tensor& x) {
  profiler::Scope profile("global_avg_pool2d");
  AG_CHECK(x.dim() == 4, "global_avg_pool2d: input must be [N, C, H, W], got " << shape_str(x.shape()));
  AG_CHECK(x.size(2) * x.size(3) > 0, "global_avg_pool2d: empty spatial size in " << shape_str(x.shape()));
  return mean(x.reshape({x.size(0), x.size(1), x.size(2) * x.size(3)}), 2);
}

}  // namespace ag
