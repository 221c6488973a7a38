// The Optimizer base: parameter bookkeeping, lazily created per-parameter state, and the
// state's round trip through named tensors for checkpoints.
#include "core/optim/optimizer.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/autograd.h"

namespace ag::optim {

Optimizer::Optimizer(NamedTensors params, double lr)
    : params_(std::move(params)), slots_(params_.size()), counts_(params_.size(), 0), lr_(0.0) {
  std::set<std::string> names;
  std::set<const TensorImpl*> seen;
  for (const auto& [name, p] : params_) {
    AG_CHECK(p.defined(), "optimizer: parameter '" << name << "' is undefined");
    AG_CHECK(is_floating(p.dtype()), "optimizer: parameter '" << name << "' is " << p.describe()
                                                              << "; only float tensors can be optimized");
    AG_CHECK(p.is_leaf() && p.requires_grad(),
             "optimizer: parameter '" << name << "' is not a leaf that requires grad");
    AG_CHECK(name != "step" && name != "lr",
             "optimizer: a parameter may not be named '" << name << "' (reserved for the state)");
    AG_CHECK(names.insert(name).second, "optimizer: two parameters are named '" << name << "'");
    AG_CHECK(seen.insert(p.impl()).second, "optimizer: parameter '" << name << "' is listed twice");
  }
  set_lr(lr);
}

void Optimizer::set_lr(double lr) {
  AG_CHECK(std::isfinite(lr) && lr >= 0.0,
           "optimizer: the learning rate must be finite and >= 0, got " << lr);
  lr_ = lr;
}

void Optimizer::set_decay(double weight_decay, bool exclude_1d) {
  AG_CHECK(std::isfinite(weight_decay) && weight_decay >= 0.0,
           "optimizer: weight decay must be finite and >= 0, got " << weight_decay);
  weight_decay_ = weight_decay;
  exclude_1d_ = exclude_1d;
}

double Optimizer::weight_decay_of(size_t i) const {
  AG_CHECK(i < params_.size(), "optimizer: parameter index " << i << " out of range");
  return exclude_1d_ && is_no_decay_parameter(params_[i].second) ? 0.0 : weight_decay_;
}

Tensor& Optimizer::slot(size_t i, const std::string& name) {
  auto it = slots_[i].find(name);
  if (it != slots_[i].end()) return it->second;
  const Tensor& p = params_[i].second;
  return slots_[i].emplace(name, Tensor::zeros(p.shape(), p.dtype(), p.device())).first->second;
}

void Optimizer::step() {
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i].second;
    if (!p.grad().defined()) continue;
    const Tensor grad = p.grad().contiguous();
    update(i, p, grad, counts_[i]);
    ++counts_[i];
  }
  ++steps_;
}

void Optimizer::zero_grad() {
  for (auto& [_, p] : params_) p.zero_grad();
}

NamedTensors Optimizer::state() const {
  NamedTensors out;
  out.emplace_back("step", Tensor::full({}, static_cast<double>(steps_), DType::i64));
  out.emplace_back("lr", Tensor::full({}, lr_, DType::f64));
  for (size_t i = 0; i < params_.size(); ++i) {
    if (counts_[i] == 0) continue;
    const std::string& name = params_[i].first;
    out.emplace_back(name + ".step", Tensor::full({}, static_cast<double>(counts_[i]), DType::i64));
    for (const auto& [slot_name, t] : slots_[i]) out.emplace_back(name + "." + slot_name, t);
  }
  return out;
}

namespace {
int64_t read_count(const std::string& name, const Tensor& t) {
  AG_CHECK(t.dtype() == DType::i64 && t.numel() == 1,
           "optimizer state: '" << name << "' must be a single int64 count, got " << t.describe());
  const int64_t value = t.to_labels()[0];
  AG_CHECK(value >= 0, "optimizer state: '" << name << "' is negative (" << value << ")");
  return value;
}
}  // namespace

void Optimizer::load_state(const NamedTensors& state) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < params_.size(); ++i) index[params_[i].first] = i;
  const std::vector<std::string> required = required_slots();
  std::vector<std::map<std::string, Tensor>> slots(params_.size());
  std::vector<int64_t> counts(params_.size(), 0);
  std::set<std::string> seen;
  int64_t steps = -1;
  double lr = lr_;
  // Build the new state aside and commit it only when every entry checked out.
  for (const auto& [name, t] : state) {
    AG_CHECK(seen.insert(name).second, "optimizer state: '" << name << "' appears twice");
    if (name == "step") {
      steps = read_count(name, t);
      continue;
    }
    if (name == "lr") {
      AG_CHECK(t.numel() == 1 && is_floating(t.dtype()),
               "optimizer state: 'lr' must be one float, got " << t.describe());
      lr = t.item();
      continue;
    }
    const size_t dot = name.rfind('.');
    auto it = dot == std::string::npos ? index.end() : index.find(name.substr(0, dot));
    AG_CHECK(it != index.end(),
             "optimizer state: '" << name << "' names no parameter of this " << this->name() << " optimizer");
    const size_t i = it->second;
    const std::string slot_name = name.substr(dot + 1);
    if (slot_name == "step") {
      counts[i] = read_count(name, t);
      continue;
    }
    AG_CHECK(std::find(required.begin(), required.end(), slot_name) != required.end(),
             "optimizer state: '" << name << "': '" << slot_name << "' is not a state slot of this "
                                  << this->name() << " optimizer");
    const Tensor& p = params_[i].second;
    AG_CHECK(t.shape() == p.shape(), "optimizer state: '" << name << "' has shape " << shape_str(t.shape())
                                                          << " but its parameter has "
                                                          << shape_str(p.shape()));
    slots[i][slot_name] = Tensor::empty(p.shape(), p.dtype(), p.device()).copy_(t);
  }
  AG_CHECK(steps >= 0, "optimizer state: the 'step' entry is missing");
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string& pname = params_[i].first;
    if (counts[i] == 0) {
      AG_CHECK(slots[i].empty(),
               "optimizer state: '" << pname << "' has slots but no '" << pname << ".step' count");
      continue;
    }
    for (const std::string& s : required)
      AG_CHECK(slots[i].count(s), "optimizer state: '" << pname << "." << s << "' is missing");
  }
  slots_ = std::move(slots);
  counts_ = std::move(counts);
  steps_ = steps;
  set_lr(lr);
}

}  // namespace ag::optim
