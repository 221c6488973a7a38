// Pooling layers: MaxPool2d, AvgPool2d (PyTorch semantics, floor mode) and global average
// pooling. No parameters.
#pragma once

#include "core/nn_params.h"
#include "layers/module.h"

namespace ag {

// x: [N, C, H, W] -> [N, C, H_out, W_out]; padding counts as -inf.
class MaxPool2d : public Module {
 public:
  // stride <= 0 means stride = kernel (PyTorch's default).
  MaxPool2d(int64_t kernel, int64_t stride = -1, int64_t padding = 0);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "MaxPool2d"; }
  std::string describe() const override;
  const Pool2dParams& params() const { return params_; }

 private:
  Pool2dParams params_;
};

// x: [N, C, H, W] -> [N, C, H_out, W_out].
class AvgPool2d : public Module {
 public:
  // stride <= 0 means stride = kernel; count_include_pad: divide by the full window.
  AvgPool2d(int64_t kernel, int64_t stride = -1, int64_t padding = 0, bool count_include_pad = true);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "AvgPool2d"; }
  std::string describe() const override;
  const Pool2dParams& params() const { return params_; }

 private:
  Pool2dParams params_;
};

// x: [N, C, H, W] -> [N, C]: the mean over H and W (AdaptiveAvgPool2d(1) + Flatten).
class GlobalAvgPool2d : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "GlobalAvgPool2d"; }
};

}  // namespace ag
