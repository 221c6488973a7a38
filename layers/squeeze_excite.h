// Squeeze-and-Excitation (Hu et al. 2018), EfficientNet / torchvision style:
//   s = gate(fc2(act(fc1(global_avg_pool(x)))));  y = x * s  (s broadcast over H, W)
// with fc1, fc2 1x1 convolutions with bias.
#pragma once

#include "layers/conv2d.h"
#include "core/ops.h"
#include "layers/module.h"

namespace ag {

class SqueezeExcite : public Module {
 public:
  // Children: "fc1" Conv2d(channels -> squeeze_channels, 1x1, bias),
  //           "fc2" Conv2d(squeeze_channels -> channels, 1x1, bias).
  // Parameter names therefore match torchvision's SqueezeExcitation (fc1.weight, fc1.bias,
  // fc2.weight, fc2.bias). EfficientNet-B0: squeeze_channels = max(1, block_in / 4),
  // activation SiLU, gate sigmoid.
  SqueezeExcite(int64_t channels, int64_t squeeze_channels, Activation activation = Activation::silu,
                Activation gate = Activation::sigmoid);

  // x: [N, channels, H, W] -> same shape.
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "SqueezeExcite"; }
  std::string describe() const override;
  Activation activation() const { return activation_; }  // between fc1 and fc2
  Activation gate() const { return gate_; }              // after fc2

 private:
  Conv2d* fc1_;
  Conv2d* fc2_;
  Activation activation_, gate_;
};

}  // namespace ag
