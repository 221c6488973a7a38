#include "layers/linear.h"

#include <cmath>

#include "layers/init.h"

namespace ag {

Linear::Linear(int64_t in_features, int64_t out_features, bool bias) : in_(in_features), out_(out_features) {
  AG_CHECK(in_features > 0 && out_features > 0,
           "Linear: feature counts must be positive, got " << in_features << " -> " << out_features);
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
  weight_ = register_parameter("weight", Tensor::uniform({out_features, in_features}, -bound, bound));
  if (bias) bias_ = register_parameter("bias", Tensor::uniform({out_features}, -bound, bound));
}

Tensor Linear::forward(const Tensor& x) {
  AG_CHECK(x.dim() == 2 && x.size(1) == in_, "Linear(" << in_ << " -> " << out_ << "): input must be [N, "
                                                       << in_ << "], got " << shape_str(x.shape()));
  return linear(x, weight_, bias_);
}

std::string Linear::describe() const {
  return std::to_string(in_) + "->" + std::to_string(out_) + (bias_.defined() ? "" : ", no bias");
}

}  // namespace ag
