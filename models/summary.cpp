#include "models/summary.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include "layers/conv2d.h"
#include "layers/linear.h"
#include "layers/squeeze_excite.h"
#include "losses/cosine_head.h"
#include "models/trace.h"

namespace ag {

namespace {

// The MACs of one call of m computed from its own weights, or 0 for modules that only
// call others (whose MACs are their children's). SqueezeExcite is a layer that calls its
// two 1x1 convs directly (untraced) on the pooled [N, C, 1, 1] input.
int64_t own_macs(Module& m, const LayerCall& call) {
  const int64_t out_numel = shape_numel(call.output);
  if (auto* conv = dynamic_cast<Conv2d*>(&m)) {
    const Shape& w = conv->weight().shape();
    return out_numel * w[1] * w[2] * w[3];
  }
  if (auto* fc = dynamic_cast<Linear*>(&m)) return out_numel * fc->in_features();
  if (auto* head = dynamic_cast<CosineHead*>(&m)) return out_numel * head->feature_dim();
  if (dynamic_cast<SqueezeExcite*>(&m)) {
    int64_t weights = 0;
    for (auto& [name, child] : m.named_children())
      if (auto* conv = dynamic_cast<Conv2d*>(child)) weights += conv->weight().numel();
    return call.input.at(0) * weights;
  }
  return 0;
}

std::string row_label(const LayerSummary& l) {
  std::string label = l.name.empty() ? l.type : l.name + ": " + l.type;
  if (!l.description.empty() && l.leaf) label += "(" + l.description + ")";
  return std::string(2 * static_cast<size_t>(l.depth), ' ') + label;
}

std::string shape_text(const Shape& s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

}  // namespace

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

ModelSummary summarize(Module& model, const Shape& input) {
  ModelSummary s;
  s.input = input;
  DType dtype = DType::f32;
  Device device = Device::cpu();
  for (auto& [_, p] : model.named_parameters()) {
    dtype = p.dtype();
    device = p.device();
    s.total_params += p.numel();
    if (p.requires_grad()) s.trainable_params += p.numel();
    s.params_mb += static_cast<double>(p.nbytes()) / (1 << 20);
  }
  for (auto& [_, b] : model.named_buffers()) {
    s.buffer_values += b.numel();
    s.params_mb += static_cast<double>(b.nbytes()) / (1 << 20);
  }
  std::map<const Module*, std::string> names;
  for (auto& [name, m] : model.named_modules()) names.emplace(m, name);

  const bool was_training = model.is_training();
  model.eval();
  std::vector<LayerCall> calls;
  try {
    NoGradGuard no_grad;
    ForwardTrace trace;
    call_layer(model, Tensor::zeros(input, dtype, device));
    calls = trace.calls();
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);

  // Own MACs first, then each row's are added to its ancestors (found with a depth stack).
  std::vector<size_t> stack;
  for (const LayerCall& call : calls) {
    LayerSummary l;
    auto it = names.find(call.module);
    l.name = it != names.end() ? it->second : "?";
    l.type = call.module->type_name();
    l.description = call.module->describe();
    l.depth = call.depth;
    l.output = call.output;
    l.params = call.module->parameter_count();
    l.macs = own_macs(*call.module, call);
    while (!stack.empty() && s.layers[stack.back()].depth >= l.depth) stack.pop_back();
    for (size_t a : stack) s.layers[a].macs += l.macs;
    if (!stack.empty()) s.layers[stack.back()].leaf = false;
    stack.push_back(s.layers.size());
    s.layers.push_back(l);
  }
  for (const LayerSummary& l : s.layers) {
    if (l.depth == 0) s.total_macs += l.macs;
    if (l.leaf)
      s.activations_mb += static_cast<double>(shape_numel(l.output) * dtype_size(dtype)) / (1 << 20);
  }
  return s;
}

std::string format_summary(const ModelSummary& s, int max_depth) {
  std::vector<const LayerSummary*> shown;
  size_t label_width = 12;
  for (const LayerSummary& l : s.layers)
    if (l.depth <= max_depth) {
      shown.push_back(&l);
      label_width = std::max(label_width, row_label(l).size());
    }
  label_width = std::min<size_t>(label_width, 80);
  char line[512];
  auto row = [&](const std::string& a, const std::string& b, const std::string& c, const std::string& d) {
    std::snprintf(line, sizeof(line), "%-*s  %-18s %12s %15s\n", static_cast<int>(label_width), a.c_str(),
                  b.c_str(), c.c_str(), d.c_str());
    return std::string(line);
  };
  const std::string rule(label_width + 50, '='), thin(label_width + 50, '-');
  std::ostringstream os;
  os << rule << "\n" << row("Layer (type)", "Output shape", "Params", "MACs") << rule << "\n";
  for (const LayerSummary* l : shown)
    os << row(row_label(*l), shape_text(l->output), with_commas(l->params),
              l->macs ? with_commas(l->macs) : "--");
  char mb[64];
  os << rule << "\n";
  os << "Total params: " << with_commas(s.total_params) << "\n";
  os << "Trainable params: " << with_commas(s.trainable_params) << "\n";
  os << "Non-trainable params: " << with_commas(s.total_params - s.trainable_params) << "\n";
  os << "Buffers (running statistics): " << with_commas(s.buffer_values) << " values\n";
  std::snprintf(mb, sizeof(mb), "%.2f", static_cast<double>(s.total_macs) / 1e6);
  os << "Total MACs: " << with_commas(s.total_macs) << " (" << mb << " M) for input " << shape_text(s.input)
     << "\n";
  os << thin << "\n";
  std::snprintf(mb, sizeof(mb), "%.2f", s.params_mb);
  os << "Params + buffers size (MB): " << mb << "\n";
  std::snprintf(mb, sizeof(mb), "%.2f", s.activations_mb);
  os << "Forward pass size (MB): " << mb << "\n";
  os << rule << "\n";
  return os.str();
}

int64_t count_macs(Module& model, const Shape& input) { return summarize(model, input).total_macs; }

}  // namespace ag
