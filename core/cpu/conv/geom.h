// The geometry every CPU convolution route reads (core/cpu/conv/).
#pragma once

#include <cstdint>

#include "core/kernels.h"

namespace ag::cpu {

// All sizes of one convolution, read from x [N, C, H, W] and w [CO, C / G, KH, KW].
struct ConvGeom {
  int64_t n, c, h, w;  // input
  int64_t co, kh, kw;  // output channels, kernel
  int64_t ho, wo;      // output spatial
  int64_t sh, sw, ph, pw, dh, dw, groups;
  int64_t cg, cog;  // channels per group (in, out)
  int64_t k;        // GEMM depth: cg * kh * kw
  int64_t p;        // output positions per sample: ho * wo

  ConvGeom(const Shape& x_shape, const Shape& w_shape, const Conv2dParams& prm)
      : n(x_shape[0]),
        c(x_shape[1]),
        h(x_shape[2]),
        w(x_shape[3]),
        co(w_shape[0]),
        kh(w_shape[2]),
        kw(w_shape[3]),
        ho(conv_out_size(h, kh, prm.stride_h, prm.pad_h, prm.dilation_h)),
        wo(conv_out_size(w, kw, prm.stride_w, prm.pad_w, prm.dilation_w)),
        sh(prm.stride_h),
        sw(prm.stride_w),
        ph(prm.pad_h),
        pw(prm.pad_w),
        dh(prm.dilation_h),
        dw(prm.dilation_w),
        groups(prm.groups),
        cg(c / groups),
        cog(co / groups),
        k(cg * kh * kw),
        p(ho * wo) {}

  // A depthwise convolution (one input channel per group): the depthwise routes take it.
  bool depthwise() const { return cg == 1 && groups == c && groups > 1; }
  // 1x1, stride 1, no padding: the input plane already is the GEMM operand.
  bool pointwise() const { return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
};

}  // namespace ag::cpu
