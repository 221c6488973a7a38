#include "layers/batch_norm.h"

#include <sstream>

#include "core/dist/comm.h"
#include "core/dist/sync_batch_norm.h"
#include "core/ops.h"

namespace ag {

BatchNorm::BatchNorm(int64_t channels, double eps, double momentum, bool affine, Activation act)
    : channels_(channels), eps_(eps), momentum_(momentum), act_(act) {
  AG_CHECK(channels > 0, "BatchNorm: channels must be positive, got " << channels);
  AG_CHECK(is_fusable(act), "BatchNorm: cannot fuse the activation " << activation_name(act)
                                                                     << " (fusable: none, relu, relu6)");
  AG_CHECK(eps > 0 && momentum >= 0 && momentum <= 1,
           "BatchNorm: needs eps > 0 and momentum in [0, 1], got eps " << eps << ", momentum " << momentum);
  if (affine) {
    weight_ = register_parameter("weight", Tensor::ones({channels}));
    bias_ = register_parameter("bias", Tensor::zeros({channels}));
  }
  running_mean_ = register_buffer("running_mean", Tensor::zeros({channels}));
  running_var_ = register_buffer("running_var", Tensor::ones({channels}));
}

Tensor BatchNorm::forward(const Tensor& x) {
  check_input(x);
  AG_CHECK(x.size(1) == channels_, type_name() << "(" << channels_ << "): input has " << x.size(1)
                                               << " channels: " << shape_str(x.shape()));
  if (sync_stats_ && is_training()) {
    dist::Communicator& comm = dist::world_for(x.device());
    if (comm.size() > 1)
      return dist::sync_batch_norm(x, weight_, bias_, running_mean_, running_var_, true, momentum_, eps_,
                                   act_, comm);
  }
  return batch_norm(x, weight_, bias_, running_mean_, running_var_, is_training(), momentum_, eps_, act_);
}

std::string BatchNorm::describe() const {
  std::ostringstream os;
  os << channels_ << ", eps=" << eps_ << ", momentum=" << momentum_;
  if (!weight_.defined()) os << ", no affine";
  if (act_ != Activation::none) os << ", +" << activation_name(act_);
  if (sync_stats_) os << ", sync";
  return os.str();
}

int use_sync_batch_norm(Module& root, bool on) {
  int switched = 0;
  for (auto& [name, module] : root.named_modules()) {
    if (auto* bn = dynamic_cast<BatchNorm*>(module)) {
      bn->set_sync_stats(on);
      ++switched;
    }
  }
  return switched;
}

void BatchNorm2d::check_input(const Tensor& x) const {
  AG_CHECK(x.dim() == 4, "BatchNorm2d: input must be [N, C, H, W], got " << shape_str(x.shape()));
}

void BatchNorm1d::check_input(const Tensor& x) const {
  AG_CHECK(x.dim() == 2 || x.dim() == 3,
           "BatchNorm1d: input must be [N, C] or [N, C, L], got " << shape_str(x.shape()));
}

}  // namespace ag
