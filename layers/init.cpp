#include "layers/init.h"

#include <cmath>

namespace ag::init {

namespace {
int64_t receptive_field(const Tensor& w) {
  AG_CHECK(w.dim() >= 2, "init: fan sizes need a weight of at least 2 dims, got " << shape_str(w.shape()));
  int64_t r = 1;
  for (int64_t d = 2; d < w.dim(); ++d) r *= w.size(d);
  return r;
}
int64_t fan(const Tensor& w, FanMode mode) { return mode == FanMode::fan_in ? fan_in(w) : fan_out(w); }
}  // namespace

int64_t fan_in(const Tensor& weight) { return weight.size(1) * receptive_field(weight); }
int64_t fan_out(const Tensor& weight) { return weight.size(0) * receptive_field(weight); }

void kaiming_normal_(Tensor& weight, FanMode mode, double gain) {
  normal_(weight, 0.0, gain / std::sqrt(static_cast<double>(fan(weight, mode))));
}

void kaiming_uniform_(Tensor& weight, FanMode mode, double gain) {
  const double bound = gain * std::sqrt(3.0 / static_cast<double>(fan(weight, mode)));
  uniform_(weight, -bound, bound);
}

void xavier_uniform_(Tensor& weight, double gain) {
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(fan_in(weight) + fan_out(weight)));
  uniform_(weight, -bound, bound);
}

// Drawn on the host (the generator lives there), then copied into t wherever it lives.
void uniform_(Tensor& t, double low, double high) {
  t.copy_(Tensor::uniform(t.shape(), low, high, t.dtype()));
}
void normal_(Tensor& t, double mean, double stddev) {
  t.copy_(Tensor::normal(t.shape(), mean, stddev, t.dtype()));
}
void zeros_(Tensor& t) { t.fill_(0.0); }
void ones_(Tensor& t) { t.fill_(1.0); }

}  // namespace ag::init
