// measure_arcs (embed's Figure 1 numbers): the mean angle of 2-D features to their own class
// weight and the smallest gap between neighbouring classes' arcs, on hand-built features.
#include <doctest/doctest.h>

#include <cmath>
#include <numbers>

#include "apps/lib/embedding_stats.h"

using namespace ag;
using namespace ag::train;

namespace {
// Four classes, weights at 0, 90, 180 and 270 degrees (given as vectors of different
// lengths: only their directions count); class k's features at 90 k + offsets degrees.
EmbeddingPanel four_classes(const std::vector<double>& offsets_deg) {
  EmbeddingPanel p;
  p.class_names = {"a", "b", "c", "d"};
  p.weights = Tensor::from_vector({2, 0, 0, 1, -3, 0, 0, -0.5}, {4, 2});
  std::vector<double> f;
  std::vector<int64_t> y;
  for (int64_t k = 0; k < 4; ++k)
    for (double o : offsets_deg) {
      const double a = (90.0 * static_cast<double>(k) + o) * std::numbers::pi / 180;
      f.push_back(1.5 * std::cos(a));  // the norm does not matter either
      f.push_back(1.5 * std::sin(a));
      y.push_back(k);
    }
  p.features = Tensor::from_vector(f, {static_cast<int64_t>(y.size()), 2});
  p.labels = Tensor::from_labels(y);
  return p;
}
}  // namespace

TEST_CASE("measure_arcs: tight arcs around their weights leave the expected gaps") {
  const ArcStats s = measure_arcs(four_classes({-10, 0, 10}));
  CHECK(s.mean_angle_deg == doctest::Approx(20.0 / 3));
  CHECK(s.min_gap_deg == doctest::Approx(70));  // 90 apart, 10 used on each side
}

TEST_CASE("measure_arcs: the gap ignores the outer 2.5% of a class, the mean angle does not") {
  std::vector<double> offsets;
  for (int i = 0; i <= 40; ++i) offsets.push_back(-10 + 0.5 * i);  // 41 features in [-10, 10]
  offsets.push_back(60);  // and one outlier per class, deep in the next class's sector
  const ArcStats s = measure_arcs(four_classes(offsets));
  // Of 42 sorted offsets, the 2.5% quantile is the 2nd (-9.5), the 97.5% one the 41st (10,
  // not the outlier): 90 - 9.5 - 10.
  CHECK(s.min_gap_deg == doctest::Approx(70.5));
  double sum = 60;
  for (int i = 0; i <= 40; ++i) sum += std::abs(-10 + 0.5 * i);
  CHECK(s.mean_angle_deg == doctest::Approx(sum / 42));
}

TEST_CASE("measure_arcs: overlapping arcs give a negative gap, named by its classes") {
  EmbeddingPanel p = four_classes({-5, 0, 5});
  // One of class b's features moves from 85 to 0 degrees (90 from its weight), past the
  // end of a's arc at 5 degrees; with 3 features per class the quantiles are the extremes.
  std::vector<double> f = p.features.to_vector();
  f[2 * 3] = 1;
  f[2 * 3 + 1] = 0;
  p.features = Tensor::from_vector(f, {12, 2});
  const ArcStats s = measure_arcs(p);
  CHECK(s.min_gap_deg == doctest::Approx(-5));
  CHECK(s.min_gap_between == "a / b");
  CHECK(s.mean_angle_deg == doctest::Approx((4 * 10.0 - 5 + 90) / 12));
}

TEST_CASE("measure_arcs: bad input is an error naming what is wrong") {
  EmbeddingPanel p = four_classes({0});
  EmbeddingPanel bad_label = p;
  bad_label.labels = Tensor::from_labels({0, 1, 2, 4});
  CHECK_THROWS_WITH_AS(measure_arcs(bad_label), doctest::Contains("label 4 outside [0, 4)"), Error);
  EmbeddingPanel bad_weights = p;
  bad_weights.weights = Tensor::from_vector({1, 0, 0, 1, -1, 0}, {3, 2});
  CHECK_THROWS_WITH_AS(measure_arcs(bad_weights), doctest::Contains("weights must be [4, 2]"), Error);
  EmbeddingPanel zero_weight = p;
  zero_weight.weights = Tensor::from_vector({1, 0, 0, 0, -1, 0, 0, -1}, {4, 2});
  CHECK_THROWS_WITH_AS(measure_arcs(zero_weight), doctest::Contains("class b has a zero weight vector"),
                       Error);
  EmbeddingPanel one_class = p;
  one_class.class_names = {"a"};
  CHECK_THROWS_WITH_AS(measure_arcs(one_class), doctest::Contains("at least 2 classes"), Error);
}

TEST_CASE(
    "set_class_weights: fixed and spread put class k at 90 + 360 k / C degrees; only fixed stops training") {
  for (const char* mode : {"fixed", "spread"}) {
    CAPTURE(mode);
    Tensor w = Tensor::normal({3, 2}, 0, 1).set_requires_grad(true);
    set_class_weights(w, mode, false);
    const std::vector<double> v = w.to_vector();
    for (int k = 0; k < 3; ++k) {
      const double a = (90.0 + 120.0 * k) * std::numbers::pi / 180;
      CHECK(v[2 * k] == doctest::Approx(std::cos(a)).epsilon(1e-6));
      CHECK(v[2 * k + 1] == doctest::Approx(std::sin(a)).epsilon(1e-6));
    }
    CHECK(w.requires_grad() == (std::string(mode) == "spread"));
  }
  // Random keeps the initialisation; a resumed run keeps its saved weights, fixed or not.
  for (const auto& [mode, resumed] : {std::pair{"random", false}, {"fixed", true}, {"spread", true}}) {
    CAPTURE(mode);
    Tensor w = Tensor::normal({4, 2}, 0, 1).set_requires_grad(true);
    const std::vector<double> before = w.to_vector();
    set_class_weights(w, mode, resumed);
    CHECK(w.to_vector() == before);
    CHECK(w.requires_grad() == (std::string(mode) != "fixed"));
  }
  Tensor w = Tensor::normal({4, 2}, 0, 1).set_requires_grad(true);
  CHECK_THROWS_WITH_AS(set_class_weights(w, "even", false), doctest::Contains("mode 'even'"), Error);
  Tensor three_d = Tensor::normal({4, 3}, 0, 1).set_requires_grad(true);
  CHECK_THROWS_WITH_AS(set_class_weights(three_d, "fixed", false), doctest::Contains("expected [C, 2]"),
                       Error);
}
