// The CPU-vs-GPU comparison of tests/cuda_parity.h, checked on the CPU alone (it runs in
// every build): an element that neither kernel writes, or only one, must be a mismatch; a
// NaN both devices compute is not.
#include <limits>

#include "cuda_parity.h"

using namespace ag;
using namespace ag::testing;

namespace {
const double kNaN = std::numeric_limits<double>::quiet_NaN();
// A CPU tensor standing in for a GPU output (values may hold the GPU's poison).
Tensor as_gpu_output(const std::vector<double>& values, DType dtype) {
  return Tensor::from_vector(values, {static_cast<int64_t>(values.size())}, dtype);
}
}  // namespace

TEST_CASE("parity: the two devices are poisoned differently") {
  CHECK(std::isnan(poison_value(DType::f32, kGpu)));
  CHECK(std::isfinite(poison_value(DType::f32, Device::cpu())));
  CHECK(poison_value(DType::i64, kGpu) != poison_value(DType::i64, Device::cpu()));
  Tensor cpu = poisoned({3}, DType::f32, Device::cpu());
  for (double v : cpu.to_vector()) CHECK(v == kCpuPoison);  // exact in float32
}

TEST_CASE("parity: an element neither kernel writes is a mismatch") {
  for (DType dt : {DType::f32, DType::f64, DType::i64}) {
    Tensor ref = poisoned({4}, dt, Device::cpu());
    ref.slice(0, 3).fill_(1.0);  // the CPU kernel forgot element 3
    const Tensor got = as_gpu_output({1, 1, 1, poison_value(dt, kGpu)}, dt);
    const std::string why = parity_mismatch("forgot", ref, got, tol_for(dt));
    CHECK_MESSAGE(why.find("element 3") != std::string::npos, why);
    CHECK_MESSAGE(why.find("CPU kernel never wrote it") != std::string::npos, why);
  }
}

TEST_CASE("parity: an element only the GPU forgets is a mismatch") {
  const Tensor ref = Tensor::from_vector({1, 2, 3}, {3}, DType::f32);
  const std::string why = parity_mismatch("gpu forgot", ref, as_gpu_output({1, 2, kNaN}, DType::f32),
                                          tol_for(DType::f32));
  CHECK_MESSAGE(why.find("CUDA kernel never wrote it") != std::string::npos, why);
  const Tensor ref_i = Tensor::from_vector({1, 2, 3}, {3}, DType::i64);
  CHECK_FALSE(parity_mismatch("gpu forgot", ref_i, as_gpu_output({1, 2, static_cast<double>(kIntPoison)},
                                                                  DType::i64),
                              tol_for(DType::i64))
                  .empty());
}

TEST_CASE("parity: a NaN both devices compute matches, values within tolerance match") {
  const Tensor ref = Tensor::from_vector({kNaN, 2, 3}, {3}, DType::f64);
  CHECK(parity_mismatch("nan", ref, as_gpu_output({kNaN, 2, 3 + 1e-13}, DType::f64), tol_for(DType::f64))
            .empty());
  CHECK_FALSE(parity_mismatch("off", ref, as_gpu_output({kNaN, 2, 3.001}, DType::f64), tol_for(DType::f64))
                  .empty());
  CHECK_FALSE(parity_mismatch("shape", ref, as_gpu_output({kNaN, 2}, DType::f64), tol_for(DType::f64))
                  .empty());
}
