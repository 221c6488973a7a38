#include "layers/conv2d.h"

#include <sstream>

#include "core/ops.h"
#include "layers/init.h"

namespace ag {

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding,
               int64_t dilation, int64_t groups, bool bias)
    : Conv2d([&] {
        Conv2dOptions o;
        o.in_channels = in_channels;
        o.out_channels = out_channels;
        o.kernel_h = o.kernel_w = kernel;
        o.geometry.stride_h = o.geometry.stride_w = stride;
        o.geometry.pad_h = o.geometry.pad_w = padding;
        o.geometry.dilation_h = o.geometry.dilation_w = dilation;
        o.geometry.groups = groups;
        o.bias = bias;
        return o;
      }()) {}

Conv2d::Conv2d(const Conv2dOptions& options) : options_(options) {
  const Conv2dParams& g = options.geometry;
  AG_CHECK(
      options.in_channels > 0 && options.out_channels > 0 && options.kernel_h > 0 && options.kernel_w > 0,
      "Conv2d: channels and kernel size must be positive, got "
          << options.in_channels << " -> " << options.out_channels << ", kernel " << options.kernel_h << "x"
          << options.kernel_w);
  AG_CHECK(g.groups > 0 && options.in_channels % g.groups == 0 && options.out_channels % g.groups == 0,
           "Conv2d: groups (" << g.groups << ") must divide in_channels (" << options.in_channels
                              << ") and out_channels (" << options.out_channels << ")");
  AG_CHECK(g.stride_h > 0 && g.stride_w > 0 && g.dilation_h > 0 && g.dilation_w > 0 && g.pad_h >= 0 &&
               g.pad_w >= 0,
           "Conv2d: stride and dilation must be positive and padding non-negative");
  weight_ = register_parameter("weight", Tensor::empty({options.out_channels, options.in_channels / g.groups,
                                                        options.kernel_h, options.kernel_w}));
  init::kaiming_normal_(weight_, init::FanMode::fan_out);
  if (options.bias) bias_ = register_parameter("bias", Tensor::zeros({options.out_channels}));
}

Tensor& Conv2d::add_bias() {
  AG_CHECK(!bias_.defined(), "Conv2d(" << describe() << "): already has a bias");
  bias_ =
      register_parameter("bias", Tensor::zeros({options_.out_channels}, weight_.dtype(), weight_.device()));
  options_.bias = true;
  return bias_;
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight_, bias_, options_.geometry); }

std::string Conv2d::describe() const {
  const Conv2dParams& g = options_.geometry;
  std::ostringstream os;  // (not string + to_string: GCC 12 warns falsely on that)
  os << options_.in_channels << "->" << options_.out_channels << ", k=" << options_.kernel_h;
  if (options_.kernel_w != options_.kernel_h) os << "x" << options_.kernel_w;
  if (g.stride_h != 1 || g.stride_w != 1) os << ", s=" << g.stride_h;
  if (g.pad_h != 0 || g.pad_w != 0) os << ", p=" << g.pad_h;
  if (g.dilation_h != 1) os << ", d=" << g.dilation_h;
  if (g.groups != 1) os << ", groups=" << g.groups;
  if (!options_.bias) os << ", no bias";
  return os.str();
}

}  // namespace ag
