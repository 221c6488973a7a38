// The routes of the CPU convolution: for each, the shapes it accepts (a predicate) and its
// kernels, one per pass. routes.cpp orders them into one table per pass; a kernel may
// assume its predicate accepted the geometry. Pointers are contiguous NCHW /
// [C_out, C_in / groups, KH, KW] data.
#pragma once

#include "core/cpu/conv/geom.h"

namespace ag::cpu {

// ---- portable routes (float32 and float64), any CPU ----

// im2col + OpenBLAS GEMM (im2col.cpp): every geometry.
template <typename T>
void im2col_forward(T* out, const T* x, const T* w, const T* bias, const ConvGeom& g);
template <typename T>
void im2col_backward_input(T* grad_x, const T* grad_out, const T* w, const ConvGeom& g);
template <typename T>
void im2col_backward_weight(T* grad_w, const T* grad_out, const T* x, const ConvGeom& g);

// The same loops with the bfloat16 GEMM (core/cpu/bf16/gemm.h), float32 only: every
// non-depthwise geometry while the matmul precision is bf16 (core/precision.h).
bool im2col_bf16_accepts(const ConvGeom& g);
void im2col_bf16_forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g);
void im2col_bf16_backward_input(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g);
void im2col_bf16_backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g);

// Direct depthwise loops (depthwise_reference.cpp): every depthwise geometry, any
// channel multiplier.
template <typename T>
void depthwise_forward(T* out, const T* x, const T* w, const T* bias, const ConvGeom& g);
template <typename T>
void depthwise_backward_input(T* grad_x, const T* grad_out, const T* w, const ConvGeom& g);
template <typename T>
void depthwise_backward_weight(T* grad_w, const T* grad_out, const T* x, const ConvGeom& g);

// ---- AVX2 route (float32), compiled only for AVX2 + FMA targets without AVX-512: avx2/ ----

// Panels of 16 output positions and a 4-channel micro-kernel (avx2/panel_gemm.cpp):
// ungrouped, any stride, padding and dilation. The input gradient: stride 1 with at least
// 8 input channels (flip.h), as a forward pass with the flipped kernel.
bool panel_gemm_accepts(const ConvGeom& g);
void panel_gemm_forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g);
bool panel_gemm_input_accepts(const ConvGeom& g);
void panel_gemm_backward_input(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g);
// The input gradient of strided dense convolutions (dilation 1, C_out * C_in <= 64 * 128):
// per phase of grad_x's rows and columns, a stride-1 forward pass over grad_out with the
// taps that reach it.
bool panel_gemm_input_phases_accepts(const ConvGeom& g);
void panel_gemm_backward_input_phases(float* grad_x, const float* grad_out, const float* w,
                                      const ConvGeom& g);
// The weight gradient of strided dense convolutions with C_out * K <= 32768 (a stride-1
// one goes to winograd, dot_weight or im2col_blas): dot products of grad_out's rows with
// the same packed panels.
bool panel_gemm_weight_accepts(const ConvGeom& g);
void panel_gemm_backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g);

// Winograd F(4x4, 3x3) or F(2x2, 3x3), by shape (avx2/winograd.cpp): 3x3, stride 1,
// dilation 1, ungrouped, at least 8 input channels, output rows 7+ wide, C_out * C_in <=
// 256 * 256. The input gradient: the flipped forward pass (flip.h) where that geometry is
// accepted. The weight gradient: the shapes the forward pass takes.
bool winograd_accepts(const ConvGeom& g);
void winograd_forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g);
bool winograd_input_accepts(const ConvGeom& g);
void winograd_backward_input(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g);
void winograd_backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g);

// ---- on both vector targets, one file each (float32) ----

// Channels-last in cache, multiplier 1, any plane. AVX-512 (avx512/dw_channels_last.cpp):
// channels a multiple of 16, horizontal stride 1 or 2. AVX2 + FMA without AVX-512
// (avx2/dw_channels_last.cpp): channels a multiple of 8, any stride and dilation.
bool dw_channels_last_accepts(const ConvGeom& g);
void dw_channels_last_forward(float* out, const float* x, const float* w, const float* bias,
                              const ConvGeom& g);
void dw_channels_last_backward_input(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g);
void dw_channels_last_backward_weight(float* grad_w, const float* grad_out, const float* x,
                                      const ConvGeom& g);

// Weight gradient as dot products along the output positions, ungrouped, stride 1, few
// channels. AVX-512 (avx512/dot_weight.cpp): C_out * C_in <= 64 * 64, or <= 128 * 128 on
// planes of 256+ positions, output rows a multiple of 16 wide or whole 8/4/2-wide rows
// (simd::direct_ok). AVX2 + FMA without AVX-512 (avx2/dot_weight.cpp): 3x3, dilation 1,
// C_out * C_in <= 32 * 32, output rows a multiple of 8 wide.
bool dot_weight_accepts(const ConvGeom& g);
void dot_weight_backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g);

// ---- AVX-512 routes (float32), compiled only for AVX-512 targets: avx512/ ----

// Implicit GEMM with our own micro-kernel (avx512/implicit_gemm.cpp). Forward and weight
// gradient: ungrouped, horizontal stride 1 or 2.
bool implicit_gemm_accepts(const ConvGeom& g);
void implicit_gemm_forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g);
void implicit_gemm_backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g);
// Input gradient, stride 1 (any dilation): one stride-1 convolution of grad_out.
bool implicit_gemm_input_s1_accepts(const ConvGeom& g);
void implicit_gemm_backward_input_s1(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g);
// Input gradient, stride > 1 (dilation 1): one stride-1 convolution per phase of the input.
bool implicit_gemm_input_phases_accepts(const ConvGeom& g);
void implicit_gemm_backward_input_phases(float* grad_x, const float* grad_out, const float* w,
                                         const ConvGeom& g);

// The same three under bf16 matmul precision (core/precision.h), on bfloat16 operands with
// float32 sums (avx512/bf16_panels.h); they accept nothing where the target lacks
// AVX512-BF16 or the precision is fp32.
bool implicit_gemm_bf16_accepts(const ConvGeom& g);
bool implicit_gemm_bf16_input_s1_accepts(const ConvGeom& g);
bool implicit_gemm_bf16_input_phases_accepts(const ConvGeom& g);
void implicit_gemm_bf16_forward(float* out, const float* x, const float* w, const float* bias,
                                const ConvGeom& g);
void implicit_gemm_bf16_backward_input_s1(float* grad_x, const float* grad_out, const float* w,
                                          const ConvGeom& g);
void implicit_gemm_bf16_backward_input_phases(float* grad_x, const float* grad_out, const float* w,
                                              const ConvGeom& g);
void implicit_gemm_bf16_backward_weight(float* grad_w, const float* grad_out, const float* x,
                                        const ConvGeom& g);

// The 3x3, stride-1 ones of those under bf16 matmul precision, as bfloat16 dot products
// (avx512/dot_weight_bf16.cpp): rows chunked by 32 positions (flat) or at least 24 wide.
// Accepts nothing where the target lacks AVX512-BF16 or the precision is fp32.
bool dot_weight_bf16_accepts(const ConvGeom& g);
void dot_weight_bf16_backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g);

// Depthwise, multiplier 1, stride 2, "same" 3x3 / 5x5 on 4x4 planes, four channels per
// vector (avx512/dw_s2_4x4.cpp).
bool dw_s2_4x4_accepts(const ConvGeom& g);
void dw_s2_4x4_forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g);
void dw_s2_4x4_backward_input(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g);
void dw_s2_4x4_backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g);

// The same on 8x8 and 16x16 planes through the four polyphase components of the input
// (avx512/dw_flat_s2.cpp).
bool dw_flat_s2_accepts(const ConvGeom& g);
void dw_flat_s2_forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g);
void dw_flat_s2_backward_input(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g);
void dw_flat_s2_backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g);

// Stride 2 (both directions), dilation 1, square 3x3 / 5x5 kernels, output rows 8-128
// wide: each input row split once into its even and odd columns (avx512/dw_s2.cpp).
bool dw_s2_accepts(const ConvGeom& g);
void dw_s2_forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g);
void dw_s2_backward_input(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g);

// In place in NCHW, output rows 16-128 wide, stride 1 or 2 (avx512/dw_rows.cpp); the input
// gradient for stride 1 with input rows 16-128 wide only.
bool dw_rows_accepts(const ConvGeom& g);
void dw_rows_forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g);
bool dw_rows_input_accepts(const ConvGeom& g);
void dw_rows_backward_input(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g);

// Weight gradient streaming the batch in memory order, for the planes the row kernels take
// (stride 1 or 2 both ways, square 3x3 / 5x5; stride 2 from 8-wide output rows, dilation
// 1) (avx512/dw_stream_weight.cpp).
bool dw_stream_weight_accepts(const ConvGeom& g);
void dw_stream_backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g);

// "Same" stride-1 convolutions (up to 5x5) on square planes 1, 2, 4 or 8 wide, one flat
// 16-float vector at a time (avx512/dw_flat.cpp).
bool dw_flat_accepts(const ConvGeom& g);
void dw_flat_forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g);
void dw_flat_backward_input(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g);
void dw_flat_backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g);

}  // namespace ag::cpu
