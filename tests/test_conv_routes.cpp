// The route tables of the CPU convolution (core/cpu/conv/routes.cpp): each float32 shape
// below is chosen to reach one route per pass; the debug counter must show that route ran,
// every route of every table must have run at least once, and each float32 result must
// agree with the same call in float64, which always takes the portable routes (im2col +
// OpenBLAS, the reference depthwise loops: test_layers_conv checks those against naive
// loops). In a build without AVX-512 the tables hold the portable routes (and, on AVX2 +
// FMA, panel_gemm, dw_channels_last and dot_weight), and the shapes are expected there.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "conv_params.h"
#include "core/cpu/bf16/gemm.h"
#include "core/cpu/conv/routes.h"
#include "core/kernels.h"
#include "core/precision.h"
#include "core/random.h"

using namespace ag;
using ag::cpu::ConvPass;
using ag::testing::geometry;

namespace {

uint64_t calls(ConvPass pass, const std::string& route) {
  for (const auto& c : cpu::conv_route_counts())
    if (c.pass == pass && c.route == route) return c.calls;
  return 0;
}

bool in_table(ConvPass pass, const std::string& route) {
  for (const auto& c : cpu::conv_route_counts())
    if (c.pass == pass && c.route == route) return true;
  return false;
}

// In an AVX2 build (no AVX-512): whether panel_gemm (core/cpu/conv/avx2/) takes the dense
// shape's pass: every ungrouped forward pass; the input gradient at stride 1 with 8 or more
// input channels, not 1x1, padded by at most d (k - 1).
bool panel_gemm_takes(ConvPass pass, const Shape& x, const Shape& w, const Conv2dParams& p) {
  if (!in_table(pass, "panel_gemm") || p.groups != 1) return false;
  if (pass == ConvPass::forward) return true;
  if (pass != ConvPass::input_grad) return false;
  const bool pointwise = w[2] == 1 && w[3] == 1 && p.pad_h == 0 && p.pad_w == 0;
  return p.stride_h == 1 && p.stride_w == 1 && !pointwise && x[1] >= 8 &&
         p.pad_h <= p.dilation_h * (w[2] - 1) && p.pad_w <= p.dilation_w * (w[3] - 1);
}

// In an AVX2 build: whether its dot_weight takes the weight gradient (3x3, stride 1,
// dilation 1, ungrouped, C_out * C_in <= 32 * 32, output rows a multiple of 8 wide).
bool avx2_dot_weight_takes(const Shape& x, const Shape& w, const Conv2dParams& p) {
  const int64_t wo = conv_out_size(x[3], w[3], p.stride_w, p.pad_w, p.dilation_w);
  return p.groups == 1 && w[2] == 3 && w[3] == 3 && p.stride_h == 1 && p.stride_w == 1 && p.dilation_h == 1 &&
         p.dilation_w == 1 && wo % 8 == 0 && w[0] * x[1] <= 32 * 32;
}

// In an AVX2 build: whether winograd takes the forward pass and the weight gradient (3x3,
// stride 1, dilation 1, ungrouped, 8+ input channels, output rows 7+ wide, C_out * C_in <=
// 256 * 256) or the input gradient (the same for the flipped pass: 8+ output channels,
// input rows 7+ wide, padding at most 2).
bool winograd_takes(ConvPass pass, const Shape& x, const Shape& w, const Conv2dParams& p) {
  const int64_t wo = conv_out_size(x[3], w[3], p.stride_w, p.pad_w, p.dilation_w);
  const bool f23 = p.groups == 1 && w[2] == 3 && w[3] == 3 && p.stride_h == 1 && p.stride_w == 1 &&
                   p.dilation_h == 1 && p.dilation_w == 1 && w[0] * x[1] <= 256 * 256;
  if (pass == ConvPass::forward || pass == ConvPass::weight_grad) return f23 && x[1] >= 8 && wo >= 7;
  return pass == ConvPass::input_grad && f23 && w[0] >= 8 && x[1] >= 8 && x[3] >= 7 && p.pad_h <= 2 &&
         p.pad_w <= 2;
}

// The route an AVX2 build (no AVX-512; panel_gemm in the tables) takes: dw_channels_last
// for depthwise shapes of multiplier 1 and 8k channels, else the reference loops; the
// strided pointwise route; winograd where it takes the shape; else dot_weight, panel_gemm
// (strided, C_out x K <= 32768) or im2col for weight gradients, panel_gemm,
// panel_gemm_phases (strided input gradients without dilation, C_out x C_in <= 64 x 128)
// or im2col for the other passes.
std::string avx2_route(ConvPass pass, bool depthwise, const Shape& x, const Shape& w, const Conv2dParams& p) {
  if (depthwise) return w[0] == x[1] && x[1] % 8 == 0 ? "dw_channels_last" : "dw_reference";
  const bool strided_pointwise =
      w[2] == 1 && w[3] == 1 && p.pad_h == 0 && p.pad_w == 0 && (p.stride_h > 1 || p.stride_w > 1);
  if (strided_pointwise) return "pointwise_strided";
  if (winograd_takes(pass, x, w, p)) return "winograd";
  if (pass == ConvPass::weight_grad) {
    if (avx2_dot_weight_takes(x, w, p)) return "dot_weight";
    const bool small = w[0] * x[1] / p.groups * w[2] * w[3] <= 32768;
    return p.groups == 1 && (p.stride_h > 1 || p.stride_w > 1) && small ? "panel_gemm" : "im2col_blas";
  }
  if (panel_gemm_takes(pass, x, w, p)) return "panel_gemm";
  const bool strided_phases = pass == ConvPass::input_grad && p.groups == 1 &&
                              (p.stride_h > 1 || p.stride_w > 1) && p.dilation_h == 1 && p.dilation_w == 1 &&
                              w[0] * x[1] <= 64 * 128;
  return strided_phases ? "panel_gemm_phases" : "im2col_blas";
}

// The route a shape is meant for (in the AVX-512 build), or the one that takes it in a
// build without that route: the AVX2 build's own choice (above), or in a portable build
// the reference depthwise loops, else im2col + BLAS.
std::string expected(ConvPass pass, const std::string& route, bool depthwise, const Shape& x, const Shape& w,
                     const Conv2dParams& p) {
  if (in_table(ConvPass::forward, "panel_gemm")) return avx2_route(pass, depthwise, x, w, p);
  if (in_table(pass, route)) return route;
  return depthwise ? "dw_reference" : "im2col_blas";
}

// How a float32 call's sums were formed: directly, by Winograd's transforms (F(4, 3)'s
// coefficients up to 8 and 1/24 carry errors 10-50 times the direct sums', winograd.cpp;
// test_layers_conv.cpp's tolerance), or in bfloat16 (inputs rounded to 8 significant bits,
// each product off by up to 2^-8 of itself, the errors adding up like a random walk).
enum class Sums { direct, winograd, bf16 };

double tolerance(Sums sums, double terms) {
  switch (sums) {
    case Sums::winograd:
      return std::max(2e-4, 1e-5 * std::sqrt(terms));
    case Sums::bf16:
      return std::max(2e-2, 4e-3 * std::sqrt(terms));
    default:
      return std::max(1e-5, 2e-8 * terms);
  }
}

void check_close(const Tensor& got, const Tensor& want, double terms, const char* what, Sums sums) {
  const std::vector<double> a = got.to_vector(), b = want.to_vector();
  REQUIRE(a.size() == b.size());
  const double tol = tolerance(sums, terms);
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]) / (1 + std::abs(b[i])));
  INFO(what << ": worst relative error " << worst << " (tolerance " << tol << ")");
  CHECK(worst <= tol);
}

// t rounded to bfloat16 (as the bf16 routes round their inputs), as float64.
Tensor bf16_rounded(const Tensor& t) {
  std::vector<double> v = t.to_vector();
  for (double& e : v) e = cpu::round_to_bf16(static_cast<float>(e));
  return Tensor::from_vector(v, t.shape(), DType::f64);
}

struct RouteCase {
  Shape x, w;
  Conv2dParams p;
  const char* forward;
  const char* input_grad;
  const char* weight_grad;
  // The routes above ran inside pointwise_strided (which runs the table again on the
  // dense stride-1 copy): each pass must have taken both.
  bool via_pointwise_strided = false;
};

// The three passes' results: y = conv(x, w) + b, grad_x and grad_w from grad_out g.
struct Passes {
  Tensor y, grad_x, grad_w;
};

Passes run_passes(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& g, const Conv2dParams& p) {
  Passes r{Tensor::empty(g.shape(), x.dtype()), Tensor::empty(x.shape(), x.dtype()),
           Tensor::empty(w.shape(), x.dtype())};
  cpu::conv2d_forward(r.y, x, w, b, p);
  cpu::conv2d_backward_input(r.grad_x, g, w, p);
  cpu::conv2d_backward_weight(r.grad_w, g, x, p);
  return r;
}

// Runs the three passes in float32, checks the routes they took (one call each), then
// compares with the float64 calls. bf16: under bf16 matmul precision.
void check_case(const RouteCase& rc, bool bf16 = false) {
  CAPTURE(shape_str(rc.x));
  CAPTURE(shape_str(rc.w));
  CAPTURE(rc.p.stride_h);
  CAPTURE(rc.p.pad_h);
  CAPTURE(rc.p.dilation_h);
  CAPTURE(rc.p.groups);
  const int64_t ho = conv_out_size(rc.x[2], rc.w[2], rc.p.stride_h, rc.p.pad_h, rc.p.dilation_h);
  const int64_t wo = conv_out_size(rc.x[3], rc.w[3], rc.p.stride_w, rc.p.pad_w, rc.p.dilation_w);
  const bool depthwise = rc.w[1] == 1 && rc.p.groups == rc.x[1] && rc.p.groups > 1;
  Tensor x = Tensor::uniform(rc.x, -1, 1), w = Tensor::uniform(rc.w, -1, 1),
         b = Tensor::uniform({rc.w[0]}, -1, 1);
  Tensor g = Tensor::uniform({rc.x[0], rc.w[0], ho, wo}, -1, 1);

  const std::string fwd = expected(ConvPass::forward, rc.forward, depthwise, rc.x, rc.w, rc.p);
  const std::string in = expected(ConvPass::input_grad, rc.input_grad, depthwise, rc.x, rc.w, rc.p);
  const std::string wt = expected(ConvPass::weight_grad, rc.weight_grad, depthwise, rc.x, rc.w, rc.p);
  const uint64_t fwd0 = calls(ConvPass::forward, fwd), in0 = calls(ConvPass::input_grad, in),
                 wt0 = calls(ConvPass::weight_grad, wt);
  const std::string outer = "pointwise_strided";
  const uint64_t outer0[3] = {calls(ConvPass::forward, outer), calls(ConvPass::input_grad, outer),
                              calls(ConvPass::weight_grad, outer)};
  Passes f32;
  {
    MatmulPrecisionGuard precision(bf16 ? MatmulPrecision::bf16 : MatmulPrecision::fp32);
    f32 = run_passes(x, w, b, g, rc.p);
  }
  CHECK_MESSAGE(calls(ConvPass::forward, fwd) == fwd0 + 1, "forward did not take " << fwd);
  CHECK_MESSAGE(calls(ConvPass::input_grad, in) == in0 + 1, "input gradient did not take " << in);
  CHECK_MESSAGE(calls(ConvPass::weight_grad, wt) == wt0 + 1, "weight gradient did not take " << wt);
  if (rc.via_pointwise_strided) {
    CHECK_MESSAGE(calls(ConvPass::forward, outer) == outer0[0] + 1, "forward did not take " << outer);
    CHECK_MESSAGE(calls(ConvPass::input_grad, outer) == outer0[1] + 1,
                  "input gradient did not take " << outer);
    CHECK_MESSAGE(calls(ConvPass::weight_grad, outer) == outer0[2] + 1,
                  "weight gradient did not take " << outer);
  }

  const Passes f64 = run_passes(x.to(DType::f64), w.to(DType::f64), b.to(DType::f64), g.to(DType::f64), rc.p);
  const double fwd_terms = static_cast<double>(rc.w[1] * rc.w[2] * rc.w[3]);
  const double in_terms = static_cast<double>(rc.w[0] * rc.w[2] * rc.w[3]);
  const double wt_terms = 10.0 * static_cast<double>(rc.x[0] * ho * wo);
  // Which passes ran in bfloat16: those that took a bf16 route (the others stay float32
  // under bf16 precision too, and are held to the float32 tolerance).
  const auto in_bf16 = [&](const std::string& route) {
    return bf16 && route.find("bf16") != std::string::npos;
  };
  const auto sums = [&](const std::string& route) {
    return in_bf16(route) ? Sums::bf16 : route == "winograd" ? Sums::winograd : Sums::direct;
  };
  check_close(f32.y, f64.y, fwd_terms, "forward", sums(fwd));
  check_close(f32.grad_x, f64.grad_x, in_terms, "input gradient", sums(in));
  check_close(f32.grad_w, f64.grad_w, wt_terms, "weight gradient", sums(wt));
  if (!in_bf16(fwd) && !in_bf16(in) && !in_bf16(wt)) return;
  // A bf16 route multiplies the bfloat16-rounded inputs exactly and sums in float32: against
  // float64 on the rounded inputs it is as close as a float32 route (a wrong pairing of the
  // reduction index, a dropped odd tail or a stale block would not be).
  const Passes rounded =
      run_passes(bf16_rounded(x), bf16_rounded(w), b.to(DType::f64), bf16_rounded(g), rc.p);
  if (in_bf16(fwd)) check_close(f32.y, rounded.y, fwd_terms, "forward on bf16-rounded inputs", Sums::direct);
  if (in_bf16(in))
    check_close(f32.grad_x, rounded.grad_x, in_terms, "input gradient on bf16-rounded inputs", Sums::direct);
  if (in_bf16(wt))
    check_close(f32.grad_w, rounded.grad_w, wt_terms, "weight gradient on bf16-rounded inputs", Sums::direct);
}

}  // namespace

TEST_CASE("every CPU convolution route runs for its shapes and agrees with the float64 route") {
  manual_seed(21);
  cpu::reset_conv_route_counts();
  for (const auto& c : cpu::conv_route_counts()) REQUIRE(c.calls == 0);

  const RouteCase cases[] = {
      // depthwise, multiplier 1: stride 2 on 4x4, 8x8 and 32x32 planes
      {{2, 16, 4, 4}, {16, 1, 3, 3}, geometry(2, 1, 1, 16), "dw_s2_4x4", "dw_s2_4x4", "dw_s2_4x4"},
      {{2, 16, 8, 8}, {16, 1, 5, 5}, geometry(2, 2, 1, 16), "dw_flat_s2", "dw_flat_s2", "dw_flat_s2"},
      {{2, 16, 32, 32}, {16, 1, 3, 3}, geometry(2, 1, 1, 16), "dw_s2", "dw_s2", "dw_stream"},
      // stride 1 on rows 16-128 wide, on 8x8 planes, on odd small planes, on 3 channels
      {{2, 16, 20, 20}, {16, 1, 3, 3}, geometry(1, 1, 1, 16), "dw_rows", "dw_rows", "dw_stream"},
      {{2, 16, 8, 8}, {16, 1, 3, 3}, geometry(1, 1, 1, 16), "dw_flat", "dw_flat", "dw_flat"},
      {{2, 32, 7, 6},
       {32, 1, 3, 3},
       geometry(2, 1, 1, 32),
       "dw_channels_last",
       "dw_channels_last",
       "dw_channels_last"},
      {{2, 3, 7, 6}, {3, 1, 3, 3}, geometry(1, 1, 1, 3), "dw_reference", "dw_reference", "dw_reference"},
      // a channel multiplier: only the reference loops take it
      {{2, 3, 8, 8}, {6, 1, 3, 3}, geometry(1, 1, 1, 3), "dw_reference", "dw_reference", "dw_reference"},
      // dense: rows 16 wide with few channels (dot-product weight gradient), 9-wide rows,
      // stride 2 (input gradient by phases), dilation with stride, groups
      {{2, 4, 16, 16}, {8, 4, 3, 3}, geometry(1, 1, 1, 1), "implicit_gemm", "implicit_gemm_s1", "dot_weight"},
      // whole 8- and 4-wide rows per 16-lane vector (direct path), a 5x5 kernel wider than the plane
      {{2, 8, 8, 8}, {8, 8, 3, 3}, geometry(1, 1, 1, 1), "implicit_gemm", "implicit_gemm_s1", "dot_weight"},
      {{3, 8, 4, 4}, {8, 8, 5, 5}, geometry(1, 2, 1, 1), "implicit_gemm", "implicit_gemm_s1", "dot_weight"},
      // more channels: the packed GEMM on 16x16 and 8x8 planes (rows read in place), dot
      // products on a widened plane of 256 positions or more
      {{1, 72, 16, 16},
       {72, 72, 3, 3},
       geometry(1, 1, 1, 1),
       "implicit_gemm",
       "implicit_gemm_s1",
       "implicit_gemm"},
      {{1, 72, 28, 28},
       {72, 72, 3, 3},
       geometry(1, 1, 1, 1),
       "implicit_gemm",
       "implicit_gemm_s1",
       "dot_weight"},
      // 64 x 64 channels: dot products on a plane under 256 positions (float32 only)
      {{1, 64, 8, 8},
       {64, 64, 3, 3},
       geometry(1, 1, 1, 1),
       "implicit_gemm",
       "implicit_gemm_s1",
       "dot_weight"},
      {{1, 72, 8, 8},
       {72, 72, 3, 3},
       geometry(1, 1, 1, 1),
       "implicit_gemm",
       "implicit_gemm_s1",
       "implicit_gemm"},
      // its weight gradient reading rows in place over two position blocks, the second partial
      {{5, 72, 8, 8},
       {72, 72, 3, 3},
       geometry(1, 1, 1, 1),
       "implicit_gemm",
       "implicit_gemm_s1",
       "implicit_gemm"},
      // rows 28, 14 and 13 wide: the direct path on a plane widened to 32 or 16 columns
      // (simd.h widen_ok), forward and stride-1 input gradient, and the dot-product weight
      // gradient over 16-wide windows of each row (3x3 tiles; 5x5 tap by tap); stride 2 on
      // 28x28: its input gradient's phases are 14 wide, written to every other element
      {{2, 12, 28, 28},
       {12, 12, 3, 3},
       geometry(1, 1, 1, 1),
       "implicit_gemm",
       "implicit_gemm_s1",
       "dot_weight"},
      {{2, 6, 14, 14}, {5, 6, 5, 5}, geometry(1, 2, 1, 1), "implicit_gemm", "implicit_gemm_s1", "dot_weight"},
      {{3, 3, 13, 13}, {4, 3, 3, 3}, geometry(1, 1, 1, 1), "implicit_gemm", "implicit_gemm_s1", "dot_weight"},
      {{2, 4, 28, 28},
       {6, 4, 3, 3},
       geometry(2, 1, 1, 1),
       "implicit_gemm",
       "implicit_gemm_phases",
       "implicit_gemm"},
      {{2, 8, 9, 9},
       {8, 8, 3, 3},
       geometry(1, 1, 1, 1),
       "implicit_gemm",
       "implicit_gemm_s1",
       "implicit_gemm"},
      {{2, 4, 9, 9},
       {6, 4, 3, 3},
       geometry(2, 1, 1, 1),
       "implicit_gemm",
       "implicit_gemm_phases",
       "implicit_gemm"},
      {{2, 2, 11, 11}, {3, 2, 3, 3}, geometry(2, 1, 2, 1), "implicit_gemm", "im2col_blas", "implicit_gemm"},
      {{2, 4, 7, 8}, {6, 2, 3, 3}, geometry(1, 1, 1, 2), "im2col_blas", "im2col_blas", "im2col_blas"},
      // a projection shortcut: 1x1, stride 2, odd input (the last row and column are never read)
      {{2, 6, 9, 9},
       {8, 6, 1, 1},
       geometry(2, 0, 1, 1),
       "pointwise_strided",
       "pointwise_strided",
       "pointwise_strided"},
      {{2, 4, 8, 7},
       {6, 2, 1, 1},
       geometry(3, 0, 1, 2),
       "pointwise_strided",
       "pointwise_strided",
       "pointwise_strided"},
  };
  for (const RouteCase& rc : cases) check_case(rc);
  // Under bf16 matmul precision the dense shapes implicit_gemm takes take its bf16 form
  // (odd K: a zero partner in the last pair; K over one block; an odd number of positions;
  // several position blocks of the weight gradient; rows read in place, widened or by
  // segments), the others im2col_bf16; the weight gradients dot_weight takes and the
  // depthwise shapes keep their float32 routes. A CPU without AVX512-BF16 has the routes in its tables but
  // cannot run them.
  const bool bf16 = cpu::bf16_gemm_available();
  if (bf16) {
    const RouteCase bf16_cases[] = {
        {{2, 4, 9, 9},
         {6, 4, 3, 3},
         geometry(2, 1, 1, 1),
         "implicit_gemm_bf16",
         "implicit_gemm_bf16_phases",
         "implicit_gemm_bf16"},
        // 3x3 weight gradients as bf16 dot products: 32-position chunks of two 16-wide rows,
        // of a 32-wide row, of four 8-wide rows; 28-wide rows in 32-wide windows; a partial
        // 3-row tile (co = 5, 7); 13-wide rows stay on float32 dot_weight
        {{2, 3, 16, 16},
         {8, 3, 3, 3},
         geometry(1, 1, 1, 1),
         "implicit_gemm_bf16",
         "implicit_gemm_bf16_s1",
         "dot_weight_bf16"},
        {{2, 4, 32, 32},
         {5, 4, 3, 3},
         geometry(1, 1, 1, 1),
         "implicit_gemm_bf16",
         "implicit_gemm_bf16_s1",
         "dot_weight_bf16"},
        {{3, 6, 8, 8},
         {7, 6, 3, 3},
         geometry(1, 1, 1, 1),
         "implicit_gemm_bf16",
         "implicit_gemm_bf16_s1",
         "dot_weight_bf16"},
        {{2, 3, 28, 28},
         {4, 3, 3, 3},
         geometry(1, 1, 1, 1),
         "implicit_gemm_bf16",
         "implicit_gemm_bf16_s1",
         "dot_weight_bf16"},
        {{1, 72, 8, 8},
         {72, 72, 3, 3},
         geometry(1, 1, 1, 1),
         "implicit_gemm_bf16",
         "implicit_gemm_bf16_s1",
         "implicit_gemm_bf16"},
        // from 64 x 64 channels the packed bf16 weight gradient, not the dot products
        {{1, 64, 16, 16},
         {64, 64, 3, 3},
         geometry(1, 1, 1, 1),
         "implicit_gemm_bf16",
         "implicit_gemm_bf16_s1",
         "implicit_gemm_bf16"},
        {{1, 64, 8, 8},
         {64, 64, 3, 3},
         geometry(1, 1, 1, 1),
         "implicit_gemm_bf16",
         "implicit_gemm_bf16_s1",
         "implicit_gemm_bf16"},
        // the packed weight gradient reading rows in place (TapRows): a second, partial
        // position block of two 32-position chunks; 4x4 planes with a half-full last chunk
        {{5, 72, 8, 8},
         {72, 72, 3, 3},
         geometry(1, 1, 1, 1),
         "implicit_gemm_bf16",
         "implicit_gemm_bf16_s1",
         "implicit_gemm_bf16"},
        {{3, 130, 4, 4},
         {130, 130, 3, 3},
         geometry(1, 1, 1, 1),
         "implicit_gemm_bf16",
         "implicit_gemm_bf16_s1",
         "implicit_gemm_bf16"},
        {{3, 5, 7, 7},
         {6, 5, 3, 3},
         geometry(1, 1, 1, 1),
         "implicit_gemm_bf16",
         "implicit_gemm_bf16_s1",
         "implicit_gemm_bf16"},
        {{3, 8, 13, 13},
         {10, 8, 3, 3},
         geometry(1, 1, 1, 1),
         "implicit_gemm_bf16",
         "implicit_gemm_bf16_s1",
         "dot_weight"},
        // a 5x5 kernel on 7-wide rows (no dot_weight): several position blocks of the
        // bf16 weight gradient, the last one odd
        {{11, 4, 7, 7},
         {6, 4, 5, 5},
         geometry(1, 2, 1, 1),
         "implicit_gemm_bf16",
         "implicit_gemm_bf16_s1",
         "implicit_gemm_bf16"},
        // a projection shortcut: the dense copy of pointwise_strided in bf16
        {{2, 6, 9, 9},
         {8, 6, 1, 1},
         geometry(2, 0, 1, 1),
         "implicit_gemm_bf16",
         "implicit_gemm_bf16_s1",
         "implicit_gemm_bf16",
         true},
        // 1x1 with stride and padding (not pointwise_strided): the input gradient by phases,
        // one of which no tap reaches (zero)
        {{2, 6, 9, 9},
         {8, 6, 1, 1},
         geometry(2, 1, 1, 1),
         "implicit_gemm_bf16",
         "implicit_gemm_bf16_phases",
         "implicit_gemm_bf16"},
        {{2, 2, 11, 11},
         {3, 2, 3, 3},
         geometry(2, 1, 2, 1),
         "implicit_gemm_bf16",
         "im2col_bf16",
         "implicit_gemm_bf16"},
        {{2, 4, 7, 8}, {6, 2, 1, 1}, geometry(1, 0, 1, 2), "im2col_bf16", "im2col_bf16", "im2col_bf16"},
        {{2, 16, 8, 8}, {16, 1, 3, 3}, geometry(1, 1, 1, 16), "dw_flat", "dw_flat", "dw_flat"},
    };
    for (const RouteCase& rc : bf16_cases) check_case(rc, true);
  }

  // Every route of every table ran (float64 calls count on the portable routes).
  for (const auto& c : cpu::conv_route_counts()) {
    if (!bf16 && std::string(c.route).find("bf16") != std::string::npos) continue;
    INFO(std::string(cpu::conv_pass_name(c.pass)) << " route " << std::string(c.route) << " never ran");
    CHECK(c.calls > 0);
  }
}

TEST_CASE("each CPU convolution route table ends with the route that takes every shape") {
  std::string last[3];
  for (const auto& c : cpu::conv_route_counts()) last[static_cast<int>(c.pass)] = c.route;
  for (const std::string& route : last) CHECK(route == "im2col_blas");
  cpu::reset_conv_route_counts();
  for (const auto& c : cpu::conv_route_counts()) CHECK(c.calls == 0);
}
