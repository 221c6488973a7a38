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

}  // namespace

int main_body(const Flags& flags) {
  if (flags.get_string("checkpoint").empty()) flags.fail("checkpoint", "is required");
  if (flags.get_string("out").empty()) flags.fail("out", "is required");
  const TrainedRun run = load_trained_run(flags.get_string("checkpoint"), Device::cpu());
  run.net->eval();
  const onnx::ModelProto model =
      interop::export_onnx(*run.net, interop::run_export_options(run, flags.get_bool("normalise")));
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
