// ClassifierLoss: config validation, head ownership, and the loss each kind computes.
#include "losses/classifier_loss.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "losses/cross_entropy.h"

namespace ag {

namespace {
bool is_margin_kind(const std::string& kind) {
  return kind == "normface" || kind == "sphereface" || kind == "cosface" || kind == "arcface" ||
         kind == "combined";
}
}  // namespace

std::string MarginLossConfig::margin_kind() const {
  if (kind == "joint") return joint_margin;
  return kind == "ce" ? "" : kind;
}

void MarginLossConfig::validate() const {
  AG_CHECK(kind == "ce" || kind == "joint" || is_margin_kind(kind),
           "loss kind '" << kind
                         << "' is unknown: expected ce, normface, sphereface, cosface, arcface, combined "
                            "or joint");
  AG_CHECK(kind != "joint" || is_margin_kind(joint_margin),
           "joint loss: joint_margin '"
               << joint_margin << "' must be one of normface, sphereface, cosface, arcface, combined");
  AG_CHECK(label_smoothing >= 0 && label_smoothing < 1,
           "loss: label_smoothing must lie in [0, 1), got " << label_smoothing);
  AG_CHECK(margin_warmup_steps >= 0, "loss: margin_warmup_steps must be >= 0, got " << margin_warmup_steps);
  AG_CHECK(kind != "joint" || (alpha >= 0 && alpha <= 1),
           "joint loss: alpha (the weight of cross-entropy) must lie in [0, 1], got " << alpha);
  const std::string margin = margin_kind();
  if (margin.empty()) return;
  const std::string who = margin + " loss";
  check_margin_scale(s, who.c_str());
  AG_CHECK(cos_eps > 0 && cos_eps < 0.1, who << ": cos_eps must lie in (0, 0.1), got " << cos_eps);
  if (margin == "cosface") check_cosface_margin(m, who.c_str());
  if (margin == "arcface") check_arcface_margin(m, who.c_str());
  if (margin == "combined") check_combined_margin(m1, m2, m3, who.c_str());
  if (margin == "sphereface") {
    check_sphereface_margin(m, who.c_str());
    AG_CHECK(margin_warmup_steps == 0,
             who << ": margin_warmup_steps does not apply (m is an integer); SphereFace eases its margin in "
                    "through the lambda annealing instead");
    AG_CHECK(anneal.base >= 0 && anneal.gamma >= 0 && anneal.power >= 0 && anneal.lambda_min >= 0,
             who << ": the lambda annealing parameters must be >= 0, got base " << anneal.base << ", gamma "
                 << anneal.gamma << ", power " << anneal.power << ", lambda_min " << anneal.lambda_min);
  }
}

std::string MarginLossConfig::describe() const {
  std::ostringstream os;
  const std::string margin = margin_kind();
  os << kind << "(";
  if (kind == "joint") os << "alpha=" << alpha << ", " << margin << ", ";
  if (!margin.empty()) os << "s=" << s;
  if (margin == "cosface" || margin == "arcface") os << ", m=" << m;
  if (margin == "sphereface")
    os << ", m=" << m << (sphereface_normalized ? ", normalised" : ", original")
       << ", lambda_min=" << anneal.lambda_min;
  if (margin == "combined") os << ", m1=" << m1 << ", m2=" << m2 << ", m3=" << m3;
  if (easy_margin && (margin == "arcface" || margin == "combined")) os << ", easy";
  if (margin_warmup_steps > 0) os << ", warmup=" << margin_warmup_steps;
  if (label_smoothing > 0) os << (margin.empty() ? "" : ", ") << "smoothing=" << label_smoothing;
  os << ")";
  return os.str();
}

ClassifierLoss::ClassifierLoss(int64_t feature_dim, int64_t classes, MarginLossConfig config)
    : config_(std::move(config)), feature_dim_(feature_dim), classes_(classes) {
  config_.validate();
  AG_CHECK(feature_dim > 0 && classes > 1,
           "ClassifierLoss: needs feature_dim > 0 and at least 2 classes, got " << feature_dim << " and "
                                                                                << classes);
  if (config_.kind == "ce" || config_.kind == "joint")
    linear_ = register_module("linear", std::make_shared<Linear>(feature_dim, classes));
  if (config_.kind != "ce")
    cosine_ = register_module("cosine", std::make_shared<CosineHead>(feature_dim, classes));
}

void ClassifierLoss::set_step(int64_t step) {
  AG_CHECK(step >= 0, "ClassifierLoss::set_step: the step must be >= 0, got " << step);
  step_ = step;
}

double ClassifierLoss::warmup_fraction() const {
  if (config_.margin_warmup_steps == 0) return 1.0;
  return std::min(1.0, static_cast<double>(step_) / static_cast<double>(config_.margin_warmup_steps));
}

double ClassifierLoss::sphereface_lambda() const { return config_.anneal.lambda(step_); }

Tensor ClassifierLoss::prepare_labels(const Tensor& features, const Tensor& labels) const {
  AG_CHECK(features.defined() && features.dim() == 2 && features.size(1) == feature_dim_,
           "ClassifierLoss: expected features [N, "
               << feature_dim_ << "], got " << (features.defined() ? features.describe() : "undefined"));
  if (labels.defined() && labels.device().is_cpu())
    check_labels(labels, features.size(0), classes_, "ClassifierLoss");
  AG_CHECK(labels.defined() && labels.dtype() == DType::i64 && labels.dim() == 1 &&
               labels.size(0) == features.size(0),
           "ClassifierLoss: labels must be int64 [" << features.size(0) << "] (one per feature row), got "
                                                    << (labels.defined() ? labels.describe() : "undefined"));
  return labels.device() == features.device() ? labels : labels.to(features.device());
}

Tensor ClassifierLoss::margin_logits(const Tensor& features, const Tensor& labels) {
  AG_CHECK(cosine_ != nullptr, "ClassifierLoss: the " << config_.kind << " loss has no margin logits");
  return margin_logits_prepared(features, prepare_labels(features, labels));
}

Tensor ClassifierLoss::margin_logits_prepared(const Tensor& features, const Tensor& y) {
  Tensor cosine = cosine_->forward(features);
  const MarginLossConfig& c = config_;
  const double f = warmup_fraction();
  const std::string margin = c.margin_kind();
  if (margin == "normface") return normface_logits(cosine, c.s);
  if (margin == "cosface") return cosface_logits(cosine, y, c.s, c.m * f);
  if (margin == "arcface") return arcface_logits(cosine, y, c.s, c.m * f, c.easy_margin, c.cos_eps);
  if (margin == "combined")  // the warm-up moves (m1, m2, m3) from (1, 0, 0), no margin, to the target
    return combined_margin_logits(cosine, y, c.s, 1.0 + (c.m1 - 1.0) * f, c.m2 * f, c.m3 * f, c.easy_margin,
                                  c.cos_eps);
  const auto m = static_cast<int64_t>(c.m);  // sphereface (validated to be an integer)
  if (c.sphereface_normalized) return sphereface_logits(cosine, y, m, sphereface_lambda(), c.s, c.cos_eps);
  return sphereface_logits(cosine, y, m, sphereface_lambda(), feature_norm(features), c.cos_eps);
}

Tensor ClassifierLoss::loss(const Tensor& features, const Tensor& labels) {
  Tensor y = prepare_labels(features, labels);
  const double smoothing = config_.label_smoothing;
  if (config_.kind == "ce") return cross_entropy(linear_->forward(features), y, Reduction::mean, smoothing);
  if (config_.kind != "joint")
    return cross_entropy(margin_logits_prepared(features, y), y, Reduction::mean, smoothing);
  // Per-row losses [N] combined, then one mean: the same as mixing the two means.
  Tensor margin_rows = cross_entropy(margin_logits_prepared(features, y), y, Reduction::none, smoothing);
  Tensor ce_rows = cross_entropy(linear_->forward(features), y, Reduction::none, smoothing);
  return mean(ce_rows * config_.alpha + margin_rows * (1.0 - config_.alpha));
}

Tensor ClassifierLoss::forward(const Tensor& features) {
  AG_CHECK(features.defined() && features.dim() == 2 && features.size(1) == feature_dim_,
           "ClassifierLoss: expected features [N, "
               << feature_dim_ << "], got " << (features.defined() ? features.describe() : "undefined"));
  return cosine_ != nullptr ? cosine_->forward(features) : linear_->forward(features);
}

}  // namespace ag
