// Views and copies: reshape, transpose/permute, slice, (un)squeeze, contiguous, clone,
// dtype/device conversion and concatenation, each with its backward.
#include <numeric>

#include "core/ops.h"

namespace ag {

int64_t normalize_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t d = dim < 0 ? dim + ndim : dim;
  AG_CHECK(d >= 0 && d < ndim,
           op << ": dimension " << dim << " is out of range for a " << ndim << "-d tensor");
  return d;
}

namespace {

Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->offset = offset;
  impl->shape = shape;
  impl->strides = strides;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

Shape infer_shape(const Shape& requested, int64_t numel, const Shape& from) {
  Shape shape = requested;
  int64_t known = 1, infer_at = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      AG_CHECK(infer_at < 0, "reshape: more than one -1 in " << shape_str(requested));
      infer_at = static_cast<int64_t>(i);
    } else {
      AG_CHECK(shape[i] >= 0, "reshape: negative size in " << shape_str(requested));
      known *= shape[i];
    }
  }
  if (infer_at >= 0) {
    AG_CHECK(known > 0 && numel % known == 0,
             "reshape: cannot reshape " << shape_str(from) << " into " << shape_str(requested));
    shape[infer_at] = numel / known;
  }
  AG_CHECK(shape_numel(shape) == numel, "reshape: cannot reshape " << shape_str(from) << " (" << numel
                                                                   << " elements) into "
                                                                   << shape_str(requested));
  return shape;
}

struct ReshapeBackward : Node {
  Shape input_shape;
  const char* name() const override { return "ReshapeBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {g.contiguous().view(input_shape)}; }
};

struct PermuteBackward : Node {
  std::vector<int64_t> inverse;
  const char* name() const override { return "PermuteBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {g.permute(inverse)}; }
};

struct SliceBackward : Node {
  Shape input_shape;
  int64_t start = 0;
  const char* name() const override { return "SliceBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor full = Tensor::zeros(input_shape, g.dtype(), g.device());
    Tensor part = full.slice(start, start + g.size(0));
    part.copy_(g);
    return {full};
  }
};

struct CopyBackward : Node {  // contiguous(), clone(): the gradient passes through
  const char* name() const override { return "CopyBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {g}; }
};

struct ConvertBackward : Node {  // to(dtype), to(device): convert the gradient back
  DType dtype;
  Device device;
  const char* name() const override { return "ConvertBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {g.to(device).to(dtype)}; }
};

struct CatBackward : Node {
  int64_t dim = 0;
  std::vector<int64_t> sizes;
  const char* name() const override { return "CatBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    std::vector<Tensor> grads;
    Tensor moved = g.transpose(0, dim);
    int64_t start = 0;
    for (int64_t s : sizes) {
      grads.push_back(moved.slice(start, start + s).transpose(0, dim).contiguous());
      start += s;
    }
    return grads;
  }
};

}  // namespace

Tensor Tensor::view(const Shape& requested) const {
  AG_CHECK(is_contiguous(), "view: the tensor " << describe() << " is not contiguous; use reshape()");
  Shape shape = infer_shape(requested, numel(), this->shape());
  Tensor out = make_view(*this, shape, contiguous_strides(shape), offset());
  if (any_requires_grad({this})) {
    auto node = std::make_shared<ReshapeBackward>();
    node->input_shape = this->shape();
    return attach_node(out, node, {this});
  }
  return out;
}

Tensor Tensor::reshape(const Shape& shape) const {
  return is_contiguous() ? view(shape) : contiguous().view(shape);
}

Tensor Tensor::flatten(int64_t start_dim) const {
  start_dim = normalize_dim(start_dim, dim(), "flatten");
  Shape shape(this->shape().begin(), this->shape().begin() + start_dim);
  shape.push_back(-1);
  if (numel() == 0) shape.back() = 0;
  return reshape(shape);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  const int64_t nd = dim();
  AG_CHECK(static_cast<int64_t>(dims.size()) == nd,
           "permute: " << dims.size() << " dims given for a " << nd << "-d tensor");
  Shape shape(nd), strides(nd);
  std::vector<int64_t> inverse(nd, -1);
  for (int64_t i = 0; i < nd; ++i) {
    int64_t d = normalize_dim(dims[i], nd, "permute");
    AG_CHECK(inverse[d] < 0, "permute: dimension " << d << " repeated");
    inverse[d] = i;
    shape[i] = this->shape()[d];
    strides[i] = this->strides()[d];
  }
  Tensor out = make_view(*this, shape, strides, offset());
  if (any_requires_grad({this})) {
    auto node = std::make_shared<PermuteBackward>();
    node->inverse = inverse;
    return attach_node(out, node, {this});
  }
  return out;
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  std::vector<int64_t> dims(dim());
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[normalize_dim(d0, dim(), "transpose")], dims[normalize_dim(d1, dim(), "transpose")]);
  return permute(dims);
}

Tensor Tensor::slice(int64_t start, int64_t end) const {
  AG_CHECK(dim() >= 1, "slice: a 0-d tensor cannot be sliced");
  AG_CHECK(0 <= start && start <= end && end <= size(0),
           "slice: rows [" << start << ", " << end << ") outside a tensor of shape " << shape_str(shape()));
  Shape shape = this->shape();
  shape[0] = end - start;
  Tensor out = make_view(*this, shape, strides(), offset() + start * strides()[0]);
  if (any_requires_grad({this})) {
    auto node = std::make_shared<SliceBackward>();
    node->input_shape = this->shape();
    node->start = start;
    return attach_node(out, node, {this});
  }
  return out;
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = normalize_dim(d, dim() + 1, "unsqueeze");
  Shape shape = this->shape();
  shape.insert(shape.begin() + d, 1);
  return reshape(shape);
}

Tensor Tensor::squeeze(int64_t d) const {
  d = normalize_dim(d, dim(), "squeeze");
  AG_CHECK(shape()[d] == 1, "squeeze: dimension " << d << " has size " << shape()[d] << ", not 1");
  Shape shape = this->shape();
  shape.erase(shape.begin() + d);
  return reshape(shape);
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::clone() const {
  profiler::Scope profile("copy");
  Tensor out = Tensor::empty(shape(), dtype(), device());
  copy(out, *this);
  if (any_requires_grad({this})) return attach_node(out, std::make_shared<CopyBackward>(), {this});
  return out;
}

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  profiler::Scope profile("to_dtype");
  Tensor out = Tensor::empty(shape(), target, device());
  copy(out, *this);
  if (is_floating(target) && any_requires_grad({this})) {
    auto node = std::make_shared<ConvertBackward>();
    node->dtype = dtype();
    node->device = device();
    return attach_node(out, node, {this});
  }
  return out;
}

Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  profiler::Scope profile("to_device");
  Tensor out = Tensor::empty(shape(), dtype(), target);
  out.copy_(*this);
  if (any_requires_grad({this})) {
    auto node = std::make_shared<ConvertBackward>();
    node->dtype = dtype();
    node->device = device();
    return attach_node(out, node, {this});
  }
  return out;
}

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  profiler::Scope profile("cat");
  AG_CHECK(!tensors.empty(), "cat: no tensors given");
  const Tensor& first = tensors[0];
  dim = normalize_dim(dim, first.dim(), "cat");
  Shape shape = first.shape();
  shape[dim] = 0;
  std::vector<int64_t> sizes;
  for (const Tensor& t : tensors) {
    bool compatible = t.dim() == first.dim() && t.dtype() == first.dtype() && t.device() == first.device();
    for (int64_t d = 0; compatible && d < t.dim(); ++d)
      compatible = d == dim || t.shape()[d] == first.shape()[d];
    AG_CHECK(compatible, "cat: " << t.describe() << " does not match " << first.describe()
                                 << " outside dimension " << dim);
    sizes.push_back(t.shape()[dim]);
    shape[dim] += t.shape()[dim];
  }
  Tensor out = Tensor::empty(shape, first.dtype(), first.device());
  Tensor moved = out.detach().transpose(0, dim);
  int64_t start = 0;
  for (const Tensor& t : tensors) {
    Tensor part = moved.slice(start, start + t.shape()[dim]);
    copy(part, t.detach().transpose(0, dim));
    start += t.shape()[dim];
  }
  if (any_requires_grad(tensors)) {
    auto node = std::make_shared<CatBackward>();
    node->dim = dim;
    node->sizes = sizes;
    return attach_node(out, node, tensors);
  }
  return out;
}

}  // namespace ag
