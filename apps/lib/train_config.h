// The configuration of one training run: what train's flags set, what sweep builds per
// grid point, what config.json and every checkpoint hold. to_json/from_json round-trip it
// exactly, so evaluate and --resume rebuild the very same model, loss and data. Its flags,
// JSON keys, help texts, ranges and which settings a resumed run may change all come from
// one table, train_fields.cpp: a new setting is a member here plus a row there.
//
//   Flags flags("train", "...");
//   add_train_flags(flags);
//   flags.parse(argc, argv);                       // UsageError naming a bad flag
//   TrainConfig config = config_from_flags(flags);  // UsageError naming a bad value
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "apps/lib/flags.h"
#include "losses/classifier_loss.h"

namespace ag::train {

struct TrainConfig {
  // Data.
  std::string dataset = "cifar10";  // cifar10 | cifar100 | fashion-mnist | mnist | folder
  std::string data_dir;             // "": default_data_dir(dataset)
  std::string cifar100_labels = "fine";
  int64_t train_subset = 0;  // 0: the whole training set; else N of its images
  int64_t test_subset = 0;   // 0: the whole test set
  // Which N: "random" (seeded by seed, in file order) or "first" (useless on class-sorted files).
  std::string subset_mode = "random";
  bool augment = true;  // random crop (pad 4) + horizontal flip
  int64_t cutout = 0;   // Cutout square side; 0: none
  // Zero border added round every image (training, test, evaluate, predict) before anything
  // else. Why: the AVX-512 convolutions have their fast path for image widths that are
  // multiples of 16; Fashion-MNIST's 28x28 takes the general path (an epoch 1.5 times as
  // long for less arithmetic), and border 2 makes it 32x32 (as LeNet-5 fed MNIST).
  int64_t border = 0;
  // Model and loss.
  std::string model = "resnet20";  // a models/factory.h spec, or convnet[:features=F,width=W]
  std::string head = "auto";       // auto | linear | cosine; must agree with the loss
  MarginLossConfig loss{};
  double margin_warmup_epochs = 0;  // epochs over which m rises from 0 (-> steps)
  // Optimisation.
  int64_t epochs = 10;
  int64_t batch_size = 128;
  std::string optimizer = "sgd";  // sgd (momentum, Nesterov) | adamw
  double lr = 0.1;
  double wd = 5e-4;
  double momentum = 0.9;
  bool nesterov = true;
  bool decay_1d = false;            // false: no weight decay on biases and BN parameters
  std::string schedule = "cosine";  // constant | step | cosine | onecycle
  double warmup_epochs = 0;         // linear lr warm-up, in epochs (-> steps)
  // GEMM arithmetic of convolutions and linear layers (core/precision.h): fp32 | bf16.
  std::string precision = "fp32";
  // Data parallelism (docs/distributed.md): batch-norm statistics over the global batch
  // (every rank's shard) instead of each rank's own; no effect in a single process.
  bool sync_bn = false;
  // Execution.
  uint64_t seed = 0;
  int threads = 0;             // compute threads; 0: the library's default
  int workers = 2;             // loader threads; the batches are identical for any count
  std::string device = "cpu";  // cpu | cuda | cuda:N
  int64_t eval_batch_size = 256;
  std::string out = "runs/train";
  bool resume = false;
  std::string progress = "auto";  // auto | bar | lines | off
  bool plots = true;

  // Throws a UsageError naming the field's flag, its value and what is allowed.
  void validate() const;
  nlohmann::json to_json() const;
  // Fields absent from j keep their defaults; a malformed field is an error naming it.
  static TrainConfig from_json(const nlohmann::json& j);
  // The head the loss uses: "linear" for ce, "cosine" for the margin losses, "both" for joint.
  std::string resolved_head() const;
  // "cifar10 resnet20 arcface(s=1, m=0.1) 10 epochs": for logs.
  std::string describe() const;
};

// Where a dataset lives when --data-dir is not given: $ARCGRAD_DATA/<folder> if that exists,
// else datasets/<folder> (scripts/download_cifar.sh's default), with <folder>
// cifar-10-batches-bin or cifar-100-binary; "" for fashion-mnist / mnist (Debian's
// package folder).
std::string default_data_dir(const std::string& dataset);

// Registers train's flags (all of TrainConfig's fields), with TrainConfig's defaults,
// except those named in skip (sweep sets model, loss, s, m ... from its grid instead).
void add_train_flags(Flags& flags, const std::set<std::string>& skip = {});
// Reads them back (skipped ones keep their defaults) and checks every value: a bad one is
// a UsageError naming its flag.
TrainConfig config_from_flags(const Flags& flags, const std::set<std::string>& skip = {});
// With --resume: the saved configuration, overridden by the flags that may change on a
// resumed run (the table's resumable() rows: --epochs, --threads, --workers, --device,
// --out, --resume, --progress, --plots); any other flag given with a value different from
// the saved one is a UsageError naming it.
TrainConfig merge_resume_flags(const TrainConfig& saved, const Flags& flags);
// "" when a run saved with `saved` may continue as `now` (only the fields above differ),
// else the first differing field, by its flag name, with both values.
std::string resume_conflict(const TrainConfig& saved, const TrainConfig& now);

}  // namespace ag::train
