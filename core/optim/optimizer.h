// Optimizers: SGD (momentum, Nesterov, weight decay) and AdamW over a model's named
// parameters. Each update is one fused kernel per parameter (sgd_update / adamw_update in
// core/kernel_decls.h), run under NoGradGuard.
//
// Weight-decay exclusion rule (exclude_1d_from_decay): a parameter with at most one
// dimension gets no weight decay. In the networks here those are exactly the biases and
// the batch-norm scales and shifts; convolution, linear and class-weight matrices (2-d or
// more) keep their decay. This is the usual practice (e.g. "bag of tricks", timm's
// no_weight_decay on 1-d parameters): decaying a BN scale or a bias towards zero only
// fights the normalisation and does not regularise.
//
// State (for checkpoints) is a list of named tensors, restored bit-exactly by load_state:
//   "step"                  int64 []  number of step() calls so far
//   "lr"                    float64 [] the current learning rate
//   "<param>.step"          int64 []  updates this parameter has received (it may have had
//                                     no gradient on some steps)
//   "<param>.<slot>"        like the parameter: "momentum_buffer" (SGD with momentum),
//                                     "exp_avg" and "exp_avg_sq" (AdamW)
// Slots are created lazily at a parameter's first update, as in PyTorch, so a parameter
// that never had a gradient has no state.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace ag::optim {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// The rule above: true when p (a parameter of any shape) gets no decay under
// exclude_1d_from_decay.
inline bool is_no_decay_parameter(const Tensor& p) { return p.dim() <= 1; }

class Optimizer {
 public:
  // params: (name, parameter) pairs, e.g. Module::named_parameters(); names unique.
  Optimizer(NamedTensors params, double lr);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient (parameters without one are
  // skipped, as in PyTorch). Records no autograd graph.
  void step();
  // Drops every parameter's gradient (the next backward writes it fresh).
  void zero_grad();

  double lr() const { return lr_; }
  void set_lr(double lr);  // a schedule calls this before each step
  int64_t step_count() const { return steps_; }
  const NamedTensors& params() const { return params_; }
  // The effective weight decay of parameter i after the exclusion rule.
  double weight_decay_of(size_t i) const;
  virtual std::string name() const = 0;

  // The state as named tensors (see the top of this file). The tensors are the live
  // buffers: save or copy them, do not modify them.
  NamedTensors state() const;
  // Replaces the whole state with a copy of one produced by state() (of an optimizer of
  // the same kind over the same parameters). Unknown names, shapes that differ from their
  // parameter's and missing slots are errors naming the entry.
  void load_state(const NamedTensors& state);

 protected:
  // Applies one update to params_[i]; count = updates before this one (0 = first).
  // param: [*] the parameter itself, grad: [*] its contiguous gradient, same shape and dtype.
  virtual void update(size_t i, Tensor& param, const Tensor& grad, int64_t count) = 0;
  // The slots a parameter that has been updated must have.
  virtual std::vector<std::string> required_slots() const = 0;
  // Options common to both optimizers, set by the subclasses' constructors.
  void set_decay(double weight_decay, bool exclude_1d);
  // The slot of parameter i, created as zeros like the parameter on first use.
  Tensor& slot(size_t i, const std::string& name);

 private:
  NamedTensors params_;
  std::vector<std::map<std::string, Tensor>> slots_;  // per parameter
  std::vector<int64_t> counts_;                       // per parameter
  double lr_;
  int64_t steps_ = 0;
  double weight_decay_ = 0.0;
  bool exclude_1d_ = false;
};

struct SgdOptions {
  double lr = 0.1;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;  // needs momentum > 0 and dampening 0
  bool exclude_1d_from_decay = false;
};

// torch.optim.SGD: see sgd_update in core/kernel_decls.h for the formula.
class SGD : public Optimizer {
 public:
  SGD(NamedTensors params, const SgdOptions& options);
  std::string name() const override { return "sgd"; }
  const SgdOptions& options() const { return options_; }

 protected:
  void update(size_t i, Tensor& param, const Tensor& grad, int64_t count) override;
  std::vector<std::string> required_slots() const override;

 private:
  SgdOptions options_;
};

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool exclude_1d_from_decay = false;
};

// torch.optim.AdamW: see adamw_update in core/kernel_decls.h for the formula.
class AdamW : public Optimizer {
 public:
  AdamW(NamedTensors params, const AdamWOptions& options);
  std::string name() const override { return "adamw"; }
  const AdamWOptions& options() const { return options_; }

 protected:
  void update(size_t i, Tensor& param, const Tensor& grad, int64_t count) override;
  std::vector<std::string> required_slots() const override;

 private:
  AdamWOptions options_;
};

}  // namespace ag::optim
