#include "models/trace.h"

#include "core/profiler.h"

namespace ag {

namespace {
thread_local ForwardTrace* active_trace = nullptr;
}  // namespace

ForwardTrace::ForwardTrace() : previous_(active_trace) { active_trace = this; }

ForwardTrace::~ForwardTrace() { active_trace = previous_; }

Tensor call_layer(Module& m, const Tensor& x) {
  profiler::LayerScope profile_layer(&m);  // ops inside are charged to this layer
  ForwardTrace* trace = active_trace;
  if (trace == nullptr) return m.forward(x);
  // The row is reserved before the call so that a parent precedes its children.
  const size_t row = trace->calls_.size();
  trace->calls_.push_back({&m, trace->depth_, x.shape(), {}});
  struct DepthScope {
    int& depth;
    explicit DepthScope(int& d) : depth(d) { ++depth; }
    ~DepthScope() { --depth; }
  } scope(trace->depth_);
  Tensor y = m.forward(x);
  trace->calls_[row].output = y.shape();
  return y;
}

void name_layers_for_profile(Module& root) {
  for (auto& [path, m] : root.named_modules())
    profiler::name_layer(m, (path.empty() ? "" : path + " ") + "(" + m->type_name() + ")");
}

}  // namespace ag
