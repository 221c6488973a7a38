#include "core/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "core/kernels.h"
#include "core/profiler.h"

namespace ag {

namespace {
thread_local bool g_grad_enabled = true;
}

bool grad_mode_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

std::shared_ptr<Node> gradient_edge(const Tensor& t) {
  if (!t.defined()) return nullptr;
  if (t.grad_fn()) return t.grad_fn();
  if (t.impl()->requires_grad) return std::make_shared<AccumulateGrad>(t.impl_ptr());
  return nullptr;
}

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

namespace {
// While profiling, a node (and the gradient sinks of the parameters it reads) remembers the
// layer its forward ran in, so backward time is charged to that layer.
void note_profile_layer(Node& node) {
  if (!profiler::enabled()) return;
  node.profile_layer = profiler::current_layer();
  for (auto& next : node.next)
    if (next && dynamic_cast<AccumulateGrad*>(next.get())) next->profile_layer = node.profile_layer;
}
}  // namespace

Tensor attach_node(Tensor out, std::shared_ptr<Node> node, std::initializer_list<const Tensor*> inputs) {
  node->next.clear();
  for (const Tensor* t : inputs) node->next.push_back(gradient_edge(*t));
  note_profile_layer(*node);
  out.set_grad_fn(std::move(node));
  return out;
}

Tensor attach_node(Tensor out, std::shared_ptr<Node> node, const std::vector<Tensor>& inputs) {
  node->next.clear();
  for (const Tensor& t : inputs) node->next.push_back(gradient_edge(t));
  note_profile_layer(*node);
  out.set_grad_fn(std::move(node));
  return out;
}

void accumulate_grad(TensorImpl& leaf, const Tensor& g) {
  AG_CHECK(g.shape() == leaf.shape, "gradient accumulation: a gradient of shape "
                                        << shape_str(g.shape()) << " arrived for a tensor of shape "
                                        << shape_str(leaf.shape)
                                        << "; the op that produced it has a wrong backward.");
  AG_CHECK(g.dtype() == leaf.dtype, "gradient accumulation: a " << g.dtype() << " gradient arrived for a "
                                                                << leaf.dtype << " tensor.");
  if (!leaf.grad.defined()) {
    // Copy: the incoming gradient may alias a buffer that the graph reuses.
    leaf.grad = g.contiguous().clone();
    return;
  }
  Tensor gc = g.contiguous();
  axpby(leaf.grad, 1.0, leaf.grad, 1.0, gc);
}

std::vector<Tensor> AccumulateGrad::apply(const Tensor& grad_output) {
  accumulate_grad(*leaf, grad_output);
  return {};
}

namespace {
// Nodes in topological order (every node before the nodes its gradient flows into),
// found by an explicit-stack depth-first search so deep nets cannot overflow the stack.
std::vector<Node*> topological_order(Node* root) {
  std::vector<Node*> postorder;
  std::unordered_map<Node*, bool> visited;
  std::vector<std::pair<Node*, size_t>> stack{{root, 0}};
  visited[root] = true;
  while (!stack.empty()) {
    auto& [node, child] = stack.back();
    if (child < node->next.size()) {
      Node* next = node->next[child++].get();
      if (next && !visited[next]) {
        visited[next] = true;
        stack.push_back({next, 0});
      }
    } else {
      postorder.push_back(node);
      stack.pop_back();
    }
  }
  return {postorder.rbegin(), postorder.rend()};
}
}  // namespace

namespace {
// True when nobody but this handle can see t's elements, so they may be overwritten.
bool owned_only_here(const Tensor& t) {
  return t.impl_ptr().use_count() == 1 && t.storage().use_count() == 1 && t.is_contiguous();
}

// pending += incoming, the sum of two gradients of one tensor (a residual fork). Adds in place
// into whichever of the two buffers no one else holds (gradients handed through unchanged,
// like an add's, are shared), saving an allocation and a write pass; a new buffer otherwise.
void add_gradient(Tensor& pending, Tensor incoming) {
  const bool same_layout = pending.shape() == incoming.shape() && pending.dtype() == incoming.dtype();
  if (same_layout && owned_only_here(pending)) {
    axpby(pending, 1.0, pending, 1.0, incoming.contiguous());
  } else if (same_layout && owned_only_here(incoming)) {
    axpby(incoming, 1.0, pending.contiguous(), 1.0, incoming);
    pending = std::move(incoming);
  } else {
    Tensor sum = Tensor::empty(pending.shape(), pending.dtype(), pending.device());
    axpby(sum, 1.0, pending.contiguous(), 1.0, incoming.contiguous());
    pending = std::move(sum);
  }
}

// Runs node on its gradient g and hands each input's gradient to the node it flows into,
// adding it to what that node already got.
void run_node(Node* node, const Tensor& g, std::unordered_map<Node*, Tensor>& pending, bool retain_graph) {
  AG_CHECK(!node->released, "backward through " << node->name()
                                                << " a second time, but its saved tensors were already "
                                                   "freed: pass retain_graph=true to the first backward");
  std::vector<Tensor> input_grads;
  {
    profiler::LayerScope layer(node->profile_layer);
    profiler::Scope profile(node->name(), node->profile_layer, profiler::enabled() ? node->flops() : 0, true);
    input_grads = node->apply(g);
  }
  for (size_t i = 0; i < node->next.size(); ++i) {
    Node* next = node->next[i].get();
    if (!next || !input_grads[i].defined()) continue;
    auto slot = pending.find(next);
    if (slot == pending.end()) {
      pending.emplace(next, std::move(input_grads[i]));
    } else {
      profiler::Scope profile("gradient sum (tensor used twice)", next->profile_layer, 0, true);
      add_gradient(slot->second, std::move(input_grads[i]));
    }
  }
  if (!retain_graph && !dynamic_cast<AccumulateGrad*>(node)) {
    node->release_saved();
    node->released = true;
  }
}

// For each leaf with a post-accumulate-grad hook, the position in order of its last
// AccumulateGrad. gradient_edge() makes one AccumulateGrad per use of a leaf, and the
// topological order puts each after every node feeding it, so after the last one the
// leaf's gradient of this backward is complete.
std::unordered_map<TensorImpl*, size_t> last_sinks_of_hooked_leaves(const std::vector<Node*>& order) {
  std::unordered_map<TensorImpl*, size_t> last;
  for (size_t i = 0; i < order.size(); ++i) {
    auto* sink = dynamic_cast<AccumulateGrad*>(order[i]);
    if (sink && sink->leaf->post_accumulate_grad_hook) last[sink->leaf.get()] = i;
  }
  return last;
}
}  // namespace

void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph) {
  AG_CHECK(root.requires_grad(),
           "backward: the tensor " << root.describe() << " does not require grad and has no grad_fn");
  AG_CHECK(grad.shape() == root.shape(), "backward: the upstream gradient has shape "
                                             << shape_str(grad.shape()) << " but the tensor has shape "
                                             << shape_str(root.shape()));
  NoGradGuard no_grad;  // backward computations are not recorded
  profiler::PhaseScope backward_phase(profiler::Phase::backward);
  // Time of the engine itself: the graph walk, the bookkeeping, freeing the saved tensors.
  profiler::Scope engine("autograd engine");
  std::shared_ptr<Node> root_node = gradient_edge(root);
  std::unordered_map<Node*, Tensor> pending;
  pending[root_node.get()] = grad;
  const std::vector<Node*> order = topological_order(root_node.get());
  const std::unordered_map<TensorImpl*, size_t> last_sink = last_sinks_of_hooked_leaves(order);
  std::unordered_set<TensorImpl*> accumulated;  // hooked leaves that got a gradient so far
  for (size_t position = 0; position < order.size(); ++position) {
    Node* node = order[position];
    auto* sink = last_sink.empty() ? nullptr : dynamic_cast<AccumulateGrad*>(node);
    auto it = pending.find(node);
    if (it != pending.end()) {  // else no gradient reached this node
      Tensor g = std::move(it->second);
      pending.erase(it);
      run_node(node, g, pending, retain_graph);
      if (sink) accumulated.insert(sink->leaf.get());
    }
    // A hooked leaf's hook fires at its last sink, also when no gradient reached that one
    // use, as long as an earlier use got one; a leaf no gradient reached is left alone.
    if (sink && sink->leaf->post_accumulate_grad_hook) {
      auto last = last_sink.find(sink->leaf.get());
      if (last != last_sink.end() && last->second == position && accumulated.count(sink->leaf.get()))
        sink->leaf->post_accumulate_grad_hook();
    }
  }
}

}  // namespace ag
