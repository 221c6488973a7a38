// Pooling: max, average (with and without counting padding) and global average, by hand
// and by float64 gradient checks.
#include "core/random.h"
#include "gradcheck.h"
#include "core/ops.h"

using namespace ag;
using ag::testing::random_leaf;

namespace {
// A leaf whose values are a shuffled 0, 1, ..., n-1 scaled: distinct, so no max-pool ties
// (a tie is a kink where the numerical gradient is meaningless).
Tensor distinct_leaf(const Shape& shape) {
  const int64_t n = shape_numel(shape);
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<double>(i) / n;
  Generator& gen = global_generator();
  for (int64_t i = n - 1; i > 0; --i) std::swap(v[i], v[gen.below(i + 1)]);
  Tensor t = Tensor::from_vector(v, shape, DType::f64);
  t.set_requires_grad(true);
  return t;
}
}  // namespace

TEST_CASE("max_pool2d by hand, with the gradient routed to the maximum") {
  Tensor x = Tensor::from_vector({1, 5, 2, 0, 3, 4, 9, 8, 7, 6, 1, 2, 0, 3, 4, 5}, {1, 1, 4, 4}, DType::f64);
  x.set_requires_grad(true);
  Tensor y = max_pool2d(x, 2);
  CHECK(y.to_vector() == std::vector<double>{5, 9, 7, 5});
  y.backward(Tensor::from_vector({1, 2, 3, 4}, {1, 1, 2, 2}, DType::f64));
  CHECK(x.grad().to_vector() == std::vector<double>{0, 1, 0, 0, 0, 0, 2, 0, 3, 0, 0, 0, 0, 0, 0, 4});
  // 3x3 window, stride 2, padding 1 on the same input: windows clipped at the border
  CHECK(max_pool2d(x.detach(), 3, 2, 1).to_vector() == std::vector<double>{5, 9, 7, 9});
  // ties go to the first maximum
  Tensor t = Tensor::from_vector({2, 2, 2, 2}, {1, 1, 2, 2}, DType::f64);
  t.set_requires_grad(true);
  max_pool2d(t, 2).backward(Tensor::ones({1, 1, 1, 1}, DType::f64));
  CHECK(t.grad().to_vector() == std::vector<double>{1, 0, 0, 0});
}

TEST_CASE("avg_pool2d by hand: padding counted or not") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  CHECK(avg_pool2d(x, 2, 1).to_vector() == std::vector<double>{3, 4, 6, 7});
  // 2x2 stride 2 padding 1: windows {1}, {2,3}, {4,7}, {5,6,8,9}
  CHECK(avg_pool2d(x, 2, 2, 1, true).to_vector() == std::vector<double>{0.25, 1.25, 2.75, 7});
  CHECK(avg_pool2d(x, 2, 2, 1, false).to_vector() == std::vector<double>{1, 2.5, 5.5, 7});
}

TEST_CASE("global_avg_pool2d by hand") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 10, 20, 30, 40}, {1, 2, 2, 2});
  Tensor y = global_avg_pool2d(x);
  CHECK(y.shape() == Shape{1, 2});
  CHECK(y.to_vector() == std::vector<double>{2.5, 25});
}

TEST_CASE("pooling gradient checks") {
  manual_seed(21);
  Tensor a = distinct_leaf({2, 3, 5, 5});
  CHECK_GRADCHECK([&] { return max_pool2d(a, 2); }, {a});
  CHECK_GRADCHECK([&] { return max_pool2d(a, 3, 2, 1); }, {a});  // overlapping windows
  CHECK_GRADCHECK([&] { return max_pool2d(a, 3, 1, 0); }, {a});
  Tensor b = random_leaf({2, 2, 5, 4});
  CHECK_GRADCHECK([&] { return avg_pool2d(b, 2); }, {b});
  CHECK_GRADCHECK([&] { return avg_pool2d(b, 3, 2, 1, true); }, {b});
  CHECK_GRADCHECK([&] { return avg_pool2d(b, 3, 2, 1, false); }, {b});
  Tensor c = random_leaf({1, 3, 3, 5});
  CHECK_GRADCHECK([&] { return avg_pool2d(c, 3, 1, 1); }, {c});  // batch 1, odd sizes
  CHECK_GRADCHECK([&] { return global_avg_pool2d(c); }, {c});
}

TEST_CASE("pooling rejects bad arguments") {
  Tensor x = Tensor::zeros({1, 1, 4, 4});
  CHECK_THROWS_WITH_AS(max_pool2d(x, 2, 2, 2), doctest::Contains("padding must lie in [0, kernel / 2]"),
                       Error);
  CHECK_THROWS_WITH_AS(max_pool2d(x, 5), doctest::Contains("smaller than the window"), Error);
  CHECK_THROWS_WITH_AS(avg_pool2d(Tensor::zeros({4, 4}), 2), doctest::Contains("[N, C, H, W]"), Error);
  CHECK_THROWS_WITH_AS(global_avg_pool2d(Tensor::zeros({4, 4})), doctest::Contains("[N, C, H, W]"), Error);
}
