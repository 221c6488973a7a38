// softmax, log_softmax and L2 normalisation: values, stability, gradients.
#include <cmath>

#include "core/ops.h"
#include "gradcheck.h"

using namespace ag;
using ag::testing::random_leaf;

namespace {
Tensor vec(std::vector<double> v, Shape shape) { return Tensor::from_vector(v, shape, DType::f64); }
}  // namespace

TEST_CASE("softmax and log_softmax by hand") {
  Tensor x = vec({0, std::log(3.0)}, {1, 2});  // exp: 1, 3 -> 1/4, 3/4
  std::vector<double> p = softmax(x).to_vector();
  CHECK(p[0] == doctest::Approx(0.25));
  CHECK(p[1] == doctest::Approx(0.75));
  std::vector<double> lp = log_softmax(x).to_vector();
  CHECK(lp[0] == doctest::Approx(std::log(0.25)));
  CHECK(lp[1] == doctest::Approx(std::log(0.75)));
}

TEST_CASE("softmax along a middle dim sums to one") {
  Tensor x = Tensor::uniform({2, 5, 3}, -3, 3, DType::f64);
  std::vector<double> s = sum(softmax(x, 1), 1).to_vector();
  for (double v : s) CHECK(v == doctest::Approx(1.0));
}

TEST_CASE("softmax is stable for huge logits (float32)") {
  Tensor x = Tensor::from_vector({1000, 0, -1000}, {1, 3});
  std::vector<double> p = softmax(x).to_vector();
  CHECK(p[0] == doctest::Approx(1.0));
  CHECK(p[1] == 0.0);
  std::vector<double> lp = log_softmax(x).to_vector();
  CHECK(lp[0] == doctest::Approx(0.0));
  CHECK(lp[2] == doctest::Approx(-2000.0));
}

TEST_CASE("l2_normalize by hand, and the zero vector stays finite") {
  std::vector<double> y = l2_normalize(vec({3, 4, 0, 0}, {2, 2})).to_vector();
  CHECK(y[0] == doctest::Approx(0.6));
  CHECK(y[1] == doctest::Approx(0.8));
  CHECK(y[2] == 0.0);
  CHECK(y[3] == 0.0);
  std::vector<double> cols = l2_normalize(vec({3, 0, 4, 1}, {2, 2}), 0).to_vector();  // columns
  CHECK(cols[0] == doctest::Approx(0.6));
  CHECK(cols[2] == doctest::Approx(0.8));
  CHECK(cols[1] == doctest::Approx(0.0));
  CHECK(cols[3] == doctest::Approx(1.0));
  CHECK_THROWS_AS(l2_normalize(vec({1}, {1}), 0, 0.0), Error);
}

TEST_CASE("l2_normalize gradient at a zero vector is finite") {
  Tensor x = Tensor::zeros({1, 3}, DType::f64).set_requires_grad(true);
  sum(l2_normalize(x, 1, 1e-6)).backward();
  for (double g : x.grad().to_vector()) CHECK(std::isfinite(g));
}

TEST_CASE("l2_normalize float32: a clamped, non-zero row gets the clamped gradient") {
  // |x| = 5e-4 < eps = 1e-3, so y = x / eps is linear in x and dL/dx = g / eps. The float32
  // norm holds float(eps), which is not <= the double eps: the backward must still see the
  // clamp.
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = Tensor::from_vector({3e-4, 4e-4}, {1, 2}, dt).set_requires_grad(true);
    Tensor y = l2_normalize(x, 1, 1e-3);
    CHECK(y.to_vector()[0] == doctest::Approx(0.3).epsilon(1e-6));
    sum(y * Tensor::from_vector({1.0, 2.0}, {1, 2}, dt)).backward();
    std::vector<double> g = x.grad().to_vector();
    CHECK(g[0] == doctest::Approx(1000.0).epsilon(1e-5));
    CHECK(g[1] == doctest::Approx(2000.0).epsilon(1e-5));
  }
}

TEST_CASE("gradcheck: softmax family") {
  Tensor x = random_leaf({3, 5}, -2, 2);
  CHECK_GRADCHECK([&] { return softmax(x); }, {x});
  CHECK_GRADCHECK([&] { return log_softmax(x); }, {x});
  CHECK_GRADCHECK([&] { return softmax(x, 0); }, {x});
  Tensor x3 = random_leaf({2, 4, 3}, -2, 2);
  CHECK_GRADCHECK([&] { return log_softmax(x3, 1); }, {x3});
  CHECK_GRADCHECK([&] { return softmax(x.t(), 1); }, {x});  // non-contiguous
}

TEST_CASE("gradcheck: l2_normalize") {
  Tensor x = random_leaf({4, 3});
  CHECK_GRADCHECK([&] { return l2_normalize(x, 1); }, {x});
  CHECK_GRADCHECK([&] { return l2_normalize(x, 0); }, {x});
  Tensor tiny = Tensor::from_vector({1e-9, -2e-9}, {1, 2}, DType::f64).set_requires_grad(true);
  // The norm is below eps = 1e-6: the clamped, linear branch (a small step stays inside it).
  CHECK_GRADCHECK([&] { return l2_normalize(tiny, 1, 1e-6); }, {tiny}, {1e-12, 1e-5, 1e-3, true});
}
