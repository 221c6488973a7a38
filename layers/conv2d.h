// 2-d convolution layer (cross-correlation, NCHW), with stride, zero padding, dilation and
// groups (groups == in_channels == out_channels / m is a depthwise convolution).
#pragma once

#include "core/nn_params.h"
#include "layers/module.h"

namespace ag {

struct Conv2dOptions {
  int64_t in_channels = 0, out_channels = 0;
  int64_t kernel_h = 3, kernel_w = 3;
  Conv2dParams geometry;  // stride, padding, dilation, groups
  bool bias = true;
};

class Conv2d : public Module {
 public:
  // Parameters: "weight" [out, in / groups, kernel, kernel], "bias" [out] (when bias;
  // pass bias=false before a BatchNorm, as PyTorch's model definitions do).
  // Initialisation: weight Kaiming normal, fan_out mode (as torchvision's ResNet,
  // MobileNetV2 and EfficientNet), bias zero.
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride = 1, int64_t padding = 0,
         int64_t dilation = 1, int64_t groups = 1, bool bias = true);
  explicit Conv2d(const Conv2dOptions& options);

  // x: [N, in, H, W] -> [N, out, H_out, W_out].
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Conv2d"; }
  std::string describe() const override;  // "16->32, k=3, s=2, p=1"

  Tensor& weight() { return weight_; }
  Tensor& bias() { return bias_; }  // undefined without bias
  // Gives a convolution built without bias a zero bias "bias" [out] of the weight's dtype
  // and device (batch-norm folding needs one); returns it.
  Tensor& add_bias();
  const Conv2dOptions& options() const { return options_; }
  int64_t in_channels() const { return options_.in_channels; }
  int64_t out_channels() const { return options_.out_channels; }
  int64_t groups() const { return options_.geometry.groups; }

 private:
  Conv2dOptions options_;
  Tensor weight_, bias_;
};

}  // namespace ag
