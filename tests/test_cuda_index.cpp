// CPU-vs-CUDA parity of the indexing kernels (core/cuda/index.cu), and the GPU's
// out-of-range index errors. Skipped with a printed reason when no GPU is present.
#include "cuda_parity.h"

using namespace ag;
using namespace ag::testing;

TEST_CASE("cuda parity: gather, scatter_add and one_hot") {
  AG_SKIP_WITHOUT_GPU();
  const int64_t outer = 6, n = 9, k = 14, inner = 5;  // k > n: indices repeat
  std::vector<int64_t> idx(static_cast<size_t>(outer * k * inner));
  Generator gen(42);
  for (int64_t& i : idx) i = static_cast<int64_t>(gen.below(n));
  Tensor index = Tensor::from_labels(idx).view({outer, k, inner});
  for (DType dt : float_dtypes()) {
    Tensor x = rand_cpu({outer, n, inner}, dt), g = rand_cpu({outer, k, inner}, dt);
    check_parity(
        std::string("gather ") + dtype_name(dt),
        [&](Device d) -> std::vector<Tensor> {
          Tensor out = poisoned({outer, k, inner}, dt, d);
          gather_dim(out, x.to(d), index.to(d), outer, n, k, inner);
          return {out};
        },
        tol_for(dt));
    check_parity(
        std::string("scatter_add ") + dtype_name(dt),
        [&](Device d) -> std::vector<Tensor> {
          Tensor out = poisoned({outer, n, inner}, dt, d);
          scatter_add_dim(out, g.to(d), index.to(d), outer, n, k, inner);
          return {out};
        },
        tol_for(dt, 10));
    Tensor labels = Tensor::from_labels({3, 0, 6, 6, 1, 9, 2});
    check_parity(
        std::string("one_hot ") + dtype_name(dt),
        [&](Device d) -> std::vector<Tensor> {
          Tensor out = poisoned({7, 10}, dt, d);
          one_hot(out, labels.to(d), 10);
          return {out};
        },
        tol_for(dt));
  }
}

TEST_CASE("cuda: out-of-range indices raise the CPU's error") {
  AG_SKIP_WITHOUT_GPU();
  Tensor labels = Tensor::from_labels({1, 4, 0, 7, 2, -1});
  for (Device d : {Device::cpu(), kGpu}) {
    Tensor out = Tensor::empty({6, 5}, DType::f32, d);
    CHECK_THROWS_WITH_AS(one_hot(out, labels.to(d), 5),
                         doctest::Contains("label 7 at position 3 is outside [0, 5)"), Error);
    Tensor x = rand_cpu({2, 3}, DType::f32).to(d), gathered = Tensor::empty({2, 3}, DType::f32, d);
    Tensor index = Tensor::from_labels({0, 1, 2, 2, 3, 0}).view({2, 3, 1}).to(d);
    CHECK_THROWS_WITH_AS(gather_dim(gathered, x, index, 2, 3, 3, 1),
                         doctest::Contains("index 3 at position 4 is outside [0, 3)"), Error);
  }
  // The device is still usable afterwards.
  Tensor ok = Tensor::from_labels({0, 4}).to(kGpu), out = Tensor::empty({2, 5}, DType::f32, kGpu);
  one_hot(out, ok, 5);
  CHECK(out.to_vector() == std::vector<double>{1, 0, 0, 0, 0, 0, 0, 0, 0, 1});
}
