// Flatten: collapses the dims from start_dim on into one ([N, C, H, W] -> [N, C*H*W]).
#pragma once

#include "layers/module.h"

namespace ag {

class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1) : start_dim_(start_dim) {}
  Tensor forward(const Tensor& x) override;  // a view when x is contiguous
  std::string type_name() const override { return "Flatten"; }
  int64_t start_dim() const { return start_dim_; }

 private:
  int64_t start_dim_;
};

}  // namespace ag
