// Model summary, as torchinfo prints it: one row per layer call (parents before their
// children) with the output shape, parameters and multiply-accumulates, then totals.
// Shapes come from one forward pass of a zero batch in eval mode under NoGradGuard, traced
// through call_layer (models/trace.h): every model in models/ calls its layers that way.
// MACs count convolutions and linear layers only (as the paper tables do):
//   Conv2d: N * C_out * H_out * W_out * (C_in / groups) * KH * KW;  Linear: N * in * out.
#pragma once

#include <string>
#include <vector>

#include "layers/module.h"

namespace ag {

struct LayerSummary {
  std::string name;         // dotted name in the model ("blocks.3.c1"; "" for the model itself)
  std::string type;         // type_name()
  std::string description;  // describe()
  int depth = 0;            // nesting depth of the call (0 for the model)
  Shape output;
  int64_t params = 0;  // trainable scalars of the module, children included
  int64_t macs = 0;    // multiply-accumulates of the call, children included
  bool leaf = true;    // no traced calls inside it
};

struct ModelSummary {
  Shape input;
  std::vector<LayerSummary> layers;
  int64_t total_params = 0;      // every parameter (trainable or not)
  int64_t trainable_params = 0;  // those that require grad
  int64_t buffer_values = 0;     // e.g. batch-norm running statistics: saved, not trained
  int64_t total_macs = 0;
  double params_mb = 0;       // parameters + buffers, in their dtype
  double activations_mb = 0;  // outputs of the leaf layers for this input (what a backward keeps, roughly)
};

// Runs model on zeros of shape `input` (default one CIFAR image) in eval mode, in the dtype
// and on the device of its parameters, and restores the training mode afterwards.
ModelSummary summarize(Module& model, const Shape& input = {1, 3, 32, 32});

// The table and totals; rows deeper than max_depth are hidden (their MACs and parameters
// still count in their parents and in the totals).
std::string format_summary(const ModelSummary& summary, int max_depth = 3);

// summarize(model, input).total_macs.
int64_t count_macs(Module& model, const Shape& input = {1, 3, 32, 32});

// 1234567 -> "1,234,567".
std::string with_commas(int64_t n);

}  // namespace ag
