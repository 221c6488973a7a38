// Helpers for the CUDA test suites (tests/test_cuda_*.cpp): skipping without a device,
// poisoned outputs, and CPU-vs-CUDA comparison with atol + rtol * |ref|.
//
// A parity check runs the same kernel twice through the device-neutral API: once on CPU
// tensors, once on CUDA copies of the very same random inputs, with every output buffer
// poisoned (NaN, or a sentinel for int64) beforehand so an element the kernel forgets to
// write is caught.
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

// Ends the current test case with a printed reason when no CUDA device is usable.
#define AG_SKIP_WITHOUT_GPU()                                                          \
  do {                                                                                 \
    if (!::ag::cuda::is_available()) {                                                 \
      MESSAGE("skipped: no CUDA device (" << ::ag::cuda::unavailable_reason() << ")"); \
      return;                                                                          \
    }                                                                                  \
  } while (0)

namespace ag::testing {

inline const Device kGpu = Device::cuda(0);
constexpr int64_t kIntPoison = -7777;

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

// An output buffer on `device` whose every element is poison.
inline Tensor poisoned(const Shape& shape, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  t.fill_(dtype == DType::i64 ? static_cast<double>(kIntPoison) : std::numeric_limits<double>::quiet_NaN());
  return t;
}

// Compares got (CUDA) with ref (CPU); reports the first bad element.
inline void expect_close(const std::string& what, const Tensor& ref, const Tensor& got, Tol tol) {
  REQUIRE_MESSAGE(got.shape() == ref.shape(),
                  what << ": shape " << shape_str(got.shape()) << " vs " << shape_str(ref.shape()));
  REQUIRE_MESSAGE(got.dtype() == ref.dtype(), what << ": dtype " << got.dtype() << " vs " << ref.dtype());
  const std::vector<double> r = ref.to_vector(), g = got.to_vector();
  std::ostringstream why;
  for (size_t i = 0; i < r.size(); ++i) {
    const bool both_nan = std::isnan(r[i]) && std::isnan(g[i]);
    if (both_nan) continue;
    if (ref.dtype() == DType::i64 ? g[i] != r[i]
                                  : !(std::abs(g[i] - r[i]) <= tol.atol + tol.rtol * std::abs(r[i]))) {
      why << what << ": element " << i << " of " << ref.describe() << ": cuda " << g[i] << ", cpu " << r[i]
          << (g[i] == kIntPoison || std::isnan(g[i]) ? " (never written?)" : "");
      break;
    }
  }
  CHECK_MESSAGE(why.str().empty(), why.str());
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
