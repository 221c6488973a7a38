// Failures of a data-parallel `train` run, launched as a user launches it:
// `mpirun -np 2 train ...` (AG_MPIRUN, AG_TRAIN_BINARY: tests/CMakeLists.txt; built only
// with MPI). A rank that dies (SIGKILL at a chosen step through the AG_TEST_KILL_RANK hook,
// so no handler and no cleanup) must end the whole job with a non-zero status within a
// bounded time, the other rank being blocked in a collective at that moment, and leave the
// last checkpoint whole: it loads, and `--resume` with 2 ranks then ends exactly as a run
// that was never killed. An error on the ranks (a bad batch size) ends the job with its
// status and message.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "apps/lib/checkpoint.h"
#include "core/serialize/safetensors.h"
#include "data/cifar.h"
#include "test_trainer_util.h"

extern char** environ;

using namespace ag;
using namespace ag::train;

namespace {

constexpr int kEpochs = 3;  // 96 images, global batch 8: 12 steps per epoch
constexpr int kBoundSeconds = 60;

struct Fixture {
  ag_test::TempDir tmp;
  std::string data = tmp.file("cifar10");
  Fixture() {
    write_cifar10(*ag_test::quadrant_images(96, 1, 32), *ag_test::quadrant_images(16, 2, 32), data);
  }
  // mpirun -np 2 train ... for the run folder out; extra flags appended.
  std::vector<std::string> args(const std::string& out, const std::vector<std::string>& extra) const {
    std::vector<std::string> a = {AG_MPIRUN, "-np", "2"};
#if AG_MPIRUN_OVERSUBSCRIBE
    a.emplace_back("--oversubscribe");  // Open MPI: more ranks than cores
#endif
    a.insert(a.end(), {AG_TRAIN_BINARY, "--out", out, "--progress", "off", "--no-plots", "--workers", "0"});
    const bool resume = std::find(extra.begin(), extra.end(), "--resume") != extra.end();
    if (!resume)
      for (const char* flag :
           {"--dataset", "cifar10", "--model", "convnet:width=4", "--loss", "ce", "--batch-size", "8", "--lr",
            "0.05", "--no-augment", "--eval-batch-size", "8", "--seed", "3"})
        a.emplace_back(flag);
    if (!resume) a.insert(a.end(), {"--data-dir", data, "--epochs", std::to_string(kEpochs)});
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
};

struct Outcome {
  int status = -1;  // exit status, or 128 + signal
  double seconds = 0;
  std::string log;
};

// Runs args with extra_env added to the environment, output into log; kills it (and fails)
// after kBoundSeconds.
Outcome run(const std::vector<std::string>& args, const std::string& log,
            const std::vector<std::string>& extra_env = {}) {
  std::vector<std::string> env_text;
  for (char** e = environ; *e; ++e) env_text.emplace_back(*e);
  env_text.insert(env_text.end(), {"OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"});
  env_text.insert(env_text.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> envp, argv;
  for (std::string& e : env_text) envp.push_back(e.data());
  envp.push_back(nullptr);
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  const auto start = std::chrono::steady_clock::now();
  const int err = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE_MESSAGE(err == 0, "cannot start " << args[0] << ": " << std::strerror(err));
  Outcome out;
  while (true) {
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) {
      out.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      break;
    }
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (out.seconds > kBoundSeconds) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      FAIL("the job did not end within " << kBoundSeconds << " s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  out.log = ss.str();
  return out;
}

// The checkpoint in dir loads as --resume would load it, here in one process (a checkpoint
// of 2 ranks resumes with any rank count); returns its step.
int64_t load_as_resume(const std::string& dir) {
  TrainConfig c = TrainConfig::from_json(read_checkpoint_state(dir).config);
  c.resume = true;
  c.out = dir;
  std::ostringstream quiet;
  TrainerHooks hooks;
  hooks.log = &quiet;
  Trainer trainer(c, hooks);
  return trainer.steps_done();
}

}  // namespace

TEST_CASE("a killed rank ends the 2-rank job in bounded time; the checkpoint loads and resumes exactly") {
  Fixture fx;
  const std::string ref = fx.tmp.file("ref"), killed = fx.tmp.file("killed");
  const Outcome straight = run(fx.args(ref, {}), fx.tmp.file("ref.log"));
  INFO(straight.log);
  REQUIRE(straight.status == 0);

  for (int victim : {1, 0}) {  // a worker rank, then the rank that writes the checkpoints
    CAPTURE(victim);
    std::filesystem::remove_all(killed);
    // Checkpoints at steps 2, 4, 6; the victim dies after step 5 while the other rank waits
    // for it in the step's collectives.
    const Outcome dead = run(fx.args(killed, {"--checkpoint-every", "2"}), fx.tmp.file("killed.log"),
                             {"AG_TEST_KILL_RANK=" + std::to_string(victim) + ":5"});
    INFO(dead.log);
    MESSAGE("rank " << victim << " killed: the job ended with status " << dead.status << " after "
                    << dead.seconds << " s");
    CHECK(dead.status != 0);
    CHECK(dead.seconds < kBoundSeconds);
    CHECK(load_as_resume(killed) == 4);
    for (const auto& entry : std::filesystem::directory_iterator(killed))
      CHECK_MESSAGE(entry.path().filename().string().find(".tmp-") == std::string::npos,
                    "left in the run folder: " << entry.path().string());
    // Resumed with the same rank count: exactly the run that was never killed.
    const Outcome resumed = run(fx.args(killed, {"--resume"}), fx.tmp.file("resumed.log"));
    INFO(resumed.log);
    REQUIRE(resumed.status == 0);
    const auto a = serialize::load_safetensors(killed + "/" + kCheckpointFile);
    const auto b = serialize::load_safetensors(ref + "/" + kCheckpointFile);
    ag_test::check_same_tensors(a.tensors, b.tensors);
    CHECK(ag_test::read_metrics(killed) == ag_test::read_metrics(ref));
  }
}

TEST_CASE("an error on the ranks ends the job with its status and one clear message") {
  Fixture fx;
  const Outcome bad = run(fx.args(fx.tmp.file("odd"), {"--batch-size", "7"}), fx.tmp.file("odd.log"));
  INFO(bad.log);
  CHECK(bad.status == 2);
  CHECK(bad.log.find("make it a multiple of 2") != std::string::npos);
  CHECK(bad.seconds < kBoundSeconds);
}
