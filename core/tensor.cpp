// Tensor factories, metadata, in-place fills and copies, reads and printing. The
// differentiable views and conversions live in core/ops/shape.cpp.
#include "core/tensor.h"

#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>

#include "core/autograd.h"
#include "core/kernels.h"
#include "core/random.h"

namespace ag {

namespace {
bool g_poison_empty = false;
}
void set_poison_empty(bool on) { g_poison_empty = on; }
bool poison_empty() { return g_poison_empty; }

std::string shape_str(const Shape& shape) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? "," : "") << shape[i];
  os << "]";
  return os.str();
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

// ------------------------------------------------------------------ factories
Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) AG_CHECK(d >= 0, "empty: negative dimension in shape " << shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage =
      std::make_shared<Storage>(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  Tensor t(std::move(impl));
  if (g_poison_empty && is_floating(dtype)) t.fill_(std::numeric_limits<double>::quiet_NaN());
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1.0, dtype, device);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor Tensor::from_vector(const std::vector<double>& values, const Shape& shape, DType dtype) {
  AG_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape),
           "from_vector: " << values.size() << " values do not fill shape " << shape_str(shape));
  Tensor t = empty(shape, dtype);
  dispatch_all(dtype, "from_vector", [&]<typename scalar_t>() {
    scalar_t* p = t.data<scalar_t>();
    for (size_t i = 0; i < values.size(); ++i) p[i] = static_cast<scalar_t>(values[i]);
  });
  return t;
}

Tensor Tensor::from_labels(const std::vector<int64_t>& labels) {
  Tensor t = empty({static_cast<int64_t>(labels.size())}, DType::i64);
  std::copy(labels.begin(), labels.end(), t.data<int64_t>());
  return t;
}

Tensor Tensor::arange(int64_t n, DType dtype) {
  Tensor t = empty({n}, dtype);
  dispatch_all(dtype, "arange", [&]<typename scalar_t>() {
    scalar_t* p = t.data<scalar_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<scalar_t>(i);
  });
  return t;
}

Tensor Tensor::uniform(const Shape& shape, double low, double high, DType dtype) {
  Tensor t = empty(shape, dtype);
  Generator& gen = global_generator();
  dispatch_float(dtype, "uniform", [&]<typename scalar_t>() {
    scalar_t* p = t.data<scalar_t>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<scalar_t>(gen.uniform(low, high));
  });
  return t;
}

Tensor Tensor::normal(const Shape& shape, double mean, double stddev, DType dtype) {
  Tensor t = empty(shape, dtype);
  Generator& gen = global_generator();
  dispatch_float(dtype, "normal", [&]<typename scalar_t>() {
    scalar_t* p = t.data<scalar_t>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<scalar_t>(gen.normal(mean, stddev));
  });
  return t;
}

// ------------------------------------------------------------------ metadata
#define AG_REQUIRE_DEFINED(what) AG_CHECK(impl_ != nullptr, what << ": the tensor is undefined")

const Shape& Tensor::shape() const {
  AG_REQUIRE_DEFINED("shape()");
  return impl_->shape;
}
const Shape& Tensor::strides() const {
  AG_REQUIRE_DEFINED("strides()");
  return impl_->strides;
}
int64_t Tensor::offset() const {
  AG_REQUIRE_DEFINED("offset()");
  return impl_->offset;
}
int64_t Tensor::size(int64_t d) const {
  int64_t n = dim();
  if (d < 0) d += n;
  AG_CHECK(d >= 0 && d < n, "size(): dimension " << d << " out of range for shape " << shape_str(shape()));
  return impl_->shape[d];
}
int64_t Tensor::numel() const { return shape_numel(shape()); }
DType Tensor::dtype() const {
  AG_REQUIRE_DEFINED("dtype()");
  return impl_->dtype;
}
Device Tensor::device() const {
  AG_REQUIRE_DEFINED("device()");
  return impl_->storage->device();
}
const std::shared_ptr<Storage>& Tensor::storage() const {
  AG_REQUIRE_DEFINED("storage()");
  return impl_->storage;
}

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (size_t i = impl_->shape.size(); i-- > 0;) {
    if (impl_->shape[i] == 1) continue;  // the stride of a size-1 dim never matters
    if (impl_->strides[i] != expected) return false;
    expected *= impl_->shape[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  AG_REQUIRE_DEFINED("raw_data()");
  return static_cast<char*>(impl_->storage->data()) + impl_->offset * dtype_size(impl_->dtype);
}

// ------------------------------------------------------------------ in-place
Tensor& Tensor::fill_(double value) {
  fill(*this, value);
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  AG_CHECK(shape() == src.shape(), "copy_: shapes differ: destination " << shape_str(shape()) << ", source "
                                                                        << shape_str(src.shape()));
  if (device() == src.device()) {
    copy(*this, src);
    return *this;
  }
  // Across devices: make the source contiguous and of our dtype on its own device, move
  // the bytes, then place them (strided) here.
  Tensor staged = src.contiguous();
  if (staged.dtype() != dtype()) staged = staged.to(dtype());
  if (is_contiguous()) {
    copy_between_devices(*this, staged);
  } else {
    Tensor landing = Tensor::empty(shape(), dtype(), device());
    copy_between_devices(landing, staged);
    copy(*this, landing);
  }
  return *this;
}

// ------------------------------------------------------------------ reads
std::vector<double> Tensor::to_vector() const {
  Tensor host = device().is_cpu() ? contiguous() : to(Device::cpu()).contiguous();
  std::vector<double> values(static_cast<size_t>(numel()));
  dispatch_all(dtype(), "to_vector", [&]<typename scalar_t>() {
    const scalar_t* p = host.data<scalar_t>();
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(p[i]);
  });
  return values;
}

std::vector<int64_t> Tensor::to_labels() const {
  AG_CHECK(dtype() == DType::i64, "to_labels: expected an int64 tensor, got " << dtype());
  Tensor host = device().is_cpu() ? contiguous() : to(Device::cpu()).contiguous();
  const int64_t* p = host.data<int64_t>();
  return std::vector<int64_t>(p, p + numel());
}

double Tensor::item() const {
  AG_CHECK(numel() == 1, "item(): the tensor has " << numel() << " elements, shape " << shape_str(shape()));
  return to_vector()[0];
}

// ------------------------------------------------------------------ autograd meta
bool Tensor::requires_grad() const {
  AG_REQUIRE_DEFINED("requires_grad()");
  return impl_->requires_grad || impl_->grad_fn != nullptr;
}
Tensor& Tensor::set_requires_grad(bool value) {
  AG_CHECK(is_leaf(), "set_requires_grad: only leaf tensors can change requires_grad; use detach() first");
  AG_CHECK(!value || is_floating(dtype()),
           "set_requires_grad: " << dtype() << " tensors cannot require grad");
  impl_->requires_grad = value;
  return *this;
}
bool Tensor::is_leaf() const { return impl_->grad_fn == nullptr; }
const Tensor& Tensor::grad() const {
  AG_REQUIRE_DEFINED("grad()");
  return impl_->grad;
}
void Tensor::set_grad(const Tensor& g) { impl_->grad = g; }
void Tensor::zero_grad() { impl_->grad = Tensor(); }
void Tensor::set_post_accumulate_grad_hook(std::function<void()> hook) {
  AG_REQUIRE_DEFINED("set_post_accumulate_grad_hook()");
  if (hook) {
    AG_CHECK(is_leaf() && impl_->requires_grad,
             "set_post_accumulate_grad_hook: only a leaf that requires grad has one, got " << describe());
    AG_CHECK(!impl_->post_accumulate_grad_hook, "set_post_accumulate_grad_hook: the tensor "
                                                    << describe()
                                                    << " already has a hook (remove it first: pass an "
                                                       "empty function)");
  }
  impl_->post_accumulate_grad_hook = std::move(hook);
}
const std::shared_ptr<Node>& Tensor::grad_fn() const {
  AG_REQUIRE_DEFINED("grad_fn()");
  return impl_->grad_fn;
}
void Tensor::set_grad_fn(std::shared_ptr<Node> fn) { impl_->grad_fn = std::move(fn); }

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->offset = impl_->offset;
  impl->shape = impl_->shape;
  impl->strides = impl_->strides;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

void Tensor::backward(const Tensor& grad_output, bool retain_graph) const {
  Tensor g = grad_output;
  if (!g.defined()) {
    AG_CHECK(numel() == 1, "backward: without an explicit gradient the tensor must be a scalar, got shape "
                               << shape_str(shape()));
    g = Tensor::ones(shape(), dtype(), device());
  }
  run_backward(*this, g, retain_graph);
}

// ------------------------------------------------------------------ printing
std::string Tensor::describe() const {
  if (!defined()) return "undefined";
  return std::string(dtype_name(dtype())) + shape_str(shape()) + " " + device().str();
}

namespace {
void print_recursive(std::ostringstream& os, const std::vector<double>& v, const Shape& shape,
                     const Shape& strides, size_t d, int64_t base, int max_per_dim, bool is_int) {
  if (d == shape.size()) {
    if (is_int)
      os << static_cast<int64_t>(v[base]);
    else
      os << std::setprecision(5) << v[base];
    return;
  }
  os << "[";
  int64_t n = shape[d];
  for (int64_t i = 0; i < n; ++i) {
    if (n > max_per_dim && i == max_per_dim / 2) {
      os << "..., ";
      i = n - max_per_dim / 2;
    }
    print_recursive(os, v, shape, strides, d + 1, base + i * strides[d], max_per_dim, is_int);
    if (i + 1 < n) os << (d + 1 == shape.size() ? ", " : ",\n" + std::string(d + 1, ' '));
  }
  os << "]";
}
}  // namespace

std::string Tensor::str(int max_per_dim) const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream os;
  os << "Tensor(";
  print_recursive(os, to_vector(), shape(), contiguous_strides(shape()), 0, 0, max_per_dim,
                  dtype() == DType::i64);
  os << ", " << describe() << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace ag
