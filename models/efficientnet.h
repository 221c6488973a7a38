// EfficientNet-B0 (Tan & Le 2019), CIFAR variant: MBConv blocks (expansion, depthwise 3x3 /
// 5x5, squeeze-and-excitation with squeeze = block input channels / 4, SiLU, linear
// projection), stochastic depth rising linearly over the blocks to 0.2, dropout 0.2 before
// the head; the stem at stride 1 and a final 1x1 conv to 1280. 4,020,358 parameters with a
// 10-class linear head.
// Children: "body" (body.0 the stem, body.1 .. body.16 the blocks, body.17 the final 1x1
// ConvBn, as the PyTorch reference names them), "pool", "drop", and the head "fc".
#pragma once

#include <vector>

#include "models/blocks.h"
#include "models/model.h"

namespace ag {

struct EfficientNetConfig {
  int64_t in_channels = 3;
  int64_t stem_channels = 32;
  int64_t stem_stride = 1;  // 2 in the ImageNet original
  // (expand, channels, repeats, stride, kernel): B0's stages.
  std::vector<InvertedResidualStage> stages = {{1, 16, 1, 1, 3}, {6, 24, 2, 2, 3},  {6, 40, 2, 2, 5},
                                               {6, 80, 3, 2, 3}, {6, 112, 3, 1, 5}, {6, 192, 4, 2, 5},
                                               {6, 320, 1, 1, 3}};
  int64_t last_channels = 1280;
  double se_ratio = 0.25;  // squeeze channels = max(1, floor(block input channels * se_ratio))
  double drop_path = 0.2;  // block i of B (from 0) drops its branch with p = drop_path * i / B
  double dropout = 0.2;    // on the pooled features, before the head
};

// B0 at a width multiplier (channels through make_divisible(c * width, 8), the last conv 4x
// the last stage, as torchvision) and a depth multiplier (repeats rounded up).
EfficientNetConfig efficientnet_b0_config(double width = 1.0, double depth = 1.0);

class EfficientNet : public Model {
 public:
  explicit EfficientNet(const EfficientNetConfig& config);
  // x: [N, in, H, W] -> [N, last_channels] (dropout applied in training).
  Tensor features(const Tensor& x) override;
  int64_t feature_dim() const override { return config_.last_channels; }
  std::string type_name() const override { return "EfficientNet"; }
  std::string describe() const override;
  const EfficientNetConfig& config() const { return config_; }

 private:
  EfficientNetConfig config_;
  Chain* body_;
  GlobalAvgPool2d* pool_;
  Dropout* drop_;
};

}  // namespace ag
