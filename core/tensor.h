// Tensor: a cheap, shared handle to {storage, offset, shape, strides, dtype, autograd meta}.
// Row-major (NCHW for images). Views (reshape, transpose, permute, slice) share storage;
// kernels take contiguous inputs, so ops call contiguous() where they need to.
// Copying a Tensor copies the handle, not the data (use clone() for that).
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/storage.h"

namespace ag {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& shape);  // "[8,3,32,32]"
int64_t shape_numel(const Shape& shape);
Shape contiguous_strides(const Shape& shape);

struct Node;
struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories (every element is written unless the name says empty)
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
                     Device device = Device::cpu());
  static Tensor scalar(double value, DType dtype = DType::f32, Device device = Device::cpu());
  // values.size() must equal the product of shape.
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype = DType::f32);
  static Tensor from_labels(const std::vector<int64_t>& labels);  // int64 [N]
  static Tensor arange(int64_t n, DType dtype = DType::f32);
  // Seeded random init from the program's generator (core/random.h).
  static Tensor uniform(const Shape& shape, double low, double high, DType dtype = DType::f32);
  static Tensor normal(const Shape& shape, double mean, double stddev, DType dtype = DType::f32);

  // ---- metadata
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Shape& strides() const;
  int64_t offset() const;
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  bool is_contiguous() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  const std::shared_ptr<Storage>& storage() const;
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

  // Typed pointer to the first element (at the view's offset); checks the dtype.
  template <typename T>
  T* data() const;
  void* raw_data() const;

  // ---- views and copies (differentiable)
  Tensor reshape(const Shape& shape) const;  // a view when contiguous, else a copy; one dim may be -1
  Tensor view(const Shape& shape) const;     // must be contiguous
  Tensor flatten(int64_t start_dim = 1) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const { return transpose(0, 1); }
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor slice(int64_t start, int64_t end) const;  // rows [start, end) of dim 0, a view
  Tensor unsqueeze(int64_t d) const;
  Tensor squeeze(int64_t d) const;
  Tensor contiguous() const;  // itself when already contiguous
  Tensor clone() const;       // a contiguous copy
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;

  // ---- in-place (never recorded by autograd: for init, optimizers, buffers)
  Tensor& fill_(double value);
  Tensor& copy_(const Tensor& src);  // same shape; any dtype/device/strides
  Tensor& zero_() { return fill_(0.0); }

  // Reads; these synchronise with the device.
  double item() const;                     // one element
  std::vector<double> to_vector() const;   // all elements, row-major
  std::vector<int64_t> to_labels() const;  // int64 tensor to host vector

  // ---- autograd
  bool requires_grad() const;
  Tensor& set_requires_grad(bool value);  // leaves only
  bool is_leaf() const;
  const Tensor& grad() const;  // undefined until a backward reaches this leaf
  void set_grad(const Tensor& g);
  void zero_grad();  // drops the gradient (next backward writes it fresh)
  const std::shared_ptr<Node>& grad_fn() const;
  void set_grad_fn(std::shared_ptr<Node> fn);
  Tensor detach() const;  // same storage, no history
  // A leaf's post-accumulate-grad hook: run_backward calls it once per backward that
  // reaches this leaf, right after the leaf's last gradient of that backward was added to
  // grad(), i.e. when grad() is final for this backward (also when the leaf is used several
  // times). The data-parallel reducer (core/dist/reducer.h) starts an allreduce from it
  // while backward goes on. One hook per leaf: setting a second one is an error; an empty
  // function removes it.
  void set_post_accumulate_grad_hook(std::function<void()> hook);
  // Backward from this tensor. Without an explicit upstream gradient it must be a scalar.
  void backward(const Tensor& grad_output = Tensor(), bool retain_graph = false) const;

  std::string str(int max_per_dim = 6) const;  // readable printing
  std::string describe() const;                // "float32[8,3] cpu"

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Shape strides;  // in elements
  DType dtype = DType::f32;

  // autograd meta
  bool requires_grad = false;  // for leaves; non-leaves require grad when grad_fn is set
  Tensor grad;
  std::shared_ptr<Node> grad_fn;
  std::function<void()> post_accumulate_grad_hook;  // see Tensor::set_post_accumulate_grad_hook
};

// Debug aid for gradient checks: when on, Tensor::empty fills float tensors with NaN so
// a kernel that forgets to write part of its output is caught.
void set_poison_empty(bool on);
bool poison_empty();

// ----- inline definitions
template <typename T>
T* Tensor::data() const {
  AG_CHECK(defined(), "data(): the tensor is undefined");
  AG_CHECK(dtype() == dtype_of<T>(),
           "data(): the tensor is " << dtype() << ", but " << dtype_name(dtype_of<T>()) << " was requested");
  return static_cast<T*>(raw_data());
}

}  // namespace ag
