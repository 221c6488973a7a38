// Parameter structs of the layer kernels (convolution, batch norm, pooling), shared by
// every backend. Kernel sizes come from the weight / are given here; batch, channel and
// spatial sizes always come from the tensors themselves.
#pragma once

#include <cstdint>

namespace ag {

// 2-d convolution geometry (cross-correlation, as in PyTorch). The kernel size comes from
// the weight [C_out, C_in / groups, KH, KW].
struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;  // zero padding on each side
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;  // C_in and C_out divisible by groups; groups == C_in is depthwise
};

// Output size of one spatial dim of a convolution or pooling window (floor mode).
inline int64_t conv_out_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation) {
  const int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;  // 0 when the window does not fit
}

// 2-d max / average pooling geometry (floor mode, as PyTorch's default).
struct Pool2dParams {
  int64_t kernel_h = 2, kernel_w = 2;
  int64_t stride_h = 2, stride_w = 2;
  int64_t pad_h = 0, pad_w = 0;  // implicit -inf (max) / zero (avg) padding
  // Average pooling only: divide by the full window (true, PyTorch's default) or by the
  // number of in-bounds elements (false).
  bool count_include_pad = true;
};

}  // namespace ag
