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

 protected:
  // Checks the input rank for the concrete class (2/3 for 1d, 4 for 2d).
  virtual void check_input(const Tensor& x) const = 0;

 private:
  int64_t channels_;
  double eps_, momentum_;
  Activation act_;
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

}  // namespace ag
