// One loss interface for the training apps: a MarginLossConfig picks the loss (plain
// cross-entropy, a margin loss, or the joint of both) and ClassifierLoss owns the heads it
// needs as child modules, so their parameters appear in named_parameters() and
// checkpoints ("linear.weight", "linear.bias", "cosine.weight").
//
//   ClassifierLoss criterion(512, 10, {.kind = "arcface", .s = 16, .m = 0.3});
//   criterion.set_step(step);                          // margin warm-up / SphereFace lambda
//   Tensor loss = criterion.loss(features, labels);    // features [N, 512], labels int64 [N]
//   Tensor scores = criterion(features);               // [N, 10]: argmax is the prediction
#pragma once

#include <memory>
#include <string>

#include "layers/linear.h"
#include "losses/cosine_head.h"
#include "losses/margin.h"

namespace ag {

struct MarginLossConfig {
  // ce | normface | sphereface | cosface | arcface | combined | joint
  std::string kind = "arcface";
  double s = 1.0;  // logit scale of every margin loss (the paper's best: 1; usual: 16-64)
  double m = 0.1;  // cosface / arcface margin (the paper's best: 0.1); sphereface: integer >= 1
  double m1 = 1.0, m2 = 0.0, m3 = 0.0;   // combined: target cos(m1 theta + m2) - m3
  double alpha = 0.5;                    // joint: alpha * CE(linear) + (1 - alpha) * margin loss
  std::string joint_margin = "arcface";  // joint: which margin loss (any kind but ce and joint)
  int64_t margin_warmup_steps = 0;       // m rises linearly from 0 to its target over these steps
  bool easy_margin = false;              // arcface / combined: no margin where cos(theta_y) <= 0
  double label_smoothing = 0.0;          // applied to every cross-entropy
  bool sphereface_normalized = true;     // false: the original form, logits scaled by |x|
  SphereFaceAnneal anneal{};             // sphereface: lambda(step)
  double cos_eps = kDefaultCosEps;       // cos theta clamped to [-1 + eps, 1 - eps] before acos

  // Throws an ag::Error that names the bad field, its value and the valid range.
  void validate() const;
  // "arcface(s=1, m=0.1)": for logs and run names.
  std::string describe() const;
  // The margin loss in use: kind, or joint_margin for joint; "" for ce.
  std::string margin_kind() const;
};

class ClassifierLoss : public Module {
 public:
  ClassifierLoss(int64_t feature_dim, int64_t classes, MarginLossConfig config = {});

  // features: [N, feature_dim]; labels: int64 [N]. Labels on the CPU are range-checked
  // (the error names the label and the class count) and moved to the features' device.
  // Returns the mean training loss, shape [].
  Tensor loss(const Tensor& features, const Tensor& labels);
  // features: [N, feature_dim] -> evaluation scores [N, classes] (no margin): cos theta
  // from the cosine head for every margin kind and joint, linear logits for ce.
  Tensor forward(const Tensor& features) override;
  // The margin logits the training loss feeds to cross-entropy, [N, classes] (margin kinds
  // and joint only).
  Tensor margin_logits(const Tensor& features, const Tensor& labels);

  // The training step t: drives the margin warm-up and SphereFace's lambda.
  void set_step(int64_t step);
  int64_t step() const { return step_; }
  double warmup_fraction() const;    // min(1, t / margin_warmup_steps), 1 without warm-up
  double sphereface_lambda() const;  // anneal.lambda(t)

  const MarginLossConfig& config() const { return config_; }
  Linear* linear_head() { return linear_; }      // null unless ce or joint
  CosineHead* cosine_head() { return cosine_; }  // null for ce
  int64_t classes() const { return classes_; }
  std::string type_name() const override { return "ClassifierLoss"; }
  std::string describe() const override { return config_.describe(); }

 private:
  Tensor prepare_labels(const Tensor& features, const Tensor& labels) const;
  // features: [N, D]; y: labels already checked and on the features' device.
  Tensor margin_logits_prepared(const Tensor& features, const Tensor& y);

  MarginLossConfig config_;
  int64_t feature_dim_, classes_;
  int64_t step_ = 0;
  Linear* linear_ = nullptr;
  CosineHead* cosine_ = nullptr;
};

}  // namespace ag
