#include "layers/dropout.h"

#include <sstream>

#include "core/ops.h"

namespace ag {

Dropout::Dropout(double p) : p_(p) { AG_CHECK(p >= 0 && p < 1, "Dropout: p must lie in [0, 1), got " << p); }

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p_, is_training()); }

std::string Dropout::describe() const {
  std::ostringstream os;  // (not "p=" + to_string: GCC 12 warns falsely on that)
  os << "p=" << p_;
  return os.str();
}

}  // namespace ag
