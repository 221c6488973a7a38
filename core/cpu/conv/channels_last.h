// The depthwise kernel [C, 1, KH, KW] channels-last, as the channels-last depthwise routes
// read it (avx512/dw_channels_last.cpp, avx2/dw_channels_last.cpp): tap t's weights of all
// channels are contiguous, so one vector load gives a block of channels their weight.
#pragma once

#include <vector>

#include "core/cpu/conv/geom.h"

namespace ag::cpu {

// wt [taps][C] from w [C][1][KH][KW] (multiplier 1).
inline std::vector<float> weights_channels_last(const float* w, const ConvGeom& g) {
  const int64_t taps = g.kh * g.kw;
  std::vector<float> wt(static_cast<size_t>(taps * g.c));
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t t = 0; t < taps; ++t) wt[static_cast<size_t>(t * g.c + c)] = w[c * taps + t];
  return wt;
}

}  // namespace ag::cpu
