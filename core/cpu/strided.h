// Helpers for the CPU kernels: walking a strided view element by element, and the
// OpenMP size threshold.
#pragma once

#include <cstdint>
#include <vector>

#include "core/parallel.h"
#include "core/tensor.h"

namespace ag::cpu {

// Element offsets (in elements, from the view's first element) of a strided view, visited
// in row-major order. Calls f(linear_index, offset).
template <typename F>
void for_each_offset(const Shape& shape, const Shape& strides, F&& f) {
  const size_t nd = shape.size();
  int64_t total = shape_numel(shape);
  if (total == 0) return;
  std::vector<int64_t> counter(nd, 0);
  int64_t offset = 0;
  for (int64_t i = 0; i < total; ++i) {
    f(i, offset);
    for (size_t d = nd; d-- > 0;) {
      if (++counter[d] < shape[d]) {
        offset += strides[d];
        break;
      }
      offset -= strides[d] * (shape[d] - 1);
      counter[d] = 0;
    }
  }
}

// Strides of `shape` (right-aligned inside out_shape) as seen from out_shape: 0 for
// broadcast dims. The result has out_shape.size() entries.
inline Shape broadcast_strides(const Shape& shape, const Shape& out_shape) {
  Shape own = contiguous_strides(shape);
  Shape result(out_shape.size(), 0);
  size_t lead = out_shape.size() - shape.size();
  for (size_t i = 0; i < shape.size(); ++i) result[lead + i] = shape[i] == 1 ? 0 : own[i];
  return result;
}

}  // namespace ag::cpu
