#include "layers/dropout.h"

#include "layers/functional.h"

namespace ag {

Dropout::Dropout(double p) : p_(p) { AG_CHECK(p >= 0 && p < 1, "Dropout: p must lie in [0, 1), got " << p); }

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p_, is_training()); }

std::string Dropout::describe() const { return "p=" + std::to_string(p_); }

}  // namespace ag
