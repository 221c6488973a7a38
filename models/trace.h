// Forward tracing, for model summaries (models/summary.h). Model code calls its children
// through call_layer(); while a ForwardTrace is alive on the thread, each such call is
// recorded with its nesting depth and its input and output shapes, parents before their
// children (the order torchinfo prints). Without a trace, call_layer is m.forward(x).
// This lives in models/ rather than as hooks on Module so that plain layers pay nothing.
#pragma once

#include <vector>

#include "layers/module.h"

namespace ag {

struct LayerCall {
  Module* module = nullptr;
  int depth = 0;  // 0 for the outermost traced call
  Shape input, output;
};

// RAII: records the call_layer() calls on this thread while it exists. Traces nest: an
// inner one records on its own and the outer one resumes when it ends.
class ForwardTrace {
 public:
  ForwardTrace();
  ~ForwardTrace();
  ForwardTrace(const ForwardTrace&) = delete;
  ForwardTrace& operator=(const ForwardTrace&) = delete;
  const std::vector<LayerCall>& calls() const { return calls_; }

 private:
  friend Tensor call_layer(Module& m, const Tensor& x);
  std::vector<LayerCall> calls_;
  int depth_ = 0;
  ForwardTrace* previous_;
};

// m.forward(x), recorded in the active trace if there is one. x: whatever m accepts.
// While the profiler (core/profiler.h) records, the ops inside are charged to m.
Tensor call_layer(Module& m, const Tensor& x);

// Names every module of root's tree for the profiler's per-layer table: its dotted path and
// type, "stem.0 (Conv2d)"; root itself "(ResNet)".
void name_layers_for_profile(Module& root);

}  // namespace ag
