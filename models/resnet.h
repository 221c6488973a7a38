// ResNets, CIFAR variant (He et al. 2016): a 3x3 stride-1 stem conv + BN + ReLU (no
// max-pool), stages of basic or bottleneck blocks, global average pooling, head "fc".
//   ResNet18/34 (basic) and ResNet50 (bottleneck): stages 64/128/256/512, strides 1/2/2/2;
//     ResNet18 has 11,173,962 parameters with a 10-class linear head.
//   ResNet-20/32/44/56/110 (the paper's CIFAR nets, depth 6n + 2): stem 16, stages
//     16/32/64 of n basic blocks, strides 1/2/2; projection shortcuts (the paper's option B)
//     where the shape changes.
// Children: "stem" (ConvBn), "blocks" (blocks.0, blocks.1, ... across all stages, as the
// PyTorch reference names them), "pool", and the head "fc" (models/model.h).
#pragma once

#include <vector>

#include "models/blocks.h"
#include "models/model.h"

namespace ag {

enum class ResNetBlock { basic, bottleneck };

struct ResNetStage {
  int64_t channels;  // block output (basic) or bottleneck width (output = 4x)
  int64_t blocks;
  int64_t stride;  // of the stage's first block
};

struct ResNetConfig {
  ResNetBlock block = ResNetBlock::basic;
  int64_t in_channels = 3;
  int64_t stem_channels = 64;
  std::vector<ResNetStage> stages = {{64, 2, 1}, {128, 2, 2}, {256, 2, 2}, {512, 2, 2}};  // ResNet18
};

// The config of a named depth: 18, 34, 50, 101, 152 (stages 64..512), or 6n + 2 (20, 32,
// 44, 56, 110: the CIFAR family). width scales every channel count (rounded, at least 1);
// depth_mult scales every stage's block count (rounded up, at least 1).
ResNetConfig resnet_config(int depth, double width = 1.0, double depth_mult = 1.0);

class ResNet : public Model {
 public:
  explicit ResNet(const ResNetConfig& config);
  Tensor features(const Tensor& x) override;  // x: [N, in, H, W] -> [N, feature_dim()]
  int64_t feature_dim() const override { return feature_dim_; }
  std::string type_name() const override { return "ResNet"; }
  std::string describe() const override;
  const ResNetConfig& config() const { return config_; }

 private:
  ResNetConfig config_;
  ConvBn* stem_;
  Chain* blocks_;
  GlobalAvgPool2d* pool_;
  int64_t feature_dim_;
};

}  // namespace ag
