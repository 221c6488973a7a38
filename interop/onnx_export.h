// ONNX export: the inference graph of an arcgrad network as an onnx::ModelProto, built with
// the ONNX project's own C++ library (Debian libonnx-dev) and checked by
// onnx::checker::check_model before it is returned.
//
//   OnnxExportOptions o;
//   o.input_shape = {3, 32, 32};
//   o.mean = stats.mean;  o.std = stats.std;   // the graph then takes [0, 1] pixels
//   onnx::ModelProto model = export_onnx(*run.net, o);
//   save_onnx(model, "model.onnx");
//
// The graph has eval-mode semantics whatever mode the module is in: batch norms use their
// running statistics and are folded into the preceding convolution or linear layer
// (standalone ones become BatchNormalization), dropout and drop-path vanish. One input
// "input" float32 [batch, C, H, W] and one output "logits" float32 [batch, K]; batch is a
// symbolic dimension, so any batch size runs. For a Classifier the output is what the apps
// report as scores: the linear head's logits (ce), or the cosine head's cos theta (every
// margin loss and joint). Opset 13.
//
// Exportable modules: Classifier, ClassifierLoss, CosineHead, the models of models/ (ResNet
// basic and bottleneck, MobileNetV2, EfficientNet) and ConvNet, and the layers they are built
// from (see exportable_module_types()). Anything else is an error naming the module and its
// type. This code lives outside core/layers/models so that only the export app and its
// tests depend on ONNX.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "apps/lib/run_data.h"
#include "layers/module.h"

namespace ag::interop {

struct OnnxExportOptions {
  std::vector<int64_t> input_shape;  // C, H, W of one image (required)
  // Per channel, in [0, 1] pixel units. When given, the graph starts with (x - mean) / std
  // and takes images scaled to [0, 1]; when both are empty it takes normalised images.
  std::vector<float> mean, std;
  std::string doc;                              // the model's doc_string
  std::map<std::string, std::string> metadata;  // metadata_props (class names, the run's config)
};

inline constexpr int64_t kOnnxOpset = 13;

// net's inference graph, checked by onnx::checker::check_model. Throws ag::Error for bad
// options, a module that cannot be exported (naming its dotted path and type), or a
// graph that fails the checker.
onnx::ModelProto export_onnx(Module& net, const OnnxExportOptions& options);

// The options for exporting a trained run (apps/lib/run_data.h): its image shape, and
// with normalise its mean / std in the graph; the doc string and metadata_props carry the
// class names (JSON list), mean, std, model spec, loss and epoch.
OnnxExportOptions run_export_options(const train::TrainedRun& run, bool normalise);

// Writes model to path atomically (a crash leaves no half-written file).
void save_onnx(const onnx::ModelProto& model, const std::string& path);

// The module type names export_onnx understands, for error messages and docs.
std::vector<std::string> exportable_module_types();

}  // namespace ag::interop
