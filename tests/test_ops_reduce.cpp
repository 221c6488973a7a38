// Reductions: sum, mean, max over a dim and over all elements; argmax.
#include "core/ops.h"
#include "core/parallel.h"
#include "gradcheck.h"

using namespace ag;
using ag::testing::random_leaf;

namespace {
Tensor vec(std::vector<double> v, Shape shape) { return Tensor::from_vector(v, shape, DType::f64); }
}  // namespace

TEST_CASE("sum, mean, max over a dim: values and shapes") {
  Tensor x = vec({1, 5, 3, 4, 2, 6}, {2, 3});
  CHECK(sum(x, 0).to_vector() == std::vector<double>{5, 7, 9});
  CHECK(sum(x, 1).to_vector() == std::vector<double>{9, 12});
  CHECK(sum(x, -1, true).shape() == Shape{2, 1});
  CHECK(mean(x, 1).to_vector() == std::vector<double>{3, 4});
  CHECK(max(x, 0).to_vector() == std::vector<double>{4, 5, 6});
  CHECK(max(x, 1).to_vector() == std::vector<double>{5, 6});
  CHECK(argmax(x, 1).to_labels() == std::vector<int64_t>{1, 2});
  CHECK(argmax(x, 0, true).shape() == Shape{1, 3});
  CHECK_THROWS_WITH_AS(sum(x, 2), doctest::Contains("dimension 2 is out of range"), Error);
}

TEST_CASE("reductions over all elements") {
  Tensor x = vec({1, -5, 3, 4}, {2, 2});
  CHECK(sum(x).item() == 3);
  CHECK(sum(x).dim() == 0);
  CHECK(mean(x).item() == 0.75);
  CHECK(max(x).item() == 4);
}

TEST_CASE("middle-dim reduction of a 3-d tensor") {
  Tensor x = Tensor::arange(24, DType::f64).reshape({2, 3, 4});
  std::vector<double> s = sum(x, 1).to_vector();  // s[o,i] = sum_j x[o,j,i]
  CHECK(s[0] == 0 + 4 + 8);
  CHECK(s[7] == 15 + 19 + 23);
  CHECK(max(x, 1).to_vector()[5] == 21);
}

TEST_CASE("argmax picks the first of tied maxima") {
  CHECK(argmax(vec({2, 7, 7, 1}, {4}), 0).to_labels() == std::vector<int64_t>{1});
}

TEST_CASE("long float32 sums stay accurate") {
  Tensor x = Tensor::full({1000000}, 0.1);
  CHECK(sum(x).item() == doctest::Approx(100000.0).epsilon(1e-6));
}

TEST_CASE("a sum over all elements is the same bits for any thread count") {
  Tensor x = Tensor::uniform({300001}, -1, 1);  // float32, many blocks, a ragged last one
  const int saved = num_threads();
  set_num_threads(1);
  const double one = sum(x).item();
  for (int threads : {2, 3, 4}) {
    set_num_threads(threads);
    CHECK(sum(x).item() == one);
  }
  set_num_threads(saved);
}

TEST_CASE("strided float32 sums accumulate in double") {
  // 1e5 rows of 0.1 summed down a middle dim: float accumulation would drift by ~1e-3.
  Tensor x = Tensor::full({1, 100000, 2}, 0.1);
  Tensor s = sum(x, 1);
  for (double v : s.to_vector()) CHECK(v == doctest::Approx(10000.0).epsilon(1e-6));
  Tensor t = sum_to_shape(Tensor::full({100000, 3}, 0.1), {3});
  for (double v : t.to_vector()) CHECK(v == doctest::Approx(10000.0).epsilon(1e-6));
}

TEST_CASE("gradcheck: reductions") {
  Tensor x = random_leaf({3, 4, 5});
  CHECK_GRADCHECK([&] { return sum(x, 1); }, {x});
  CHECK_GRADCHECK([&] { return sum(x, -1, true); }, {x});
  CHECK_GRADCHECK([&] { return mean(x, 0); }, {x});
  CHECK_GRADCHECK([&] { return sum(x); }, {x});
  CHECK_GRADCHECK([&] { return mean(x); }, {x});
  CHECK_GRADCHECK([&] { return max(x, 2); }, {x});  // random values: no ties
  CHECK_GRADCHECK([&] { return max(x); }, {x});
  CHECK_GRADCHECK([&] { return sum(x.transpose(0, 2), 1); }, {x});  // non-contiguous
  Tensor one = random_leaf({1, 1});
  CHECK_GRADCHECK([&] { return mean(one, 0); }, {one});
}
