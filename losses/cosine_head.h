// The cosine classifier head of the angular-margin losses: cos(theta_j) between each
// feature vector and each class weight row, both L2-normalised, no bias. At evaluation the
// prediction is argmax_j cos(theta_j); margins exist only inside the training loss.
#pragma once

#include "layers/module.h"

namespace ag {

class CosineHead : public Module {
 public:
  // Parameter "weight" [classes, feature_dim], Xavier-uniform initialised (only its
  // direction matters to the output; its scale sets the effective learning rate).
  // eps guards the normalisation: a vector shorter than eps is divided by eps instead,
  // so a zero feature gives cos = 0 everywhere (and finite gradients), never NaN.
  CosineHead(int64_t feature_dim, int64_t classes, double eps = 1e-12);

  // features: [N, feature_dim] -> cos theta: [N, classes], each in [-1, 1] up to rounding.
  Tensor forward(const Tensor& features) override;
  std::string type_name() const override { return "CosineHead"; }
  std::string describe() const override;

  Tensor& weight() { return weight_; }
  int64_t feature_dim() const { return feature_dim_; }
  int64_t classes() const { return classes_; }
  double eps() const { return eps_; }  // the normalisation's floor

 private:
  int64_t feature_dim_, classes_;
  double eps_;
  Tensor weight_;
};

// The feature norms ||x_i||: features [N, D] -> [N, 1]. Smooth at zero (sqrt(|x|^2 +
// 1e-24)), so a zero feature has norm ~1e-12 and gradient 0, never NaN. SphereFace's
// original form scales its logits by this.
Tensor feature_norm(const Tensor& features);

}  // namespace ag
