// The device-neutral kernel API. Each function takes outputs first and dispatches on the
// output's device to a twin with the identical signature in core/cpu/ (namespace ag::cpu)
// or core/cuda/ (namespace ag::cuda). The declarations live in core/kernel_decls.h.
#pragma once

#include "core/activation.h"
#include "core/nn_params.h"
#include "core/tensor.h"

namespace ag {

// ---- parameter types shared by every backend
// Unary math; the activations are named by Activation (core/activation.h) instead.
enum class UnaryOp {
  neg,
  exp,
  log,
  sqrt,
  abs,
  sin,
  cos,
  acos,
  pow,    // x^p           (p = exponent)
  clamp,  // min(max(x,p),q)
};
enum class BinaryOp { add, sub, mul, div };
struct UnaryParams {
  double p = 0, q = 0;
};
enum class ReduceOp { sum, mean, max };
// op(a) is [M,K] and op(b) is [K,N]; each operand may be a transposed view of a row-major
// matrix, described as in BLAS by the transpose flag and its row stride (lda/ldb).
struct GemmArgs {
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  double alpha = 1.0, beta = 0.0;
  // Round the float32 inputs to bfloat16, accumulate in float32 (core/precision.h; a linear
  // layer under bf16 precision sets it; CPU only, alpha 1).
  bool bf16 = false;
};

#include "core/kernel_decls.h"

namespace cpu {
#include "core/kernel_decls.h"
}  // namespace cpu

#ifdef AG_WITH_CUDA
namespace cuda {
#include "core/kernel_decls.h"
}  // namespace cuda
#endif

}  // namespace ag
