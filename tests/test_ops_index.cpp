// gather, one_hot: values, bounds checks naming the index, gradients.
#include "core/ops.h"
#include "gradcheck.h"

using namespace ag;
using ag::testing::random_leaf;

TEST_CASE("gather along the class dim picks each row's target") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f64);
  Tensor idx = Tensor::from_vector({2, 0}, {2, 1}, DType::i64);
  CHECK(gather(x, 1, idx).to_vector() == std::vector<double>{3, 4});
  Tensor idx0 = Tensor::from_vector({1, 0, 1}, {1, 3}, DType::i64);
  CHECK(gather(x, 0, idx0).to_vector() == std::vector<double>{4, 2, 6});
}

TEST_CASE("gather and one_hot reject out-of-range indices by name") {
  Tensor x = Tensor::zeros({2, 3}, DType::f64);
  CHECK_THROWS_WITH_AS(gather(x, 1, Tensor::from_vector({0, 3}, {2, 1}, DType::i64)),
                       doctest::Contains("index 3 at position 1 is outside [0, 3)"), Error);
  CHECK_THROWS_WITH_AS(one_hot(Tensor::from_labels({0, 5}), 4),
                       doctest::Contains("label 5 at position 1 is outside [0, 4)"), Error);
  CHECK_THROWS_AS(gather(x, 1, Tensor::zeros({2, 1})), Error);  // float index
}

TEST_CASE("one_hot") {
  Tensor oh = one_hot(Tensor::from_labels({2, 0}), 3);
  CHECK(oh.to_vector() == std::vector<double>{0, 0, 1, 1, 0, 0});
  CHECK(oh.dtype() == DType::f32);
}

TEST_CASE("gradcheck: gather, including a repeated index") {
  Tensor x = random_leaf({3, 4});
  Tensor idx = Tensor::from_vector({1, 1, 3, 0, 2, 2}, {3, 2}, DType::i64);
  CHECK_GRADCHECK([&] { return gather(x, 1, idx); }, {x});
  Tensor idx0 = Tensor::from_vector({2, 0, 1, 2}, {1, 4}, DType::i64);
  CHECK_GRADCHECK([&] { return gather(x, 0, idx0); }, {x});
}

TEST_CASE("gradcheck: views, cat, clone and dtype round trip") {
  Tensor x = random_leaf({2, 3, 4});
  CHECK_GRADCHECK([&] { return x.reshape({6, 4}); }, {x});
  CHECK_GRADCHECK([&] { return x.permute({2, 0, 1}); }, {x});
  CHECK_GRADCHECK([&] { return x.slice(1, 2); }, {x});
  CHECK_GRADCHECK([&] { return x.transpose(1, 2).contiguous(); }, {x});
  CHECK_GRADCHECK([&] { return x.clone(); }, {x});
  Tensor y = random_leaf({2, 1, 4});
  CHECK_GRADCHECK([&] { return cat({x, y}, 1); }, {x, y});
  CHECK_GRADCHECK([&] { return x.unsqueeze(0).squeeze(0); }, {x});
}
