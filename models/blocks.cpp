#include "models/blocks.h"

#include <sstream>

#include "models/trace.h"

namespace ag {

ConvBn::ConvBn(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride, int64_t groups,
               Activation act)
    : act_kind_(act) {
  AG_CHECK(kernel > 0 && kernel % 2 == 1,
           "ConvBn: the kernel size must be odd (padding kernel / 2 keeps "
           "the size at stride 1), got "
               << kernel);
  conv_ = register_module("0", std::make_shared<Conv2d>(in_channels, out_channels, kernel, stride, kernel / 2,
                                                        /*dilation=*/1, groups, /*bias=*/false));
  const bool fused = is_fusable(act);
  bn_ = register_module(
      "1", std::make_shared<BatchNorm2d>(out_channels, 1e-5, 0.1, true, fused ? act : Activation::none));
  if (!fused) act_ = register_module("2", make_activation(act));
}

Tensor ConvBn::forward(const Tensor& x) {
  AG_CHECK(bn_ || !is_training(),
           "ConvBn(" << describe() << "): its batch norm was folded for inference; it cannot train");
  Tensor y = call_layer(*conv_, x);
  if (bn_) y = call_layer(*bn_, y);
  return act_ ? call_layer(*act_, y) : y;
}

BatchNorm2d& ConvBn::bn() {
  AG_CHECK(bn_, "ConvBn(" << describe() << "): its batch norm was folded into the convolution");
  return *bn_;
}

void ConvBn::fold_batch_norm() {
  AG_CHECK(bn_, "ConvBn(" << describe() << "): the batch norm is already folded");
  NoGradGuard no_grad;
  Tensor& weight = conv_->weight();  // [C_out, C_in / groups, KH, KW]
  const DType dtype = weight.dtype();
  // In float64 whatever the model's dtype, so the fold adds one rounding per value only.
  auto f64 = [](const Tensor& t) { return t.detach().to(DType::f64); };
  const int64_t c = bn_->channels();
  Tensor gamma =
      bn_->weight().defined() ? f64(bn_->weight()) : Tensor::ones({c}, DType::f64, weight.device());
  Tensor beta = bn_->bias().defined() ? f64(bn_->bias()) : Tensor::zeros({c}, DType::f64, weight.device());
  Tensor scale = gamma / sqrt(f64(bn_->running_var()) + bn_->eps());  // [C_out]
  Tensor bias =
      conv_->bias().defined() ? f64(conv_->bias()) : Tensor::zeros({c}, DType::f64, weight.device());
  Tensor folded_bias = (bias - f64(bn_->running_mean())) * scale + beta;
  weight.copy_((f64(weight) * scale.reshape({c, 1, 1, 1})).to(dtype));
  if (!conv_->bias().defined()) conv_->add_bias();
  conv_->bias().copy_(folded_bias.to(dtype));
  const Activation fused = bn_->fused_activation();
  remove_module("1");
  bn_ = nullptr;
  if (fused != Activation::none) act_ = register_module("1", make_activation(fused));
}

std::string ConvBn::describe() const {
  std::string s = conv_->describe();
  if (act_kind_ != Activation::none) s += ", " + std::string(activation_name(act_kind_));
  return s;
}

Tensor Chain::forward(const Tensor& x) {
  Tensor h = x;
  for (size_t i = 0; i < size(); ++i) h = call_layer((*this)[i], h);
  return h;
}

BasicBlock::BasicBlock(int64_t in_channels, int64_t out_channels, int64_t stride) {
  c1_ = register_module("c1",
                        std::make_shared<ConvBn>(in_channels, out_channels, 3, stride, 1, Activation::relu));
  c2_ = register_module("c2", std::make_shared<ConvBn>(out_channels, out_channels, 3, 1));
  if (stride != 1 || in_channels != out_channels)
    short_ = register_module("short", std::make_shared<ConvBn>(in_channels, out_channels, 1, stride));
}

Tensor BasicBlock::forward(const Tensor& x) {
  Tensor body = call_layer(*c2_, call_layer(*c1_, x));
  return residual_add(body, short_ ? call_layer(*short_, x) : x, Activation::relu);
}

Bottleneck::Bottleneck(int64_t in_channels, int64_t planes, int64_t stride) {
  const int64_t out = planes * expansion;
  c1_ = register_module("c1", std::make_shared<ConvBn>(in_channels, planes, 1, 1, 1, Activation::relu));
  c2_ = register_module("c2", std::make_shared<ConvBn>(planes, planes, 3, stride, 1, Activation::relu));
  c3_ = register_module("c3", std::make_shared<ConvBn>(planes, out, 1));
  if (stride != 1 || in_channels != out)
    short_ = register_module("short", std::make_shared<ConvBn>(in_channels, out, 1, stride));
}

Tensor Bottleneck::forward(const Tensor& x) {
  Tensor body = call_layer(*c3_, call_layer(*c2_, call_layer(*c1_, x)));
  return residual_add(body, short_ ? call_layer(*short_, x) : x, Activation::relu);
}

int64_t make_divisible(double v, int64_t divisor) {
  AG_CHECK(v > 0 && divisor > 0, "make_divisible: needs v > 0 and divisor > 0, got " << v << ", " << divisor);
  const double d = static_cast<double>(divisor);
  int64_t rounded = std::max(divisor, static_cast<int64_t>(v + d / 2) / divisor * divisor);
  if (rounded < 0.9 * v) rounded += divisor;
  return rounded;
}

InvertedResidual::InvertedResidual(const InvertedResidualOptions& o) : options_(o) {
  AG_CHECK(o.in_channels > 0 && o.out_channels > 0 && o.expand > 0 && o.stride > 0,
           "InvertedResidual: channels, expansion and stride must be positive, got "
               << o.in_channels << " -> " << o.out_channels << ", expand " << o.expand << ", stride "
               << o.stride);
  const int64_t mid = o.in_channels * o.expand;
  body_ = register_module("body", std::make_shared<Chain>());
  if (o.expand != 1) body_->append(std::make_shared<ConvBn>(o.in_channels, mid, 1, 1, 1, o.act));
  body_->append(std::make_shared<ConvBn>(mid, mid, o.kernel, o.stride, /*groups=*/mid, o.act));
  if (o.se_channels > 0) body_->append(std::make_shared<SqueezeExcite>(mid, o.se_channels));
  body_->append(std::make_shared<ConvBn>(mid, o.out_channels, 1));
  residual_ = o.stride == 1 && o.in_channels == o.out_channels;
  if (residual_ && o.drop_path > 0)
    drop_path_ = register_module("drop_path", std::make_shared<DropPath>(o.drop_path));
}

Tensor InvertedResidual::forward(const Tensor& x) {
  Tensor y = call_layer(*body_, x);
  if (!residual_) return y;
  return residual_add(drop_path_ ? call_layer(*drop_path_, y) : y, x);
}

std::string InvertedResidual::type_name() const {
  return options_.se_channels > 0 ? "MBConv" : "InvertedResidual";
}

std::string InvertedResidual::describe() const {
  std::ostringstream os;
  os << options_.in_channels << "->" << options_.out_channels << ", t=" << options_.expand
     << ", k=" << options_.kernel << ", s=" << options_.stride;
  if (options_.se_channels > 0) os << ", se=" << options_.se_channels;
  if (drop_path_) os << ", drop_path=" << options_.drop_path;
  return os.str();
}

}  // namespace ag
