// matmul and linear through BLAS: values, transposed views without copies, errors, gradients.
#include "core/ops.h"
#include "gradcheck.h"

using namespace ag;
using ag::testing::random_leaf;

namespace {
Tensor vec(std::vector<double> v, Shape shape, DType dt = DType::f64) {
  return Tensor::from_vector(v, shape, dt);
}
}  // namespace

TEST_CASE("matmul: a 2x3 by 3x2 product worked out by hand") {
  Tensor a = vec({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = vec({7, 8, 9, 10, 11, 12}, {3, 2});
  // [1*7+2*9+3*11, 1*8+2*10+3*12; 4*7+5*9+6*11, 4*8+5*10+6*12]
  CHECK(matmul(a, b).to_vector() == std::vector<double>{58, 64, 139, 154});
  CHECK(matmul(a.to(DType::f32), b.to(DType::f32)).to_vector() == std::vector<double>{58, 64, 139, 154});
}

TEST_CASE("matmul: transposed views give the same result as copies") {
  Tensor a = Tensor::uniform({5, 4}, -1, 1, DType::f64);
  Tensor b = Tensor::uniform({5, 3}, -1, 1, DType::f64);
  std::vector<double> via_view = matmul(a.t(), b).to_vector();
  std::vector<double> via_copy = matmul(a.t().contiguous(), b).to_vector();
  for (size_t i = 0; i < via_view.size(); ++i) CHECK(via_view[i] == doctest::Approx(via_copy[i]));
  Tensor c = Tensor::uniform({3, 4}, -1, 1, DType::f64);
  std::vector<double> bt = matmul(a, c.t()).to_vector();
  std::vector<double> bt_copy = matmul(a, c.t().contiguous()).to_vector();
  for (size_t i = 0; i < bt.size(); ++i) CHECK(bt[i] == doctest::Approx(bt_copy[i]));
}

TEST_CASE("matmul: batched") {
  Tensor a = Tensor::arange(12, DType::f64).reshape({2, 2, 3});
  Tensor b = Tensor::ones({2, 3, 1}, DType::f64);
  CHECK(matmul(a, b).to_vector() == std::vector<double>{3, 12, 21, 30});
}

TEST_CASE("matmul and linear: shape errors name the shapes") {
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({8, 3}), Tensor::zeros({4, 5})),
                       doctest::Contains("inner dimensions differ: [8,3] x [4,5]"), Error);
  CHECK_THROWS_AS(matmul(Tensor::zeros({8}), Tensor::zeros({8, 5})), Error);
  CHECK_THROWS_WITH_AS(linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 5})),
                       doctest::Contains("input features differ"), Error);
  CHECK_THROWS_AS(linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 3}), Tensor::zeros({3})), Error);
}

TEST_CASE("linear: x W^T + b by hand") {
  Tensor x = vec({1, 2}, {1, 2});
  Tensor w = vec({1, 0, 0, 1, 1, 1}, {3, 2});
  Tensor b = vec({10, 20, 30}, {3});
  CHECK(linear(x, w, b).to_vector() == std::vector<double>{11, 22, 33});
  CHECK(linear(x, w).to_vector() == std::vector<double>{1, 2, 3});
}

TEST_CASE("gradcheck: matmul (plain, transposed views, batched) and linear") {
  Tensor a = random_leaf({3, 4}), b = random_leaf({4, 2});
  CHECK_GRADCHECK([&] { return matmul(a, b); }, {a, b});
  Tensor at = random_leaf({4, 3});
  CHECK_GRADCHECK([&] { return matmul(at.t(), b); }, {at, b});
  Tensor bt = random_leaf({2, 4});
  CHECK_GRADCHECK([&] { return matmul(a, bt.t()); }, {a, bt});
  Tensor ba = random_leaf({2, 3, 4}), bb = random_leaf({2, 4, 5});
  CHECK_GRADCHECK([&] { return matmul(ba, bb); }, {ba, bb});
  Tensor x = random_leaf({5, 4}), w = random_leaf({3, 4}), bias = random_leaf({3});
  CHECK_GRADCHECK([&] { return linear(x, w, bias); }, {x, w, bias});
  CHECK_GRADCHECK([&] { return linear(x, w); }, {x, w});
  Tensor x1 = random_leaf({1, 4});  // batch of one
  CHECK_GRADCHECK([&] { return linear(x1, w, bias); }, {x1, w, bias});
}
