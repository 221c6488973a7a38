// Faults of the real `train` program, run as a user runs it.
//   SIGKILL (no handler, no cleanup) at seeded random moments while it writes a checkpoint
//   after every step: after every kill the run folder must hold a whole checkpoint that
//   loads and that `--resume` continues; the run finally completes and must end with
//   exactly the weights, optimizer state and metrics of a run that was never killed. Then
//   a run that saves only at epoch ends, killed in the middle of an epoch.
//   A memory limit (ulimit -v) the evaluation cannot fit in: one clear error naming the
//   size requested, and the last checkpoint intact.
//
// The data is a tiny CIFAR-10-format set written by the test; AG_TRAIN_BINARY is the path
// of the train program (tests/CMakeLists.txt).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "apps/lib/checkpoint.h"
#include "data/cifar.h"
#include "test_trainer_util.h"

extern char** environ;

using namespace ag;
using namespace ag::train;
namespace fs = std::filesystem;

namespace {

constexpr int kKills = 24;
constexpr int64_t kEpochs = 16, kStepsPerEpoch = 12;  // 96 images, batch 8

struct KillFixture {
  ag_test::TempDir tmp;
  std::string data = tmp.file("cifar10");
  explicit KillFixture(int64_t test_images = 16) {
    write_cifar10(*ag_test::quadrant_images(96, 1, 32), *ag_test::quadrant_images(test_images, 2, 32), data);
  }
  // train's command line for the run folder `out`; extra flags appended.
  std::vector<std::string> args(const std::string& out, const std::vector<std::string>& extra) const {
    std::vector<std::string> a = {AG_TRAIN_BINARY, "--out",     out,     "--progress", "off",
                                  "--no-plots",    "--threads", "1",     "--workers",  "1"};
    if (std::find(extra.begin(), extra.end(), "--resume") == extra.end()) {
      for (const char* flag : {"--dataset", "cifar10", "--model", "convnet:width=4", "--loss", "ce",
                               "--batch-size", "8", "--lr", "0.05", "--no-augment", "--eval-batch-size",
                               "16", "--seed", "3"})
        a.emplace_back(flag);
      a.insert(a.end(), {"--data-dir", data, "--epochs", std::to_string(kEpochs)});
    }
    a.insert(a.end(), extra.begin(), extra.end());  // later flags win
    return a;
  }
};

// The address space (VmSize, KiB) this process maps now.
int64_t own_address_space_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmSize:", 0) == 0) return std::stoll(line.substr(7));
  FAIL("no VmSize in /proc/self/status");
  return 0;
}

// args run under `ulimit -v` (KiB), as a user's shell would. One OpenBLAS and OpenMP thread
// and two malloc arenas, so that the address space the program reserves before its first
// tensor (thread stacks, per-thread arenas) does not depend on the machine's core count.
std::vector<std::string> with_memory_limit(int64_t kib, std::vector<std::string> args) {
  args.insert(args.begin(), {"/bin/sh", "-c",
                             "ulimit -v " + std::to_string(kib) +
                                 " && OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MALLOC_ARENA_MAX=2 "
                                 "exec \"$0\" \"$@\""});
  return args;
}

// Starts the program with stdout and stderr appended to log; returns its process id.
pid_t start(const std::vector<std::string>& args, const std::string& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int err = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE_MESSAGE(err == 0, "cannot start " << args[0] << ": " << std::strerror(err));
  return pid;
}

// Waits for pid; returns its exit status, or 128 + signal.
int wait_for(pid_t pid) {
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The identity of the checkpoint file now (a replacement is a rename: a new inode).
uint64_t checkpoint_id(const std::string& dir) {
  struct stat st {};
  return ::stat((dir + "/" + kCheckpointFile).c_str(), &st) == 0 ? st.st_ino : 0;
}

// Returns once the checkpoint in dir differs from `before` or the process has exited
// (true: exited; its status in *status).
bool wait_new_checkpoint(pid_t pid, const std::string& dir, uint64_t before, int* status) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) {
      *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return true;
    }
    const uint64_t now = checkpoint_id(dir);
    if (now != 0 && now != before) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ::kill(pid, SIGKILL);
  FAIL("no new checkpoint in " << dir << " within 60 s");
  return true;
}

// The checkpoint in dir loads into the run's model and optimizer exactly as --resume would
// load it (the Trainer's constructor restores it); returns its step.
int64_t load_as_resume(const std::string& dir) {
  TrainConfig c = TrainConfig::from_json(read_checkpoint_state(dir).config);
  c.resume = true;
  c.out = dir;
  c.workers = 0;
  std::ostringstream quiet;
  TrainerHooks hooks;
  hooks.log = &quiet;
  Trainer trainer(c, hooks);
  const TrainState state = read_checkpoint_state(dir);
  CHECK(trainer.steps_done() == state.step);
  return state.step;
}

// The run in dir ended exactly as the uninterrupted one in ref: weights, optimizer state,
// metrics of every epoch (each once).
void check_same_run(const std::string& dir, const std::string& ref) {
  const auto a = serialize::load_safetensors(dir + "/" + kCheckpointFile);
  const auto b = serialize::load_safetensors(ref + "/" + kCheckpointFile);
  ag_test::check_same_tensors(a.tensors, b.tensors);
  const std::vector<nlohmann::json> ma = ag_test::read_metrics(dir), mb = ag_test::read_metrics(ref);
  REQUIRE(ma.size() == static_cast<size_t>(kEpochs));
  CHECK(ma == mb);
}

void check_no_temporaries(const std::string& dir) {
  for (const auto& entry : fs::directory_iterator(dir))
    CHECK_MESSAGE(entry.path().filename().string().find(".tmp-") == std::string::npos,
                  "left in the run folder: " << entry.path().string());
}

}  // namespace

TEST_CASE("train killed with SIGKILL at random moments always leaves a checkpoint that resumes") {
  KillFixture fx;
  const std::string ref = fx.tmp.file("ref"), run = fx.tmp.file("killed"), log = fx.tmp.file("log.txt");
  REQUIRE(wait_for(start(fx.args(ref, {}), log)) == 0);

  std::mt19937_64 rng(20261202);  // seeded: the same kill moments on every run of the test
  std::uniform_int_distribution<int> delay_us(0, 30000);
  int kills = 0, exited = -1;
  int64_t last_step = 0;
  for (int life = 0; life < kKills && exited < 0; ++life) {
    const std::vector<std::string> extra =
        life == 0 ? std::vector<std::string>{"--checkpoint-every", "1"}
                  : std::vector<std::string>{"--resume", "--checkpoint-every", "1"};
    const uint64_t before = checkpoint_id(run);
    const pid_t pid = start(fx.args(run, extra), log);
    int status = 0;
    if (wait_new_checkpoint(pid, run, before, &status)) {  // finished before the kill
      exited = status;
      break;
    }
    // Then a random moment within the next few steps: in a step, in a checkpoint write, in
    // an evaluation or between files.
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
    ::kill(pid, SIGKILL);
    const int status_after = wait_for(pid);
    if (status_after != 128 + SIGKILL) {
      exited = status_after;
      break;
    }
    ++kills;
    INFO("after kill " << kills);
    const int64_t step = load_as_resume(run);
    CHECK(step > last_step);  // each life saved at least one new step, none was lost
    last_step = step;
  }
  INFO("train's output:\n" << read_text(log));
  CHECK(exited == -1);  // each life was killed; the run was long enough
  CHECK(kills == kKills);
  CHECK(last_step < kEpochs * kStepsPerEpoch);
  MESSAGE(kills << " kills; the last checkpoint was at step " << last_step);

  REQUIRE(wait_for(start(fx.args(run, {"--resume"}), log)) == 0);
  check_same_run(run, ref);
  check_no_temporaries(run);  // those of killed saves were removed on resume
}

TEST_CASE("train killed mid-epoch resumes from its last epoch checkpoint with the same result") {
  KillFixture fx;
  const std::string ref = fx.tmp.file("ref"), run = fx.tmp.file("killed"), log = fx.tmp.file("log.txt");
  REQUIRE(wait_for(start(fx.args(ref, {}), log)) == 0);
  const pid_t pid = start(fx.args(run, {}), log);
  int status = 0;
  REQUIRE_FALSE(wait_new_checkpoint(pid, run, 0, &status));  // epoch 1 saved, epoch 2 under way
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  ::kill(pid, SIGKILL);
  REQUIRE(wait_for(pid) == 128 + SIGKILL);
  const TrainState state = read_checkpoint_state(run);
  CHECK(state.step % kStepsPerEpoch == 0);  // only epoch checkpoints
  CHECK(state.epoch * kStepsPerEpoch == state.step);
  CHECK(load_as_resume(run) == state.step);
  INFO("train's output:\n" << read_text(log));
  REQUIRE(wait_for(start(fx.args(run, {"--resume"}), log)) == 0);
  check_same_run(run, ref);
}

TEST_CASE("train under a memory limit it cannot fit in: one error naming the size, checkpoint intact") {
  // The limit is this process's own address space plus 768 MiB: train maps the same shared
  // libraries (OpenBLAS; in a CUDA build the CUDA libraries, which alone map far more than
  // a training run needs), so the headroom is what train can allocate. Training (batch 8)
  // fits in it; the evaluation at the epoch's end cannot: its first activation alone is
  // 4096 images x 64 channels x 32 x 32 floats = 1 GiB.
  KillFixture fx(4096);
  const std::string run = fx.tmp.file("limited"), log = fx.tmp.file("log.txt");
  const int64_t limit_kib = own_address_space_kib() + (768 << 10);
  const int status = wait_for(start(with_memory_limit(limit_kib, fx.args(run, {"--epochs", "1", "--model",
                                                                              "convnet:width=64",
                                                                              "--eval-batch-size", "4096",
                                                                              "--checkpoint-every", "1"})),
                                    log));
  const std::string output = read_text(log);
  INFO("train's output:\n" << output);
  CHECK(status == 1);
  CHECK(output.find("train: error: ") != std::string::npos);
  CHECK(output.find("out of host memory: could not allocate 1024.0 MiB (1073741824 bytes)") != std::string::npos);
  CHECK(output.find("error") == output.rfind("error"));  // one message
  // The checkpoint of the last step before the evaluation, whole, and no temporary left.
  CHECK(load_as_resume(run) == kStepsPerEpoch - 1);
  check_no_temporaries(run);
}
