// Model: the base of every network in models/, split into a feature extractor and a head,
// so one backbone serves a linear classifier (cross-entropy) or the cosine head of the
// angular-margin losses (losses/cosine_head.h):
//   features(x): [N, C, H, W] -> [N, feature_dim()]
//   forward(x) = head(features(x)), or features(x) when the model has no head.
// The head is the child "fc", registered after the backbone, so parameter names match the
// PyTorch reference ("stem.0.weight", ..., "fc.weight", "fc.bias").
#pragma once

#include <string>

#include "layers/module.h"

namespace ag {

class Model : public Module {
 public:
  // x: [N, C, H, W] -> the head's output (logits [N, classes] for a linear head), or
  // features [N, feature_dim()] without a head.
  Tensor forward(const Tensor& x) override;
  // x: [N, C, H, W] -> [N, feature_dim()] (after global pooling; EfficientNet also applies
  // its classifier dropout here, as the reference does).
  virtual Tensor features(const Tensor& x) = 0;
  virtual int64_t feature_dim() const = 0;

  // Attaches the head, any module taking [N, feature_dim()], as the child "fc". A model has
  // at most one head: build it with head "none" (models/factory.h) to attach your own.
  void set_head(ModulePtr head);
  Module* head() const { return head_.get(); }

 private:
  ModulePtr head_;
};

using ModelPtr = std::shared_ptr<Model>;

}  // namespace ag
