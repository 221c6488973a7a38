// LayerWriter: single layers as ONNX ops (see onnx_layers.h).
#include "interop/onnx_layers.h"

#include <cmath>

namespace ag::interop {

namespace {

std::vector<double> host_values(const Tensor& t) { return t.to(Device::cpu()).to_vector(); }

std::vector<float> to_float(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

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

}  // namespace

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

std::string LayerWriter::conv(Conv2d& c, const std::string& path, const std::string& x,
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

std::string LayerWriter::batch_norm(BatchNorm& bn, const std::string& path, const std::string& x) {
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
std::string LayerWriter::linear(Linear& l, const std::string& path, const std::string& x,
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
std::string LayerWriter::cosine(CosineHead& h, const std::string& path, const std::string& x) {
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

std::string LayerWriter::activation(Activation act, const std::string& path, const std::string& x) {
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

std::string LayerWriter::fused(Activation act, const std::string& path, const std::string& x) {
  if (act == Activation::none) return x;
  return activation(act, path + "." + activation_name(act), x);
}

std::string LayerWriter::pool(const std::string& op, const Pool2dParams& p, const std::string& path,
                              const std::string& x) {
  onnx::NodeProto& n = g_.node(op, {x}, path);
  attr_ints(n, "kernel_shape", {p.kernel_h, p.kernel_w});
  attr_ints(n, "strides", {p.stride_h, p.stride_w});
  attr_ints(n, "pads", {p.pad_h, p.pad_w, p.pad_h, p.pad_w});
  if (op == "AveragePool") attr_int(n, "count_include_pad", p.count_include_pad ? 1 : 0);
  return n.output(0);
}

// [N, C, H, W] -> [N, C]: GlobalAveragePool keeps [N, C, 1, 1]; Flatten drops the ones.
std::string LayerWriter::global_avg_pool(const std::string& path, const std::string& x) {
  const std::string pooled = g_.node("GlobalAveragePool", {x}, path).output(0);
  onnx::NodeProto& f = g_.node("Flatten", {pooled}, path + ".flatten");
  attr_int(f, "axis", 1);
  return f.output(0);
}

// Flatten(start_dim) keeps the leading dims: Reshape to [0 (copy), ..., 0, -1]; ONNX's
// Flatten (always 2-d) is the same only for start_dim 1.
std::string LayerWriter::flatten(Flatten& f, const std::string& path, const std::string& x) {
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
std::string LayerWriter::repeat_columns(const std::string& x, int64_t d, const std::string& path) {
  const std::string ones =
      g_.constant(path + ".ones", std::vector<float>(static_cast<size_t>(d), 1.0f), {1, d});
  return g_.node("MatMul", {x, ones}, path + ".repeated").output(0);
}

// x [N, C, 1, 1] -> [N, C, h, w], every pixel a copy: a nearest-neighbour Resize (exact).
std::string LayerWriter::spread(const std::string& x, int64_t h, int64_t w, const std::string& path) {
  const std::string scales =
      g_.constant(path + ".spread_scales", {1.0f, 1.0f, static_cast<float>(h), static_cast<float>(w)}, {4});
  onnx::NodeProto& n = g_.node("Resize", {x, g_.constant(path + ".roi", {}, {0}), scales}, path + ".spread");
  attr_string(n, "mode", "nearest");
  return n.output(0);
}

// (x - mean) / std per channel as a 1x1 depthwise Conv with weight 1 / std and bias
// -mean / std (the data pipeline's own multiply-add form). Not Sub / Div with [1, C, 1, 1]
// constants: OpenCV 4.6 applies those per-channel constants wrongly for a batch > 1.
std::string LayerWriter::normalise(const std::string& x, const std::vector<float>& mean,
                                   const std::vector<float>& std) {
  const int64_t c = static_cast<int64_t>(mean.size());
  std::vector<float> scale(mean.size()), shift(mean.size());
  for (size_t i = 0; i < scale.size(); ++i) {
    scale[i] = static_cast<float>(1.0 / std[i]);
    shift[i] = static_cast<float>(-static_cast<double>(mean[i]) / std[i]);
  }
  onnx::NodeProto& n = g_.node(
      "Conv", {x, g_.constant(x + "_scale", scale, {c, 1, 1, 1}), g_.constant(x + "_shift", shift, {c})},
      x + "_normalised");
  attr_ints(n, "kernel_shape", {1, 1});
  attr_int(n, "group", c);
  return n.output(0);
}

}  // namespace ag::interop
