// The building blocks of the model families, laid out as in the PyTorch reference
// (shared/tools/torch_peer.py) so parameter names match it: ConvBn ("0" conv, "1" bn),
// ResNet's BasicBlock / Bottleneck ("c1", "c2", "c3", "short"), and the inverted residual
// of MobileNetV2 and EfficientNet's MBConv ("body.0", "body.1", ...). Every child is called
// through call_layer (models/trace.h) so summaries see each layer.
#pragma once

#include "layers/layers.h"
#include "models/drop_path.h"

namespace ag {

// Convolution (no bias, padding kernel / 2) + BatchNorm2d + activation. ReLU and ReLU6 are
// fused into the batch norm pass; other activations are a third child "2".
class ConvBn : public Module {
 public:
  ConvBn(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride = 1, int64_t groups = 1,
         Activation act = Activation::none);
  // x: [N, in, H, W] -> [N, out, ceil(H / stride), ceil(W / stride)] (odd kernels).
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ConvBn"; }
  std::string describe() const override;
  Conv2d& conv() { return *conv_; }
  BatchNorm2d& bn();  // not after fold_batch_norm()

  // Inference fast path: folds the batch norm's running statistics and affine into the
  // convolution (W' = W gamma / sqrt(var + eps) per output channel, b' = (b - mean)
  // gamma / sqrt(var + eps) + beta) and drops it: children "0" (the conv, now with a bias)
  // and the activation ("1" when it was fused into the batch norm, else "2"). The result
  // computes the eval-mode output; it can no longer train (forward in training mode is an
  // error). Irreversible: fold a copy, not the model being trained (models/fold_batch_norm.h).
  void fold_batch_norm();
  bool folded() const { return bn_ == nullptr; }

 private:
  Conv2d* conv_;
  BatchNorm2d* bn_;        // null once folded
  Module* act_ = nullptr;  // activations not fused into the batch norm (any, once folded)
  Activation act_kind_;
};

// Sequential whose children are called through call_layer, so they show in summaries.
class Chain : public Sequential {
 public:
  using Sequential::Sequential;
  Tensor forward(const Tensor& x) override;
};

// ResNet basic block: relu(bn(conv3x3(relu(bn(conv3x3(x))))) + short(x)), with a 1x1
// conv + BN projection as "short" only where the shape changes (stride != 1 or in != out).
class BasicBlock : public Module {
 public:
  BasicBlock(int64_t in_channels, int64_t out_channels, int64_t stride);
  // x: [N, in, H, W] -> [N, out, H / stride, W / stride].
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "BasicBlock"; }
  static constexpr int64_t expansion = 1;

 private:
  ConvBn *c1_, *c2_, *short_ = nullptr;
};

// ResNet bottleneck (v1.5, as torchvision: the stride sits on the 3x3 conv):
// 1x1 in -> planes, 3x3 planes -> planes (stride), 1x1 planes -> 4 * planes, plus the
// shortcut (projection where the shape changes), then ReLU.
class Bottleneck : public Module {
 public:
  Bottleneck(int64_t in_channels, int64_t planes, int64_t stride);
  // x: [N, in, H, W] -> [N, 4 * planes, H / stride, W / stride].
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Bottleneck"; }
  static constexpr int64_t expansion = 4;

 private:
  ConvBn *c1_, *c2_, *c3_, *short_ = nullptr;
};

// Channel rounding of the MobileNet / EfficientNet width multipliers (torchvision's
// _make_divisible): the multiple of divisor nearest to v, at least divisor, and never more
// than 10% below v.
int64_t make_divisible(double v, int64_t divisor = 8);

// One stage of MobileNetV2 / EfficientNet: `repeats` inverted residual blocks with expansion
// `expand` and `channels` outputs; the first has stride `stride`, the rest stride 1.
struct InvertedResidualStage {
  int64_t expand, channels, repeats, stride;
  int64_t kernel = 3;  // of the depthwise conv
};

struct InvertedResidualOptions {
  int64_t in_channels = 0, out_channels = 0;
  int64_t stride = 1;
  int64_t expand = 1;  // hidden channels = in * expand; no expansion conv when 1
  int64_t kernel = 3;  // of the depthwise conv
  Activation act = Activation::relu6;
  int64_t se_channels = 0;  // squeeze width of the SE after the depthwise conv; 0: no SE
  double drop_path = 0;     // stochastic depth of the branch (only with the identity shortcut)
};

// Inverted residual (MobileNetV2) / MBConv (EfficientNet): children "body" =
// [1x1 expand ConvBn + act] (when expand > 1), depthwise kxk ConvBn + act, [SqueezeExcite],
// 1x1 project ConvBn (linear bottleneck: no activation); x + drop_path(body(x)) when
// stride == 1 and in == out, else body(x).
class InvertedResidual : public Module {
 public:
  explicit InvertedResidual(const InvertedResidualOptions& options);
  // x: [N, in, H, W] -> [N, out, ceil(H / stride), ceil(W / stride)].
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override;  // "InvertedResidual" or "MBConv" (with SE)
  std::string describe() const override;
  bool has_residual() const { return residual_; }
  const InvertedResidualOptions& options() const { return options_; }

 private:
  InvertedResidualOptions options_;
  Chain* body_;
  DropPath* drop_path_ = nullptr;
  bool residual_;
};

}  // namespace ag
