// The fast float32 convolution paths (core/cpu/conv_fast.cpp). Each returns false when it
// does not handle the geometry (or the build lacks AVX-512); the caller then uses the
// im2col + OpenBLAS path. Pointers are contiguous NCHW / [C_out, C_in, KH, KW] data.
#pragma once

#include "core/cpu/conv/geom.h"

namespace ag::cpu {

bool fast_conv_supported(const ConvGeom& g);
// out [N, C_out, H_out, W_out] = conv(x, w) + bias (bias may be null).
bool fast_conv_forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g);
// grad_x [N, C_in, H, W] from grad_out; stride 1 only.
bool fast_conv_backward_input(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g);
// grad_w [C_out, C_in, KH, KW] from grad_out and x.
bool fast_conv_backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g);
// The dot-product form of the weight gradient (conv_weight.cpp): stride 1 with output rows
// a multiple of 16 wide only.
bool dot_weight_grad(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g);

// Depthwise (core/cpu/depthwise_fast.cpp): multiplier 1, channels a multiple of 16,
// horizontal stride 1 or 2.
bool fast_depthwise_supported(const ConvGeom& g);
bool fast_depthwise_forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g);
bool fast_depthwise_backward_input(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g);
bool fast_depthwise_backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g);
// Depthwise in place in NCHW (core/cpu/depthwise_rows.cpp): multiplier 1, output rows
// 16-128 wide; the input gradient for stride 1 only, the weight gradient for 3x3 and 5x5.
bool dw_rows_forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g);
bool dw_rows_backward_input(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g);
bool dw_rows_backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g);

}  // namespace ag::cpu
