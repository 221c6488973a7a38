// The fused softmax cross-entropy: hand-computed values, label smoothing, reductions,
// stability at large logits, float32 vs float64, gradient checks and bad input.
#include <cmath>
#include <string>

#include "core/ops.h"
#include "gradcheck.h"
#include "losses/cross_entropy.h"
#include "test_losses_util.h"

using namespace ag;
using ag::testing::random_leaf;
using ag_test::max_abs_diff;

namespace {
// -log softmax(row)[label], computed directly (the "hand" reference).
double reference_ce(const std::vector<double>& row, int64_t label, double smoothing = 0.0) {
  double total = 0, mean_x = 0;
  for (double v : row) total += std::exp(v), mean_x += v / static_cast<double>(row.size());
  const double lse = std::log(total);
  return lse - (1 - smoothing) * row[label] - smoothing * mean_x;
}
}  // namespace

TEST_CASE("cross_entropy: values worked out by hand") {
  Tensor logits = Tensor::from_vector({1, 2, 3, 0, 0, 0}, {2, 3}, DType::f64);
  Tensor labels = Tensor::from_labels({2, 0});
  // Row 0: log(e + e^2 + e^3) - 3 = 0.40760596...; row 1: log 3 = 1.0986122887.
  std::vector<double> rows = cross_entropy(logits, labels, Reduction::none).to_vector();
  CHECK(rows[0] == doctest::Approx(0.4076059644443804).epsilon(1e-12));
  CHECK(rows[1] == doctest::Approx(std::log(3.0)).epsilon(1e-12));
  CHECK(cross_entropy(logits, labels, Reduction::sum).item() ==
        doctest::Approx(rows[0] + rows[1]).epsilon(1e-12));
  CHECK(cross_entropy(logits, labels).item() == doctest::Approx((rows[0] + rows[1]) / 2).epsilon(1e-12));
  CHECK(cross_entropy(logits, labels).dim() == 0);
  CHECK(cross_entropy(logits, labels, parse_reduction("none")).shape() == Shape{2});
}

TEST_CASE("cross_entropy: label smoothing matches the smoothed target distribution") {
  Tensor logits = Tensor::from_vector({0.5, -1.0, 2.0, 0.25}, {1, 4}, DType::f64);
  Tensor labels = Tensor::from_labels({1});
  for (double eps : {0.0, 0.1, 0.3}) {
    // -sum_j q_j log p_j with q = (1 - eps) onehot + eps / 4, written out.
    std::vector<double> x = logits.to_vector();
    double total = 0;
    for (double v : x) total += std::exp(v);
    double expected = 0;
    for (int j = 0; j < 4; ++j) expected -= ((j == 1 ? 1 - eps : 0) + eps / 4) * (x[j] - std::log(total));
    CHECK(cross_entropy(logits, labels, Reduction::mean, eps).item() ==
          doctest::Approx(expected).epsilon(1e-12));
  }
}

TEST_CASE("cross_entropy: the gradient is (softmax - target) / N") {
  Tensor logits = Tensor::from_vector({1, 2, 3, 0, 0, 0}, {2, 3}, DType::f64).set_requires_grad(true);
  cross_entropy(logits, Tensor::from_labels({2, 0})).backward();
  const double z = std::exp(1) + std::exp(2) + std::exp(3);
  std::vector<double> expected = {std::exp(1) / z / 2,
                                  std::exp(2) / z / 2,
                                  (std::exp(3) / z - 1) / 2,
                                  (1.0 / 3 - 1) / 2,
                                  1.0 / 6,
                                  1.0 / 6};
  CHECK(max_abs_diff(logits.grad().to_vector(), expected) < 1e-14);
}

TEST_CASE("cross_entropy: large logits (s = 64 and beyond) neither overflow nor lose the loss") {
  for (DType dtype : {DType::f32, DType::f64}) {
    Tensor logits = Tensor::from_vector({1000, 0, -1000, 64, -64, 0}, {2, 3}, dtype).set_requires_grad(true);
    Tensor rows = cross_entropy(logits, Tensor::from_labels({1, 1}), Reduction::none);
    std::vector<double> v = rows.to_vector();
    CHECK(v[0] == doctest::Approx(1000.0).epsilon(1e-6));
    CHECK(v[1] == doctest::Approx(128.0).epsilon(1e-6));  // log(e^64 + e^-64 + 1) + 64 = 128 + O(e^-64)
    sum(rows).backward();
    for (double g : logits.grad().to_vector()) CHECK(std::isfinite(g));
  }
}

TEST_CASE("cross_entropy: float32 agrees with float64 and with log_softmax + gather") {
  manual_seed(3);
  Tensor x64 = Tensor::uniform({5, 7}, -8, 8, DType::f64);
  Tensor labels = Tensor::from_labels({0, 6, 3, 3, 1});
  Tensor composed = neg(gather(log_softmax(x64, 1), 1, labels.reshape({5, 1}))).reshape({5});
  std::vector<double> fused = cross_entropy(x64, labels, Reduction::none).to_vector();
  CHECK(max_abs_diff(fused, composed.to_vector()) < 1e-12);
  std::vector<double> f32 = cross_entropy(x64.to(DType::f32), labels, Reduction::none).to_vector();
  CHECK(max_abs_diff(fused, f32) < 1e-5);
  const std::vector<double> all = x64.to_vector();
  for (int64_t i = 0; i < 5; ++i) {
    std::vector<double> row(all.begin() + i * 7, all.begin() + i * 7 + 7);
    CHECK(fused[i] == doctest::Approx(reference_ce(row, labels.to_labels()[i])).epsilon(1e-12));
  }
}

TEST_CASE("softmax_cross_entropy (core op) gives the per-row losses the reductions compose") {
  manual_seed(5);
  Tensor labels = Tensor::from_labels({1, 0, 2});
  Tensor x = random_leaf({3, 4}, -2, 2);
  Tensor rows = softmax_cross_entropy(x, labels, 0.1);
  REQUIRE(rows.shape() == Shape{3});
  CHECK(max_abs_diff(rows.to_vector(), cross_entropy(x, labels, Reduction::none, 0.1).to_vector()) == 0);
  CHECK(mean(rows).item() == cross_entropy(x, labels, Reduction::mean, 0.1).item());
  CHECK_GRADCHECK([&] { return softmax_cross_entropy(x, labels, 0.1); }, {x});
}

TEST_CASE("cross_entropy: gradcheck for every reduction and smoothing") {
  manual_seed(4);
  Tensor labels = Tensor::from_labels({2, 0, 4, 2});
  for (Reduction r : {Reduction::none, Reduction::mean, Reduction::sum})
    for (double eps : {0.0, 0.2}) {
      Tensor x = random_leaf({4, 5}, -3, 3);
      CHECK_GRADCHECK([&] { return cross_entropy(x, labels, r, eps); }, {x});
    }
  // Large logits: the gradient stays exact where softmax saturates.
  Tensor big = random_leaf({4, 5}, -60, 60);
  CHECK_GRADCHECK([&] { return cross_entropy(big, labels); }, {big});
}

TEST_CASE("cross_entropy: a non-contiguous logits view is handled") {
  manual_seed(5);
  Tensor base = random_leaf({5, 4}, -2, 2);  // logits = base^T: [4, 5], a strided view
  Tensor labels = Tensor::from_labels({1, 4, 0, 2});
  CHECK_GRADCHECK([&] { return cross_entropy(base.t(), labels, Reduction::sum, 0.1); }, {base});
}

TEST_CASE("cross_entropy: bad input gives a clear error") {
  Tensor logits = Tensor::zeros({2, 3}, DType::f32);
  auto message = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  std::string m = message([&] { cross_entropy(logits, Tensor::from_labels({0, 3})); });
  CHECK(m.find("label 3") != std::string::npos);
  CHECK(m.find("3 classes") != std::string::npos);
  m = message([&] { cross_entropy(logits, Tensor::from_labels({-1, 0})); });
  CHECK(m.find("label -1") != std::string::npos);
  m = message([&] { cross_entropy(logits, Tensor::from_labels({0, 1, 2})); });
  CHECK(m.find("int64 [2]") != std::string::npos);
  CHECK_THROWS_AS(cross_entropy(logits, Tensor::zeros({2}, DType::f32)), Error);
  CHECK_THROWS_AS(cross_entropy(Tensor::zeros({6}, DType::f32), Tensor::from_labels({0})), Error);
  CHECK_THROWS_AS(cross_entropy(logits, Tensor::from_labels({0, 1}), Reduction::mean, 1.0), Error);
  CHECK_THROWS_AS(parse_reduction("avg"), Error);
  m = message([&] { check_labels(Tensor::from_labels({0, 9, 1}), 3, 5, "test"); });
  CHECK(m.find("label 9 (row 1)") != std::string::npos);
  CHECK(m.find("5 classes") != std::string::npos);
  m = message([&] { check_labels(Tensor::from_labels({0, 1}), 3, 5, "test"); });
  CHECK(m.find("2 labels for 3 rows") != std::string::npos);
}
