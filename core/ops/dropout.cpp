// Inverted dropout: composes a host-drawn mask with mul(), so it needs no Node of its own.
#include "core/ops.h"
#include "core/random.h"

namespace ag {

Tensor dropout(const Tensor& x, double p, bool training) {
  profiler::Scope profile("dropout");
  AG_CHECK(p >= 0 && p < 1, "dropout: p must lie in [0, 1), got " << p);
  if (!training || p == 0) return x;
  AG_CHECK(is_floating(x.dtype()), "dropout: needs a float tensor, got " << x.describe());
  // The mask is drawn on the host from the global generator, so a seed reproduces it on
  // every device.
  Tensor mask = Tensor::empty(x.shape(), x.dtype());
  const double keep_scale = 1.0 / (1.0 - p);
  Generator& gen = global_generator();
  dispatch_float(x.dtype(), "dropout", [&]<typename scalar_t>() {
    scalar_t* m = mask.data<scalar_t>();
    for (int64_t i = 0; i < mask.numel(); ++i) m[i] = gen.uniform() < p ? scalar_t(0) : scalar_t(keep_scale);
  });
  return mul(x, mask.to(x.device()));
}

}  // namespace ag
