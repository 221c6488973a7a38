// sweep: trains a grid of runs (datasets x models x losses x s x m), one after another in
// this process, each in its own folder, and writes the paper's comparison: Markdown tables
// in the layout of its Tables 1 and 2 (rows: loss, columns: model, one table per dataset,
// cells "top-1 / mAP") and a plot of test accuracy against the margin m (its Figure 2).
//
// Run:
//   sweep --datasets cifar10 --models resnet20,mobilenetv2:width=0.5 --losses ce,arcface
//         --s-values 1,16 --m-values 0.1 --epochs 15 --out runs/table1
//   sweep --datasets cifar10 --models resnet20 --losses ce,arcface --s-values 16
//         --m-values 0.05,0.1,0.2,0.5,1,2 --epochs 10 --train-subset 10000 --out runs/fig2
//   sweep --datasets fashion-mnist --models convnet --losses ce,arcface --s-values 16
//         --m-values 0.1,0.3 --epochs 1 --train-subset 1000 --test-subset 500 --out /tmp/sw
// Every other train flag (--epochs, --lr, --schedule, --train-subset, ...) applies to all
// runs. ce runs once per model (s and m do not apply), normface and combined once per s.
// A run folder that already holds a finished run is reused and a stopped one is resumed,
// so an interrupted sweep continues where it stopped.
// Output: OUT/results.md (the tables, also printed), OUT/results.json, and
// OUT/<dataset>_accuracy_vs_m.png when the grid has at least two m values.
// Exit status: 0 done, 1 error, 2 bad command line, 130 stopped by Ctrl-C.
#include "apps/lib/sweep.h"

#include <filesystem>
#include <iostream>
#include <sstream>

#include "apps/lib/app_main.h"
#include "apps/lib/checkpoint.h"
#include "apps/lib/flags.h"
#include "apps/lib/train_config.h"
#include "apps/lib/trainer.h"
#include "core/serialize/atomic_file.h"

using namespace ag;
using namespace ag::train;
namespace fs = std::filesystem;

namespace {

const std::set<std::string> kGridFlags = {"dataset", "data-dir", "model",  "loss", "s",
                                          "m",       "out",      "resume", "head"};

Flags make_flags() {
  Flags f("sweep", "Trains a grid of runs and tabulates test top-1 / mAP like the paper's Tables 1-2.");
  f.add_string("datasets", "cifar10", "comma list of datasets");
  f.add_string("data-dirs", "", "comma list of their folders, one per dataset (\"\": the defaults)");
  f.add_string("models", "resnet20", "comma list of model specs");
  f.add_string("losses", "ce,arcface", "comma list of losses");
  f.add_string("s-values", "1", "comma list of scales s");
  f.add_string("m-values", "0.1", "comma list of margins m");
  f.add_string("out", "runs/sweep", "root folder: one subfolder per run, results.md, plots");
  add_train_flags(f, kGridFlags);
  return f;
}

// Trains (or resumes, or reuses) one grid point; false when stopped by Ctrl-C.
bool run_point(const TrainConfig& config, SweepEntry& entry) {
  bool resume = checkpoint_exists(config.out);
  TrainConfig c = config;
  if (resume) {
    const TrainConfig saved = TrainConfig::from_json(read_checkpoint_state(c.out).config);
    const std::string conflict = resume_conflict(saved, c);
    AG_CHECK(conflict.empty(), "'" << c.out << "' holds a run with another configuration (" << conflict
                                   << "); remove it or choose another --out");
  }
  c.resume = resume;
  Trainer trainer(c);
  TrainResult r;
  try {
    r = trainer.run();
  } catch (const TrainingDiverged& e) {
    std::cout << "diverged: " << e.what() << "\n";
    entry.diverged = true;
    return true;
  }
  if (r.status == TrainResult::Status::interrupted) return false;
  entry.top1 = r.final_eval.top1;
  entry.top5 = r.final_eval.top5;
  entry.map = r.final_eval.map;
  entry.epochs = r.epochs_done;
  const MetricsTable table = read_metrics_csv((fs::path(c.out) / "metrics.csv").string());
  for (double s : table.column("seconds")) entry.seconds += s;
  return true;
}

nlohmann::json entry_json(const SweepEntry& e) {
  return {{"dataset", e.point.dataset},
          {"model", e.point.model},
          {"loss", e.point.loss.describe()},
          {"label", e.point.label},
          {"folder", e.point.folder},
          {"s", e.point.loss.s},
          {"m", e.point.loss.m},
          {"top1", e.top1},
          {"top5", e.top5},
          {"map", e.map},
          {"train_seconds", e.seconds},
          {"epochs", e.epochs},
          {"diverged", e.diverged}};
}

std::string notes_of(const TrainConfig& base) {
  std::ostringstream os;
  os << base.epochs << " epochs, batch " << base.batch_size << ", " << base.optimizer << " lr " << base.lr
     << " " << base.schedule << ", seed " << base.seed;
  if (base.train_subset > 0) os << ", train subset " << base.train_subset << " (" << base.subset_mode << ")";
  if (base.test_subset > 0) os << ", test subset " << base.test_subset << " (" << base.subset_mode << ")";
  return os.str();
}

}  // namespace

int main_body(const Flags& flags) {
  TrainConfig base = config_from_flags(flags, kGridFlags);
  SweepGrid grid;
  grid.datasets = split_list(flags.get_string("datasets"), "datasets");
  if (!flags.get_string("data-dirs").empty())
    grid.data_dirs = split_list(flags.get_string("data-dirs"), "data-dirs");
  if (!grid.data_dirs.empty() && grid.data_dirs.size() != grid.datasets.size())
    flags.fail("data-dirs", "needs one folder per dataset");
  grid.models = split_list(flags.get_string("models"), "models");
  grid.losses = split_list(flags.get_string("losses"), "losses");
  grid.s_values = parse_number_list(flags.get_string("s-values"), "s-values");
  grid.m_values = parse_number_list(flags.get_string("m-values"), "m-values");
  const fs::path root = flags.get_string("out");
  std::vector<TrainConfig> configs;
  const std::vector<SweepPoint> points = expand_sweep(grid, base.loss);
  for (const SweepPoint& p : points) {  // every configuration checked before the first run starts
    TrainConfig c = base;
    c.dataset = p.dataset;
    c.data_dir = p.data_dir;
    c.model = p.model;
    c.loss = p.loss;
    c.out = (root / p.folder).string();
    c.validate();
    configs.push_back(c);
  }
  install_sigint_handler();
  std::vector<SweepEntry> entries;
  for (size_t i = 0; i < points.size(); ++i) {
    std::cout << "\n=== run " << i + 1 << "/" << points.size() << ": " << points[i].dataset << " "
              << points[i].model << " " << points[i].label << " -> " << configs[i].out << "\n";
    SweepEntry e;
    e.point = points[i];
    if (!run_point(configs[i], e)) return 130;
    entries.push_back(e);
  }
  const std::string md = "# Sweep results\n\n" + sweep_markdown(entries, notes_of(base));
  fs::create_directories(root);
  serialize::write_file_atomic((root / "results.md").string(), md);
  nlohmann::json all = nlohmann::json::array();
  for (const SweepEntry& e : entries) all.push_back(entry_json(e));
  serialize::write_file_atomic((root / "results.json").string(), all.dump(2) + "\n");
  std::cout << "\n" << md << "wrote " << (root / "results.md").string() << "\n";
  if (base.plots && gnuplot_available()) {
    for (const std::string& dataset : grid.datasets) {
      const std::vector<LineSeries> series = accuracy_vs_m_series(entries, dataset);
      if (series.empty()) continue;
      const std::string png = (root / (dataset + "_accuracy_vs_m.png")).string();
      std::string title = dataset + ": test top-1 against m, " + std::to_string(base.epochs) + " epochs";
      if (base.train_subset > 0) title += ", " + std::to_string(base.train_subset) + " training images";
      plot_accuracy_vs_m(png, series, title);
      std::cout << "plot: " << png << "\n";
    }
  }
  return 0;
}

int main(int argc, char** argv) { return run_app(argc, argv, make_flags, main_body); }
