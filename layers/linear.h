// Linear (fully connected) layer: y = x W^T + b.
#pragma once

#include "layers/module.h"

namespace ag {

class Linear : public Module {
 public:
  // Parameters: "weight" [out, in], "bias" [out] (when bias). Initialised as PyTorch's
  // nn.Linear: both U(-1/sqrt(in), 1/sqrt(in)).
  Linear(int64_t in_features, int64_t out_features, bool bias = true);

  // x: [N, in] -> [N, out].
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Linear"; }
  std::string describe() const override;

  Tensor& weight() { return weight_; }
  Tensor& bias() { return bias_; }  // undefined without bias
  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }

 private:
  int64_t in_, out_;
  Tensor weight_, bias_;
};

}  // namespace ag
