// Stochastic depth (Huang et al. 2016) as "drop path": in training, each sample's residual
// branch is dropped whole with probability p and kept samples are scaled by 1 / (1 - p), so
// the expected output is unchanged; in eval it is the identity. EfficientNet applies it to
// the branch of every MBConv block that has an identity shortcut, with p rising linearly
// over the blocks.
#pragma once

#include "layers/module.h"

namespace ag {

// x: [N, ...] -> same shape. p in [0, 1). The keep mask (one value per sample) is drawn on
// the host from the global generator (core/random.h), so reseeding reproduces it on every
// device; identity (x itself) when not training or p == 0.
Tensor drop_path(const Tensor& x, double p, bool training);

// The per-sample mask drop_path multiplies by: [N, 1, ..., 1] (rank of x) in x's dtype and
// device, each value 0 (dropped, probability p) or 1 / (1 - p). Draws N numbers.
Tensor drop_path_mask(const Shape& x_shape, double p, DType dtype, Device device);

class DropPath : public Module {
 public:
  explicit DropPath(double p);               // p in [0, 1)
  Tensor forward(const Tensor& x) override;  // x: [N, ...]
  std::string type_name() const override { return "DropPath"; }
  std::string describe() const override;
  double p() const { return p_; }

 private:
  double p_;
};

}  // namespace ag
