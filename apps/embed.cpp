// embed: the paper's Figure 1 made real. Trains a small CNN whose feature layer has only 2
// dimensions on a few classes, once with softmax cross-entropy (a linear head) and once
// with ArcFace, and plots each model's test features, normalised onto the unit circle, with
// its class weight directions, side by side. It prints, for each model, its test top-1, the
// mean angle of the test features to their own class weight, and the smallest angular gap
// between the arcs (central 95%) of two neighbouring classes (apps/lib/embedding_stats.h).
//
// Run:
//   embed                                                     # 4 Fashion-MNIST classes
//   embed --seed 3 --out runs/embed-seed3
//   embed --dataset cifar10 --data-dir datasets/cifar-10-batches-bin --classes 0,1,7,8
// Output: OUT/embedding.png (the two panels; embedding_spread.png or embedding_random.png
// with another --class-weights), OUT/softmax/ and OUT/arcface_fixed/ (arcface_spread/,
// arcface_random/): ordinary run folders (config, metrics, checkpoint, curves). A run folder
// that already holds a finished run is reused (so rerunning only redraws the figure and
// reprints the figures).
//
// Why these defaults. A 2-D cosine head is the hard case of the margin losses: with a
// random initialisation two of the four class weights can start a few degrees apart, the
// margin then pushes one class's features away from both, and that class can settle on the
// wrong side of the circle (with the previous defaults, 4 epochs of 4,000 images, s = 8,
// m = 0.3, seeds 1-3 gave 68.6%, 95.7% and 94.0%). So:
// - the ArcFace class weights are evenly spread round the circle (90 degrees apart for
//   4 classes) and fixed there (--class-weights fixed): the features must gather round
//   directions that stay apart. Spread at the start but trained (--class-weights spread),
//   two weights can still drift towards each other and a class can lag behind its own
//   weight (seed 3: 13 degrees on average, a 12-degree gap, against 8 and 30 fixed). A
//   fixed classifier costs nothing here (Hoffer et al. 2018, "Fix your classifier"): the
//   backbone does the learning. The softmax head keeps its usual random start and is
//   trained, to show softmax as it is normally trained;
// - training is longer: 10 epochs over all 24,000 training images of the 4 classes, with
//   the margin rising from 0 over the first 3 epochs (the features first find their
//   classes; over 1 epoch, seed 3 collapsed to 46% when the full margin arrived);
// - s and m follow the geometry of the ArcFace paper's 2-D toy example (a handful of
//   classes on the circle, each a tight arc round its weight with empty sectors between):
//   m = 0.5, the paper's margin, is about 29 degrees, a third of the 90 degrees between
//   neighbouring weights, so it can open real gaps; s = 10 instead of the paper's 64 for
//   512-D features: a feature on its own weight then already has probability
//   e^(10 cos 0.5) / (e^(10 cos 0.5) + 2 + e^-10) = 0.9997, while a larger s only makes the
//   early, crowded phase of a 2-D embedding unstable (with s = 16 the earlier version of this
//   demo often stalled with its weights bunched on one side).
// Expected (defaults, one thread; docs/results.md, "Figure 1", seeds 1-5): ArcFace
// 98.2-98.9% test top-1 on the 4 Fashion-MNIST classes (T-shirt, trouser, sandal, bag),
// features 7-8.5 degrees from their own weight on average and gaps of 19-34 degrees
// between neighbouring classes. Softmax reaches 99.2-99.5% with features as tight (7-8
// degrees): with only 4 classes in 2 dimensions it has room enough. 1-5 minutes per model
// on the 2-core machine, depending on what else runs.
// Exit status: 0 done, 1 error, 2 bad command line, 130 stopped by Ctrl-C.
#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "apps/lib/app_main.h"
#include "apps/lib/checkpoint.h"
#include "apps/lib/embedding_stats.h"
#include "apps/lib/flags.h"
#include "apps/lib/plots.h"
#include "apps/lib/sweep.h"
#include "apps/lib/trainer.h"
#include "data/open_dataset.h"

using namespace ag;
using namespace ag::train;
namespace fs = std::filesystem;

namespace {

Flags make_flags() {
  Flags f("embed",
          "Trains a 2-D-feature CNN with softmax and with ArcFace and plots the features (Figure 1).");
  f.add_choice("dataset", "fashion-mnist", {"fashion-mnist", "mnist", "cifar10", "cifar100", "folder"},
               "dataset");
  f.add_string("data-dir", "", "its folder (\"\": the default)");
  f.add_string("classes", "0,1,5,8", "comma list of the class indices to use");
  f.add_string("model", "convnet:width=16,features=2", "backbone; its feature dimension must be 2");
  f.add_int("epochs", 10, "epochs per model");
  f.add_int("batch-size", 64, "batch size");
  f.add_choice("optimizer", "sgd", {"sgd", "adamw"}, "optimizer (cosine schedule)");
  f.add_double("lr", 0.05, "peak learning rate");
  f.add_double("wd", 5e-4, "weight decay");
  f.add_double("s", 10, "ArcFace scale (enough for 2-D features; s >= 16 trains badly there)");
  f.add_double("m", 0.5, "ArcFace additive angular margin (the ArcFace paper's default)");
  f.add_choice("class-weights", "fixed", {"fixed", "spread", "random"},
               "ArcFace class weights: evenly spread and never trained, evenly spread at the start and "
               "trained, or a random start (the usual initialisation)");
  f.add_double("margin-warmup", 3,
               "epochs over which the ArcFace margin rises from 0 (2-D features collapse without)");
  f.add_int("train-subset", 0, "training images (of the chosen classes; 0: all)");
  f.add_int("test-subset", 0, "test images to evaluate and plot (0: all)");
  f.add_int("seed", 1, "seed");
  // One thread by default: the small CNN gains little from a second, and a run's float sums
  // (so its result) depend on the thread count; the figures quoted above used one.
  f.add_int("threads", 1, "compute threads (0: the library's default)");
  f.add_int("workers", 2, "data-loader threads");
  f.add_choice("progress", "auto", {"auto", "bar", "lines", "off"}, "progress display");
  f.add_string("out", "runs/embed", "output folder");
  return f;
}

// The examples of the chosen classes, relabelled 0..K-1 in the order given.
std::shared_ptr<const Dataset> keep_classes(const Dataset& d, const std::vector<int64_t>& classes) {
  std::vector<std::string> names;
  for (int64_t c : classes) names.push_back(d.class_names().at(static_cast<size_t>(c)));
  Dataset out(d.channels(), d.height(), d.width(), names);
  for (int64_t i = 0; i < d.size(); ++i)
    for (size_t k = 0; k < classes.size(); ++k)
      if (d.label(i) == classes[k]) out.add(d.image(i), static_cast<int64_t>(k));
  out.set_source(d.source());
  return std::make_shared<const Dataset>(std::move(out));
}

TrainConfig base_config(const Flags& f) {
  TrainConfig c;
  c.dataset = f.get_string("dataset");
  c.data_dir = f.get_string("data-dir");
  c.model = f.get_string("model");
  c.epochs = f.get_int("epochs");
  c.batch_size = f.get_int("batch-size");
  c.lr = f.get_double("lr");
  c.optimizer = f.get_string("optimizer");
  c.wd = f.get_double("wd");
  c.train_subset = f.get_int("train-subset");
  c.test_subset = f.get_int("test-subset");
  c.subset_mode = "random";  // the first N of a class-filtered set would be fine too; random is balanced
  c.augment = c.dataset != "fashion-mnist" && c.dataset != "mnist";
  c.seed = static_cast<uint64_t>(std::max<int64_t>(0, f.get_int("seed")));
  c.threads = static_cast<int>(f.get_int("threads"));
  c.workers = static_cast<int>(f.get_int("workers"));
  c.progress = f.get_string("progress");
  return c;
}

// The class weight matrix [C, 2] of whichever head the loss trains.
Tensor& head_weight(ClassifierLoss& criterion) {
  return criterion.cosine_head() ? criterion.cosine_head()->weight() : criterion.linear_head()->weight();
}

// --class-weights in a panel title's words.
std::string weights_words(const std::string& class_weights) {
  if (class_weights == "fixed") return "fixed weights";
  if (class_weights == "spread") return "weights spread, trained";
  return "random weights";
}

// Trains (or reuses) one model and returns its panel. class_weights: how a cosine head's
// weights start and whether they train (--class-weights); a linear head ignores it.
EmbeddingPanel train_panel(TrainConfig c, const TrainerHooks& hooks, const std::string& title,
                           const std::string& class_weights, bool& stopped) {
  c.resume = checkpoint_exists(c.out);
  Trainer trainer(c, hooks);
  AG_CHECK(trainer.net().model().feature_dim() == 2, "--model " << c.model << " has "
                                                                << trainer.net().model().feature_dim()
                                                                << " features; embed needs 2");
  ClassifierLoss& criterion = trainer.net().criterion();
  // The cosine head only: softmax is shown as it is normally trained (its weights' norms and
  // biases give it other ways out of a bad start).
  if (criterion.cosine_head()) set_class_weights(head_weight(criterion), class_weights, c.resume);
  const TrainResult r = trainer.run();
  stopped = r.status == TrainResult::Status::interrupted;
  LoaderOptions o;
  o.batch_size = 256;
  o.shuffle = false;
  o.num_workers = c.workers;
  DataLoader loader(trainer.data().test, eval_transform(trainer.data().stats), o);
  EmbeddingPanel panel;
  panel.features = collect_features(trainer.net(), loader, Device::cpu(), &panel.labels);
  panel.weights = head_weight(criterion).detach().to(Device::cpu());
  panel.class_names = trainer.data().test->class_names();
  const ArcStats arcs = measure_arcs(panel);
  std::ostringstream os;
  os << title << ": top-1 " << std::fixed << std::setprecision(1) << 100 * r.final_eval.top1 << "%, angle "
     << std::setprecision(0) << arcs.mean_angle_deg << ", gap " << arcs.min_gap_deg << " deg";
  panel.title = os.str();
  std::cout << title << ": test top-1 " << std::fixed << std::setprecision(2) << 100 * r.final_eval.top1
            << "%, mean angle of the features to their own class weight " << std::setprecision(1)
            << arcs.mean_angle_deg << " deg, smallest gap between classes " << arcs.min_gap_deg << " deg ("
            << arcs.min_gap_between << ")\n";
  return panel;
}

}  // namespace

int main_body(const Flags& flags) {
  TrainConfig base = base_config(flags);
  base.validate();
  std::vector<int64_t> classes;
  for (double v : parse_number_list(flags.get_string("classes"), "classes"))
    classes.push_back(static_cast<int64_t>(v));
  const std::string data_dir = base.data_dir.empty() ? default_data_dir(base.dataset) : base.data_dir;
  const Dataset train = open_dataset(base.dataset, data_dir, Split::train);
  for (int64_t c : classes)
    if (c < 0 || c >= train.num_classes() || std::count(classes.begin(), classes.end(), c) > 1)
      flags.fail("classes",
                 "needs distinct class indices in [0, " + std::to_string(train.num_classes()) + ")");
  if (classes.size() < 2) flags.fail("classes", "needs at least 2 classes");
  TrainerHooks hooks;
  hooks.train_set = keep_classes(train, classes);
  hooks.test_set = keep_classes(open_dataset(base.dataset, data_dir, Split::test), classes);
  install_sigint_handler();
  const fs::path out = flags.get_string("out");

  TrainConfig softmax = base;
  softmax.loss.kind = "ce";
  softmax.out = (out / "softmax").string();
  TrainConfig arcface = base;
  arcface.loss.kind = "arcface";
  arcface.loss.s = flags.get_double("s");
  arcface.loss.m = flags.get_double("m");
  arcface.margin_warmup_epochs = flags.get_double("margin-warmup");
  const std::string class_weights = flags.get_string("class-weights");
  // One folder per weight mode: the training configuration does not record it, so a folder
  // reused across modes would mix two models.
  arcface.out = (out / ("arcface_" + class_weights)).string();
  arcface.validate();
  bool stopped = false;
  std::vector<EmbeddingPanel> panels;
  panels.push_back(train_panel(softmax, hooks, "softmax (linear head)", class_weights, stopped));
  if (stopped) return 130;
  panels.push_back(train_panel(arcface, hooks, arcface.loss.describe() + ", " + weights_words(class_weights),
                               class_weights, stopped));
  if (stopped) return 130;
  const std::string png =
      (out / (class_weights == "fixed" ? "embedding.png" : "embedding_" + class_weights + ".png")).string();
  if (!gnuplot_available()) {
    std::cout << "note: gnuplot not found, no embedding.png (Debian: apt install gnuplot-nox)\n";
    return 0;
  }
  plot_embeddings(png, panels);
  std::cout << "plot: " << png << "\n";
  return 0;
}

int main(int argc, char** argv) { return run_app(argc, argv, make_flags, main_body); }
