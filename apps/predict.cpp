// predict: the top-5 classes of image files according to a trained run. Each image is
// decoded (PNG, JPEG, BMP, GIF, TGA), converted to the run's channels (grey or RGB),
// resized to cover the model's input size and centre-cropped, normalised with the run's
// statistics and scored in eval mode: softmax probabilities for a cross-entropy run,
// cosines cos(theta) between the features and each class weight for a margin-loss run.
//
// Run:
//   predict --checkpoint runs/r20-arcface cat.png dog.jpg
//   predict --checkpoint runs/r20-arcface/checkpoint.safetensors --top 3 photos/
// Output: per image its path and "  class  probability|cosine  score" lines, best first.
// An image that cannot be read or decoded is reported on stderr naming the file; the
// others are still predicted.
// Exit status: 0 all predicted, 1 an error (or some images unreadable), 2 bad command line.
#include "apps/lib/predict.h"

#include <iostream>

#include "apps/lib/app_main.h"
#include "core/parallel.h"

using namespace ag;
using namespace ag::train;

Flags make_flags() {
  Flags f("predict", "Prints the top classes of image files according to a trained run.");
  f.allow_positional("IMAGES", "image files or folders (searched recursively)");
  f.add_string("checkpoint", "", "a run folder, or its checkpoint.safetensors (required)");
  f.add_int("top", 5, "how many classes to print per image");
  f.add_int("batch-size", 64, "images per forward pass");
  f.add_string("device", "cpu", "cpu, cuda or cuda:N");
  f.add_int("threads", 0, "compute threads (0: the default)");
  return f;
}

int main_body(const Flags& flags) {
  if (flags.get_string("checkpoint").empty()) flags.fail("checkpoint", "is required");
  if (flags.positional().empty())
    throw UsageError("predict: name at least one image file or folder (see --help)");
  if (flags.get_int("top") < 1) flags.fail("top", "must be >= 1");
  if (flags.get_int("batch-size") < 1) flags.fail("batch-size", "must be >= 1");
  if (flags.get_int("threads") > 0) set_num_threads(static_cast<int>(flags.get_int("threads")));
  const Device device = Device::parse(flags.get_string("device"));
  TrainedRun run = load_trained_run(flags.get_string("checkpoint"), device);
  const std::vector<std::string> files = expand_image_paths(flags.positional());
  const std::vector<Prediction> predictions =
      predict_images(run, files, static_cast<int>(flags.get_int("top")), device, flags.get_int("batch-size"));
  std::cout << format_predictions(predictions, run.class_names, score_kind(run));
  int failed = 0;
  for (const Prediction& p : predictions)
    if (!p.error.empty()) std::cerr << "predict: " << p.error << "\n", ++failed;
  if (failed > 0)
    std::cerr << "predict: " << failed << " of " << predictions.size() << " images could not be read\n";
  return failed > 0 ? 1 : 0;
}

int main(int argc, char** argv) { return run_app(argc, argv, make_flags, main_body); }
