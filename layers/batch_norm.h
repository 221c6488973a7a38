// Batch normalisation over the channel dim (Ioffe & Szegedy 2015), as PyTorch's
// BatchNorm1d / BatchNorm2d: batch statistics (biased variance) in training, which also
// update the running statistics with momentum (unbiased variance); running statistics in
// eval mode.
#pragma once

#include "core/nn_params.h"
#include "layers/module.h"

namespace ag {

class BatchNorm : public Module {
 public:
  // Parameters (when affine): "weight" (gamma, ones) [C], "bias" (beta, zeros) [C].
  // Buffers: "running_mean" (zeros) [C], "running_var" (ones) [C]. Buffers are not
  // parameters: parameter_count() does not include them.
  // act fuses an activation into the normalisation pass (e.g. BN + ReLU in ResNets); the
  // result equals applying the activation afterwards. is_fusable(act) (core/activation.h).
  BatchNorm(int64_t channels, double eps = 1e-5, double momentum = 0.1, bool affine = true,
            Activation act = Activation::none);

  Tensor forward(const Tensor& x) override;
  std::string describe() const override;

  Tensor& weight() { return weight_; }  // undefined without affine
  Tensor& bias() { return bias_; }
  Tensor& running_mean() { return running_mean_; }
  Tensor& running_var() { return running_var_; }
  int64_t channels() const { return channels_; }
  double eps() const { return eps_; }
  double momentum() const { return momentum_; }
  Activation fused_activation() const { return act_; }  // applied after the normalisation
  // Synchronised statistics in training (core/dist/sync_batch_norm.h): over every rank's
  // batch through dist::world_for(the input's device). With one process it is ordinary
  // batch norm. Off by default (per-rank statistics, as DDP).
  void set_sync_stats(bool on) { sync_stats_ = on; }
  bool sync_stats() const { return sync_stats_; }

 protected:
  // Checks the input rank for the concrete class (2/3 for 1d, 4 for 2d).
  virtual void check_input(const Tensor& x) const = 0;

 private:
  int64_t channels_;
  double eps_, momentum_;
  Activation act_;
  bool sync_stats_ = false;
  Tensor weight_, bias_, running_mean_, running_var_;
};

// x: [N, C, H, W].
class BatchNorm2d : public BatchNorm {
 public:
  using BatchNorm::BatchNorm;
  std::string type_name() const override { return "BatchNorm2d"; }

 protected:
  void check_input(const Tensor& x) const override;
};

// x: [N, C] or [N, C, L].
class BatchNorm1d : public BatchNorm {
 public:
  using BatchNorm::BatchNorm;
  std::string type_name() const override { return "BatchNorm1d"; }

 protected:
  void check_input(const Tensor& x) const override;
};

// Switches every BatchNorm in the module tree to synchronised statistics (on) or back to
// per-rank ones; returns how many it switched (train --sync-bn).
int use_sync_batch_norm(Module& root, bool on = true);

}  // namespace ag
