// The one training loop every app uses. A Trainer takes a TrainConfig and owns the run:
// data and loaders, the Classifier (backbone + loss heads as one module tree), the
// optimizer and the step-based schedule, the run folder.
//
//   Trainer trainer(config);          // builds everything; with config.resume, restores
//   TrainResult r = trainer.run();    // trains the remaining epochs
//
// Per step: lr from the schedule, margin step, features, loss, backward, optimizer step. A
// NaN/Inf loss (or parameters that turned non-finite) throws TrainingDiverged naming the
// step; nothing is saved after the last good epoch checkpoint.
// Per epoch: the test set is evaluated (top-1, top-5, mAP, per-class accuracy and AP),
// one record is appended to metrics.jsonl and metrics.csv, and the checkpoint is replaced
// (atomically: a crash or a full disk leaves the previous one). At the end: PNG plots of
// the curves and the confusion matrix (when gnuplot is installed).
// With hooks.checkpoint_every_steps = K, also every K steps (the same mid-epoch checkpoint
// as a stop's), so a SIGKILL loses at most K steps.
// Stopping: request_stop() (or SIGINT once install_sigint_handler() ran) makes the loop
// save a checkpoint at the current step and return with status interrupted. Resuming any
// checkpoint continues with exactly the numbers of an uninterrupted run on the CPU: the
// loader restarts at the saved batch (start_epoch(epoch, batch)), the partial epoch's
// running sums, every generator, the optimizer state and BN statistics are restored.
//
// Data parallelism (docs/distributed.md): with a communicator of N > 1 ranks (hooks.comm,
// else dist::world() under mpirun) every rank trains a replica on its shard of each global
// batch of config.batch_size (B/N images each, DistributedSampler); the gradients are
// averaged over the ranks before the optimizer step, so the run follows the single-process
// trajectory with batch B up to the reduction order (and, without --sync-bn, the batch-norm
// statistics, which each rank takes over its own shard). The replicas start from rank 0's
// weights; the epoch's running sums and the evaluation (each rank scores a slice of the
// test set) are reduced over the ranks; rank 0 alone writes the run folder and logs.
//
// Run folder: config.json (written at start), metrics.jsonl, metrics.csv,
// checkpoint.safetensors + state.json, curves.png, confusion.png, log of nothing else.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "apps/lib/classifier.h"
#include "apps/lib/metrics.h"
#include "apps/lib/progress.h"
#include "apps/lib/run_data.h"
#include "apps/lib/train_config.h"
#include "core/dist/comm.h"
#include "core/dist/reducer.h"
#include "core/optim/optimizer.h"
#include "core/optim/schedule.h"
#include "core/precision.h"
#include "data/loader.h"

namespace ag::train {

// A non-finite loss or parameter; the message names the step.
class TrainingDiverged : public Error {
 public:
  using Error::Error;
};

// Running sums of the epoch in progress (saved in a mid-epoch checkpoint).
struct EpochSums {
  int64_t batches = 0, seen = 0, correct = 0;
  double loss_sum = 0, seconds = 0;
};

// One epoch's numbers, as written to metrics.jsonl (plus per-class lists) and metrics.csv.
struct EpochRecord {
  int64_t epoch = 0;  // 1-based: epochs completed after this one
  int64_t step = 0;   // optimizer steps completed
  double lr = 0;      // the rate of the epoch's last step
  double train_loss = 0, train_acc = 0;
  double test_loss = 0;  // the training loss (margin included) on the test set
  EvalResult test;
  double seconds = 0;  // wall time of the epoch's training part (this process's share)
  double images_per_sec = 0;
};
nlohmann::json epoch_record_to_json(const EpochRecord& r);

struct TrainResult {
  enum class Status { finished, interrupted };
  Status status = Status::finished;
  int64_t epochs_done = 0, steps = 0;
  std::vector<EpochRecord> epochs;  // those run by this call
  EvalResult final_eval;            // of the last completed epoch (empty when none ran)
  double wall_seconds = 0;
  std::vector<std::string> plots;  // PNG files written
};

// What apps and tests may plug in.
struct TrainerHooks {
  // Datasets already in memory, used instead of opening config.dataset (tests, embed).
  std::shared_ptr<const Dataset> train_set, test_set;
  // Called after every optimizer step with the number of steps done (tests use it to
  // call request_stop at a chosen step).
  std::function<void(int64_t step)> on_step;
  // Also save a (mid-epoch) checkpoint after every this many optimizer steps; 0: only at
  // the end of each epoch. An execution setting like the thread count: it changes no
  // number of the run, so it is not part of TrainConfig and may differ on --resume.
  int64_t checkpoint_every_steps = 0;
  // Profile the training steps per op and per layer (core/profiler.h; evaluation left out),
  // print the tables at the end and write profile.txt / profile.json into the run folder.
  // An execution setting too: not part of TrainConfig.
  bool profile = false;
  std::ostream* log = nullptr;  // messages; null: std::cout
  ProgressOptions progress;     // its mode is overridden by config.progress unless "auto"
  // The process group; null: dist::world() (a single process unless started by mpirun).
  dist::Communicator* comm = nullptr;
};

class Trainer {
 public:
  explicit Trainer(TrainConfig config, TrainerHooks hooks = {});
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  TrainResult run();
  // Thread- and signal-safe: the loop stops after the current step and saves a checkpoint.
  void request_stop() { stop_.store(true); }

  const TrainConfig& config() const { return config_; }
  Classifier& net() { return *net_; }
  optim::Optimizer& optimizer() { return *optimizer_; }
  const RunData& data() const { return data_; }
  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  int64_t epochs_done() const { return epoch_; }
  int64_t steps_done() const { return step_; }
  // Evaluates the current weights on the test set.
  EvalResult evaluate(double* mean_loss = nullptr);

 private:
  void setup_data();
  void setup_optimization();
  void prepare_folder();
  void restore();
  bool train_epoch(EpochSums& sums);        // false: stopped
  std::optional<Batch> next_train_batch();  // the loader's next batch, its wait profiled
  void start_profile();
  void finish_profile();  // stops the profiler, prints and writes its tables
  void train_step(const Batch& batch, EpochSums& sums);
  // The step's images, correct predictions and loss sum, summed over the ranks.
  void reduce_step_sums(double& images, double& correct, double& loss_sum);
  bool stop_agreed();  // a stop requested on any rank stops every rank at this step
  bool is_root() const { return comm_->rank() == 0; }
  // images [N, C, H, W] (host) on device_; a CUDA copy goes through staging_, a reused
  // page-locked buffer, so the transfer runs at full DMA speed.
  Tensor upload(const Tensor& images);
  EpochRecord finish_epoch(const EpochSums& sums);
  // Rank 0's log line on the reducer: bytes per step against the parameters', time waited.
  void log_communication(const EpochSums& sums);
  void save(const EpochSums* partial);
  void check_parameters_finite(const char* when) const;
  std::vector<std::string> make_plots(const EvalResult& last);
  bool stop_requested() const;
  std::ostream& log() const;

  TrainConfig config_;
  TrainerHooks hooks_;
  // config_.precision for the Trainer's lifetime (training and evaluation), then the
  // previous setting again.
  std::unique_ptr<MatmulPrecisionGuard> precision_;
  dist::Communicator* comm_;
  // Averages the gradients over the ranks, bucket by bucket during backward (N > 1 only).
  std::unique_ptr<dist::GradientReducer> reducer_;
  double wait_at_epoch_start_ = 0;  // reducer_->stats().total_wait_seconds then
  Device device_;
  Tensor staging_;  // pinned host buffer of upload() (CUDA only)
  RunData data_;
  std::unique_ptr<DataLoader> train_loader_, test_loader_;
  std::shared_ptr<Classifier> net_;
  std::unique_ptr<optim::Optimizer> optimizer_;
  optim::SchedulePtr schedule_;
  int64_t steps_per_epoch_ = 0;
  int64_t epoch_ = 0;  // epochs completed
  int64_t step_ = 0;   // optimizer steps completed
  EpochSums resumed_sums_;
  bool finished_before_ = false;  // resumed a run that had already finished
  std::atomic<bool> stop_{false};
};

// SIGINT (Ctrl-C) sets a flag every Trainer checks after each step; a second Ctrl-C kills
// the program the default way. Idempotent.
void install_sigint_handler();
bool sigint_received();
void clear_sigint();  // for tests

}  // namespace ag::train
