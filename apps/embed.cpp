// embed: the paper's Figure 1 made real. Trains a small CNN whose feature layer has only 2
// dimensions on a few classes, once with softmax cross-entropy (a linear head) and once
// with ArcFace, and plots each model's test features, normalised onto the unit circle, with
// its class weight directions, side by side. Softmax only needs the classes separated by
// angle somewhere; the additive angular margin pushes each class into a tighter arc around
// its own weight, leaving gaps between the classes.
//
// Run:
//   embed                                                     # 4 Fashion-MNIST classes
//   embed --dataset cifar10 --data-dir datasets/cifar-10-batches-bin --classes 0,1,7,8
//   embed --s 16 --m 0.5 --epochs 6 --out runs/embed-s16
// Output: OUT/embedding.png (the two panels), OUT/softmax/ and OUT/arcface/ (ordinary run
// folders: config, metrics, checkpoint, curves). A run folder that already holds a finished
// run is reused.
// Expected (defaults, under a minute on 2 cores): softmax about 98% and ArcFace about 94%
// test top-1 on the 4 Fashion-MNIST classes (T-shirt, trouser, sandal, bag); the softmax
// features fill wide sectors between its weight directions, the ArcFace features gather in
// arcs around their own class weight. The 2-D cosine head is the hard case of the margin
// losses: with s = 16 or in 2 epochs it often stalls with the weights bunched on one side.
// Exit status: 0 done, 1 error, 2 bad command line, 130 stopped by Ctrl-C.
#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "apps/lib/app_main.h"
#include "apps/lib/checkpoint.h"
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
  f.add_int("epochs", 4, "epochs per model");
  f.add_int("batch-size", 64, "batch size");
  f.add_choice("optimizer", "sgd", {"sgd", "adamw"}, "optimizer (cosine schedule)");
  f.add_double("lr", 0.05, "peak learning rate");
  f.add_double("wd", 5e-4, "weight decay");
  f.add_double("s", 8, "ArcFace scale (2-D features train badly with s >= 16)");
  f.add_double("m", 0.3, "ArcFace additive angular margin");
  f.add_double("margin-warmup", 1,
               "epochs over which the ArcFace margin rises from 0 (2-D features collapse without)");
  f.add_int("train-subset", 4000, "training images (of the chosen classes; 0: all)");
  f.add_int("test-subset", 1000, "test images to plot (0: all)");
  f.add_int("seed", 0, "seed");
  f.add_int("threads", 0, "compute threads (0: the default)");
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

// Trains (or reuses) one model and returns its panel.
EmbeddingPanel train_panel(TrainConfig c, const TrainerHooks& hooks, const std::string& title,
                           bool& stopped) {
  c.resume = checkpoint_exists(c.out);
  Trainer trainer(c, hooks);
  AG_CHECK(trainer.net().model().feature_dim() == 2, "--model " << c.model << " has "
                                                                << trainer.net().model().feature_dim()
                                                                << " features; embed needs 2");
  const TrainResult r = trainer.run();
  stopped = r.status == TrainResult::Status::interrupted;
  LoaderOptions o;
  o.batch_size = 256;
  o.shuffle = false;
  o.num_workers = c.workers;
  DataLoader loader(trainer.data().test, eval_transform(trainer.data().stats), o);
  EmbeddingPanel panel;
  panel.features = collect_features(trainer.net(), loader, Device::cpu(), &panel.labels);
  ClassifierLoss& criterion = trainer.net().criterion();
  panel.weights =
      (criterion.cosine_head() ? criterion.cosine_head()->weight() : criterion.linear_head()->weight())
          .detach()
          .to(Device::cpu());
  panel.class_names = trainer.data().test->class_names();
  std::ostringstream os;
  os << title << ": test top-1 " << std::fixed << std::setprecision(1) << 100 * r.final_eval.top1 << "%";
  panel.title = os.str();
  std::cout << panel.title << "\n";
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
  arcface.out = (out / "arcface").string();
  arcface.validate();
  bool stopped = false;
  std::vector<EmbeddingPanel> panels;
  panels.push_back(train_panel(softmax, hooks, "softmax (linear head)", stopped));
  if (stopped) return 130;
  panels.push_back(train_panel(arcface, hooks, "ArcFace " + arcface.loss.describe(), stopped));
  if (stopped) return 130;
  const std::string png = (out / "embedding.png").string();
  if (!gnuplot_available()) {
    std::cout << "note: gnuplot not found, no embedding.png (Debian: apt install gnuplot-nox)\n";
    return 0;
  }
  plot_embeddings(png, panels);
  std::cout << "plot: " << png << "\n";
  return 0;
}

int main(int argc, char** argv) { return run_app(argc, argv, make_flags, main_body); }
