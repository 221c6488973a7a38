// Training metrics: top-k, confusion matrix, per-class accuracy and mAP on a case worked
// out by hand, including tied scores.
#include <doctest/doctest.h>

#include <cmath>

#include "apps/lib/metrics.h"

using namespace ag;
using namespace ag::train;

namespace {
// Six samples, three classes (rows: scores for classes 0, 1, 2).
//   s0 [0.7 0.2 0.1] y=0 -> predicted 0
//   s1 [0.3 0.4 0.3] y=0 -> predicted 1
//   s2 [0.1 0.8 0.1] y=1 -> predicted 1
//   s3 [0.5 0.2 0.3] y=1 -> predicted 0; its label ranks third (0.5 and 0.3 above 0.2)
//   s4 [0.2 0.2 0.6] y=2 -> predicted 2
//   s5 [0.4 0.1 0.5] y=2 -> predicted 2
ClassificationEvaluator hand_case() {
  ClassificationEvaluator ev(3);
  ev.add(Tensor::from_vector({0.7, 0.2, 0.1, 0.3, 0.4, 0.3, 0.1, 0.8, 0.1}, {3, 3}),
         Tensor::from_labels({0, 0, 1}));
  ev.add(Tensor::from_vector({0.5, 0.2, 0.3, 0.2, 0.2, 0.6, 0.4, 0.1, 0.5}, {3, 3}, DType::f64),
         Tensor::from_labels({1, 2, 2}));
  return ev;
}
}  // namespace

TEST_CASE("metrics: top-k, confusion and per-class accuracy by hand") {
  auto ev = hand_case();
  CHECK(ev.count() == 6);
  CHECK(ev.topk(1) == doctest::Approx(4.0 / 6));  // s0, s2, s4, s5
  CHECK(ev.topk(2) == doctest::Approx(5.0 / 6));  // all but s3
  CHECK(ev.topk(3) == 1.0);
  CHECK(ev.topk(5) == 1.0);
  const std::vector<std::vector<int64_t>> expected = {{1, 1, 0}, {1, 1, 0}, {0, 0, 2}};
  CHECK(ev.confusion() == expected);
  const auto acc = ev.per_class_accuracy();
  CHECK(acc[0] == 0.5);
  CHECK(acc[1] == 0.5);
  CHECK(acc[2] == 1.0);
}

TEST_CASE("metrics: mAP by hand, with a tie") {
  auto ev = hand_case();
  // Class 0 scores, ranked: 0.7 (s0, +) 0.5 0.4 0.3 (s1, +) 0.2 0.1 -> AP = (1/1 + 2/4) / 2 = 0.75.
  // Class 1: 0.8 (s2, +) 0.4, then a tie at 0.2 of s0, s3 (+), s4 that ends at rank 5
  //          -> AP = (1/1 + 2/5) / 2 = 0.7 (an optimistic order would give 2/3 instead of 2/5).
  // Class 2: 0.6 (s4, +) 0.5 (s5, +) first -> AP = 1.
  const auto ap = ev.per_class_ap();
  CHECK(ap[0] == doctest::Approx(0.75));
  CHECK(ap[1] == doctest::Approx(0.7));
  CHECK(ap[2] == doctest::Approx(1.0));
  CHECK(ev.mean_average_precision() == doctest::Approx((0.75 + 0.7 + 1.0) / 3));
  const EvalResult r = ev.result();
  CHECK(r.map == doctest::Approx(0.8166666667));
  CHECK(r.top1 == doctest::Approx(4.0 / 6));
  CHECK(r.top5 == 1.0);  // min(5, C) = 3 classes
}

TEST_CASE("metrics: average precision conventions") {
  CHECK(average_precision({0.9, 0.8, 0.7}, {true, false, true}) == doctest::Approx((1.0 + 2.0 / 3) / 2));
  // Tie block {0.5 x3} holds two positives and ends at rank 4 with 2 hits: each gets 2/4.
  CHECK(average_precision({1.0, 0.5, 0.5, 0.5, 0.0}, {false, true, false, true, false}) ==
        doctest::Approx(0.5));
  // The result does not depend on the order of the tied samples.
  CHECK(average_precision({0.5, 0.5, 1.0, 0.5, 0.0}, {true, true, false, false, false}) ==
        doctest::Approx(0.5));
  CHECK(std::isnan(average_precision({0.3, 0.2}, {false, false})));
  CHECK(average_precision({0.1, 0.9}, {true, true}) == 1.0);
}

TEST_CASE("metrics: classes without samples and bad input") {
  ClassificationEvaluator ev(4);
  ev.add(Tensor::from_vector({1, 0, 0, 0, 0, 1, 0, 0}, {2, 4}), Tensor::from_labels({0, 1}));
  const auto acc = ev.per_class_accuracy();
  CHECK(std::isnan(acc[2]));
  CHECK(ev.mean_average_precision() == 1.0);  // classes 2 and 3 have no samples: left out
  CHECK_THROWS_WITH_AS(ev.add(Tensor::zeros({2, 3}), Tensor::from_labels({0, 1})),
                       doctest::Contains("[N, 4]"), Error);
  CHECK_THROWS_WITH_AS(ev.add(Tensor::zeros({1, 4}), Tensor::from_labels({4})), doctest::Contains("label 4"),
                       Error);
  CHECK_THROWS_WITH_AS(ev.add(Tensor::zeros({2, 4}), Tensor::from_labels({0})), doctest::Contains("labels"),
                       Error);
  ev.clear();
  CHECK(ev.count() == 0);
}
