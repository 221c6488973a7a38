// CPU-vs-CUDA parity of the fused cross-entropy (core/cuda/loss.cu), the GPU's label
// error, and float64 gradient checks of cross-entropy and the angular-margin logits running
// on the GPU. Skipped with a printed reason when no GPU is present.
#include "cuda_parity.h"
#include "gradcheck.h"
#include "losses/cross_entropy.h"
#include "losses/margin.h"

using namespace ag;
using namespace ag::testing;

namespace {
Tensor random_labels(int64_t n, int64_t classes, uint64_t seed) {
  Generator gen(seed);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t& l : labels) l = static_cast<int64_t>(gen.below(static_cast<uint64_t>(classes)));
  return Tensor::from_labels(labels);
}
}  // namespace

TEST_CASE("cuda parity: fused cross-entropy forward and backward") {
  AG_SKIP_WITHOUT_GPU();
  // 10 and 100 classes run a warp per row, 3000 a block per row.
  for (DType dt : float_dtypes())
    for (int64_t classes : {10, 100, 3000})
      for (double smoothing : {0.0, 0.1}) {
        const int64_t n = 37;
        Tensor logits = rand_cpu({n, classes}, dt, -6, 6), labels = random_labels(n, classes, 7);
        Tensor grad_loss = rand_cpu({n}, dt);
        const std::string what = "cross_entropy C=" + std::to_string(classes) +
                                 " smoothing=" + std::to_string(smoothing) + " " + dtype_name(dt);
        check_parity(
            what,
            [&](Device d) -> std::vector<Tensor> {
              Tensor loss = poisoned({n}, dt, d), lse = poisoned({n}, dt, d),
                     gx = poisoned({n, classes}, dt, d);
              Tensor x = logits.to(d), y = labels.to(d);
              cross_entropy_forward(loss, lse, x, y, smoothing);
              cross_entropy_backward(gx, grad_loss.to(d), x, lse, y, smoothing);
              return {loss, lse, gx};
            },
            tol_for(dt, 10));
      }
}

TEST_CASE("cuda: a bad label raises the CPU's cross-entropy error") {
  AG_SKIP_WITHOUT_GPU();
  Tensor logits = rand_cpu({3, 4}, DType::f32).to(kGpu), labels = Tensor::from_labels({1, 4, 0}).to(kGpu);
  Tensor loss = Tensor::empty({3}, DType::f32, kGpu), lse = Tensor::empty({3}, DType::f32, kGpu);
  CHECK_THROWS_WITH_AS(cross_entropy_forward(loss, lse, logits, labels, 0.0),
                       doctest::Contains("label 4 (row 1) is outside [0, 4)"), Error);
}

TEST_CASE("cuda gradcheck: cross-entropy and the margin logits") {
  AG_SKIP_WITHOUT_GPU();
  const int64_t n = 4, classes = 6;
  Tensor labels = Tensor::from_labels({2, 0, 5, 3}).to(kGpu);
  Tensor logits = random_leaf({n, classes}, -3, 3), cosine = random_leaf({n, classes}, -0.9, 0.9);
  for (Reduction r : {Reduction::none, Reduction::mean, Reduction::sum})
    CHECK_GRADCHECK([&] { return host(cross_entropy(logits.to(kGpu), labels, r, 0.1)); }, {logits});
  CHECK_GRADCHECK([&] { return host(normface_logits(cosine.to(kGpu), 8.0)); }, {cosine});
  CHECK_GRADCHECK([&] { return host(cosface_logits(cosine.to(kGpu), labels, 8.0, 0.35)); }, {cosine});
  CHECK_GRADCHECK([&] { return host(arcface_logits(cosine.to(kGpu), labels, 8.0, 0.5)); }, {cosine});
  CHECK_GRADCHECK([&] { return host(combined_margin_logits(cosine.to(kGpu), labels, 8.0, 1.0, 0.3, 0.2)); },
                  {cosine});
  CHECK_GRADCHECK([&] { return host(sphereface_logits(cosine.to(kGpu), labels, 4, 5.0, 8.0)); }, {cosine});
  CHECK_GRADCHECK(
      [&] { return host(cross_entropy(arcface_logits(cosine.to(kGpu), labels, 8.0, 0.5), labels)); },
      {cosine});
}
