// Classifier (backbone + loss heads), the small ConvNet and the builders; see classifier.h.
#include "apps/lib/classifier.h"

#include <cmath>
#include <sstream>

#include "models/blocks.h"
#include "models/factory.h"
#include "models/trace.h"

namespace ag::train {

Classifier::Classifier(ModelPtr model, std::shared_ptr<ClassifierLoss> criterion)
    : model_(std::move(model)), criterion_(std::move(criterion)) {
  AG_CHECK(model_ && criterion_, "Classifier: needs a model and a criterion");
  AG_CHECK(model_->head() == nullptr,
           "Classifier: the backbone must have no head (the criterion owns the heads), got a "
               << model_->head()->type_name());
  register_module("model", model_);
  register_module("criterion", criterion_);
}

Tensor Classifier::forward(const Tensor& images) { return criterion_->forward(model_->features(images)); }

std::string Classifier::describe() const { return model_->type_name() + " + " + criterion_->describe(); }

ConvNet::ConvNet(int64_t in_channels, int64_t width, int64_t features) {
  AG_CHECK(in_channels > 0 && width > 0 && features >= 0,
           "convnet: needs in_channels > 0, width > 0 and features >= 0, got " << in_channels << ", " << width
                                                                               << ", " << features);
  c1_ = register_module("c1", std::make_shared<ConvBn>(in_channels, width, 3, 1, 1, Activation::relu));
  c2_ = register_module("c2", std::make_shared<ConvBn>(width, 2 * width, 3, 1, 1, Activation::relu));
  c3_ = register_module("c3", std::make_shared<ConvBn>(2 * width, 4 * width, 3, 1, 1, Activation::relu));
  feature_dim_ = 4 * width;
  if (features > 0) {
    proj_ = register_module("proj", std::make_shared<Linear>(4 * width, features));
    // Batch norm on the embedding (ArcFace's "E" output layer, FC + BN): it keeps a low-dimensional
    // embedding centred, so its directions spread round the circle instead of collapsing to one side.
    proj_bn_ = register_module("proj_bn", std::make_shared<BatchNorm1d>(features));
    feature_dim_ = features;
  }
}

Tensor ConvNet::features(const Tensor& x) {
  AG_CHECK(x.dim() == 4 && x.size(2) >= 4 && x.size(3) >= 4,
           "convnet: expected images [N, C, H >= 4, W >= 4], got " << x.describe());
  Tensor h = max_pool2d(call_layer(*c1_, x), 2);
  h = max_pool2d(call_layer(*c2_, h), 2);
  h = global_avg_pool2d(call_layer(*c3_, h));
  return proj_ ? call_layer(*proj_bn_, call_layer(*proj_, h)) : h;
}

std::string ConvNet::describe() const {
  std::ostringstream os;
  os << "features " << feature_dim_;
  return os.str();
}

namespace {
// "convnet:width=8,features=2" -> ConvNet; knobs are integers.
ModelPtr make_convnet(const std::string& spec, int64_t in_channels) {
  int64_t width = 16, features = 0;
  const size_t colon = spec.find(':');
  if (colon != std::string::npos) {
    std::stringstream knobs(spec.substr(colon + 1));
    std::string item;
    while (std::getline(knobs, item, ',')) {
      const size_t eq = item.find('=');
      AG_CHECK(eq != std::string::npos, "model spec '" << spec << "': '" << item << "' is not knob=value");
      const std::string knob = item.substr(0, eq), text = item.substr(eq + 1);
      size_t used = 0;
      int64_t v = -1;
      try {
        v = std::stoll(text, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      AG_CHECK(used > 0 && used == text.size() && v >= 0, "model spec '" << spec << "': knob " << knob
                                                                         << " needs an integer >= 0, got '"
                                                                         << text << "'");
      if (knob == "width") {
        width = v;
      } else if (knob == "features") {
        features = v;
      } else {
        AG_FAIL("model spec '" << spec << "': unknown knob '" << knob << "'; convnet knobs: width, features");
      }
    }
  }
  return std::make_shared<ConvNet>(in_channels, width, features);
}
}  // namespace

ModelPtr make_backbone(const std::string& spec, int64_t in_channels) {
  if (spec.substr(0, spec.find(':')) == "convnet") return make_convnet(spec, in_channels);
  ModelOptions options;
  options.in_channels = in_channels;
  return make_model(spec, 0, "none", options);
}

std::shared_ptr<Classifier> make_classifier(const TrainConfig& config, int64_t in_channels, int64_t classes,
                                            int64_t steps_per_epoch) {
  ModelPtr model = make_backbone(config.model, in_channels);
  MarginLossConfig loss = config.loss;
  loss.margin_warmup_steps =
      static_cast<int64_t>(std::llround(config.margin_warmup_epochs * static_cast<double>(steps_per_epoch)));
  auto criterion = std::make_shared<ClassifierLoss>(model->feature_dim(), classes, loss);
  return std::make_shared<Classifier>(model, criterion);
}

}  // namespace ag::train
