// Dropout (inverted): see ag::dropout in core/ops.h.
#pragma once

#include "layers/module.h"

namespace ag {

// Any shape. In training each element is zeroed with probability p (mask from the global
// generator, so a seed reproduces it) and the rest scaled by 1 / (1 - p); identity in eval.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);  // p in [0, 1)
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Dropout"; }
  std::string describe() const override;
  double p() const { return p_; }

 private:
  double p_;
};

}  // namespace ag
