// Square convolution parameters in one call, for the convolution suites.
#pragma once

#include "core/nn_params.h"

namespace ag::testing {

inline Conv2dParams geometry(int64_t stride, int64_t pad, int64_t dilation, int64_t groups) {
  Conv2dParams p;
  p.stride_h = p.stride_w = stride;
  p.pad_h = p.pad_w = pad;
  p.dilation_h = p.dilation_w = dilation;
  p.groups = groups;
  return p;
}

}  // namespace ag::testing
