#include "models/drop_path.h"

#include <sstream>

#include "core/random.h"

namespace ag {

namespace {
void check_p(double p, const char* who) {
  AG_CHECK(p >= 0 && p < 1, who << ": the drop probability p must lie in [0, 1), got " << p);
}
}  // namespace

Tensor drop_path_mask(const Shape& x_shape, double p, DType dtype, Device device) {
  check_p(p, "drop_path");
  AG_CHECK(!x_shape.empty() && x_shape[0] > 0,
           "drop_path: the input needs a batch dim [N, ...], got " << shape_str(x_shape));
  AG_CHECK(is_floating(dtype), "drop_path: needs a float tensor, got " << dtype_name(dtype));
  Shape mask_shape(x_shape.size(), 1);
  mask_shape[0] = x_shape[0];
  Tensor mask = Tensor::empty(mask_shape, dtype);
  const double keep_scale = 1.0 / (1.0 - p);
  Generator& gen = global_generator();
  dispatch_float(dtype, "drop_path", [&]<typename scalar_t>() {
    scalar_t* m = mask.data<scalar_t>();
    for (int64_t i = 0; i < x_shape[0]; ++i) m[i] = gen.uniform() < p ? scalar_t(0) : scalar_t(keep_scale);
  });
  return mask.to(device);
}

Tensor drop_path(const Tensor& x, double p, bool training) {
  check_p(p, "drop_path");
  if (!training || p == 0) return x;
  // A broadcast multiply: its backward (mask times the gradient) comes from mul's node.
  return mul(x, drop_path_mask(x.shape(), p, x.dtype(), x.device()));
}

DropPath::DropPath(double p) : p_(p) { check_p(p, "DropPath"); }

Tensor DropPath::forward(const Tensor& x) { return drop_path(x, p_, is_training()); }

std::string DropPath::describe() const {
  std::ostringstream os;
  os << "p=" << p_;
  return os.str();
}

}  // namespace ag
