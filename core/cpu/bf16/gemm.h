// The bfloat16 GEMM of the CPU backend: float32 operands in memory, rounded to bfloat16
// (round to nearest even) while they are packed, products accumulated in float32 by
// AVX512-BF16's vdpbf16ps. It serves the bf16 matmul precision (core/precision.h); float64
// never takes it.
//
// The kernel (avx512/gemm_kernel.cpp) is compiled only where the build targets AVX512-BF16
// (CMake defines AG_CPU_BF16 then); a build without it, or a CPU without the feature at
// run time, answers every call with an ag::Error that names what is missing, never with a
// silent float32 fallback.
#pragma once

#include <cstdint>
#include <string>

namespace ag::cpu {

// Empty when the bf16 GEMM can run here; otherwise why not (e.g. "this CPU lacks
// AVX512-BF16 (avx512bf16)").
std::string bf16_gemm_unavailable_reason();
inline bool bf16_gemm_available() { return bf16_gemm_unavailable_reason().empty(); }

// c[m,n] = op(a) op(b) + beta * c with op(a) [m,k], op(b) [k,n] row-major and transposes
// and leading dimensions as in BLAS (beta 0: c is not read). Inputs are rounded to
// bfloat16, the sum is float32. Throws ag::Error where bf16_gemm_available() is false.
void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// The kernel itself (avx512/gemm_kernel.cpp, AG_CPU_BF16 builds only): no checks.
void gemm_bf16_avx512(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
                      int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// Rounds x to the nearest bfloat16 (ties to even) and back to float32, as the kernel's
// packing does (denormals flushed to signed zero, like vcvtne2ps2bf16): the inputs a test
// reference should multiply.
float round_to_bf16(float x);

}  // namespace ag::cpu
