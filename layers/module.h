// Module: the base of every layer and network. A module owns its parameters (leaf tensors
// that require grad) and buffers (state that is saved but not trained, e.g. batch-norm
// running statistics), and registers child modules under names, so every parameter has a
// stable dotted name ("blocks.3.conv1.weight") used by checkpoints and optimizers.
// Networks are runtime objects built by factories, never template types.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/ops.h"

namespace ag {

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // x: the module's input (for image layers [N, C, H, W]).
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
  // A short type name for summaries ("Conv2d").
  virtual std::string type_name() const = 0;
  // Extra text for summaries ("3->64, k=3, s=1").
  virtual std::string describe() const { return ""; }

  // All parameters / buffers of this module and its children, depth first, in
  // registration order, with dotted names.
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  std::vector<Tensor> parameters() const;
  std::vector<std::pair<std::string, Module*>> named_children() const;
  // Every module in the tree (this one first), with dotted names ("" for this one).
  std::vector<std::pair<std::string, Module*>> named_modules();
  int64_t parameter_count() const;  // number of trainable scalars

  void train(bool on = true);  // recursive
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();  // recursive: drops every parameter's gradient

  // Moves every parameter and buffer to the device / converts to the dtype, in place
  // (the tensors keep their identity, so optimizers holding them stay valid).
  void to(Device device);
  void to(DType dtype);

 protected:
  // Registers t as a trainable parameter (sets requires_grad) and returns it.
  Tensor& register_parameter(const std::string& name, Tensor t);
  Tensor& register_buffer(const std::string& name, Tensor t);
  // Registers a child; returns a typed pointer owned by this module.
  template <typename M>
  M* register_module(const std::string& name, std::shared_ptr<M> child) {
    children_.emplace_back(name, child);
    return child.get();
  }
  // Unregisters the child name (and its parameters and buffers); used when a module
  // rewrites itself, e.g. ConvBn folding its batch norm into the convolution.
  void remove_module(const std::string& name);
  // Called by train(); layers whose behaviour depends on the mode may override.
  virtual void on_train_mode_change() {}

 private:
  void collect(const std::string& prefix, bool buffers,
               std::vector<std::pair<std::string, Tensor>>& out) const;

  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

using ModulePtr = std::shared_ptr<Module>;

// Applies its children in order; children are named "0", "1", ...
class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<ModulePtr> layers);
  void append(ModulePtr layer);
  size_t size() const { return layers_.size(); }
  Module& operator[](size_t i) { return *layers_.at(i); }
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Sequential"; }

 private:
  std::vector<ModulePtr> layers_;
};

}  // namespace ag
