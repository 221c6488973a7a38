// The module a training run trains and checkpoints: a backbone (models/, without a head)
// and the ClassifierLoss that owns the classifier heads, as one tree, so one checkpoint
// holds both under dotted names ("model.stem.0.weight", ..., "criterion.cosine.weight").
//
//   auto net = make_classifier(config, /*in_channels=*/3, /*classes=*/10, steps_per_epoch);
//   Tensor loss = net->criterion().loss(net->features(images), labels);  // training
//   Tensor scores = (*net)(images);  // [N, classes]: cos theta (margin losses) or logits (ce)
#pragma once

#include <memory>
#include <string>

#include "apps/lib/train_config.h"
#include "losses/classifier_loss.h"
#include "models/model.h"

namespace ag::train {

class Classifier : public Module {
 public:
  Classifier(ModelPtr model, std::shared_ptr<ClassifierLoss> criterion);
  // images: [N, C, H, W] -> [N, feature_dim] (the backbone's features).
  Tensor features(const Tensor& images) { return model_->features(images); }
  // images: [N, C, H, W] -> evaluation scores [N, classes] (no margin).
  Tensor forward(const Tensor& images) override;
  std::string type_name() const override { return "Classifier"; }
  std::string describe() const override;
  Model& model() { return *model_; }
  ClassifierLoss& criterion() { return *criterion_; }

 private:
  ModelPtr model_;
  std::shared_ptr<ClassifierLoss> criterion_;
};

// A small plain CNN for CPU-scale runs, tests and the 2-D embedding figure:
// 3 x (ConvBn 3x3 + ReLU), the first two followed by 2x2 max pooling, channels W, 2W, 4W,
// global average pooling, then (features > 0) a Linear(4W, features) projection followed by
// BatchNorm1d(features).
//   spec "convnet[:width=W,features=F]" (defaults: width 16, features 0 = no projection).
class ConvNet : public Model {
 public:
  ConvNet(int64_t in_channels, int64_t width, int64_t features);
  Tensor features(const Tensor& x) override;  // x: [N, in, H >= 4, W >= 4] -> [N, feature_dim()]
  int64_t feature_dim() const override { return feature_dim_; }
  std::string type_name() const override { return "ConvNet"; }
  std::string describe() const override;

 private:
  Module *c1_, *c2_, *c3_, *proj_ = nullptr, *proj_bn_ = nullptr;
  int64_t feature_dim_;
};

// The backbone named by spec, without a head: convnet[...] here, anything else through
// models/factory.h. in_channels: the images' channels (1 for Fashion-MNIST).
ModelPtr make_backbone(const std::string& spec, int64_t in_channels);

// Backbone + ClassifierLoss for config (its loss; margin_warmup_epochs becomes steps with
// steps_per_epoch).
std::shared_ptr<Classifier> make_classifier(const TrainConfig& config, int64_t in_channels, int64_t classes,
                                            int64_t steps_per_epoch);

}  // namespace ag::train
