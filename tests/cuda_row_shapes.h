// The [outer, n, inner] shapes of the row-kernel parity tests (reductions, softmax family),
// chosen so that each row kernel runs in all three of its launch shapes: a thread per row
// (many rows, inner > 1), a warp per short row and a block per long row.
#pragma once

#include <string>
#include <vector>

#include "core/dtype.h"

namespace ag::testing {

struct RowShape {
  int64_t outer, n, inner;
};
// thread-per-row, warp (contiguous), warp (strided), block (contiguous), block (strided), tiny
inline const std::vector<RowShape> kRowShapes = {{20, 30, 300}, {64, 10, 1},  {2, 50, 7},
                                                 {3, 5000, 1},  {1, 3000, 3}, {1, 1, 1}};

inline std::string row_name(const char* op, const RowShape& s, DType dt) {
  return std::string(op) + " [" + std::to_string(s.outer) + "," + std::to_string(s.n) + "," +
         std::to_string(s.inner) + "] " + dtype_name(dt);
}

}  // namespace ag::testing
