// The bf16 GEMM's checks (gemm.h): compiled in, supported by this CPU, then the kernel.
#include "core/cpu/bf16/gemm.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace ag::cpu {

std::string bf16_gemm_unavailable_reason() {
#if AG_CPU_BF16
  static const bool cpu_has = __builtin_cpu_supports("avx512bf16");
  if (!cpu_has) return "this CPU lacks AVX512-BF16 (avx512bf16), which the bf16 GEMM needs";
  return "";
#else
  return "arcgrad was built without AVX512-BF16 kernels (the compiler's target lacks avx512bf16; "
         "build with -DAG_NATIVE=ON on a CPU that has it)";
#endif
}

void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const std::string why = bf16_gemm_unavailable_reason();
  AG_CHECK(why.empty(), "bf16 matmul precision: " << why);
  AG_CHECK(m >= 0 && n >= 0 && k >= 0, "gemm_bf16: negative size " << m << " x " << n << " x " << k);
  if (m == 0 || n == 0) return;
#if AG_CPU_BF16
  gemm_bf16_avx512(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc);
#else
  (void)trans_a, (void)trans_b, (void)a, (void)lda, (void)b, (void)ldb, (void)beta, (void)c, (void)ldc;
#endif
}

float round_to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if (std::isnan(x)) {
    u = (u | 0x00400000u) & 0xffff0000u;  // quiet NaN, sign kept
  } else if ((u & 0x7f800000u) == 0) {
    u &= 0x80000000u;  // denormal: signed zero, as the hardware conversion does
  } else {
    u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
    u &= 0xffff0000u;
  }
  float r;
  std::memcpy(&r, &u, sizeof r);
  return r;
}

}  // namespace ag::cpu
