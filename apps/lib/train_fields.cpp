// The table of TrainConfig's settings; see train_fields.h. The JSON keys are those
// config.json has always had: changing one would stop older runs from loading.
#include "apps/lib/train_fields.h"

#include <cmath>
#include <sstream>

namespace ag::train {

namespace {
std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

std::string str(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}
}  // namespace

std::string Accepts::complaint(const std::string& v) const {
  if (non_empty && v.empty()) return "must not be empty";
  if (choices.empty()) return "";
  for (const std::string& c : choices)
    if (v == c) return "";
  return "must be one of " + join(choices, "|");
}

std::string Accepts::complaint(double v) const {
  const bool bounded_below = std::isfinite(lo), bounded_above = std::isfinite(hi);
  const bool low_ok = lo_open ? v > lo : v >= lo;
  const bool high_ok = hi_open ? v < hi : v <= hi;
  if (std::isfinite(v) && low_ok && high_ok) return "";
  if (bounded_below && bounded_above)
    return "must lie in " + std::string(lo_open ? "(" : "[") + str(lo) + ", " + str(hi) +
           (hi_open ? ")" : "]");
  if (bounded_below) return std::string("must be ") + (lo_open ? "> " : ">= ") + str(lo);
  if (bounded_above) return std::string("must be ") + (hi_open ? "< " : "<= ") + str(hi);
  return "must be a finite number";
}

const std::vector<AnyField>& train_fields() {
  using C = TrainConfig;
  using L = MarginLossConfig;
  static const std::vector<AnyField> fields = {
      // Data.
      field("dataset", "/dataset", &C::dataset, "the dataset")
          .one_of({"cifar10", "cifar100", "fashion-mnist", "mnist", "folder"}),
      field("data-dir", "/data_dir", &C::data_dir,
            "its folder (\"\": $ARCGRAD_DATA/<name> or datasets/<name> for CIFAR, Debian's package for "
            "Fashion-MNIST)"),
      field("cifar100-labels", "/cifar100_labels", &C::cifar100_labels, "CIFAR-100: 100 classes or 20")
          .one_of({"fine", "coarse"}),
      field("train-subset", "/train_subset", &C::train_subset, "train on N images only (0: all)").at_least(0),
      field("test-subset", "/test_subset", &C::test_subset, "evaluate on N test images only (0: all)")
          .at_least(0),
      field("subset", "/subset_mode", &C::subset_mode,
            "which N: N seeded-random ones, or the first N (useless on files sorted by class)")
          .one_of({"first", "random"}),
      field("augment", "/augment", &C::augment, "random crop (padding 4) and horizontal flip"),
      field("cutout", "/cutout", &C::cutout, "Cutout square side in pixels (0: none)").at_least(0),
      field("border", "/border", &C::border,
            "zero border in pixels round every image, before anything else (2: Fashion-MNIST at 32x32, "
            "where a CPU epoch is 1.5 times as fast as at 28x28)")
          .at_least(0),
      // Model and loss; the loss's own ranges (s > 0, m ...) are MarginLossConfig::validate()'s.
      field("model", "/model", &C::model,
            "model spec, e.g. resnet20, resnet18:width=0.25, mobilenetv2:width=0.5, convnet:features=2")
          .not_empty(),
      field("head", "/head", &C::head, "classifier head (auto: linear for ce, cosine for the margin losses)")
          .one_of({"auto", "linear", "cosine"}),
      field("loss", "/loss/kind", &L::kind, "training loss")
          .one_of({"ce", "normface", "sphereface", "cosface", "arcface", "combined", "joint"}),
      field("s", "/loss/s", &L::s, "logit scale of the margin losses"),
      field("m", "/loss/m", &L::m, "margin: cosface/arcface additive, sphereface integer multiplier"),
      field("m1", "/loss/m1", &L::m1, "combined margin: cos(m1*theta + m2) - m3"),
      field("m2", "/loss/m2", &L::m2, "combined margin m2"),
      field("m3", "/loss/m3", &L::m3, "combined margin m3"),
      field("alpha", "/loss/alpha", &L::alpha, "joint: weight of cross-entropy (1 - alpha: the margin loss)"),
      field("joint-margin", "/loss/joint_margin", &L::joint_margin, "joint: the margin loss it mixes in")
          .one_of({"normface", "sphereface", "cosface", "arcface", "combined"}),
      field("easy-margin", "/loss/easy_margin", &L::easy_margin,
            "arcface/combined: no margin where cos(theta_y) <= 0"),
      field("label-smoothing", "/loss/label_smoothing", &L::label_smoothing,
            "label smoothing of every cross-entropy"),
      field("margin-warmup", "/margin_warmup_epochs", &C::margin_warmup_epochs,
            "epochs over which the margin rises from 0")
          .at_least(0),
      // Optimisation.
      field("epochs", "/epochs", &C::epochs, "passes over the training set").at_least(1).resumable(),
      field("batch-size", "/batch_size", &C::batch_size, "training batch size").at_least(1),
      field("optimizer", "/optimizer", &C::optimizer, "sgd: momentum + Nesterov; adamw")
          .one_of({"sgd", "adamw"}),
      field("lr", "/lr", &C::lr, "base (peak) learning rate").above(0),
      field("wd", "/wd", &C::wd, "weight decay").at_least(0),
      field("momentum", "/momentum", &C::momentum, "SGD momentum").at_least(0).below(1),
      field("nesterov", "/nesterov", &C::nesterov, "SGD Nesterov momentum"),
      field("decay-1d", "/decay_1d", &C::decay_1d, "also decay biases and batch-norm parameters"),
      field("schedule", "/schedule", &C::schedule, "learning-rate schedule (per step)")
          .one_of({"constant", "step", "cosine", "onecycle"}),
      field("warmup", "/warmup_epochs", &C::warmup_epochs, "linear learning-rate warm-up, in epochs")
          .at_least(0),
      field("precision", "/precision", &C::precision,
            "GEMMs of convolutions and linear layers: fp32, or bf16 (bfloat16 inputs, float32 sums; CPU "
            "with AVX512-BF16)")
          .one_of({"fp32", "bf16"}),
      field("sync-bn", "/sync_bn", &C::sync_bn,
            "data parallel (mpirun): batch-norm statistics over the whole global batch, not each rank's "
            "shard (the single-process numbers; costs an allreduce per batch-norm layer)"),
      // Execution: none of these changes the numbers a run produces.
      field("seed", "/seed", &C::seed, "seed of the initialisation, shuffling and augmentation").at_least(0),
      field("threads", "/threads", &C::threads, "compute threads (0: the default)")
          .within(0, 1024)
          .resumable(),
      field("workers", "/workers", &C::workers, "data-loader threads (results do not depend on it)")
          .within(0, 64)
          .resumable(),
      field("device", "/device", &C::device, "cpu, cuda or cuda:N").resumable(),
      field("eval-batch-size", "/eval_batch_size", &C::eval_batch_size, "evaluation batch size").at_least(1),
      field("out", "/out", &C::out, "run folder: config.json, metrics, checkpoint, plots")
          .not_empty()
          .resumable(),
      field("resume", "/resume", &C::resume, "continue the run in --out from its checkpoint").resumable(),
      field("progress", "/progress", &C::progress,
            "progress display (auto: a bar on a terminal, lines otherwise)")
          .one_of({"auto", "bar", "lines", "off"})
          .resumable(),
      field("plots", "/plots", &C::plots, "draw PNG plots at the end (needs gnuplot)").resumable(),
  };
  return fields;
}

}  // namespace ag::train
