#include "models/mobilenet_v2.h"

#include <cmath>
#include <sstream>

#include "models/trace.h"

namespace ag {

MobileNetV2Config mobilenet_v2_config(double width, double depth) {
  AG_CHECK(width > 0 && depth > 0, "mobilenet_v2_config: width and depth multipliers must be positive, got "
                                       << width << ", " << depth);
  MobileNetV2Config c;
  c.stem_channels = make_divisible(c.stem_channels * width);
  for (InvertedResidualStage& s : c.stages) {
    s.channels = make_divisible(s.channels * width);
    s.repeats = static_cast<int64_t>(std::ceil(s.repeats * depth - 1e-9));
  }
  c.last_channels = make_divisible(c.last_channels * std::max(1.0, width));
  return c;
}

MobileNetV2::MobileNetV2(const MobileNetV2Config& config) : config_(config) {
  AG_CHECK(!config.stages.empty() && config.in_channels > 0 && config.stem_channels > 0 &&
               config.last_channels > 0,
           "MobileNetV2: needs stages and positive in/stem/last channels, got "
               << config.stages.size() << " stages, " << config.in_channels << "/" << config.stem_channels
               << "/" << config.last_channels);
  body_ = register_module("body", std::make_shared<Chain>());
  body_->append(std::make_shared<ConvBn>(config.in_channels, config.stem_channels, 3, config.stem_stride, 1,
                                         Activation::relu6));
  int64_t cin = config.stem_channels;
  for (const InvertedResidualStage& s : config.stages) {
    AG_CHECK(s.repeats > 0, "MobileNetV2: a stage needs at least one block, got " << s.repeats);
    for (int64_t i = 0; i < s.repeats; ++i) {
      InvertedResidualOptions o;
      o.in_channels = cin;
      o.out_channels = s.channels;
      o.stride = i == 0 ? s.stride : 1;
      o.expand = s.expand;
      o.kernel = s.kernel;
      o.act = Activation::relu6;
      body_->append(std::make_shared<InvertedResidual>(o));
      cin = s.channels;
    }
  }
  body_->append(std::make_shared<ConvBn>(cin, config.last_channels, 1, 1, 1, Activation::relu6));
  pool_ = register_module("pool", std::make_shared<GlobalAvgPool2d>());
  if (config.dropout > 0) drop_ = register_module("drop", std::make_shared<Dropout>(config.dropout));
}

Tensor MobileNetV2::features(const Tensor& x) {
  AG_CHECK(x.dim() == 4 && x.size(1) == config_.in_channels, "MobileNetV2: input must be [N, "
                                                                 << config_.in_channels << ", H, W], got "
                                                                 << shape_str(x.shape()));
  Tensor f = call_layer(*pool_, call_layer(*body_, x));
  return drop_ ? call_layer(*drop_, f) : f;
}

std::string MobileNetV2::describe() const {
  std::ostringstream os;
  os << config_.stem_channels << " stem, " << body_->size() - 2 << " blocks, features "
     << config_.last_channels;
  return os.str();
}

}  // namespace ag
