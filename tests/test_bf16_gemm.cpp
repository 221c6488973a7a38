// The bfloat16 GEMM kernel (core/cpu/bf16/): against a float64 product of the
// bfloat16-rounded inputs (tight: only float32 accumulation differs) and against the
// float32 GEMM (within bfloat16 rounding), over odd sizes, odd depths and all transposes.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/cpu/bf16/gemm.h"
#include "core/cpu/gemm_util.h"
#include "core/error.h"

using ag::cpu::gemm_bf16;
using ag::cpu::round_to_bf16;

namespace {

std::vector<float> random_values(size_t count, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> v(count);
  for (float& x : v) x = dist(gen);
  return v;
}

struct Case {
  bool ta, tb;
  int64_t m, n, k;
};

// Checks gemm_bf16 on one case with beta; the operands are stored transposed where asked.
void check_case(const Case& t, float beta) {
  CAPTURE(t.ta);
  CAPTURE(t.tb);
  CAPTURE(t.m);
  CAPTURE(t.n);
  CAPTURE(t.k);
  CAPTURE(beta);
  const int64_t lda = (t.ta ? t.m : t.k) + 3, ldb = (t.tb ? t.k : t.n) + 1, ldc = t.n + 2;
  const auto a = random_values(static_cast<size_t>((t.ta ? t.k : t.m) * lda), 1);
  const auto b = random_values(static_cast<size_t>((t.tb ? t.n : t.k) * ldb), 2);
  const auto c0 = random_values(static_cast<size_t>(t.m * ldc), 3);
  auto a_at = [&](int64_t i, int64_t kk) { return t.ta ? a[kk * lda + i] : a[i * lda + kk]; };
  auto b_at = [&](int64_t kk, int64_t j) { return t.tb ? b[j * ldb + kk] : b[kk * ldb + j]; };

  std::vector<float> c = c0, c32 = c0;
  gemm_bf16(t.ta, t.tb, t.m, t.n, t.k, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
  ag::cpu::gemm_rm<float>(t.ta, t.tb, t.m, t.n, t.k, 1.f, a.data(), lda, b.data(), ldb, beta, c32.data(),
                          ldc);
  int64_t bad_exact = 0, bad_f32 = 0;
  for (int64_t i = 0; i < t.m; ++i) {
    for (int64_t j = 0; j < t.n; ++j) {
      double exact = beta * static_cast<double>(c0[i * ldc + j]), magnitude = std::abs(exact);
      for (int64_t kk = 0; kk < t.k; ++kk) {
        const double p = static_cast<double>(round_to_bf16(a_at(i, kk))) * round_to_bf16(b_at(kk, j));
        exact += p;
        magnitude += std::abs(p);
      }
      const double got = c[i * ldc + j];
      // float32 accumulation of k products: a few ulps of the magnitude.
      if (std::abs(got - exact) > 1e-6 * (t.k + 4) * magnitude + 1e-30) ++bad_exact;
      // bfloat16 inputs: each product off by up to ~2^-8 relative.
      if (std::abs(got - c32[i * ldc + j]) > 1e-2 * magnitude + 1e-30) ++bad_f32;
    }
  }
  CHECK(bad_exact == 0);
  CHECK(bad_f32 == 0);
  // Padding between rows of c is never written.
  for (int64_t i = 0; i < t.m; ++i)
    for (int64_t j = t.n; j < ldc; ++j) REQUIRE(c[i * ldc + j] == c0[i * ldc + j]);
}

}  // namespace

TEST_CASE("bf16 rounding matches the hardware conversion, ties to even, denormals to zero") {
  const float denormal = std::numeric_limits<float>::denorm_min() * 5;
  const std::vector<float> values = {1.f,
                                     -1.f,
                                     1.00390625f,  // 1 + 2^-8: a tie, rounds to even (1)
                                     1.01171875f,  // 1 + 3 * 2^-8: a tie, rounds to even (1 + 2^-6)
                                     std::nextafter(1.00390625f, 2.f),  // just above the tie: rounds up
                                     3.14159265f,
                                     -2.7182818f,
                                     65504.f,
                                     1e-30f,
                                     denormal,
                                     -denormal,
                                     0.f};
  for (float x : values) {
    CAPTURE(x);
    float one = 1.f, c = 123.f;
    gemm_bf16(false, false, 1, 1, 1, &x, 1, &one, 1, 0.f, &c, 1);
    CHECK(c == round_to_bf16(x));
  }
  CHECK(round_to_bf16(1.00390625f) == 1.f);
  CHECK(round_to_bf16(1.01171875f) == 1.015625f);
  CHECK(round_to_bf16(std::nextafter(1.00390625f, 2.f)) == 1.0078125f);
  CHECK(round_to_bf16(denormal) == 0.f);
}

TEST_CASE("bf16 gemm: odd sizes, odd depths and every transpose against float64 and float32") {
  const Case shapes[] = {{false, false, 1, 1, 1},     {false, false, 5, 7, 3},
                         {false, false, 13, 33, 17},  {false, false, 25, 70, 513},
                         {false, false, 37, 300, 41}, {false, false, 64, 257, 600},
                         {false, false, 3, 1000, 9}};
  for (Case s : shapes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        s.ta = ta;
        s.tb = tb;
        check_case(s, 0.f);
      }
  check_case({false, true, 29, 45, 77}, 1.f);
  check_case({true, false, 29, 45, 300}, -0.5f);
}

TEST_CASE("bf16 gemm: beta 0 never reads c, k 0 only scales it") {
  const float a[4] = {1, 2, 3, 4}, b[4] = {1, 0, 0, 1};
  float c[4] = {std::nanf(""), std::nanf(""), std::nanf(""), std::nanf("")};
  gemm_bf16(false, false, 2, 2, 2, a, 2, b, 2, 0.f, c, 2);
  CHECK(c[0] == 1.f);
  CHECK(c[1] == 2.f);
  CHECK(c[2] == 3.f);
  CHECK(c[3] == 4.f);
  gemm_bf16(false, false, 2, 2, 0, a, 2, b, 2, 2.f, c, 2);
  CHECK(c[3] == 8.f);
  CHECK_THROWS_AS(gemm_bf16(false, false, -1, 2, 2, a, 2, b, 2, 0.f, c, 2), ag::Error);
}
