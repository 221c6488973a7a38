#include "models/resnet.h"

#include <cmath>
#include <sstream>

#include "models/trace.h"

namespace ag {

namespace {
int64_t scale_channels(int64_t c, double width) { return std::max<int64_t>(1, std::llround(c * width)); }
int64_t scale_blocks(int64_t n, double depth_mult) {
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(n * depth_mult - 1e-9)));
}
}  // namespace

ResNetConfig resnet_config(int depth, double width, double depth_mult) {
  AG_CHECK(width > 0 && depth_mult > 0, "resnet_config: width and depth multipliers must be positive, got "
                                            << width << ", " << depth_mult);
  ResNetConfig c;
  std::vector<int64_t> blocks;
  std::vector<int64_t> channels = {64, 128, 256, 512};
  // The named depths take precedence over 6n + 2 (50 and 152 are both).
  if (depth == 18) {
    blocks = {2, 2, 2, 2};
  } else if (depth == 34) {
    blocks = {3, 4, 6, 3};
  } else if (depth == 50 || depth == 101 || depth == 152) {
    blocks = depth == 50
                 ? std::vector<int64_t>{3, 4, 6, 3}
                 : (depth == 101 ? std::vector<int64_t>{3, 4, 23, 3} : std::vector<int64_t>{3, 8, 36, 3});
    c.block = ResNetBlock::bottleneck;
  } else {
    AG_CHECK(
        depth >= 8 && (depth - 2) % 6 == 0,
        "resnet_config: depth must be 18, 34, 50, 101, 152 or 6n + 2 (20, 32, 44, 56, 110), got " << depth);
    const int64_t n = (depth - 2) / 6;
    blocks = {n, n, n};
    channels = {16, 32, 64};
    c.stem_channels = 16;
  }
  c.stem_channels = scale_channels(c.stem_channels, width);
  c.stages.clear();
  for (size_t i = 0; i < blocks.size(); ++i)
    c.stages.push_back(
        {scale_channels(channels[i], width), scale_blocks(blocks[i], depth_mult), i == 0 ? 1 : 2});
  return c;
}

ResNet::ResNet(const ResNetConfig& config) : config_(config) {
  AG_CHECK(!config.stages.empty(), "ResNet: the config has no stages");
  AG_CHECK(config.in_channels > 0 && config.stem_channels > 0,
           "ResNet: in_channels and stem_channels must be positive, got " << config.in_channels << ", "
                                                                          << config.stem_channels);
  stem_ = register_module(
      "stem", std::make_shared<ConvBn>(config.in_channels, config.stem_channels, 3, 1, 1, Activation::relu));
  blocks_ = register_module("blocks", std::make_shared<Chain>());
  int64_t cin = config.stem_channels;
  for (const ResNetStage& s : config.stages) {
    AG_CHECK(s.channels > 0 && s.blocks > 0 && s.stride > 0,
             "ResNet: a stage needs positive channels, blocks and stride, got "
                 << s.channels << ", " << s.blocks << ", " << s.stride);
    for (int64_t i = 0; i < s.blocks; ++i) {
      const int64_t stride = i == 0 ? s.stride : 1;
      if (config.block == ResNetBlock::basic) {
        blocks_->append(std::make_shared<BasicBlock>(cin, s.channels, stride));
        cin = s.channels;
      } else {
        blocks_->append(std::make_shared<Bottleneck>(cin, s.channels, stride));
        cin = s.channels * Bottleneck::expansion;
      }
    }
  }
  pool_ = register_module("pool", std::make_shared<GlobalAvgPool2d>());
  feature_dim_ = cin;
}

Tensor ResNet::features(const Tensor& x) {
  AG_CHECK(x.dim() == 4 && x.size(1) == config_.in_channels,
           "ResNet: input must be [N, " << config_.in_channels << ", H, W], got " << shape_str(x.shape()));
  return call_layer(*pool_, call_layer(*blocks_, call_layer(*stem_, x)));
}

std::string ResNet::describe() const {
  std::ostringstream os;
  os << (config_.block == ResNetBlock::basic ? "basic" : "bottleneck") << ", stages";
  for (const ResNetStage& s : config_.stages) os << " " << s.channels << "x" << s.blocks;
  os << ", features " << feature_dim_;
  return os.str();
}

}  // namespace ag
