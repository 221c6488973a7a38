// Angles of 2-D features to their class weights; see embedding_stats.h.
#include "apps/lib/embedding_stats.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "core/autograd.h"
#include "core/error.h"

namespace ag::train {
namespace {

constexpr double kDegrees = 180 / std::numbers::pi;

// angle in radians -> the same angle in (-pi, pi].
double wrap_angle(double a) {
  a = std::remainder(a, 2 * std::numbers::pi);
  return a <= -std::numbers::pi ? a + 2 * std::numbers::pi : a;
}

// The q-quantile of v (nearest rank); 0 for an empty v.
double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(std::lround(q * static_cast<double>(v.size() - 1)))];
}

}  // namespace

ArcStats measure_arcs(const EmbeddingPanel& p) {
  const auto classes = static_cast<int64_t>(p.class_names.size());
  AG_CHECK(classes >= 2, "measure_arcs: needs at least 2 classes, got " << classes);
  AG_CHECK(p.features.defined() && p.features.dim() == 2 && p.features.size(1) == 2,
           "measure_arcs: features must be [N, 2], got "
               << (p.features.defined() ? p.features.describe() : "undefined"));
  AG_CHECK(p.labels.defined() && p.labels.dtype() == DType::i64 && p.labels.dim() == 1 &&
               p.labels.size(0) == p.features.size(0),
           "measure_arcs: labels must be int64 [" << p.features.size(0) << "]");
  AG_CHECK(
      p.weights.defined() && p.weights.dim() == 2 && p.weights.size(0) == classes && p.weights.size(1) == 2,
      "measure_arcs: weights must be [" << classes << ", 2] (one row per class name)");
  const auto f = p.features.to_vector();  // [N, 2]
  const auto w = p.weights.to_vector();   // [C, 2]
  const auto y = p.labels.to_labels();    // [N]

  std::vector<double> weight_angle(static_cast<size_t>(classes));
  for (int64_t k = 0; k < classes; ++k) {
    AG_CHECK(w[2 * k] != 0 || w[2 * k + 1] != 0,
             "measure_arcs: class " << p.class_names[k] << " has a zero weight vector");
    weight_angle[k] = std::atan2(w[2 * k + 1], w[2 * k]);
  }
  std::vector<std::vector<double>> to_own(static_cast<size_t>(classes));  // signed, radians
  ArcStats stats;
  size_t counted = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    AG_CHECK(y[i] >= 0 && y[i] < classes,
             "measure_arcs: label " << y[i] << " outside [0, " << classes << ")");
    if (f[2 * i] == 0 && f[2 * i + 1] == 0) continue;  // no direction
    const double a = wrap_angle(std::atan2(f[2 * i + 1], f[2 * i]) - weight_angle[y[i]]);
    to_own[y[i]].push_back(a);
    stats.mean_angle_deg += std::abs(a);
    ++counted;
  }
  stats.mean_angle_deg *= kDegrees / static_cast<double>(std::max<size_t>(1, counted));

  std::vector<int64_t> order(static_cast<size_t>(classes));  // by weight angle, counter-clockwise
  for (int64_t k = 0; k < classes; ++k) order[k] = k;
  std::sort(order.begin(), order.end(),
            [&](int64_t a, int64_t b) { return weight_angle[a] < weight_angle[b]; });
  stats.min_gap_deg = 360;
  for (int64_t i = 0; i < classes; ++i) {
    const int64_t a = order[i], b = order[(i + 1) % classes];
    double apart = weight_angle[b] - weight_angle[a];  // b follows a counter-clockwise: [0, 2 pi)
    if (apart < 0) apart += 2 * std::numbers::pi;
    const double gap = (apart + quantile(to_own[b], 0.025) - quantile(to_own[a], 0.975)) * kDegrees;
    if (gap < stats.min_gap_deg) {
      stats.min_gap_deg = gap;
      stats.min_gap_between = p.class_names[a] + " / " + p.class_names[b];
    }
  }
  return stats;
}

void set_class_weights(Tensor& weight, const std::string& mode, bool resumed) {
  AG_CHECK(mode == "fixed" || mode == "spread" || mode == "random",
           "class weights: mode '" << mode << "' is not fixed, spread or random");
  AG_CHECK(weight.dim() == 2 && weight.size(1) == 2,
           "class weights: expected [C, 2], got " << weight.describe());
  if (mode == "random") return;
  if (!resumed) {
    // With a random 2-D start two weights often begin a few degrees apart; the margin then
    // pushes one class's features away from both, and that class can end on the wrong side
    // of the circle, or everything collapses onto one direction (docs/results.md, Figure 1).
    NoGradGuard no_grad;
    const int64_t classes = weight.size(0);
    std::vector<double> w;
    for (int64_t k = 0; k < classes; ++k) {
      const double a =
          std::numbers::pi / 2 + 2 * std::numbers::pi * static_cast<double>(k) / static_cast<double>(classes);
      w.push_back(std::cos(a));
      w.push_back(std::sin(a));
    }
    weight.copy_(Tensor::from_vector(w, {classes, 2}));
  }
  if (mode == "fixed") weight.set_requires_grad(false);
}

}  // namespace ag::train
