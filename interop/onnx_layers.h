// LayerWriter: writes single arcgrad layers (convolution, batch norm, linear and cosine
// heads, activations, pooling) as ONNX ops into an OnnxGraph, in eval-mode semantics. The
// module exporter (onnx_export.cpp) derives from it and adds the blocks.
//
// Every method takes the dotted module name `path` (it names the ops and initializers) and
// the input value x, and returns the output value. OpenCV 4.6's ONNX importer is the
// narrowest runtime the tests check against, so some layers are written in an equivalent
// form it imports; each such choice says why where it is made (docs/interop.md sums up).
#pragma once

#include <string>
#include <vector>

#include "interop/onnx_graph.h"
#include "layers/layers.h"
#include "losses/cosine_head.h"

namespace ag::interop {

// An eval-mode batch norm as a per-channel affine map y = x * scale + shift.
struct ChannelAffine {
  std::vector<double> scale, shift;
};
ChannelAffine batch_norm_affine(BatchNorm& bn);

class LayerWriter {
 public:
  explicit LayerWriter(OnnxGraph& g) : g_(g) {}

  // bn (may be null): a batch norm after the layer, folded into its weight and bias.
  std::string conv(Conv2d& c, const std::string& path, const std::string& x, const ChannelAffine* bn);
  std::string linear(Linear& l, const std::string& path, const std::string& x, const ChannelAffine* bn);
  // A batch norm on its own: BatchNormalization (+ its fused activation).
  std::string batch_norm(BatchNorm& bn, const std::string& path, const std::string& x);
  std::string cosine(CosineHead& h, const std::string& path, const std::string& x);
  std::string activation(Activation act, const std::string& path, const std::string& x);
  std::string fused(Activation act, const std::string& path, const std::string& x);
  // op: "MaxPool" or "AveragePool".
  std::string pool(const std::string& op, const Pool2dParams& p, const std::string& path,
                   const std::string& x);
  std::string global_avg_pool(const std::string& path, const std::string& x);
  std::string flatten(Flatten& f, const std::string& path, const std::string& x);
  // x [N, C, H, W] -> (x - mean) / std per channel (one value per channel in each).
  std::string normalise(const std::string& x, const std::vector<float>& mean, const std::vector<float>& std);
  // x [N, C, 1, 1] -> [N, C, h, w], every pixel a copy (see the .cpp for why it is needed).
  std::string spread(const std::string& x, int64_t h, int64_t w, const std::string& path);

 protected:
  std::string repeat_columns(const std::string& x, int64_t d, const std::string& path);

  OnnxGraph& g_;
};

}  // namespace ag::interop
