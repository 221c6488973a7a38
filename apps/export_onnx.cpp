// export_onnx: writes a trained classifier's inference graph as an ONNX model (opset 13),
// for ONNX Runtime, OpenCV's DNN module or any other ONNX runtime. See docs/interop.md.
//
// Run:
//   export_onnx --checkpoint runs/r20-arcface --out r20.onnx
//   export_onnx --checkpoint runs/fm/checkpoint.safetensors --out fm.onnx --no-normalise
// The graph: input "input" float32 [batch, C, H, W], output "logits" float32 [batch, classes]
// (the linear head's logits for ce, cos theta for the margin losses: the scores evaluate
// reports), batch norms folded, any batch size. By default it includes the run's
// normalisation, so it takes pixels scaled to [0, 1] (uint8 / 255), RGB planes in the
// dataset's channel order; with --no-normalise it takes images already normalised with the
// run's mean and std. The class names, mean and std are in the model's metadata_props.
// Built only when the ONNX C++ library is found (CMake option AG_ONNX).
// Exit status: 0 done, 1 error (unreadable checkpoint, a module with no ONNX form), 2 bad
// command line.
#include <iostream>
#include <nlohmann/json.hpp>

#include "apps/lib/app_main.h"
#include "apps/lib/flags.h"
#include "apps/lib/run_data.h"
#include "interop/onnx_export.h"

using namespace ag;
using namespace ag::train;

namespace {

Flags make_flags() {
  Flags f("export_onnx", "Exports a trained classifier checkpoint as an ONNX model.");
  f.add_string("checkpoint", "", "a run folder, or its checkpoint.safetensors (required)");
  f.add_string("out", "", "the .onnx file to write (required)");
  f.add_bool("normalise", true, "include the run's (x - mean) / std, so the model takes [0, 1] pixels");
  return f;
}

interop::OnnxExportOptions export_options(const TrainedRun& run, bool normalise) {
  interop::OnnxExportOptions o;
  o.input_shape = run.image_shape;
  if (normalise) {
    o.mean = run.stats.mean;
    o.std = run.stats.std;
  }
  o.doc = std::string("arcgrad ") + run.config.model + ", " + run.config.loss.describe() +
          (normalise ? ". Input: float32 [batch, C, H, W] pixels scaled to [0, 1]; the graph normalises."
                     : ". Input: float32 [batch, C, H, W] normalised with metadata mean / std.") +
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

}  // namespace

int main_body(const Flags& flags) {
  if (flags.get_string("checkpoint").empty()) flags.fail("checkpoint", "is required");
  if (flags.get_string("out").empty()) flags.fail("out", "is required");
  const TrainedRun run = load_trained_run(flags.get_string("checkpoint"), Device::cpu());
  run.net->eval();
  const onnx::ModelProto model = interop::export_onnx(*run.net, export_options(run, flags.get_bool("normalise")));
  interop::save_onnx(model, flags.get_string("out"));
  std::cout << "wrote " << flags.get_string("out") << ": " << run.config.model << " ("
            << run.config.loss.describe() << "), input [batch, " << run.image_shape[0] << ", "
            << run.image_shape[1] << ", " << run.image_shape[2] << "] "
            << (flags.get_bool("normalise") ? "in [0, 1] (normalised in the graph)" : "already normalised")
            << ", output [batch, " << run.class_names.size() << "], " << model.graph().node_size()
            << " nodes, opset " << interop::kOnnxOpset << ", passes onnx::checker\n";
  return 0;
}

int main(int argc, char** argv) { return run_app(argc, argv, make_flags, main_body); }
