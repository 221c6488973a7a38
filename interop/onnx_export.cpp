// The module exporter: walks the module tree and writes each module as ONNX ops. Leaf
// layers map to one op (or a short fixed sequence); blocks are written from their children
// by name, mirroring their forward() in models/blocks.cpp, models/*.cpp and
// apps/lib/classifier.cpp. The OpenCV round-trip test (tests/test_onnx_opencv.cpp) runs
// every family, so a block whose forward() changes without this file fails there.
//
// OpenCV 4.6's ONNX importer is the narrowest runtime we check against, so the formulations
// below keep to ops it imports; see the comments at each choice.
#include "interop/onnx_export.h"

#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include <cmath>
#include <functional>
#include <sstream>

#include "apps/lib/classifier.h"
#include "core/autograd.h"
#include "core/serialize/atomic_file.h"
#include "interop/onnx_graph.h"
#include "losses/classifier_loss.h"
#include "losses/cosine_head.h"
#include "models/blocks.h"
#include "models/efficientnet.h"
#include "models/mobilenet_v2.h"
#include "models/resnet.h"
#include "models/trace.h"

namespace ag::interop {

namespace {

std::vector<double> host_values(const Tensor& t) { return t.to(Device::cpu()).to_vector(); }

std::vector<float> to_float(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

std::string join(const std::string& path, const std::string& name) {
  return path.empty() ? name : path + "." + name;
}

Module* find_child(Module& m, const std::string& name) {
  for (auto& [child_name, child] : m.named_children())
    if (child_name == name) return child;
  return nullptr;
}

Module& child(Module& m, const std::string& path, const std::string& name) {
  Module* c = find_child(m, name);
  AG_CHECK(c != nullptr, "export_onnx: '" << (path.empty() ? "<root>" : path) << "' (" << m.type_name()
                                          << ") has no child '" << name << "'");
  return *c;
}

// An eval-mode batch norm as a per-channel affine map y = x * scale + shift.
struct ChannelAffine {
  std::vector<double> scale, shift;
};

ChannelAffine batch_norm_affine(BatchNorm& bn) {
  const std::vector<double> mean = host_values(bn.running_mean()), var = host_values(bn.running_var());
  const int64_t c = bn.channels();
  const std::vector<double> gamma =
      bn.weight().defined() ? host_values(bn.weight()) : std::vector<double>(c, 1.0);
  const std::vector<double> beta = bn.bias().defined() ? host_values(bn.bias()) : std::vector<double>(c, 0.0);
  ChannelAffine a{std::vector<double>(c), std::vector<double>(c)};
  for (int64_t i = 0; i < c; ++i) {
    a.scale[i] = gamma[i] / std::sqrt(var[i] + bn.eps());
    a.shift[i] = beta[i] - mean[i] * a.scale[i];
  }
  return a;
}

// weight: [out, ...] row-major with `per_row` values per output; bias: [out] or empty
// (zeros). Folds y = (W x + b) * scale + shift into W' x + b'.
void fold_affine(std::vector<double>& weight, std::vector<double>& bias, const ChannelAffine& a) {
  const size_t out = a.scale.size(), per_row = weight.size() / out;
  if (bias.empty()) bias.assign(out, 0.0);
  for (size_t o = 0; o < out; ++o) {
    for (size_t k = 0; k < per_row; ++k) weight[o * per_row + k] *= a.scale[o];
    bias[o] = bias[o] * a.scale[o] + a.shift[o];
  }
}

// What one eval-mode forward of a sample image tells the exporter: the output shape and
// the input shape of every module called through call_layer (models/trace.h).
struct SampleShapes {
  std::vector<int64_t> output;  // without the batch dim
  std::map<const Module*, Shape> inputs;
};

class Exporter {
 public:
  Exporter(OnnxGraph& g, const SampleShapes& shapes) : g_(g), shapes_(shapes) {}

  // Writes module m (dotted name `path`) applied to the value x; returns its output value.
  std::string emit(Module& m, const std::string& path, const std::string& x);

 private:
  std::string children_in_order(Module& m, const std::string& path, const std::string& x);
  std::string conv(Conv2d& c, const std::string& path, const std::string& x, const ChannelAffine* bn);
  std::string conv_bn(ConvBn& cb, const std::string& path, const std::string& x);
  std::string batch_norm(BatchNorm& bn, const std::string& path, const std::string& x);
  std::string linear(Linear& l, const std::string& path, const std::string& x, const ChannelAffine* bn);
  std::string cosine(CosineHead& h, const std::string& path, const std::string& x);
  std::string activation(Activation act, const std::string& path, const std::string& x);
  std::string fused(FusedAct act, const std::string& path, const std::string& x);
  std::string pool(const std::string& op, const Pool2dParams& p, const std::string& path,
                   const std::string& x);
  std::string global_avg_pool(const std::string& path, const std::string& x);
  std::string resnet_block(Module& m, const std::vector<std::string>& body, const std::string& path,
                           const std::string& x);
  std::string inverted_residual(InvertedResidual& b, const std::string& path, const std::string& x);
  std::string residual(Residual& r, const std::string& path, const std::string& x);
  std::string squeeze_excite(SqueezeExcite& se, const std::string& path, const std::string& x);
  std::string convnet(train::ConvNet& net, const std::string& path, const std::string& x);
  std::string flatten(Flatten& f, const std::string& path, const std::string& x);
  std::string repeat_columns(const std::string& x, int64_t d, const std::string& path);
  std::string spread(const std::string& x, int64_t h, int64_t w, const std::string& path);

  OnnxGraph& g_;
  const SampleShapes& shapes_;
};

std::string Exporter::emit(Module& m, const std::string& path, const std::string& x) {
  // Order matters where types derive from one another (Chain from Sequential, the models
  // from Model): the most derived first.
  if (auto* c = dynamic_cast<train::Classifier*>(&m)) {
    const std::string f = emit(c->model(), join(path, "model"), x);
    return emit(c->criterion(), join(path, "criterion"), f);
  }
  if (auto* l = dynamic_cast<ClassifierLoss*>(&m)) {
    // ClassifierLoss::forward: the cosine head when there is one, else the linear head.
    if (l->cosine_head()) return cosine(*l->cosine_head(), join(path, "cosine"), x);
    return linear(*l->linear_head(), join(path, "linear"), x, nullptr);
  }
  if (auto* n = dynamic_cast<train::ConvNet*>(&m)) return convnet(*n, path, x);
  // features() of these three is their children in registration order, and the head "fc"
  // (Model::forward) is registered last.
  if (dynamic_cast<ResNet*>(&m) || dynamic_cast<MobileNetV2*>(&m) || dynamic_cast<EfficientNet*>(&m))
    return children_in_order(m, path, x);
  if (dynamic_cast<Sequential*>(&m)) return children_in_order(m, path, x);  // Chain too
  if (auto* cb = dynamic_cast<ConvBn*>(&m)) return conv_bn(*cb, path, x);
  if (dynamic_cast<BasicBlock*>(&m)) return resnet_block(m, {"c1", "c2"}, path, x);
  if (dynamic_cast<Bottleneck*>(&m)) return resnet_block(m, {"c1", "c2", "c3"}, path, x);
  if (auto* b = dynamic_cast<InvertedResidual*>(&m)) return inverted_residual(*b, path, x);
  if (auto* r = dynamic_cast<Residual*>(&m)) return residual(*r, path, x);
  if (auto* se = dynamic_cast<SqueezeExcite*>(&m)) return squeeze_excite(*se, path, x);
  if (auto* c = dynamic_cast<Conv2d*>(&m)) return conv(*c, path, x, nullptr);
  if (auto* bn = dynamic_cast<BatchNorm*>(&m)) return batch_norm(*bn, path, x);
  if (auto* l = dynamic_cast<Linear*>(&m)) return linear(*l, path, x, nullptr);
  if (auto* h = dynamic_cast<CosineHead*>(&m)) return cosine(*h, path, x);
  if (auto* a = dynamic_cast<ActivationLayer*>(&m)) return activation(a->activation(), path, x);
  if (dynamic_cast<Dropout*>(&m) || dynamic_cast<DropPath*>(&m)) return x;  // identities in eval
  if (auto* p = dynamic_cast<MaxPool2d*>(&m)) return pool("MaxPool", p->params(), path, x);
  if (auto* p = dynamic_cast<AvgPool2d*>(&m)) return pool("AveragePool", p->params(), path, x);
  if (dynamic_cast<GlobalAvgPool2d*>(&m)) return global_avg_pool(path, x);
  if (auto* f = dynamic_cast<Flatten*>(&m)) return flatten(*f, path, x);
  std::ostringstream types;
  for (const std::string& t : exportable_module_types()) types << " " << t;
  AG_FAIL("export_onnx: cannot export module '" << (path.empty() ? "<root>" : path) << "' of type "
                                                << m.type_name()
                                                << ": it has no ONNX form; exportable types:" << types.str());
}

std::string Exporter::children_in_order(Module& m, const std::string& path, const std::string& x) {
  std::string h = x;
  for (auto& [name, c] : m.named_children()) h = emit(*c, join(path, name), h);
  return h;
}

std::string Exporter::conv(Conv2d& c, const std::string& path, const std::string& x,
                           const ChannelAffine* bn) {
  std::vector<double> weight = host_values(c.weight());
  std::vector<double> bias = c.bias().defined() ? host_values(c.bias()) : std::vector<double>{};
  if (bn) fold_affine(weight, bias, *bn);
  const Shape& ws = c.weight().shape();  // [out, in / groups, kh, kw]
  std::vector<std::string> inputs = {
      x, g_.constant(path + ".weight", to_float(weight), {ws[0], ws[1], ws[2], ws[3]})};
  if (!bias.empty()) inputs.push_back(g_.constant(path + ".bias", to_float(bias), {ws[0]}));
  const Conv2dParams& p = c.options().geometry;
  onnx::NodeProto& n = g_.node("Conv", inputs, path);
  attr_ints(n, "kernel_shape", {ws[2], ws[3]});
  attr_ints(n, "strides", {p.stride_h, p.stride_w});
  attr_ints(n, "pads", {p.pad_h, p.pad_w, p.pad_h, p.pad_w});
  attr_ints(n, "dilations", {p.dilation_h, p.dilation_w});
  attr_int(n, "group", p.groups);
  return n.output(0);
}

// ConvBn::forward: conv, batch norm with its fused activation, then the unfused one ("2").
std::string Exporter::conv_bn(ConvBn& cb, const std::string& path, const std::string& x) {
  const ChannelAffine bn = batch_norm_affine(cb.bn());
  std::string y = conv(cb.conv(), join(path, "0"), x, &bn);
  y = fused(cb.bn().fused_activation(), join(path, "1"), y);
  if (Module* act = find_child(cb, "2")) y = emit(*act, join(path, "2"), y);
  return y;
}

std::string Exporter::batch_norm(BatchNorm& bn, const std::string& path, const std::string& x) {
  const int64_t c = bn.channels();
  const std::vector<float> ones(c, 1.0f), zeros(c, 0.0f);
  const std::vector<float> gamma = bn.weight().defined() ? to_float(host_values(bn.weight())) : ones;
  const std::vector<float> beta = bn.bias().defined() ? to_float(host_values(bn.bias())) : zeros;
  onnx::NodeProto& n =
      g_.node("BatchNormalization",
              {x, g_.constant(path + ".weight", gamma, {c}), g_.constant(path + ".bias", beta, {c}),
               g_.constant(path + ".running_mean", to_float(host_values(bn.running_mean())), {c}),
               g_.constant(path + ".running_var", to_float(host_values(bn.running_var())), {c})},
              path);
  attr_float(n, "epsilon", static_cast<float>(bn.eps()));
  return fused(bn.fused_activation(), path, n.output(0));
}

// Gemm(x, W, b, transB = 1) = x W^T + b, with a following batch norm folded in.
std::string Exporter::linear(Linear& l, const std::string& path, const std::string& x,
                             const ChannelAffine* bn) {
  std::vector<double> weight = host_values(l.weight());
  std::vector<double> bias = l.bias().defined() ? host_values(l.bias()) : std::vector<double>{};
  if (bn) fold_affine(weight, bias, *bn);
  if (bias.empty()) bias.assign(l.out_features(), 0.0);  // OpenCV 4.6 reads Gemm with C most simply
  onnx::NodeProto& n =
      g_.node("Gemm",
              {x, g_.constant(path + ".weight", to_float(weight), {l.out_features(), l.in_features()}),
               g_.constant(path + ".bias", to_float(bias), {l.out_features()})},
              path);
  attr_int(n, "transB", 1);
  return n.output(0);
}

// cos theta = (x / max(|x|, eps)) (w_j / max(|w_j|, eps))^T. The class weights are
// normalised here, once, in double precision; the features' norm is computed in the graph.
std::string Exporter::cosine(CosineHead& h, const std::string& path, const std::string& x) {
  const int64_t k = h.classes(), d = h.feature_dim();
  std::vector<double> w = host_values(h.weight());
  for (int64_t j = 0; j < k; ++j) {
    double norm = 0;
    for (int64_t i = 0; i < d; ++i) norm += w[j * d + i] * w[j * d + i];
    norm = std::max(std::sqrt(norm), h.eps());
    for (int64_t i = 0; i < d; ++i) w[j * d + i] /= norm;
  }
  // |x|^2 [N, 1] as (x * x) times a column of ones, not ReduceSumSquare: OpenCV 4.6
  // imports a Reduce with the batch fixed at its import-time value.
  const std::string squares = g_.node("Mul", {x, x}, path + ".squares").output(0);
  const std::string ones =
      g_.constant(path + ".ones_column", std::vector<float>(static_cast<size_t>(d), 1.0f), {d, 1});
  const std::string sum_sq = g_.node("MatMul", {squares, ones}, path + ".sum_sq").output(0);
  // sqrt(|x|^2 + eps^2) stands for max(|x|, eps): equal to float precision unless |x| is
  // within a few eps (then both are ~eps, and a zero feature gives cos = 0 in both), and it
  // needs no Max with a constant, which OpenCV 4.6 cannot import.
  const float eps_sq = static_cast<float>(h.eps() * h.eps());
  const std::string guarded =
      g_.node("Add", {sum_sq, g_.constant(path + ".eps_sq", {eps_sq}, {})}, path + ".sum_sq_eps").output(0);
  const std::string norm = g_.node("Sqrt", {guarded}, path + ".norm").output(0);
  const std::string unit =
      g_.node("Div", {x, repeat_columns(norm, d, path + ".norm")}, path + ".unit").output(0);
  onnx::NodeProto& n = g_.node("Gemm",
                               {unit, g_.constant(path + ".unit_weight", to_float(w), {k, d}),
                                g_.constant(path + ".zero_bias", std::vector<float>(k, 0.0f), {k})},
                               path);
  attr_int(n, "transB", 1);
  return n.output(0);
}

std::string Exporter::activation(Activation act, const std::string& path, const std::string& x) {
  switch (act) {
    case Activation::none:
      return x;
    case Activation::relu:
      return g_.node("Relu", {x}, path).output(0);
    case Activation::relu6: {
      // min(max(x, 0), 6) = relu(x) - relu(x - 6), exact for x <= 12. Not Clip: OpenCV 4.6
      // imports only the opset-6 Clip (bounds as attributes, gone since opset 11), and
      // not Min(relu(x), 6): it cannot take a constant operand of Min / Max.
      const std::string r = g_.node("Relu", {x}, path + ".relu").output(0);
      const std::string shifted =
          g_.node("Sub", {x, g_.constant(path + ".six", {6.0f}, {})}, path + ".minus6").output(0);
      const std::string excess = g_.node("Relu", {shifted}, path + ".excess").output(0);
      return g_.node("Sub", {r, excess}, path).output(0);
    }
    case Activation::silu: {  // x * sigmoid(x): ONNX has no SiLU op before opset 22 (Swish)
      const std::string s = g_.node("Sigmoid", {x}, path + ".sigmoid").output(0);
      return g_.node("Mul", {x, s}, path).output(0);
    }
    case Activation::sigmoid:
      return g_.node("Sigmoid", {x}, path).output(0);
    case Activation::tanh:
      return g_.node("Tanh", {x}, path).output(0);
    case Activation::hardswish: {  // x * relu6(x + 3) / 6 = x * HardSigmoid(x; 1/6, 1/2) (HardSwish needs
                                   // opset 14)
      onnx::NodeProto& hs = g_.node("HardSigmoid", {x}, path + ".hardsigmoid");
      attr_float(hs, "alpha", 1.0f / 6.0f);
      attr_float(hs, "beta", 0.5f);
      return g_.node("Mul", {x, hs.output(0)}, path).output(0);
    }
  }
  AG_FAIL("export_onnx: '" << path << "': unknown activation " << static_cast<int>(act));
}

std::string Exporter::fused(FusedAct act, const std::string& path, const std::string& x) {
  switch (act) {
    case FusedAct::none:
      return x;
    case FusedAct::relu:
      return activation(Activation::relu, path + ".relu", x);
    case FusedAct::relu6:
      return activation(Activation::relu6, path + ".relu6", x);
  }
  AG_FAIL("export_onnx: '" << path << "': unknown fused activation " << static_cast<int>(act));
}

std::string Exporter::pool(const std::string& op, const Pool2dParams& p, const std::string& path,
                           const std::string& x) {
  onnx::NodeProto& n = g_.node(op, {x}, path);
  attr_ints(n, "kernel_shape", {p.kernel_h, p.kernel_w});
  attr_ints(n, "strides", {p.stride_h, p.stride_w});
  attr_ints(n, "pads", {p.pad_h, p.pad_w, p.pad_h, p.pad_w});
  if (op == "AveragePool") attr_int(n, "count_include_pad", p.count_include_pad ? 1 : 0);
  return n.output(0);
}

// [N, C, H, W] -> [N, C]: GlobalAveragePool keeps [N, C, 1, 1]; Flatten drops the ones.
std::string Exporter::global_avg_pool(const std::string& path, const std::string& x) {
  const std::string pooled = g_.node("GlobalAveragePool", {x}, path).output(0);
  onnx::NodeProto& f = g_.node("Flatten", {pooled}, path + ".flatten");
  attr_int(f, "axis", 1);
  return f.output(0);
}

// BasicBlock / Bottleneck::forward: relu(body(x) + short(x)), short the identity if absent.
std::string Exporter::resnet_block(Module& m, const std::vector<std::string>& body, const std::string& path,
                                   const std::string& x) {
  std::string h = x;
  for (const std::string& name : body) h = emit(child(m, path, name), join(path, name), h);
  Module* shortcut = find_child(m, "short");
  const std::string s = shortcut ? emit(*shortcut, join(path, "short"), x) : x;
  const std::string sum = g_.node("Add", {h, s}, path + ".add").output(0);
  return activation(Activation::relu, path + ".relu", sum);
}

// InvertedResidual::forward: body(x), plus x when the block keeps the shape (drop-path is
// the identity in eval).
std::string Exporter::inverted_residual(InvertedResidual& b, const std::string& path, const std::string& x) {
  const std::string y = emit(child(b, path, "body"), join(path, "body"), x);
  return b.has_residual() ? g_.node("Add", {y, x}, path + ".add").output(0) : y;
}

std::string Exporter::residual(Residual& r, const std::string& path, const std::string& x) {
  const std::string y = emit(child(r, path, "body"), join(path, "body"), x);
  Module* shortcut = find_child(r, "shortcut");
  const std::string s = shortcut ? emit(*shortcut, join(path, "shortcut"), x) : x;
  return fused(r.activation(), path, g_.node("Add", {y, s}, path + ".add").output(0));
}

// SqueezeExcite::forward: x * gate(fc2(act(fc1(mean_hw(x))))). The squeeze stays
// [N, C, 1, 1] (GlobalAveragePool) so the 1x1 convs apply as they are; the gate is then
// spread to [N, C, H, W] before the Mul (see spread()).
std::string Exporter::squeeze_excite(SqueezeExcite& se, const std::string& path, const std::string& x) {
  const auto traced = shapes_.inputs.find(&se);
  AG_CHECK(traced != shapes_.inputs.end() && traced->second.size() == 4,
           "export_onnx: '" << path
                            << "' (SqueezeExcite): its input shape is unknown (it must be called "
                               "through call_layer, as the blocks of models/ do)");
  const Shape& in = traced->second;  // [1, C, H, W]
  std::string s = g_.node("GlobalAveragePool", {x}, path + ".squeeze").output(0);
  s = emit(child(se, path, "fc1"), join(path, "fc1"), s);
  s = activation(se.activation(), path + ".act", s);
  s = emit(child(se, path, "fc2"), join(path, "fc2"), s);
  s = activation(se.gate(), path + ".gate", s);
  return g_.node("Mul", {x, spread(s, in[2], in[3], path + ".gate")}, path + ".scale").output(0);
}

// ConvNet::features (apps/lib/classifier.cpp): c1, 2x2 max pool, c2, 2x2 max pool, c3,
// global average pool, then the optional projection Linear + BatchNorm1d (folded); then
// the head "fc" when attached.
std::string Exporter::convnet(train::ConvNet& net, const std::string& path, const std::string& x) {
  const Pool2dParams two_by_two;  // kernel 2, stride 2, no padding
  std::string h = emit(child(net, path, "c1"), join(path, "c1"), x);
  h = pool("MaxPool", two_by_two, path + ".pool1", h);
  h = emit(child(net, path, "c2"), join(path, "c2"), h);
  h = pool("MaxPool", two_by_two, path + ".pool2", h);
  h = emit(child(net, path, "c3"), join(path, "c3"), h);
  h = global_avg_pool(path + ".pool3", h);
  if (Module* proj = find_child(net, "proj")) {
    auto* l = dynamic_cast<Linear*>(proj);
    auto* bn = dynamic_cast<BatchNorm*>(&child(net, path, "proj_bn"));
    AG_CHECK(l && bn, "export_onnx: '" << path << "': ConvNet's proj / proj_bn are not Linear / BatchNorm");
    const ChannelAffine affine = batch_norm_affine(*bn);
    h = linear(*l, join(path, "proj"), h, &affine);
  }
  if (Module* head = find_child(net, "fc")) h = emit(*head, join(path, "fc"), h);
  return h;
}

// Flatten(start_dim) keeps the leading dims: Reshape to [0 (copy), ..., 0, -1]; ONNX's
// Flatten (always 2-d) is the same only for start_dim 1.
std::string Exporter::flatten(Flatten& f, const std::string& path, const std::string& x) {
  AG_CHECK(f.start_dim() >= 1, "export_onnx: cannot export module '"
                                   << path << "' of type Flatten with start_dim " << f.start_dim()
                                   << " (only >= 1)");
  if (f.start_dim() == 1) {
    onnx::NodeProto& n = g_.node("Flatten", {x}, path);
    attr_int(n, "axis", 1);
    return n.output(0);
  }
  std::vector<int64_t> shape(static_cast<size_t>(f.start_dim()), 0);
  shape.push_back(-1);
  return g_.node("Reshape", {x, g_.constant_int64(path + ".shape", shape)}, path).output(0);
}

// The two helpers below broadcast a computed value explicitly before a Mul / Div with a
// value of a larger shape (SqueezeExcite's [N, C, 1, 1] gate, the cosine head's [N, 1]
// norms), where ONNX alone would broadcast implicitly. OpenCV 4.6 imports a Mul / Div of
// two computed values of different shapes as its Scale layer, which reads the second as
// the per-channel weights of one sample and fails for a batch > 1; and it cannot import
// Expand of a computed value. With equal shapes the Mul / Div is plain elementwise.

// x [N, 1] -> [N, d], every column a copy: x times a row of ones (exact: one product by 1).
std::string Exporter::repeat_columns(const std::string& x, int64_t d, const std::string& path) {
  const std::string ones =
      g_.constant(path + ".ones", std::vector<float>(static_cast<size_t>(d), 1.0f), {1, d});
  return g_.node("MatMul", {x, ones}, path + ".repeated").output(0);
}

// x [N, C, 1, 1] -> [N, C, h, w], every pixel a copy: a nearest-neighbour Resize (exact).
std::string Exporter::spread(const std::string& x, int64_t h, int64_t w, const std::string& path) {
  const std::string scales =
      g_.constant(path + ".spread_scales", {1.0f, 1.0f, static_cast<float>(h), static_cast<float>(w)}, {4});
  onnx::NodeProto& n = g_.node("Resize", {x, g_.constant(path + ".roi", {}, {0}), scales}, path + ".spread");
  attr_string(n, "mode", "nearest");
  return n.output(0);
}

void check_options(const OnnxExportOptions& o) {
  AG_CHECK(
      o.input_shape.size() == 3 && o.input_shape[0] > 0 && o.input_shape[1] > 0 && o.input_shape[2] > 0,
      "export_onnx: input_shape must be C, H, W (all positive), got " << o.input_shape.size() << " values");
  const size_t c = static_cast<size_t>(o.input_shape[0]);
  AG_CHECK((o.mean.empty() && o.std.empty()) || (o.mean.size() == c && o.std.size() == c),
           "export_onnx: mean and std need one value per channel (" << c << ") or none, got " << o.mean.size()
                                                                    << " and " << o.std.size());
  for (float s : o.std) AG_CHECK(s > 0, "export_onnx: every std must be > 0, got " << s);
}

// (x - mean) / std per channel, as a 1x1 depthwise Conv with weight 1 / std and bias
// -mean / std (the data pipeline's own multiply-add form). Not Sub / Div with [1, C, 1, 1]
// constants: OpenCV 4.6 applies those per-channel constants wrongly for a batch > 1.
std::string normalise_input(OnnxGraph& g, const OnnxExportOptions& o) {
  const int64_t c = o.input_shape[0];
  std::vector<float> scale(static_cast<size_t>(c)), shift(static_cast<size_t>(c));
  for (size_t i = 0; i < scale.size(); ++i) {
    scale[i] = static_cast<float>(1.0 / o.std[i]);
    shift[i] = static_cast<float>(-static_cast<double>(o.mean[i]) / o.std[i]);
  }
  onnx::NodeProto& n =
      g.node("Conv",
             {"input", g.constant("input_scale", scale, {c, 1, 1, 1}), g.constant("input_shift", shift, {c})},
             "input_normalised");
  attr_ints(n, "kernel_shape", {1, 1});
  attr_int(n, "group", c);
  return n.output(0);
}

void set_tensor_type(onnx::ValueInfoProto& v, const std::string& name, const std::vector<int64_t>& dims) {
  v.set_name(name);
  onnx::TypeProto_Tensor* t = v.mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  onnx::TensorShapeProto* shape = t->mutable_shape();
  shape->add_dim()->set_dim_param("batch");
  for (int64_t d : dims) shape->add_dim()->set_dim_value(d);
}

// The shapes of an eval-mode forward of one zero image (which also proves the module
// accepts input_shape). The module's mode is restored afterwards.
SampleShapes trace_sample(Module& net, const std::vector<int64_t>& input_shape) {
  const std::vector<Tensor> params = net.parameters();
  const DType dtype = params.empty() ? DType::f32 : params.front().dtype();
  const Device device = params.empty() ? Device::cpu() : params.front().device();
  const bool was_training = net.is_training();
  net.eval();
  SampleShapes shapes;
  try {
    NoGradGuard no_grad;
    ForwardTrace trace;
    const Shape out =
        net.forward(Tensor::zeros({1, input_shape[0], input_shape[1], input_shape[2]}, dtype, device))
            .shape();
    shapes.output.assign(out.begin() + 1, out.end());
    for (const LayerCall& call : trace.calls()) shapes.inputs.emplace(call.module, call.input);
  } catch (...) {
    net.train(was_training);
    throw;
  }
  net.train(was_training);
  return shapes;
}

}  // namespace

std::vector<std::string> exportable_module_types() {
  return {
      "Classifier",      "ClassifierLoss", "ConvNet",    "ResNet",      "MobileNetV2",      "EfficientNet",
      "Sequential",      "ConvBn",         "BasicBlock", "Bottleneck",  "InvertedResidual", "MBConv",
      "Residual",        "SqueezeExcite",  "Conv2d",     "BatchNorm2d", "BatchNorm1d",      "Linear",
      "CosineHead",      "ReLU",           "ReLU6",      "SiLU",        "Sigmoid",          "Tanh",
      "Hardswish",       "Identity",       "Dropout",    "DropPath",    "MaxPool2d",        "AvgPool2d",
      "GlobalAvgPool2d", "Flatten"};
}

onnx::ModelProto export_onnx(Module& net, const OnnxExportOptions& options) {
  check_options(options);
  const SampleShapes shapes = trace_sample(net, options.input_shape);

  onnx::ModelProto model;
  model.set_ir_version(onnx::IR_VERSION);
  model.set_producer_name("arcgrad");
  model.set_doc_string(options.doc);
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  for (const auto& [key, value] : options.metadata) {
    onnx::StringStringEntryProto* e = model.add_metadata_props();
    e->set_key(key);
    e->set_value(value);
  }
  onnx::GraphProto* graph = model.mutable_graph();
  graph->set_name(net.type_name());
  set_tensor_type(*graph->add_input(), "input", options.input_shape);

  OnnxGraph g(graph);
  g.unique_name("input");
  std::string x = "input";
  if (!options.mean.empty()) x = normalise_input(g, options);
  Exporter exporter(g, shapes);
  const std::string y = exporter.emit(net, "", x);
  AG_CHECK(y != "input", "export_onnx: " << net.type_name() << " is the identity: nothing to export");
  g.rename_value(y, "logits");
  set_tensor_type(*graph->add_output(), "logits", shapes.output);

  try {
    onnx::checker::check_model(model);
    // Also what Python's check_model(full_check=True) adds: strict shape inference, on a
    // copy (it annotates every value), which must agree with the declared output shape.
    onnx::ModelProto inferred = model;
    onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(/*check_type=*/true, /*strict_mode=*/1));
  } catch (const std::exception& e) {
    AG_FAIL("export_onnx: the exported graph of " << net.type_name() << " fails onnx::checker: " << e.what());
  }
  return model;
}

OnnxExportOptions run_export_options(const train::TrainedRun& run, bool normalise) {
  OnnxExportOptions o;
  o.input_shape = run.image_shape;
  if (normalise) {
    o.mean = run.stats.mean;
    o.std = run.stats.std;
  }
  o.doc = "arcgrad " + run.config.model + ", " + run.config.loss.describe() +
          (normalise ? ". Input: float32 [batch, C, H, W] pixels scaled to [0, 1]; the graph normalises."
                     : ". Input: float32 [batch, C, H, W] normalised with the metadata's mean and std.") +
          " Output: scores [batch, classes] (argmax = class).";
  o.metadata = {{"class_names", nlohmann::json(run.class_names).dump()},
                {"mean", nlohmann::json(run.stats.mean).dump()},
                {"std", nlohmann::json(run.stats.std).dump()},
                {"input_normalised_in_graph", normalise ? "true" : "false"},
                {"model", run.config.model},
                {"loss", run.config.loss.describe()},
                {"epoch", std::to_string(run.state.epoch)}};
  return o;
}

void save_onnx(const onnx::ModelProto& model, const std::string& path) {
  std::string bytes;
  AG_CHECK(model.SerializeToString(&bytes), "save_onnx: could not serialise the model for " << path);
  serialize::write_file_atomic(path, bytes);
}

}  // namespace ag::interop
