#include "models/efficientnet.h"

#include <cmath>
#include <sstream>

#include "models/trace.h"

namespace ag {

EfficientNetConfig efficientnet_b0_config(double width, double depth) {
  AG_CHECK(
      width > 0 && depth > 0,
      "efficientnet_b0_config: width and depth multipliers must be positive, got " << width << ", " << depth);
  EfficientNetConfig c;
  c.stem_channels = make_divisible(c.stem_channels * width);
  for (InvertedResidualStage& s : c.stages) {
    s.channels = make_divisible(s.channels * width);
    s.repeats = static_cast<int64_t>(std::ceil(s.repeats * depth - 1e-9));
  }
  c.last_channels = 4 * c.stages.back().channels;
  return c;
}

EfficientNet::EfficientNet(const EfficientNetConfig& config) : config_(config) {
  AG_CHECK(!config.stages.empty() && config.in_channels > 0 && config.stem_channels > 0 &&
               config.last_channels > 0,
           "EfficientNet: needs stages and positive in/stem/last channels, got "
               << config.stages.size() << " stages, " << config.in_channels << "/" << config.stem_channels
               << "/" << config.last_channels);
  AG_CHECK(config.se_ratio >= 0 && config.drop_path >= 0 && config.drop_path < 1,
           "EfficientNet: needs se_ratio >= 0 and drop_path in [0, 1), got " << config.se_ratio << ", "
                                                                             << config.drop_path);
  body_ = register_module("body", std::make_shared<Chain>());
  body_->append(std::make_shared<ConvBn>(config.in_channels, config.stem_channels, 3, config.stem_stride, 1,
                                         Activation::silu));
  int64_t total = 0;
  for (const InvertedResidualStage& s : config.stages) {
    AG_CHECK(s.repeats > 0, "EfficientNet: a stage needs at least one block, got " << s.repeats);
    total += s.repeats;
  }
  int64_t cin = config.stem_channels, index = 0;
  for (const InvertedResidualStage& s : config.stages) {
    for (int64_t i = 0; i < s.repeats; ++i, ++index) {
      InvertedResidualOptions o;
      o.in_channels = cin;
      o.out_channels = s.channels;
      o.stride = i == 0 ? s.stride : 1;
      o.expand = s.expand;
      o.kernel = s.kernel;
      o.act = Activation::silu;
      o.se_channels =
          config.se_ratio > 0 ? std::max<int64_t>(1, static_cast<int64_t>(cin * config.se_ratio)) : 0;
      o.drop_path = config.drop_path * static_cast<double>(index) / static_cast<double>(total);
      body_->append(std::make_shared<InvertedResidual>(o));
      cin = s.channels;
    }
  }
  body_->append(std::make_shared<ConvBn>(cin, config.last_channels, 1, 1, 1, Activation::silu));
  pool_ = register_module("pool", std::make_shared<GlobalAvgPool2d>());
  drop_ = register_module("drop", std::make_shared<Dropout>(config.dropout));
}

Tensor EfficientNet::features(const Tensor& x) {
  AG_CHECK(x.dim() == 4 && x.size(1) == config_.in_channels, "EfficientNet: input must be [N, "
                                                                 << config_.in_channels << ", H, W], got "
                                                                 << shape_str(x.shape()));
  return call_layer(*drop_, call_layer(*pool_, call_layer(*body_, x)));
}

std::string EfficientNet::describe() const {
  std::ostringstream os;
  os << config_.stem_channels << " stem, " << body_->size() - 2 << " blocks, features "
     << config_.last_channels << ", drop_path " << config_.drop_path << ", dropout " << config_.dropout;
  return os.str();
}

}  // namespace ag
