// How a CPU convolution runs: this file is the one place to read.
//
// Each pass (forward, input gradient, weight gradient) has one ordered table of routes. A
// route names a kernel, the predicate that says which shapes (ConvGeom) it takes, and the
// kernel's float32 and float64 forms (no float64 form: a float32-only route, which float64
// calls pass over). The routes are tried in table order and the first whose predicate
// accepts the shape runs. Each table lists the depthwise routes first (the specialised
// ones, then dw_reference, which takes every depthwise shape), then the dense ones; the last
// route, im2col + GEMM (OpenBLAS, or Eigen in a BLAS-free build), takes every shape. One table per pass
// rather than separate depthwise and dense tables: the dense fast routes need groups == 1, so they never see
// a depthwise shape, and one table reads as the whole decision.
//
// A 1x1 convolution with a stride and no padding (a ResNet's projection shortcut) reads
// only every s-th row and column of its input: pointwise_strided gathers those into a dense
// [N, C, HO, WO] copy and runs the stride-1 pointwise convolution through the table again
// (its input gradient: the stride-1 one, scattered back). Float32 only, so that float64
// keeps im2col as the independent reference the tests compare with. It comes before the
// bf16 routes, so that under bf16 precision the dense copy takes the bf16 pointwise GEMM:
// the strided bf16 input gradient by phases zero-filled three quarters of grad_x element by
// element (ResNet18's first shortcut ran its backward at 38 GFLOP/s).
//
// Under bf16 matmul precision (core/precision.h) the dense shapes take the bf16 routes,
// listed first among the dense routes after pointwise_strided: the implicit GEMM on bfloat16 operands
// (implicit_gemm_bf16*, the shapes implicit_gemm takes, where the target has AVX512-BF16),
// then im2col_bf16 for every other dense or grouped shape (im2col + the bfloat16 GEMM).
// They have no float64 form, so float64 (the gradient checks) never takes them; depthwise
// shapes keep their float32 routes (they have no GEMM).
//
// The AVX-512 routes (kernels under avx512/) are compiled only where the build targets
// AVX-512: CMake then adds avx512/ to the library and defines AG_CONV_AVX512 for this file
// (docs/design.md says why compile time rather than CPUID). Where the target has AVX2 + FMA
// but not AVX-512 (AG_CONV_AVX2), avx2/'s winograd takes the 3x3 stride-1 shapes it accepts
// in all three passes, then panel_gemm the other ungrouped forward passes and stride-1
// input gradients, panel_gemm_phases the strided input gradients of up to 64 x 128
// channels, and panel_gemm's weight pass the strided weight gradients of up to 32768
// weights, each just before im2col_blas (after the bf16 routes, so that bf16 precision
// on such a CPU still ends in the bf16 GEMM's clear error; the weight-gradient winograd
// sits beside dot_weight, which takes float32 under either precision), and avx2/'s form of
// dw_channels_last takes the depthwise shapes of 8k channels and avx2/'s dot_weight the
// other few-channel 3x3 weight gradients (both routes exist in the AVX-512 build too, in
// their AVX-512 forms: one name, one declaration, the file the target compiles). Elsewhere
// every call takes a portable route. Inside a route, a kernel may still choose its loop
// form (e.g. the implicit GEMM reads B in place or packs it; winograd picks its tile size),
// but never hands the call to another route;
// the one exception, pointwise_strided, runs the table again on a stride-1 geometry (a
// different shape, so it cannot come back to itself).
#include "core/cpu/conv/routes.h"

#include <algorithm>
#include <atomic>
#include <iterator>
#include <type_traits>

#include "core/cpu/conv/kernels.h"
#include "core/cpu/gemm_util.h"

namespace ag::cpu {

namespace {

template <typename T>
using ForwardKernel = void (*)(T* out, const T* x, const T* w, const T* bias, const ConvGeom& g);
template <typename T>
using InputGradKernel = void (*)(T* grad_x, const T* grad_out, const T* w, const ConvGeom& g);
template <typename T>
using WeightGradKernel = void (*)(T* grad_w, const T* grad_out, const T* x, const ConvGeom& g);

template <template <typename> class Kernel>
struct Route {
  const char* name;
  bool (*accepts)(const ConvGeom& g);
  Kernel<float> f32;
  Kernel<double> f64;  // null: float32 only
};

bool depthwise(const ConvGeom& g) { return g.depthwise(); }

bool pointwise_strided(const ConvGeom& g) {
  return g.kh == 1 && g.kw == 1 && g.ph == 0 && g.pw == 0 && (g.sh > 1 || g.sw > 1);
}
void pointwise_strided_forward(float* out, const float* x, const float* w, const float* bias,
                               const ConvGeom& g);
void pointwise_strided_backward_input(float* grad_x, const float* grad_out, const float* w,
                                      const ConvGeom& g);
void pointwise_strided_backward_weight(float* grad_w, const float* grad_out, const float* x,
                                       const ConvGeom& g);
bool any_shape(const ConvGeom&) { return true; }

constexpr Route<ForwardKernel> kForward[] = {
#if AG_CONV_AVX512
    {"dw_s2_4x4", dw_s2_4x4_accepts, dw_s2_4x4_forward, nullptr},
    {"dw_flat_s2", dw_flat_s2_accepts, dw_flat_s2_forward, nullptr},
    {"dw_s2", dw_s2_accepts, dw_s2_forward, nullptr},
    {"dw_rows", dw_rows_accepts, dw_rows_forward, nullptr},
    {"dw_flat", dw_flat_accepts, dw_flat_forward, nullptr},
#endif
#if AG_CONV_AVX512 || AG_CONV_AVX2
    {"dw_channels_last", dw_channels_last_accepts, dw_channels_last_forward, nullptr},
#endif
    {"dw_reference", depthwise, depthwise_forward<float>, depthwise_forward<double>},
    {"pointwise_strided", pointwise_strided, pointwise_strided_forward, nullptr},
#if AG_CONV_AVX512
    {"implicit_gemm_bf16", implicit_gemm_bf16_accepts, implicit_gemm_bf16_forward, nullptr},
#endif
    {"im2col_bf16", im2col_bf16_accepts, im2col_bf16_forward, nullptr},
#if AG_CONV_AVX512
    {"implicit_gemm", implicit_gemm_accepts, implicit_gemm_forward, nullptr},
#endif
#if AG_CONV_AVX2
    {"winograd", winograd_accepts, winograd_forward, nullptr},
    {"panel_gemm", panel_gemm_accepts, panel_gemm_forward, nullptr},
#endif
    {"im2col_blas", any_shape, im2col_forward<float>, im2col_forward<double>},
};

constexpr Route<InputGradKernel> kInputGrad[] = {
#if AG_CONV_AVX512
    {"dw_s2_4x4", dw_s2_4x4_accepts, dw_s2_4x4_backward_input, nullptr},
    {"dw_flat_s2", dw_flat_s2_accepts, dw_flat_s2_backward_input, nullptr},
    {"dw_s2", dw_s2_accepts, dw_s2_backward_input, nullptr},
    {"dw_rows", dw_rows_input_accepts, dw_rows_backward_input, nullptr},
    {"dw_flat", dw_flat_accepts, dw_flat_backward_input, nullptr},
#endif
#if AG_CONV_AVX512 || AG_CONV_AVX2
    {"dw_channels_last", dw_channels_last_accepts, dw_channels_last_backward_input, nullptr},
#endif
    {"dw_reference", depthwise, depthwise_backward_input<float>, depthwise_backward_input<double>},
    {"pointwise_strided", pointwise_strided, pointwise_strided_backward_input, nullptr},
#if AG_CONV_AVX512
    {"implicit_gemm_bf16_s1", implicit_gemm_bf16_input_s1_accepts, implicit_gemm_bf16_backward_input_s1,
     nullptr},
    {"implicit_gemm_bf16_phases", implicit_gemm_bf16_input_phases_accepts,
     implicit_gemm_bf16_backward_input_phases, nullptr},
#endif
    {"im2col_bf16", im2col_bf16_accepts, im2col_bf16_backward_input, nullptr},
#if AG_CONV_AVX512
    {"implicit_gemm_s1", implicit_gemm_input_s1_accepts, implicit_gemm_backward_input_s1, nullptr},
    {"implicit_gemm_phases", implicit_gemm_input_phases_accepts, implicit_gemm_backward_input_phases,
     nullptr},
#endif
#if AG_CONV_AVX2
    {"winograd", winograd_input_accepts, winograd_backward_input, nullptr},
    {"panel_gemm", panel_gemm_input_accepts, panel_gemm_backward_input, nullptr},
    {"panel_gemm_phases", panel_gemm_input_phases_accepts, panel_gemm_backward_input_phases, nullptr},
#endif
    {"im2col_blas", any_shape, im2col_backward_input<float>, im2col_backward_input<double>},
};

constexpr Route<WeightGradKernel> kWeightGrad[] = {
#if AG_CONV_AVX512
    {"dw_s2_4x4", dw_s2_4x4_accepts, dw_s2_4x4_backward_weight, nullptr},
    {"dw_flat_s2", dw_flat_s2_accepts, dw_flat_s2_backward_weight, nullptr},
    {"dw_stream", dw_stream_weight_accepts, dw_stream_backward_weight, nullptr},
    {"dw_flat", dw_flat_accepts, dw_flat_backward_weight, nullptr},
#endif
#if AG_CONV_AVX512 || AG_CONV_AVX2
    {"dw_channels_last", dw_channels_last_accepts, dw_channels_last_backward_weight, nullptr},
#endif
    {"dw_reference", depthwise, depthwise_backward_weight<float>, depthwise_backward_weight<double>},
    {"pointwise_strided", pointwise_strided, pointwise_strided_backward_weight, nullptr},
#if AG_CONV_AVX512
    // Dot products on few channels: in bfloat16 (3x3 on rows chunked by 32), else in
    // float32 under either precision, ahead of the packed bf16 routes: on these shapes the
    // dot products beat packing bfloat16 pairs (ResNet-20's weight gradients ran 2x slower
    // packed).
    {"dot_weight_bf16", dot_weight_bf16_accepts, dot_weight_bf16_backward_weight, nullptr},
#endif
#if AG_CONV_AVX2
    {"winograd", winograd_accepts, winograd_backward_weight, nullptr},
#endif
#if AG_CONV_AVX512 || AG_CONV_AVX2
    {"dot_weight", dot_weight_accepts, dot_weight_backward_weight, nullptr},
#endif
#if AG_CONV_AVX512
    {"implicit_gemm_bf16", implicit_gemm_bf16_accepts, implicit_gemm_bf16_backward_weight, nullptr},
#endif
    {"im2col_bf16", im2col_bf16_accepts, im2col_bf16_backward_weight, nullptr},
#if AG_CONV_AVX512
    {"implicit_gemm", implicit_gemm_accepts, implicit_gemm_backward_weight, nullptr},
#endif
#if AG_CONV_AVX2
    {"panel_gemm", panel_gemm_weight_accepts, panel_gemm_backward_weight, nullptr},
#endif
    {"im2col_blas", any_shape, im2col_backward_weight<float>, im2col_backward_weight<double>},
};

// ---- the debug counter: calls per route, in table order ----

std::atomic<uint64_t> forward_calls[std::size(kForward)];
std::atomic<uint64_t> input_grad_calls[std::size(kInputGrad)];
std::atomic<uint64_t> weight_grad_calls[std::size(kWeightGrad)];

template <typename T, template <typename> class K>
K<T> kernel_of(const Route<K>& route) {
  if constexpr (std::is_same_v<T, float>)
    return route.f32;
  else
    return route.f64;
}

// Runs the first route of the table that has a kernel for T and accepts g.
template <typename T, template <typename> class K, size_t N, typename... Args>
void run_first(const Route<K> (&table)[N], std::atomic<uint64_t> (&calls)[N], const ConvGeom& g,
               Args... args) {
  static_assert(N > 0);
  for (size_t i = 0; i < N; ++i) {
    const K<T> kernel = kernel_of<T>(table[i]);
    if (!kernel || !table[i].accepts(g)) continue;
    calls[i].fetch_add(1, std::memory_order_relaxed);
    return kernel(args..., g);
  }
}

template <template <typename> class K, size_t N>
void append_counts(std::vector<ConvRouteCount>& out, ConvPass pass, const Route<K> (&table)[N],
                   const std::atomic<uint64_t> (&calls)[N]) {
  for (size_t i = 0; i < N; ++i)
    out.push_back({pass, table[i].name, calls[i].load(std::memory_order_relaxed)});
}

// ---- pointwise_strided: the stride-1 pointwise convolution on the strided elements ----

// The stride-1 pointwise geometry over the dense [N, C, HO, WO] copy.
ConvGeom dense_pointwise(const ConvGeom& g) {
  Conv2dParams p;
  p.groups = g.groups;
  return ConvGeom({g.n, g.c, g.ho, g.wo}, {g.co, g.cg, 1, 1}, p);
}

// dense [N, C, HO, WO] = x [N, C, H, W] at rows 0, sh, 2 sh, ... and columns 0, sw, ...
void gather_strided(float* dense, const float* x, const ConvGeom& g) {
#pragma omp parallel for schedule(static) if (g.n * g.c * g.p > 32768)
  for (int64_t plane = 0; plane < g.n * g.c; ++plane) {
    const float* src = x + plane * g.h * g.w;
    float* dst = dense + plane * g.p;
    for (int64_t oh = 0; oh < g.ho; ++oh)
      for (int64_t ow = 0; ow < g.wo; ++ow) dst[oh * g.wo + ow] = src[oh * g.sh * g.w + ow * g.sw];
  }
}

// grad_x [N, C, H, W] = dense [N, C, HO, WO] at the strided elements, zero elsewhere.
void scatter_strided(float* grad_x, const float* dense, const ConvGeom& g) {
#pragma omp parallel for schedule(static) if (g.n * g.c * g.h * g.w > 32768)
  for (int64_t plane = 0; plane < g.n * g.c; ++plane) {
    float* dst = grad_x + plane * g.h * g.w;
    const float* src = dense + plane * g.p;
    std::fill(dst, dst + g.h * g.w, 0.f);
    for (int64_t oh = 0; oh < g.ho; ++oh)
      for (int64_t ow = 0; ow < g.wo; ++ow) dst[oh * g.sh * g.w + ow * g.sw] = src[oh * g.wo + ow];
  }
}

// Slot 8 of the workspaces: the routes this one runs use 0-7.
float* dense_copy(const ConvGeom& g) { return workspace<float>(8, static_cast<size_t>(g.n * g.c * g.p)); }

void pointwise_strided_forward(float* out, const float* x, const float* w, const float* bias,
                               const ConvGeom& g) {
  float* dense = dense_copy(g);
  gather_strided(dense, x, g);
  run_first<float>(kForward, forward_calls, dense_pointwise(g), out, dense, w, bias);
}

void pointwise_strided_backward_input(float* grad_x, const float* grad_out, const float* w,
                                      const ConvGeom& g) {
  float* dense = dense_copy(g);
  run_first<float>(kInputGrad, input_grad_calls, dense_pointwise(g), dense, grad_out, w);
  scatter_strided(grad_x, dense, g);
}

void pointwise_strided_backward_weight(float* grad_w, const float* grad_out, const float* x,
                                       const ConvGeom& g) {
  float* dense = dense_copy(g);
  gather_strided(dense, x, g);
  run_first<float>(kWeightGrad, weight_grad_calls, dense_pointwise(g), grad_w, grad_out, dense);
}

}  // namespace

const char* conv_pass_name(ConvPass pass) {
  switch (pass) {
    case ConvPass::forward:
      return "forward";
    case ConvPass::input_grad:
      return "input gradient";
    case ConvPass::weight_grad:
      return "weight gradient";
  }
  return "?";
}

std::vector<ConvRouteCount> conv_route_counts() {
  std::vector<ConvRouteCount> out;
  append_counts(out, ConvPass::forward, kForward, forward_calls);
  append_counts(out, ConvPass::input_grad, kInputGrad, input_grad_calls);
  append_counts(out, ConvPass::weight_grad, kWeightGrad, weight_grad_calls);
  return out;
}

void reset_conv_route_counts() {
  for (auto& c : forward_calls) c.store(0, std::memory_order_relaxed);
  for (auto& c : input_grad_calls) c.store(0, std::memory_order_relaxed);
  for (auto& c : weight_grad_calls) c.store(0, std::memory_order_relaxed);
}

// ---- the kernel entry points (core/kernel_decls.h) ----

void conv2d_forward(Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                    const Conv2dParams& p) {
  const ConvGeom g(x.shape(), w.shape(), p);
  dispatch_float(x.dtype(), "conv2d_forward", [&]<typename T>() {
    const T* pb = bias.defined() ? bias.data<T>() : nullptr;
    run_first<T>(kForward, forward_calls, g, out.data<T>(), x.data<T>(), w.data<T>(), pb);
  });
}

void conv2d_backward_input(Tensor& grad_x, const Tensor& grad_out, const Tensor& w, const Conv2dParams& p) {
  const ConvGeom g(grad_x.shape(), w.shape(), p);
  dispatch_float(grad_x.dtype(), "conv2d_backward_input", [&]<typename T>() {
    run_first<T>(kInputGrad, input_grad_calls, g, grad_x.data<T>(), grad_out.data<T>(), w.data<T>());
  });
}

void conv2d_backward_weight(Tensor& grad_w, const Tensor& grad_out, const Tensor& x, const Conv2dParams& p) {
  const ConvGeom g(x.shape(), grad_w.shape(), p);
  dispatch_float(grad_w.dtype(), "conv2d_backward_weight", [&]<typename T>() {
    run_first<T>(kWeightGrad, weight_grad_calls, g, grad_w.data<T>(), grad_out.data<T>(), x.data<T>());
  });
}

}  // namespace ag::cpu
