// Helpers for the CUDA test suites (tests/test_cuda_*.cpp): skipping without a device,
// poisoned outputs, and CPU-vs-CUDA comparison with atol + rtol * |ref|.
//
// A parity check runs the same kernel twice through the device-neutral API: once on CPU
// tensors, once on CUDA copies of the very same random inputs, with every output buffer
// poisoned beforehand so an element the kernel forgets to write is caught. The two devices
// get different poisons (CPU: a huge finite sentinel; GPU: NaN, or different int64
// sentinels), so an element that neither kernel writes differs too, and a NaN in the CPU
// reference is a real NaN that the GPU must reproduce.
//
// The GPU suites have their own main (tests/cuda_test_main.cpp): without a device the
// whole program exits with CTest's skip code, so "no GPU" shows as skipped, never passed.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "core/cuda_api.h"
#include "core/kernels.h"
#include "core/ops.h"
#include "core/random.h"

// Guards a GPU test case. cuda_test_main.cpp already skipped the whole program when no
// device exists, so reaching here without one (a device lost mid-run, a suite linked with
// the wrong main) is a failure, never a silent pass.
#define AG_SKIP_WITHOUT_GPU()                                                                       \
  REQUIRE_MESSAGE(::ag::cuda::is_available(),                                                       \
                  "no CUDA device (" << ::ag::cuda::unavailable_reason() << ") in a GPU suite that " \
                                     << "was not skipped")

namespace ag::testing {

inline const Device kGpu = Device::cuda(0);
constexpr int64_t kIntPoison = -7777;     // int64 outputs on the GPU
constexpr int64_t kCpuIntPoison = -8888;  // int64 outputs on the CPU
// Float outputs on the CPU: -2^99, exact in float32 and float64, far from any real result.
constexpr double kCpuPoison = -633825300114114700748351602688.0;

// Tolerances for comparing a CUDA result with the CPU one: float32 results differ by a few
// ulps per operation (different summation order, different libm), float64 far less.
struct Tol {
  double atol, rtol;
};
inline Tol tol_for(DType dtype, double widen = 1.0) {
  if (dtype == DType::f64) return {1e-12 * widen, 1e-10 * widen};
  return {1e-5 * widen, 1e-4 * widen};
}

// A random CPU tensor, uniform in [low, high] (never all zeros).
inline Tensor rand_cpu(const Shape& shape, DType dtype, double low = -2.0, double high = 2.0) {
  return Tensor::uniform(shape, low, high, dtype);
}

// The poison of an output buffer of `dtype` on `device` (see the top of this file).
inline double poison_value(DType dtype, Device device) {
  if (dtype == DType::i64) return static_cast<double>(device.is_cuda() ? kIntPoison : kCpuIntPoison);
  return device.is_cuda() ? std::numeric_limits<double>::quiet_NaN() : kCpuPoison;
}

// An output buffer on `device` whose every element is poison.
inline Tensor poisoned(const Shape& shape, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  t.fill_(poison_value(dtype, device));
  return t;
}

// "" when got (CUDA) matches ref (CPU) element by element, else what is wrong with the
// first bad element. Both NaN is a match (the CPU poison is not NaN, so the reference NaN is
// real); an element still holding the CPU poison is never a match.
inline std::string parity_mismatch(const std::string& what, const Tensor& ref, const Tensor& got, Tol tol) {
  std::ostringstream why;
  if (got.shape() != ref.shape() || got.dtype() != ref.dtype()) {
    why << what << ": got " << got.describe() << ", expected " << ref.describe();
    return why.str();
  }
  const bool integer = ref.dtype() == DType::i64;
  const double cpu_poison = poison_value(ref.dtype(), Device::cpu());
  const std::vector<double> r = ref.to_vector(), g = got.to_vector();
  for (size_t i = 0; i < r.size(); ++i) {
    const bool ok = r[i] != cpu_poison &&
                    (integer ? g[i] == r[i]
                             : (std::isnan(r[i]) && std::isnan(g[i])) ||
                                   std::abs(g[i] - r[i]) <= tol.atol + tol.rtol * std::abs(r[i]));
    if (ok) continue;
    why << what << ": element " << i << " of " << ref.describe() << ": cuda " << g[i] << ", cpu " << r[i];
    if (r[i] == cpu_poison) why << " (the CPU kernel never wrote it)";
    if (g[i] == poison_value(ref.dtype(), kGpu) || (!integer && std::isnan(g[i]) && !std::isnan(r[i])))
      why << " (the CUDA kernel never wrote it?)";
    break;
  }
  return why.str();
}

// Compares got (CUDA) with ref (CPU); reports the first bad element.
inline void expect_close(const std::string& what, const Tensor& ref, const Tensor& got, Tol tol) {
  const std::string why = parity_mismatch(what, ref, got, tol);
  CHECK_MESSAGE(why.empty(), why);
}

// Runs `run(device)` (which builds poisoned outputs on the device, calls the kernel on the
// inputs moved there and returns the outputs) on the CPU and on the GPU, and compares.
inline void check_parity(const std::string& what, const std::function<std::vector<Tensor>(Device)>& run,
                         Tol tol) {
  const std::vector<Tensor> ref = run(Device::cpu());
  const std::vector<Tensor> got = run(kGpu);
  REQUIRE(ref.size() == got.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    CHECK_MESSAGE(got[i].device() == kGpu, what << ": output " << i << " is on " << got[i].device());
    expect_close(what + " output " + std::to_string(i), ref[i], got[i], tol);
  }
}

inline const std::vector<DType>& float_dtypes() {
  static const std::vector<DType> both = {DType::f32, DType::f64};
  return both;
}

// For GPU gradchecks whose leaves stay on the CPU: a leaf's copy on the GPU, and an op's
// result brought back (after checking that it really ran on the GPU).
inline Tensor gpu(const Tensor& t) { return t.to(kGpu); }
inline Tensor host(const Tensor& t) {
  REQUIRE_MESSAGE(t.device() == kGpu, "the op ran on " << t.device() << ", not on the GPU");
  return t.to(Device::cpu());
}

}  // namespace ag::testing
