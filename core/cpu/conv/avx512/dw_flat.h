// Compile-time helpers of the flat depthwise kernels (dw_flat.cpp, dw_flat_s2.cpp,
// dw_s2_4x4.cpp): a plane (or a polyphase component of one) is held in whole
// 16-float vectors, and every tap is a constant shift of it with a constant lane mask.
#pragma once

#include <immintrin.h>

#include <utility>

#ifndef __AVX512F__
#error "core/cpu/conv/avx512/ is compiled only for AVX-512 targets (see CMakeLists.txt)"
#endif

namespace ag::cpu::dw {

// f.template operator()<I>() for I = 0 .. N - 1, unrolled at compile time.
template <int N, typename F>
__attribute__((always_inline)) inline void static_for(F&& f) {
  [&]<int... I>(std::integer_sequence<int, I...>) { (f.template operator()<I>(), ...); }
  (std::make_integer_sequence<int, N>{});
}

constexpr int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// Lane l = element 16 VV + l + Off of the plane held in xs (xs[2 + v] = vector v, two zero
// vectors on each side, so |Off| <= 32 stays inside), lanes outside M zero: one valignd.
template <int Off, int VV, __mmask16 M>
__attribute__((always_inline)) inline __m512 shifted(const __m512* xs) {
  constexpr int q = floor_div(Off, 16), r = Off - 16 * q;
  const __m512i lo = _mm512_castps_si512(xs[2 + VV + q]), hi = _mm512_castps_si512(xs[3 + VV + q]);
  return _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(M, hi, lo, r));
}

}  // namespace ag::cpu::dw
