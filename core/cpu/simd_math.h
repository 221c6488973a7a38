// Vectorised float32 math for the CPU kernels: exp and the activations built on it (SiLU,
// sigmoid), on the widest float vector the build targets: 16 lanes with AVX-512, 8 with
// AVX2 + FMA. Why: the scalar loops call expf once per element (GCC vectorises expf only
// under -ffast-math), which made SiLU forward and backward take 14% and 18% of an
// EfficientNet-B0 training step, several times what their memory traffic costs.
// AG_SIMD_MATH says whether the target has either (elsewhere this header declares nothing).
#pragma once

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#define AG_SIMD_MATH 1
#else
#define AG_SIMD_MATH 0
#endif

#if AG_SIMD_MATH
#include <immintrin.h>

#include <cstdint>

// GCC 12 warns falsely inside its own intrinsics here (an "uninitialised" pass-through
// operand that the unmasked forms never read).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace ag::cpu::vec {

#if defined(__AVX512F__)
constexpr int kLanes = 16;
using Vf = __m512;
inline Vf set1(float v) { return _mm512_set1_ps(v); }
inline Vf add(Vf a, Vf b) { return _mm512_add_ps(a, b); }
inline Vf sub(Vf a, Vf b) { return _mm512_sub_ps(a, b); }
inline Vf mul(Vf a, Vf b) { return _mm512_mul_ps(a, b); }
inline Vf div(Vf a, Vf b) { return _mm512_div_ps(a, b); }
inline Vf fmadd(Vf a, Vf b, Vf c) { return _mm512_fmadd_ps(a, b, c); }
inline Vf fnmadd(Vf a, Vf b, Vf c) { return _mm512_fnmadd_ps(a, b, c); }
// min and max return their second operand when one is NaN (vminps, vmaxps).
inline Vf min(Vf a, Vf b) { return _mm512_min_ps(a, b); }
inline Vf max(Vf a, Vf b) { return _mm512_max_ps(a, b); }
inline Vf round_nearest(Vf v) {
  return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
// p 2^k for integral k in [-150, 128]: vscalefps overflows to inf and underflows to 0 itself.
inline Vf scale_pow2(Vf p, Vf k) { return _mm512_scalef_ps(p, k); }
// x[0, n) (n <= kLanes), 0 in the other lanes; and its store.
inline __mmask16 first_lanes(int64_t n) {
  return n >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << n) - 1);
}
inline Vf load_first(const float* x, int64_t n) { return _mm512_maskz_loadu_ps(first_lanes(n), x); }
inline void store_first(float* out, Vf v, int64_t n) { _mm512_mask_storeu_ps(out, first_lanes(n), v); }
#else  // AVX2 + FMA
constexpr int kLanes = 8;
using Vf = __m256;
inline Vf set1(float v) { return _mm256_set1_ps(v); }
inline Vf add(Vf a, Vf b) { return _mm256_add_ps(a, b); }
inline Vf sub(Vf a, Vf b) { return _mm256_sub_ps(a, b); }
inline Vf mul(Vf a, Vf b) { return _mm256_mul_ps(a, b); }
inline Vf div(Vf a, Vf b) { return _mm256_div_ps(a, b); }
inline Vf fmadd(Vf a, Vf b, Vf c) { return _mm256_fmadd_ps(a, b, c); }
inline Vf fnmadd(Vf a, Vf b, Vf c) { return _mm256_fnmadd_ps(a, b, c); }
inline Vf min(Vf a, Vf b) { return _mm256_min_ps(a, b); }
inline Vf max(Vf a, Vf b) { return _mm256_max_ps(a, b); }
inline Vf round_nearest(Vf v) { return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
// p 2^k for integral k in [-150, 128], as p 2^(k1) 2^(k2) with k1 = k >> 1, k2 = k - k1:
// both factors are normal floats built from their exponent bits, and the two products
// overflow to inf or round into the subnormals as one multiplication by 2^k would.
inline Vf scale_pow2(Vf p, Vf k) {
  const __m256i ki = _mm256_cvtps_epi32(k), k1 = _mm256_srai_epi32(ki, 1), k2 = _mm256_sub_epi32(ki, k1);
  const __m256i bias = _mm256_set1_epi32(127);
  const Vf f1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, bias), 23));
  const Vf f2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, f1), f2);
}
inline __m256i first_lanes(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n < 8 ? n : 8)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline Vf load_first(const float* x, int64_t n) { return _mm256_maskload_ps(x, first_lanes(n)); }
inline void store_first(float* out, Vf v, int64_t n) { _mm256_maskstore_ps(out, first_lanes(n), v); }
#endif

// exp(x): x = k ln2 + r with |r| <= ln2 / 2, exp(r) by Cephes' expf polynomial (degree 6,
// ~1 ulp), times 2^k. x is clamped to [-104, 89] first so that k stays in scale_pow2's range
// (exp(-104) and exp(89) are already 0 and inf in float32); NaN passes through the clamps.
inline Vf exp_ps(Vf x) {
  x = min(set1(89.0f), max(set1(-104.0f), x));
  const Vf k = round_nearest(mul(x, set1(1.44269504088896341f)));
  // r = x - k ln2, ln2 split in two so that k ln2 is exact enough
  Vf r = fnmadd(k, set1(0.693359375f), x);
  r = fnmadd(k, set1(-2.12194440e-4f), r);
  Vf p = set1(1.9875691500e-4f);
  p = fmadd(p, r, set1(1.3981999507e-3f));
  p = fmadd(p, r, set1(8.3334519073e-3f));
  p = fmadd(p, r, set1(4.1665795894e-2f));
  p = fmadd(p, r, set1(1.6666665459e-1f));
  p = fmadd(p, r, set1(5.0000001201e-1f));
  p = fmadd(p, mul(r, r), add(r, set1(1.0f)));
  return scale_pow2(p, k);
}

// sigmoid(x) = 1 / (1 + exp(-x)): 0 for x -> -inf (1 / inf), 1 for x -> +inf.
inline Vf sigmoid_ps(Vf x) { return div(set1(1.0f), add(set1(1.0f), exp_ps(sub(set1(0.0f), x)))); }

// silu(x) = x sigmoid(x), as x / (1 + exp(-x)) like the scalar loop.
inline Vf silu_ps(Vf x) { return div(x, add(set1(1.0f), exp_ps(sub(set1(0.0f), x)))); }

// silu'(x) = s (1 + x (1 - s)), s = sigmoid(x).
inline Vf silu_derivative_ps(Vf x) {
  const Vf one = set1(1.0f), s = sigmoid_ps(x);
  return mul(s, fmadd(x, sub(one, s), one));
}

}  // namespace ag::cpu::vec

#pragma GCC diagnostic pop
#endif  // AG_SIMD_MATH
