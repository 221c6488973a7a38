// The data side of a run, shared by train, evaluate, sweep and embed: opening the
// configured dataset, taking the stated subsets, the normalisation statistics, the
// transforms, and one evaluation pass over a loader.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "apps/lib/checkpoint.h"
#include "apps/lib/classifier.h"
#include "apps/lib/metrics.h"
#include "apps/lib/train_config.h"
#include "core/dist/comm.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/transforms.h"

namespace ag::train {

struct RunData {
  std::shared_ptr<const Dataset> train, test;  // after the subsets; train null if not opened
  ChannelStats stats;                          // normalisation, from the whole training set
  std::string data_dir;                        // the folder actually read
  std::string description;                     // "cifar10 (datasets/...): 50000 train, 10000 test"
};

// The indices of a subset of n out of size examples: the first n, or (mode "random") n
// distinct ones drawn with a generator seeded by seed, in increasing order. n = 0 or
// n >= size: all of them.
std::vector<int64_t> subset_indices(int64_t size, int64_t n, const std::string& mode, uint64_t seed);

// The published statistics for CIFAR-10/100, else computed over the whole training set.
ChannelStats stats_for(const std::string& dataset, const Dataset& train);

// Opens config's dataset and applies its subsets. with_train = false opens the test split
// only (stats must then be given, e.g. from a checkpoint).
RunData open_run_data(const TrainConfig& config, bool with_train = true, const ChannelStats* stats = nullptr);
// The same for datasets already in memory (tests, embed): subsets and stats as above.
RunData wrap_run_data(const TrainConfig& config, std::shared_ptr<const Dataset> train,
                      std::shared_ptr<const Dataset> test);

// The transforms of a run: crop + flip (+ Cutout) when config.augment, else normalise only.
Transform train_transform_for(const TrainConfig& config, const ChannelStats& stats);

nlohmann::json stats_to_json(const ChannelStats& stats);
ChannelStats stats_from_json(const nlohmann::json& j);

// One pass over loader (which must not shuffle) in eval mode without a graph: scores for
// the metrics, and the mean training loss (margin included) over the samples in *mean_loss
// when not null. Restores the training mode afterwards.
// Sharded (comm of N > 1 ranks, loader built with their rank and world): each rank scores
// its slice, then the scores are summed into one [test size, classes] table on every rank
// (each row written by one rank, the others adding zeros: exact), so every metric, mAP
// included, is the one a single process computes from the same scores.
EvalResult evaluate_classifier(Classifier& net, DataLoader& loader, Device device,
                               double* mean_loss = nullptr, dist::Communicator* comm = nullptr);

// evaluate_classifier over several views of the same samples, one loader each (the same
// dataset and batch size, none shuffling; e.g. eval_transform and mirror_transform for flip
// test-time augmentation): a sample's scores are the mean of its views' scores, *mean_loss
// the mean of the views' losses. One view gives exactly evaluate_classifier's result.
EvalResult evaluate_classifier_views(Classifier& net, const std::vector<DataLoader*>& views, Device device,
                                     double* mean_loss = nullptr);

// features(x) of every sample of loader (no shuffling), in eval mode without a graph:
// [N, feature_dim] on the CPU; the labels int64 [N] into *labels.
Tensor collect_features(Classifier& net, DataLoader& loader, Device device, Tensor* labels);

// A finished or stopped run loaded back from its checkpoint (a run folder, or the
// checkpoint.safetensors file in one): the configuration, the state, the normalisation
// statistics and class names it was trained with, and the classifier with its weights, on
// device. A missing, truncated or foreign checkpoint is an error naming the file.
struct TrainedRun {
  std::string dir;
  TrainConfig config;
  TrainState state;
  ChannelStats stats;
  std::vector<std::string> class_names;
  std::vector<int64_t> image_shape;  // C, H, W
  std::shared_ptr<Classifier> net;
};
TrainedRun load_trained_run(const std::string& path, Device device);

// A per-class table: class, samples, accuracy %, AP %.
std::string format_per_class(const EvalResult& r, const std::vector<std::string>& class_names);
// The confusion matrix as text, rows true class, columns predicted (counts).
std::string format_confusion(const EvalResult& r, const std::vector<std::string>& class_names);

}  // namespace ag::train
