#include "layers/squeeze_excite.h"

namespace ag {

SqueezeExcite::SqueezeExcite(int64_t channels, int64_t squeeze_channels, Activation activation,
                             Activation gate)
    : activation_(activation), gate_(gate) {
  AG_CHECK(channels > 0 && squeeze_channels > 0,
           "SqueezeExcite: channel counts must be positive, got " << channels << " and " << squeeze_channels);
  fc1_ = register_module("fc1", std::make_shared<Conv2d>(channels, squeeze_channels, 1));
  fc2_ = register_module("fc2", std::make_shared<Conv2d>(squeeze_channels, channels, 1));
}

Tensor SqueezeExcite::forward(const Tensor& x) {
  AG_CHECK(x.dim() == 4 && x.size(1) == fc1_->in_channels(),
           "SqueezeExcite(" << fc1_->in_channels() << "): input must be [N, " << fc1_->in_channels()
                            << ", H, W], got " << shape_str(x.shape()));
  Tensor s = global_avg_pool2d(x).reshape({x.size(0), x.size(1), 1, 1});
  s = activate(fc2_->forward(activate(fc1_->forward(s), activation_)), gate_);
  return mul(x, s);  // [N, C, H, W] * [N, C, 1, 1]
}

std::string SqueezeExcite::describe() const {
  return std::to_string(fc1_->in_channels()) + "->" + std::to_string(fc1_->out_channels()) + ", " +
         activation_name(activation_) + "/" + activation_name(gate_);
}

}  // namespace ag
