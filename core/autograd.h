// Reverse-mode autograd: a graph of Nodes. Each differentiable op that needs one has a
// named Node struct beside its wrapper in core/ops/, holding exactly the tensors its
// backward needs. A node has one output; next[i] is where the gradient of input i goes
// (the input's own grad_fn, an AccumulateGrad for a leaf, or null when no gradient is needed).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ag {

struct Node {
  std::vector<std::shared_ptr<Node>> next;  // one per input
  bool released = false;                    // saved tensors already freed by a backward
  int32_t profile_layer = -1;               // the layer its forward ran in (core/profiler.h)

  virtual ~Node() = default;
  virtual const char* name() const = 0;
  // Gradients of the inputs from the gradient of the output: one per input, undefined
  // where next[i] is null.
  virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;
  // Floating-point operations of apply() (for the profiler's GFLOP/s); 0: not counted.
  virtual double flops() const { return 0; }
  // Frees the saved tensors (called after backward unless the graph is retained).
  virtual void release_saved() {}

  bool needs_grad(size_t i) const { return i < next.size() && next[i] != nullptr; }
};

// The sink of a leaf: adds the incoming gradient into leaf.grad.
struct AccumulateGrad : Node {
  std::shared_ptr<TensorImpl> leaf;
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> l) : leaf(std::move(l)) {}
  const char* name() const override { return "AccumulateGrad"; }
  std::vector<Tensor> apply(const Tensor& grad_output) override;
};

// Whether ops record a graph right now (thread-local; see NoGradGuard).
bool grad_mode_enabled();

// RAII: no graph is recorded while one exists (evaluation, optimizer steps).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// The node a gradient for t must flow into, or null when t needs none.
std::shared_ptr<Node> gradient_edge(const Tensor& t);

// True when grad mode is on and any input requires grad: then the op records a node.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);
bool any_requires_grad(const std::vector<Tensor>& inputs);

// Connects node to its inputs and makes it out's grad_fn; returns out.
Tensor attach_node(Tensor out, std::shared_ptr<Node> node, std::initializer_list<const Tensor*> inputs);
Tensor attach_node(Tensor out, std::shared_ptr<Node> node, const std::vector<Tensor>& inputs);

// Backward pass from root with upstream gradient grad (same shape as root).
void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph);

// Adds g into the leaf's gradient, checking shape and dtype with a full-sentence error.
void accumulate_grad(TensorImpl& leaf, const Tensor& g);

}  // namespace ag
