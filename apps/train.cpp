// train: trains an image classifier with cross-entropy or an angular-margin loss (the
// paper's ArcFace, and NormFace, SphereFace, CosFace, the combined margin, or a joint of
// cross-entropy and a margin loss) and evaluates it on the test set after every epoch.
//
// Run:
//   train --dataset cifar10 --data-dir datasets/cifar-10-batches-bin --model resnet20
//         --loss arcface --s 16 --m 0.1 --epochs 30 --out runs/r20-arcface
//   train --dataset fashion-mnist --model convnet --loss ce --epochs 2 --train-subset 2000
//         --test-subset 1000 --out runs/fm-ce                    # a quick CPU check
//   train --out runs/r20-arcface --resume                        # continue a stopped run
//   train ... --checkpoint-every 100    # also a checkpoint every 100 steps (a kill loses less)
//   train ... --profile                 # per-op / per-layer profile -> profile.txt, profile.json
//   train --help                                                 # every flag
//   mpirun -np 2 train ... --batch-size 128   # data parallel: 2 ranks x 64 images per step
//                                             # (docs/distributed.md; needs -DAG_USE_MPI=ON)
// The run folder gets config.json (also printed), metrics.jsonl and metrics.csv (train
// loss/accuracy, test top-1/top-5/mAP/per-class accuracy per epoch), checkpoint.safetensors
// (+ state.json) after every epoch, and curves.png and confusion.png at the end. Ctrl-C saves
// a checkpoint at the current step and exits (status 130); --resume continues it and, on the
// CPU, gives exactly the numbers of an uninterrupted run.
// Expected: the convnet Fashion-MNIST check above reaches about 80% test top-1 in well under
// a minute on 2 cores; ResNet-20 on full CIFAR-10 for 30 epochs about 90% (ce or ArcFace
// with s = 16; ArcFace with the paper's s = 1 learns much more slowly).
// Exit status: 0 done, 1 error, 2 bad command line, 3 training diverged (NaN/Inf loss),
// 130 stopped by Ctrl-C. Under mpirun an error on any rank ends the job with its status.
// Test hook: AG_TEST_KILL_RANK=R:K makes rank R SIGKILL itself after step K (tests of a
// rank dying mid-run, tests/test_dist_faults.cpp).
#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <iostream>

#include "apps/lib/app_main.h"
#include "apps/lib/checkpoint.h"
#include "apps/lib/distributed.h"
#include "apps/lib/flags.h"
#include "apps/lib/train_config.h"
#include "apps/lib/trainer.h"

using namespace ag::train;

Flags make_flags() {
  Flags flags("train", "Trains an image classifier with cross-entropy or an angular-margin loss.");
  add_train_flags(flags);
  flags.add_int("checkpoint-every", 0,
                "also save a checkpoint every this many steps (0: at the end of each epoch only); "
                "a kill then loses at most that many steps");
  flags.add_bool("profile", false,
                 "profile the training steps per op type and per layer (forward, backward, allocator, "
                 "data-loader wait, optimizer); prints the tables at the end and writes profile.txt and "
                 "profile.json into the run folder");
  return flags;
}

// AG_TEST_KILL_RANK=R:K: rank R dies (SIGKILL, no cleanup) after optimizer step K.
std::function<void(int64_t)> kill_hook_from_env() {
  const char* spec = std::getenv("AG_TEST_KILL_RANK");
  if (spec == nullptr || *spec == '\0') return nullptr;
  const std::string s = spec;
  const size_t colon = s.find(':');
  if (colon == std::string::npos) throw UsageError("AG_TEST_KILL_RANK must be RANK:STEP, got '" + s + "'");
  const int rank = std::stoi(s.substr(0, colon));
  const int64_t step = std::stoll(s.substr(colon + 1));
  if (ag::dist::world().rank() != rank) return nullptr;
  return [step](int64_t done) {
    if (done == step) std::raise(SIGKILL);
  };
}

int main_body(const Flags& flags) {
  require_mpi_if_launched();
  ag::dist::Communicator& world = ag::dist::world();
  TrainConfig config = config_from_flags(flags);
  if (config.resume && checkpoint_exists(config.out))
    config = merge_resume_flags(TrainConfig::from_json(read_checkpoint_state(config.out).config), flags);
  // Loader threads: the given number per process, or the default shared among the ranks.
  if (world.size() > 1 && !flags.was_set("workers") && config.workers > 0)
    config.workers = std::max(1, config.workers / world.size());
  TrainerHooks hooks;
  hooks.on_step = kill_hook_from_env();
  hooks.checkpoint_every_steps = flags.get_int("checkpoint-every");
  if (hooks.checkpoint_every_steps < 0) flags.fail("checkpoint-every", "must be >= 0");
  hooks.profile = flags.get_bool("profile");
  install_sigint_handler();
  Trainer trainer(config, hooks);
  const TrainResult r = trainer.run();
  if (r.status == TrainResult::Status::interrupted) return 130;
  if (world.rank() != 0) return 0;
  std::cout << "done: " << r.epochs_done << " epochs, " << r.steps << " steps, " << r.wall_seconds
            << " s; test top-1 " << 100 * r.final_eval.top1 << "%, top-5 " << 100 * r.final_eval.top5
            << "%, mAP " << 100 * r.final_eval.map << "%\nrun folder: " << config.out << "\n";
  for (const std::string& p : r.plots) std::cout << "plot: " << p << "\n";
  return 0;
}

int main(int argc, char** argv) {
  ag::dist::init(&argc, &argv);  // MPI under mpirun (a build with AG_USE_MPI), else nothing
  const int status = run_app(argc, argv, make_flags, main_body);
  ag::dist::finalize();
  return status;
}
