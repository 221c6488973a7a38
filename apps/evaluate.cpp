// evaluate: loads a trained classifier from its checkpoint and reports every metric on a
// dataset: top-1 and top-5 accuracy, mAP (mean over classes of the average precision of
// the class scores), the loss, a per-class table and the confusion matrix (printed and as
// a PNG).
//
// Run:
//   evaluate --checkpoint runs/r20-arcface                      # its own dataset, test split
//   evaluate --checkpoint runs/r20-arcface/checkpoint.safetensors --split train --subset 5000
//   evaluate --checkpoint runs/fm --data-dir /other/fashion-mnist --out /tmp/eval
//   evaluate --checkpoint runs/r20-arcface --fold-bn=false     # the unfolded model (slower)
//   evaluate --checkpoint runs/r20-ce --tta flip               # mean of image and mirror
// Batch norm is folded into the convolution before it (models/fold_batch_norm.h) unless
// --fold-bn=false: the same scores up to float rounding, in less time (printed).
// --tta flip scores every image and its mirror and ranks by the mean of the two scores
// (test-time augmentation: twice the work; the loss printed is the mean of the two views').
// Writes OUT/eval.json (all numbers, per-class lists, the confusion matrix) and
// OUT/confusion.png (OUT defaults to CHECKPOINT_DIR/eval).
// Expected: on the test split, the same top-1/top-5/mAP as the last line of the run's
// metrics.csv (unless a --subset or another dataset is given; the folded model's scores
// differ from the trained model's by float rounding, so a near-tie may rarely flip: use
// --no-fold-bn for the training loop's exact numbers). A truncated, foreign or
// mismatched checkpoint stops with one line naming the file and what is wrong.
// Exit status: 0 done, 1 error, 2 bad command line.
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <vector>

#include "apps/lib/app_main.h"
#include "apps/lib/flags.h"
#include "apps/lib/plots.h"
#include "apps/lib/run_data.h"
#include "core/parallel.h"
#include "core/serialize/atomic_file.h"
#include "models/fold_batch_norm.h"

using namespace ag;
using namespace ag::train;

namespace {

Flags make_flags() {
  Flags f("evaluate", "Evaluates a trained classifier checkpoint on a dataset.");
  f.add_string("checkpoint", "", "a run folder, or its checkpoint.safetensors (required)");
  f.add_string("dataset", "", "override the run's dataset (\"\": the run's)");
  f.add_string("data-dir", "", "override the run's data folder (\"\": the run's)");
  f.add_choice("split", "test", {"test", "train"}, "which split to evaluate");
  f.add_int("subset", -1, "evaluate on N images only (0: all; -1: the run's --test-subset)");
  f.add_int("batch-size", 256, "evaluation batch size");
  f.add_string("device", "cpu", "cpu, cuda or cuda:N");
  f.add_int("threads", 0, "compute threads (0: the default)");
  f.add_int("workers", 2, "data-loader threads");
  f.add_string("out", "", "folder for eval.json and confusion.png (\"\": CHECKPOINT_DIR/eval)");
  f.add_bool("plots", true, "draw confusion.png (needs gnuplot)");
  f.add_choice("tta", "none", {"none", "flip"},
               "test-time augmentation: none, or the mean of each image's and its mirror's scores");
  f.add_bool("fold-bn", true, "fold batch norm into the preceding convolutions (the inference fast path)");
  return f;
}

// The run's data configuration with the flags' overrides.
TrainConfig data_config(const TrainedRun& run, const Flags& f) {
  TrainConfig c = run.config;
  if (f.was_set("dataset")) {
    c.dataset = f.get_string("dataset");
    c.data_dir = "";
  }
  if (f.was_set("data-dir")) c.data_dir = f.get_string("data-dir");
  const int64_t subset = f.get_int("subset");
  if (subset < -1) f.fail("subset", "must be >= -1, got " + std::to_string(subset));
  if (subset >= 0) c.test_subset = c.train_subset = subset;
  if (f.get_string("split") == "test") c.train_subset = 0;
  if (f.get_int("batch-size") < 1) f.fail("batch-size", "must be >= 1");
  if (f.get_int("workers") < 0 || f.get_int("workers") > 64) f.fail("workers", "must lie in [0, 64]");
  c.workers = static_cast<int>(f.get_int("workers"));
  return c;
}

void report(const EvalResult& r, double loss, const TrainedRun& run, const std::string& where) {
  std::cout << "evaluated " << r.count << " images of " << where << "\n"
            << "top-1 " << 100 * r.top1 << "%  top-5 " << 100 * r.top5 << "%  mAP " << 100 * r.map
            << "%  loss " << loss << " (" << run.config.loss.describe() << ")\n\n"
            << format_per_class(r, run.class_names) << "\n"
            << format_confusion(r, run.class_names);
}

}  // namespace

int main_body(const Flags& flags) {
  if (flags.get_string("checkpoint").empty()) flags.fail("checkpoint", "is required");
  if (flags.get_int("threads") > 0) set_num_threads(static_cast<int>(flags.get_int("threads")));
  const Device device = Device::parse(flags.get_string("device"));
  const TrainedRun run = load_trained_run(flags.get_string("checkpoint"), device);
  const TrainConfig c = data_config(run, flags);
  const bool train_split = flags.get_string("split") == "train";
  const RunData data = open_run_data(c, train_split, &run.stats);
  const auto& set = train_split ? data.train : data.test;
  AG_CHECK(set->num_classes() == static_cast<int64_t>(run.class_names.size()),
           "the dataset has " << set->num_classes() << " classes but the checkpoint was trained on "
                              << run.class_names.size());
  LoaderOptions options;
  options.batch_size = flags.get_int("batch-size");
  options.shuffle = false;
  options.num_workers = c.workers;
  const bool flip_tta = flags.get_string("tta") == "flip";
  std::vector<std::unique_ptr<DataLoader>> loaders;  // one per view of the images
  loaders.push_back(std::make_unique<DataLoader>(set, eval_transform(run.stats), options));
  if (flip_tta) loaders.push_back(std::make_unique<DataLoader>(set, mirror_transform(run.stats), options));
  std::vector<DataLoader*> views;
  for (const auto& l : loaders) views.push_back(l.get());
  const int64_t folded = flags.get_bool("fold-bn") ? fold_batch_norm(*run.net) : 0;
  double loss = 0;
  const auto start = std::chrono::steady_clock::now();
  const EvalResult r = evaluate_classifier_views(*run.net, views, device, &loss);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string tta = flip_tta ? ", flip test-time augmentation" : "";
  report(r, loss, run, data.description + " (" + flags.get_string("split") + " split" + tta + ")");
  std::cout << "\n"
            << seconds << " s, " << static_cast<double>(r.count) / seconds
            << " images/s (data loading included); "
            << (flags.get_bool("fold-bn")
                    ? "batch norm folded into " + std::to_string(folded) + " convolutions"
                    : "batch norm not folded")
            << "\n";

  namespace fs = std::filesystem;
  const fs::path out =
      flags.get_string("out").empty() ? fs::path(run.dir) / "eval" : fs::path(flags.get_string("out"));
  fs::create_directories(out);
  nlohmann::json j = {{"checkpoint", run.dir},
                      {"epoch", run.state.epoch},
                      {"data", data.description},
                      {"split", flags.get_string("split")},
                      {"tta", flags.get_string("tta")},
                      {"count", r.count},
                      {"top1", r.top1},
                      {"top5", r.top5},
                      {"map", r.map},
                      {"loss", loss},
                      {"class_names", run.class_names},
                      {"per_class_accuracy", r.per_class_accuracy},
                      {"per_class_ap", r.per_class_ap},
                      {"confusion", r.confusion}};
  serialize::write_file_atomic((out / "eval.json").string(), j.dump(2) + "\n");
  std::cout << "\nwrote " << (out / "eval.json").string() << "\n";
  if (flags.get_bool("plots")) {
    if (gnuplot_available()) {
      plot_confusion_matrix(
          (out / "confusion.png").string(), r.confusion, run.class_names,
          run.config.model + " " + run.config.loss.describe() + ", " + flags.get_string("split"));
      std::cout << "plot: " << (out / "confusion.png").string() << "\n";
    } else {
      std::cout << "note: gnuplot not found, no confusion.png (Debian: apt install gnuplot-nox)\n";
    }
  }
  return 0;
}

int main(int argc, char** argv) { return run_app(argc, argv, make_flags, main_body); }
