// The matmul precision: the arithmetic of the GEMMs in convolutions and linear layers on
// float32 tensors. fp32 (the default) is plain float32; bf16 rounds both GEMM inputs to
// bfloat16 and accumulates in float32 (core/cpu/bf16/gemm.h: AVX512-BF16, CPU only), in
// the forward pass and both backward GEMMs. Everything else stays float32 because the
// tensors do: master weights, optimizer state, batch-norm statistics, softmax, losses.
// Depthwise convolutions (no GEMM) and float64 tensors never take the bf16 path, nor does
// a plain matmul() (e.g. the cosine heads of the margin losses).
//
// One process-wide setting, read when each GEMM runs (forward and backward alike): set it
// before a training step, or scope it with MatmulPrecisionGuard.
#pragma once

#include <string>

#include "core/dtype.h"

namespace ag {

enum class MatmulPrecision { fp32, bf16 };

// Sets the precision. bf16 throws ag::Error where the CPU or the build lacks AVX512-BF16
// (the reason named), so a run fails at its start rather than at its first GEMM.
void set_matmul_precision(MatmulPrecision precision);
MatmulPrecision matmul_precision();

// True when a GEMM on tensors of this dtype runs in bfloat16 now: bf16 precision, float32.
bool bf16_matmul_for(DType dtype);

// Throws ag::Error when `op` would run a bf16 GEMM off the CPU (bf16 is CPU-only for now):
// bf16 precision, float32, and on_cpu false.
void check_bf16_device(const char* op, DType dtype, bool on_cpu);

// "fp32" / "bf16", and back (ag::Error naming the accepted values otherwise).
const char* precision_name(MatmulPrecision precision);
MatmulPrecision parse_matmul_precision(const std::string& name);

// Sets a precision for a scope and restores the previous one.
class MatmulPrecisionGuard {
 public:
  explicit MatmulPrecisionGuard(MatmulPrecision precision) : previous_(matmul_precision()) {
    set_matmul_precision(precision);
  }
  ~MatmulPrecisionGuard() { set_matmul_precision(previous_); }
  MatmulPrecisionGuard(const MatmulPrecisionGuard&) = delete;
  MatmulPrecisionGuard& operator=(const MatmulPrecisionGuard&) = delete;

 private:
  MatmulPrecision previous_;
};

}  // namespace ag
