// Float64 gradient checks of every margin loss with respect to the features and the class
// weights W of a CosineHead, for several s and m, with the target angle placed near 0,
// near pi/2 and near pi (ArcFace's fallback region), both on the logits and through
// cross-entropy; and float32 against float64.
#include <cmath>
#include <functional>
#include <numbers>
#include <string>

#include "core/ops.h"
#include "gradcheck.h"
#include "losses/cosine_head.h"
#include "losses/cross_entropy.h"
#include "losses/margin.h"
#include "test_losses_util.h"

using namespace ag;
constexpr double kPi = std::numbers::pi;

namespace {

// logits [N, C] from (cosines [N, C], features [N, D], labels [N]).
using MarginFn = std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)>;

struct Case {
  std::string name;
  MarginFn fn;
};

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (double s : {1.0, 16.0})
    cases.push_back({"normface s=" + std::to_string(s),
                     [=](const Tensor& c, const Tensor&, const Tensor&) { return normface_logits(c, s); }});
  for (auto [s, m] : {std::pair{1.0, 0.1}, {16.0, 0.35}, {64.0, 0.2}})
    cases.push_back(
        {"cosface s=" + std::to_string(s) + " m=" + std::to_string(m),
         [=](const Tensor& c, const Tensor&, const Tensor& y) { return cosface_logits(c, y, s, m); }});
  for (auto [s, m] : {std::pair{1.0, 0.1}, {16.0, 0.5}, {64.0, 0.3}})
    for (bool easy : {false, true})
      cases.push_back({"arcface s=" + std::to_string(s) + " m=" + std::to_string(m) + (easy ? " easy" : ""),
                       [=](const Tensor& c, const Tensor&, const Tensor& y) {
                         return arcface_logits(c, y, s, m, easy);
                       }});
  struct Combined {
    double s, m1, m2, m3;
  };
  for (Combined p : {Combined{8, 1, 0.3, 0.2}, {16, 1.5, 0.2, 0.1}, {4, 0.9, 0.4, 0.15}})
    cases.push_back(
        {"combined m1=" + std::to_string(p.m1), [=](const Tensor& c, const Tensor&, const Tensor& y) {
           return combined_margin_logits(c, y, p.s, p.m1, p.m2, p.m3);
         }});
  for (int64_t m : {1, 2, 3, 4})
    for (double lambda : {0.0, 5.0}) {
      const std::string tag = " m=" + std::to_string(m) + " lambda=" + std::to_string(lambda);
      cases.push_back({"sphereface normalised" + tag, [=](const Tensor& c, const Tensor&, const Tensor& y) {
                         return sphereface_logits(c, y, m, lambda, 8.0);
                       }});
      cases.push_back({"sphereface original" + tag, [=](const Tensor& c, const Tensor& x, const Tensor& y) {
                         return sphereface_logits(c, y, m, lambda, feature_norm(x));
                       }});
    }
  return cases;
}

// Target angles, each kept >= 0.04 away from every branch point of the cases above.
const std::vector<std::pair<std::string, std::vector<double>>> kAngles = {
    {"near 0", {0.05, 0.1, 0.08}},
    {"near pi/2", {kPi / 2 - 0.05, kPi / 2 + 0.04, kPi / 2 + 0.1}},
    {"near pi (ArcFace fallback)", {kPi - 0.05, kPi - 0.15, 3.0}},
};

}  // namespace

TEST_CASE("margin losses: gradcheck w.r.t. features and W near theta = 0, pi/2 and pi") {
  const int64_t c = 4, d = 3;
  std::vector<int64_t> label_values = {2, 0, 3};
  Tensor labels = Tensor::from_labels(label_values);
  for (const Case& test : all_cases()) {
    for (const auto& [where, thetas] : kAngles) {
      CAPTURE(test.name);
      CAPTURE(where);
      manual_seed(21);
      auto head = std::make_shared<CosineHead>(d, c);
      head->to(DType::f64);
      Tensor w = head->weight();
      Generator gen(5);
      Tensor x =
          Tensor::from_vector(ag_test::features_at_angles(w, label_values, thetas, gen), {3, d}, DType::f64)
              .set_requires_grad(true);
      CHECK_GRADCHECK([&] { return test.fn(head->forward(x), x, labels); }, {x, w});
      CHECK_GRADCHECK([&] { return cross_entropy(test.fn(head->forward(x), x, labels), labels); }, {x, w});
    }
  }
}

TEST_CASE("margin losses: float32 agrees with float64 at every angle region") {
  const int64_t c = 4, d = 3;
  std::vector<int64_t> label_values = {2, 0, 3};
  Tensor labels = Tensor::from_labels(label_values);
  for (const Case& test : all_cases()) {
    for (const auto& [where, thetas] : kAngles) {
      CAPTURE(test.name);
      CAPTURE(where);
      manual_seed(22);
      CosineHead head(d, c);
      Generator gen(6);
      Tensor x = Tensor::from_vector(ag_test::features_at_angles(head.weight(), label_values, thetas, gen),
                                     {3, d}, DType::f32);
      std::vector<double> f32 = test.fn(head.forward(x), x, labels).to_vector();
      head.to(DType::f64);
      Tensor x64 = x.to(DType::f64);
      std::vector<double> f64 = test.fn(head.forward(x64), x64, labels).to_vector();
      // Relative to the scale of the logits (s up to 64).
      double scale = 1;
      for (double v : f64) scale = std::max(scale, std::abs(v));
      CHECK(ag_test::max_abs_diff(f32, f64) < 2e-4 * scale);
    }
  }
}
