#include "layers/module.h"

#include <algorithm>

namespace ag {

Tensor& Module::register_parameter(const std::string& name, Tensor t) {
  AG_CHECK(t.defined(), "register_parameter: '" << name << "' is undefined");
  for (auto& [n, _] : params_) AG_CHECK(n != name, "register_parameter: '" << name << "' registered twice");
  t.set_requires_grad(true);
  params_.emplace_back(name, t);
  return params_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor t) {
  AG_CHECK(t.defined(), "register_buffer: '" << name << "' is undefined");
  buffers_.emplace_back(name, t);
  return buffers_.back().second;
}

void Module::remove_module(const std::string& name) {
  auto it = std::find_if(children_.begin(), children_.end(), [&](const auto& c) { return c.first == name; });
  AG_CHECK(it != children_.end(), type_name() << ": no child module named '" << name << "' to remove");
  children_.erase(it);
}

void Module::collect(const std::string& prefix, bool buffers,
                     std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [name, t] : buffers ? buffers_ : params_) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", buffers, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", false, out);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", true, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [_, t] : named_parameters()) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_children() const {
  std::vector<std::pair<std::string, Module*>> out;
  for (const auto& [name, child] : children_) out.emplace_back(name, child.get());
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out{{"", this}};
  for (const auto& [name, child] : children_)
    for (auto& [sub, m] : child->named_modules()) out.emplace_back(sub.empty() ? name : name + "." + sub, m);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (auto& [_, t] : named_parameters()) n += t.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  on_train_mode_change();
  for (auto& [_, child] : children_) child->train(on);
}

void Module::zero_grad() {
  for (auto& [_, t] : params_) t.zero_grad();
  for (auto& [_, child] : children_) child->zero_grad();
}

namespace {
// Replaces the contents of t (storage, dtype) while keeping the TensorImpl, so every
// handle to this parameter sees the moved data.
void rebind(Tensor& t, const Tensor& moved) {
  TensorImpl* impl = t.impl();
  impl->storage = moved.storage();
  impl->offset = moved.offset();
  impl->strides = moved.strides();
  impl->dtype = moved.dtype();
  impl->grad = Tensor();
}
}  // namespace

void Module::to(Device device) {
  NoGradGuard no_grad;
  for (auto& [_, t] : params_) rebind(t, t.detach().contiguous().to(device));
  for (auto& [_, t] : buffers_) rebind(t, t.detach().contiguous().to(device));
  for (auto& [_, child] : children_) child->to(device);
}

void Module::to(DType dtype) {
  NoGradGuard no_grad;
  for (auto& [_, t] : params_)
    if (is_floating(t.dtype())) rebind(t, t.detach().to(dtype).contiguous());
  for (auto& [_, t] : buffers_)
    if (is_floating(t.dtype())) rebind(t, t.detach().to(dtype).contiguous());
  for (auto& [_, child] : children_) child->to(dtype);
}

Sequential::Sequential(std::vector<ModulePtr> layers) {
  for (auto& layer : layers) append(std::move(layer));
}

void Sequential::append(ModulePtr layer) {
  register_module(std::to_string(layers_.size()), layer);
  layers_.push_back(std::move(layer));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (auto& layer : layers_) h = layer->forward(h);
  return h;
}

}  // namespace ag
