// conv2d and its Node, forward and backward side by side. The kernels (conv2d_forward and
// its gradients, core/kernel_decls.h) choose among the CPU and CUDA fast paths.
#include "core/ops.h"

namespace ag {

namespace {

// Multiply-adds x 2 of a forward: 2 N C_out H_out W_out (C_in / groups) KH KW.
double conv2d_flops(const Shape& x, const Shape& w, const Conv2dParams& p) {
  const int64_t ho = conv_out_size(x[2], w[2], p.stride_h, p.pad_h, p.dilation_h);
  const int64_t wo = conv_out_size(x[3], w[3], p.stride_w, p.pad_w, p.dilation_w);
  return 2.0 * static_cast<double>(x[0] * w[0] * ho * wo) * static_cast<double>(w[1] * w[2] * w[3]);
}

struct Conv2dBackward : Node {
  Tensor x, weight;  // x [N, C_in, H, W], weight [C_out, C_in / groups, KH, KW]
  Conv2dParams params;
  const char* name() const override { return "Conv2dBackward"; }
  double flops() const override {  // one forward's worth per gradient of x and of the weight
    const double forward = conv2d_flops(x.shape(), weight.shape(), params);
    return forward * ((needs_grad(0) ? 1 : 0) + (needs_grad(1) ? 1 : 0));
  }
  void release_saved() override {
    x = Tensor();
    weight = Tensor();
  }
  std::vector<Tensor> apply(const Tensor& g) override {  // g: [N, C_out, H_out, W_out]
    Tensor gc = g.contiguous();
    Tensor gx, gw, gb;
    if (needs_grad(0)) {
      gx = Tensor::empty(x.shape(), x.dtype(), x.device());
      conv2d_backward_input(gx, gc, weight, params);
    }
    if (needs_grad(1)) {
      gw = Tensor::empty(weight.shape(), weight.dtype(), weight.device());
      conv2d_backward_weight(gw, gc, x, params);
    }
    if (needs_grad(2)) {
      gb = Tensor::empty({weight.size(0)}, weight.dtype(), weight.device());
      conv2d_backward_bias(gb, gc);
    }
    return {gx, gw, gb};
  }
};

void check_conv_args(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p) {
  AG_CHECK(x.dim() == 4, "conv2d: input must be [N, C, H, W], got " << shape_str(x.shape()));
  AG_CHECK(weight.dim() == 4,
           "conv2d: weight must be [C_out, C_in / groups, KH, KW], got " << shape_str(weight.shape()));
  AG_CHECK(is_floating(x.dtype()) && x.dtype() == weight.dtype(),
           "conv2d: input and weight must be float tensors of one dtype, got " << x.describe() << " and "
                                                                               << weight.describe());
  AG_CHECK(x.device() == weight.device(),
           "conv2d: input on " << x.device() << ", weight on " << weight.device());
  AG_CHECK(p.stride_h > 0 && p.stride_w > 0 && p.dilation_h > 0 && p.dilation_w > 0 && p.pad_h >= 0 &&
               p.pad_w >= 0 && p.groups > 0,
           "conv2d: stride and dilation must be positive and padding non-negative, got stride "
               << p.stride_h << "x" << p.stride_w << ", padding " << p.pad_h << "x" << p.pad_w
               << ", dilation " << p.dilation_h << "x" << p.dilation_w << ", groups " << p.groups);
  const int64_t c = x.size(1), co = weight.size(0);
  AG_CHECK(c % p.groups == 0 && co % p.groups == 0, "conv2d: groups ("
                                                        << p.groups << ") must divide input channels (" << c
                                                        << ") and output channels (" << co << ")");
  AG_CHECK(weight.size(1) * p.groups == c, "conv2d: weight "
                                               << shape_str(weight.shape()) << " with groups " << p.groups
                                               << " expects " << weight.size(1) * p.groups
                                               << " input channels, input is " << shape_str(x.shape()));
  AG_CHECK(!bias.defined() || (bias.shape() == Shape{co} && bias.dtype() == x.dtype()),
           "conv2d: bias must be [" << co << "] of " << x.dtype() << ", got " << bias.describe());
  const int64_t ho = conv_out_size(x.size(2), weight.size(2), p.stride_h, p.pad_h, p.dilation_h);
  const int64_t wo = conv_out_size(x.size(3), weight.size(3), p.stride_w, p.pad_w, p.dilation_w);
  AG_CHECK(ho > 0 && wo > 0,
           "conv2d: input " << shape_str(x.shape()) << " is smaller than the (dilated) kernel "
                            << shape_str(weight.shape()) << " with padding " << p.pad_h << "x" << p.pad_w);
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& params) {
  profiler::Scope profile("conv2d");
  check_conv_args(x, weight, bias, params);
  if (profile.active()) profile.set_flops(conv2d_flops(x.shape(), weight.shape(), params));
  const int64_t ho =
      conv_out_size(x.size(2), weight.size(2), params.stride_h, params.pad_h, params.dilation_h);
  const int64_t wo =
      conv_out_size(x.size(3), weight.size(3), params.stride_w, params.pad_w, params.dilation_w);
  Tensor xc = x.detach().contiguous(), wc = weight.detach().contiguous();
  Tensor out = Tensor::empty({x.size(0), weight.size(0), ho, wo}, x.dtype(), x.device());
  conv2d_forward(out, xc, wc, bias.defined() ? bias.detach().contiguous() : Tensor(), params);
  if (any_requires_grad({&x, &weight, &bias})) {
    auto node = std::make_shared<Conv2dBackward>();
    node->x = xc;
    node->weight = wc;
    node->params = params;
    return attach_node(out, node, {&x, &weight, &bias});
  }
  return out;
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding,
              int64_t dilation, int64_t groups) {
  Conv2dParams p;
  p.stride_h = p.stride_w = stride;
  p.pad_h = p.pad_w = padding;
  p.dilation_h = p.dilation_w = dilation;
  p.groups = groups;
  return conv2d(x, weight, bias, p);
}

}  // namespace ag
