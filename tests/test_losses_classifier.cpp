// ClassifierLoss, the one loss interface of the apps: head ownership and parameter names,
// each kind against its pieces, joint loss, margin warm-up, SphereFace annealing, gradient
// checks over features and every parameter, a short fit, and config validation.
#include <cmath>
#include <numbers>
#include <string>

#include "core/ops.h"
#include "gradcheck.h"
#include "losses/classifier_loss.h"
#include "losses/cross_entropy.h"
#include "test_losses_util.h"

using namespace ag;
using ag_test::max_abs_diff;

namespace {
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::vector<std::string> names_of(const Module& m) {
  std::vector<std::string> names;
  for (auto& [name, _] : m.named_parameters()) names.push_back(name);
  return names;
}

const std::vector<std::string> kMarginKinds = {"normface", "sphereface", "cosface", "arcface", "combined"};
}  // namespace

TEST_CASE("ClassifierLoss: owns the heads each kind needs, under stable names") {
  CHECK(names_of(ClassifierLoss(8, 3, {.kind = "ce"})) ==
        std::vector<std::string>{"linear.weight", "linear.bias"});
  CHECK(names_of(ClassifierLoss(8, 3, {.kind = "arcface"})) == std::vector<std::string>{"cosine.weight"});
  CHECK(names_of(ClassifierLoss(8, 3, {.kind = "joint"})) ==
        std::vector<std::string>{"linear.weight", "linear.bias", "cosine.weight"});
  ClassifierLoss loss(8, 3, {.kind = "joint"});
  CHECK(loss.linear_head() != nullptr);
  CHECK(loss.cosine_head() != nullptr);
  CHECK(loss.cosine_head()->weight().shape() == Shape{3, 8});
  CHECK(ClassifierLoss(8, 3, {.kind = "ce"}).cosine_head() == nullptr);
  // The paper's defaults: ArcFace, s = 1, m = 0.1.
  MarginLossConfig paper;
  CHECK(paper.kind == "arcface");
  CHECK(paper.s == 1.0);
  CHECK(paper.m == 0.1);
  CHECK(paper.describe() == "arcface(s=1, m=0.1)");
}

TEST_CASE("ClassifierLoss: each kind equals its pieces; eval scores are cos theta") {
  manual_seed(31);
  Tensor x = Tensor::normal({5, 6}, 0, 1, DType::f64);
  Tensor labels = Tensor::from_labels({0, 3, 1, 3, 2});
  for (const std::string& kind : kMarginKinds) {
    CAPTURE(kind);
    MarginLossConfig config{.kind = kind, .s = 8, .m = kind == "sphereface" ? 3.0 : 0.3};
    config.m1 = 1.2, config.m2 = 0.2, config.m3 = 0.1;
    ClassifierLoss criterion(6, 4, config);
    criterion.to(DType::f64);
    criterion.set_step(7);
    Tensor cosine = criterion.cosine_head()->forward(x);
    Tensor logits = kind == "normface"  ? normface_logits(cosine, 8)
                    : kind == "cosface" ? cosface_logits(cosine, labels, 8, 0.3)
                    : kind == "arcface" ? arcface_logits(cosine, labels, 8, 0.3)
                    : kind == "combined"
                        ? combined_margin_logits(cosine, labels, 8, 1.2, 0.2, 0.1)
                        : sphereface_logits(cosine, labels, 3, SphereFaceAnneal{}.lambda(7), 8);
    CHECK(criterion.loss(x, labels).item() ==
          doctest::Approx(cross_entropy(logits, labels).item()).epsilon(1e-12));
    CHECK(max_abs_diff(criterion(x).to_vector(), cosine.to_vector()) == 0.0);
  }
  ClassifierLoss ce(6, 4, {.kind = "ce", .label_smoothing = 0.1});
  ce.to(DType::f64);
  Tensor logits = ce.linear_head()->forward(x);
  CHECK(ce.loss(x, labels).item() ==
        doctest::Approx(cross_entropy(logits, labels, Reduction::mean, 0.1).item()).epsilon(1e-12));
  CHECK(max_abs_diff(ce(x).to_vector(), logits.to_vector()) == 0.0);
}

TEST_CASE("ClassifierLoss: the joint loss is alpha CE + (1 - alpha) margin loss over the same features") {
  manual_seed(32);
  Tensor x = Tensor::normal({4, 5}, 0, 1, DType::f64);
  Tensor labels = Tensor::from_labels({1, 0, 2, 1});
  for (double alpha : {0.0, 0.3, 1.0}) {
    ClassifierLoss joint(5, 3, {.kind = "joint", .s = 16, .m = 0.2, .alpha = alpha});
    joint.to(DType::f64);
    const double ce = cross_entropy(joint.linear_head()->forward(x), labels).item();
    const double arc =
        cross_entropy(arcface_logits(joint.cosine_head()->forward(x), labels, 16, 0.2), labels).item();
    CHECK(joint.loss(x, labels).item() == doctest::Approx(alpha * ce + (1 - alpha) * arc).epsilon(1e-12));
  }
  ClassifierLoss cos_joint(5, 3, {.kind = "joint", .s = 4, .m = 0.25, .joint_margin = "cosface"});
  cos_joint.to(DType::f64);
  const double ce = cross_entropy(cos_joint.linear_head()->forward(x), labels).item();
  const double cf =
      cross_entropy(cosface_logits(cos_joint.cosine_head()->forward(x), labels, 4, 0.25), labels).item();
  CHECK(cos_joint.loss(x, labels).item() == doctest::Approx(0.5 * ce + 0.5 * cf).epsilon(1e-12));
}

TEST_CASE("ClassifierLoss: margin warm-up raises m linearly from 0; SphereFace lambda follows the step") {
  manual_seed(33);
  Tensor x = Tensor::normal({4, 5}, 0, 1, DType::f64);
  Tensor labels = Tensor::from_labels({1, 0, 2, 1});
  ClassifierLoss arc(5, 3, {.kind = "arcface", .s = 16, .m = 0.4, .margin_warmup_steps = 100});
  arc.to(DType::f64);
  Tensor cosine = arc.cosine_head()->forward(x);
  for (auto [step, m] : {std::pair<int64_t, double>{0, 0.0}, {25, 0.1}, {50, 0.2}, {100, 0.4}, {500, 0.4}}) {
    CAPTURE(step);
    arc.set_step(step);
    CHECK(arc.warmup_fraction() == doctest::Approx(m / 0.4));
    CHECK(
        arc.loss(x, labels).item() ==
        doctest::Approx(cross_entropy(arcface_logits(cosine, labels, 16, m), labels).item()).epsilon(1e-12));
  }
  arc.set_step(0);  // m = 0 is the normalised softmax
  CHECK(arc.loss(x, labels).item() ==
        doctest::Approx(cross_entropy(normface_logits(cosine, 16), labels).item()).epsilon(1e-12));
  // combined: (m1, m2, m3) move from (1, 0, 0) to the target.
  ClassifierLoss comb(
      5, 3, {.kind = "combined", .s = 8, .m1 = 1.4, .m2 = 0.3, .m3 = 0.2, .margin_warmup_steps = 10});
  comb.to(DType::f64);
  comb.set_step(5);
  Tensor cc = comb.cosine_head()->forward(x);
  CHECK(comb.loss(x, labels).item() ==
        doctest::Approx(cross_entropy(combined_margin_logits(cc, labels, 8, 1.2, 0.15, 0.1), labels).item())
            .epsilon(1e-12));
  ClassifierLoss sphere(5, 3, {.kind = "sphereface", .m = 4});
  for (int64_t step : {0, 10, 1000000}) {
    sphere.set_step(step);
    CHECK(sphere.sphereface_lambda() == doctest::Approx(std::max(5.0, 1000.0 / (1 + 0.12 * step))));
  }
  CHECK_THROWS_AS(sphere.set_step(-1), Error);
}

TEST_CASE("ClassifierLoss: gradcheck over features and every parameter, for every kind") {
  const std::vector<std::string> kinds = {"ce",      "normface", "sphereface", "cosface",
                                          "arcface", "combined", "joint"};
  for (const std::string& kind : kinds) {
    for (bool original : {false, true}) {
      if (original && kind != "sphereface") continue;
      CAPTURE(kind);
      CAPTURE(original);
      manual_seed(34);
      MarginLossConfig config{.kind = kind, .s = 4, .m = kind == "sphereface" ? 2.0 : 0.3};
      config.m1 = 1.1, config.m2 = 0.2, config.m3 = 0.1, config.label_smoothing = 0.1;
      config.sphereface_normalized = !original;
      ClassifierLoss criterion(3, 4, config);
      criterion.to(DType::f64);
      criterion.set_step(3);
      Tensor x = ag::testing::random_leaf({3, 3});
      Tensor labels = Tensor::from_labels({3, 0, 1});
      std::vector<Tensor> wrt = {x};
      for (Tensor& p : criterion.parameters()) wrt.push_back(p);
      CHECK_GRADCHECK([&] { return criterion.loss(x, labels); }, wrt);
    }
  }
}

TEST_CASE("ClassifierLoss: a few SGD steps fit a small separable problem; argmax cos predicts") {
  manual_seed(35);
  const int64_t n = 24, d = 6, c = 4;
  // Each feature is its class centre plus noise; only the class weights are trained.
  std::vector<double> centres = Tensor::normal({c, d}, 0, 1, DType::f64).to_vector(), values;
  std::vector<int64_t> label_values;
  Generator gen(9);
  for (int64_t i = 0; i < n; ++i) {
    label_values.push_back(i % c);
    for (int64_t k = 0; k < d; ++k) values.push_back(centres[(i % c) * d + k] + 0.2 * gen.normal());
  }
  Tensor x = Tensor::from_vector(values, {n, d}, DType::f32);
  Tensor labels = Tensor::from_labels(label_values);
  for (std::string kind : {"arcface", "cosface", "sphereface", "joint"}) {
    CAPTURE(kind);
    ClassifierLoss criterion(d, c, {.kind = kind, .s = 16, .m = kind == "sphereface" ? 2.0 : 0.3});
    criterion.set_step(1000);
    const double first = criterion.loss(x, labels).item();
    double last = first;
    for (int step = 0; step < 60; ++step) {
      criterion.zero_grad();
      Tensor loss = criterion.loss(x, labels);
      loss.backward();
      last = loss.item();
      NoGradGuard no_grad;
      for (Tensor& p : criterion.parameters()) p.copy_(p - p.grad() * 0.05);
    }
    CHECK(last < 0.5 * first);
    std::vector<int64_t> predicted = argmax(criterion(x), 1).to_labels();
    CHECK(predicted == label_values);
  }
}

TEST_CASE("ClassifierLoss: zero features and s = 64 stay finite") {
  for (std::string kind : {"ce", "normface", "sphereface", "cosface", "arcface", "combined", "joint"}) {
    CAPTURE(kind);
    manual_seed(36);
    ClassifierLoss criterion(4, 3, {.kind = kind, .s = 64, .m = kind == "sphereface" ? 4.0 : 0.5});
    Tensor x = Tensor::from_vector({0, 0, 0, 0, 5, -4, 3, 9}, {2, 4}, DType::f32).set_requires_grad(true);
    Tensor loss = criterion.loss(x, Tensor::from_labels({1, 2}));
    CHECK(std::isfinite(loss.item()));
    loss.backward();
    for (double g : x.grad().to_vector()) CHECK(std::isfinite(g));
    for (Tensor& p : criterion.parameters())
      for (double g : p.grad().to_vector()) CHECK(std::isfinite(g));
  }
}

TEST_CASE("ClassifierLoss: labels and configs are validated with clear errors") {
  ClassifierLoss criterion(4, 5, {.kind = "arcface"});
  Tensor x = Tensor::zeros({3, 4});
  std::string m = error_of([&] { criterion.loss(x, Tensor::from_labels({0, 7, 1})); });
  CHECK(m.find("label 7") != std::string::npos);
  CHECK(m.find("5 classes") != std::string::npos);
  m = error_of([&] { criterion.loss(x, Tensor::from_labels({0, 1})); });
  CHECK(m.find("2 labels for 3 rows") != std::string::npos);
  m = error_of([&] { criterion.loss(Tensor::zeros({3, 6}), Tensor::from_labels({0, 1, 2})); });
  CHECK(m.find("[N, 4]") != std::string::npos);
  CHECK_THROWS_AS(criterion.loss(x, Tensor::zeros({3})), Error);

  auto config_error = [](const MarginLossConfig& config) { return error_of([&] { config.validate(); }); };
  CHECK(config_error({.kind = "arcface", .m = 1.6}).find("outside [0, pi/2)") != std::string::npos);
  CHECK(config_error({.kind = "arcface", .m = -0.1}).find("outside [0, pi/2)") != std::string::npos);
  CHECK(config_error({.kind = "sphereface", .m = 2.5}).find("positive integer") != std::string::npos);
  CHECK(config_error({.kind = "sphereface", .m = 0}).find("positive integer") != std::string::npos);
  CHECK(config_error({.kind = "sphereface", .m = 4, .margin_warmup_steps = 10}).find("lambda") !=
        std::string::npos);
  CHECK(config_error({.kind = "softmax"}).find("'softmax' is unknown") != std::string::npos);
  CHECK(config_error({.kind = "joint", .joint_margin = "ce"}).find("joint_margin") != std::string::npos);
  CHECK(config_error({.kind = "joint", .alpha = 1.5}).find("alpha") != std::string::npos);
  CHECK(config_error({.kind = "cosface", .s = 0}).find("scale s") != std::string::npos);
  CHECK(config_error({.kind = "cosface", .m = -1}).find("CosFace") != std::string::npos);
  CHECK(config_error({.kind = "combined", .m1 = 0}).find("m1") != std::string::npos);
  CHECK(config_error({.kind = "ce", .label_smoothing = 1}).find("label_smoothing") != std::string::npos);
  CHECK(config_error({.kind = "arcface", .margin_warmup_steps = -1}).find("margin_warmup_steps") !=
        std::string::npos);
  CHECK(config_error({.kind = "ce", .s = -5}).empty());  // s and m do not apply to plain cross-entropy
  CHECK_THROWS_AS(ClassifierLoss(4, 1, {.kind = "ce"}), Error);
  CHECK_THROWS_AS(ClassifierLoss(4, 3, {.kind = "arcface", .m = 2}), Error);
}
