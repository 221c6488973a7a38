// MobileNetV2 (Sandler et al. 2018), CIFAR variant: the paper's inverted residual blocks
// (ReLU6, linear bottleneck, identity shortcut only when stride is 1 and the channels
// match) with the stem and the 24-channel stage at stride 1 instead of 2, and a final 1x1
// conv to 1280. 2,236,682 parameters with a 10-class linear head.
// Children: "body" (body.0 the stem, body.1 .. body.17 the blocks, body.18 the final 1x1
// ConvBn, as the PyTorch reference names them), "pool", "drop" (only when dropout > 0), and
// the head "fc" (models/model.h).
#pragma once

#include <vector>

#include "models/blocks.h"
#include "models/model.h"

namespace ag {

struct MobileNetV2Config {
  int64_t in_channels = 3;
  int64_t stem_channels = 32;
  int64_t stem_stride = 1;  // 2 in the ImageNet original
  // (expand t, channels c, repeats n, stride s) as in the paper's table 2, CIFAR strides.
  std::vector<InvertedResidualStage> stages = {{1, 16, 1, 1}, {6, 24, 2, 1},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                               {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  int64_t last_channels = 1280;
  double dropout = 0;  // before the head; the reference has none
};

// The CIFAR config at a width multiplier (channels through make_divisible(c * width, 8); the
// last conv keeps 1280 for width <= 1, as torchvision) and a depth multiplier (repeats
// rounded up).
MobileNetV2Config mobilenet_v2_config(double width = 1.0, double depth = 1.0);

class MobileNetV2 : public Model {
 public:
  explicit MobileNetV2(const MobileNetV2Config& config);
  Tensor features(const Tensor& x) override;  // x: [N, in, H, W] -> [N, last_channels]
  int64_t feature_dim() const override { return config_.last_channels; }
  std::string type_name() const override { return "MobileNetV2"; }
  std::string describe() const override;
  const MobileNetV2Config& config() const { return config_; }

 private:
  MobileNetV2Config config_;
  Chain* body_;
  GlobalAvgPool2d* pool_;
  Dropout* drop_ = nullptr;
};

}  // namespace ag
