// The input gradient of a stride-1 convolution as a forward convolution: of grad_out [N,
// CO, HO, WO] with the kernel flipped and, group by group, its channel axes swapped, padded
// by d (k - 1) - p. Run as a forward pass it needs no col2im (im2col.cpp) and reuses the
// forward kernels (avx2/panel_gemm.cpp).
#pragma once

#include <vector>

#include "core/cpu/conv/geom.h"

namespace ag::cpu {

// Stride 1, a padding the flipped pass can express, and at least 8 input channels a group:
// fewer would make the forward GEMM as few rows (a stem's 3 ran 3x slower that way).
inline bool input_grad_as_forward(const ConvGeom& g) {
  return g.sh == 1 && g.sw == 1 && !g.pointwise() && g.cg >= 8 && g.ph <= g.dh * (g.kh - 1) &&
         g.pw <= g.dw * (g.kw - 1);
}

// The geometry of that forward pass: grad_out as its input, grad_x as its output.
inline ConvGeom flipped_geometry(const ConvGeom& g) {
  Conv2dParams p;
  p.pad_h = g.dh * (g.kh - 1) - g.ph;
  p.pad_w = g.dw * (g.kw - 1) - g.pw;
  p.dilation_h = g.dh;
  p.dilation_w = g.dw;
  p.groups = g.groups;
  return ConvGeom({g.n, g.co, g.ho, g.wo}, {g.c, g.cog, g.kh, g.kw}, p);
}

// flipped [C, COG, KH, KW] from w [CO, CG, KH, KW]: flipped[grp cg + c][o][i][j] =
// w[grp cog + o][c][KH - 1 - i][KW - 1 - j].
template <typename T>
std::vector<T> flipped_weights(const T* w, const ConvGeom& g) {
  std::vector<T> out(static_cast<size_t>(g.c * g.cog * g.kh * g.kw));
  const int64_t taps = g.kh * g.kw;
  for (int64_t grp = 0; grp < g.groups; ++grp)
    for (int64_t o = 0; o < g.cog; ++o)
      for (int64_t c = 0; c < g.cg; ++c) {
        const T* src = w + ((grp * g.cog + o) * g.cg + c) * taps;
        T* dst = out.data() + ((grp * g.cg + c) * g.cog + o) * taps;
        for (int64_t t = 0; t < taps; ++t) dst[t] = src[taps - 1 - t];
      }
  return out;
}

}  // namespace ag::cpu
