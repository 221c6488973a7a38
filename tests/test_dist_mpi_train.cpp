// Data-parallel training, run by CTest as `mpirun -np 2 test_dist_mpi_train` (tests/CMakeLists.txt;
// skipped when arcgrad is built without MPI). Each test case runs on both ranks: the
// distributed Trainer against a single-process Trainer (a one-rank communicator, so each
// rank computes the reference itself) on the same tiny data and seed.
//   - With --sync-bn, 2 ranks x 4 images follow 1 process x 8 images to float rounding
//     (without it the batch-norm statistics are per shard: close, not equal).
//   - Two identical 2-rank runs give bit-identical weights; a 2-rank run stopped and resumed
//     with 2 ranks gives exactly the uninterrupted one.
//   - The sharded evaluation gives the single-process metrics.
// A failed check on one rank may leave the other waiting in a collective: CTest's timeout
// then ends the test.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>

#include "apps/lib/checkpoint.h"
#include "core/dist/comm.h"
#include "core/serialize/safetensors.h"
#include "test_trainer_util.h"

using namespace ag;
using namespace ag::train;
namespace fs = std::filesystem;

namespace {

// The identity communicator of one process: the single-process reference on every rank.
class OneRank : public dist::Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "test-single"; }
  void allreduce_sum(Tensor&) override {}
  std::unique_ptr<dist::Pending> allreduce_sum_async(Tensor&) override {
    struct Done : dist::Pending {
      void wait() override {}
      bool test() override { return true; }
    };
    return std::make_unique<Done>();
  }
  void allreduce_sum(double*, int64_t) override {}
  void broadcast(Tensor&, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(int code, const std::string&) override { std::exit(code); }
};

dist::Communicator& world() { return dist::world(); }

// A folder every rank sees under the same name (rank 0's pid), removed at the end.
class SharedDir {
 public:
  SharedDir() {
    Tensor pid = Tensor::scalar(static_cast<double>(::getpid()), DType::f64);
    world().broadcast(pid, 0);
    static int counter = 0;
    path_ = (fs::temp_directory_path() / ("arcgrad_dist_" + std::to_string(static_cast<int64_t>(pid.item())) +
                                          "_" + std::to_string(counter++)))
                .string();
    if (world().rank() == 0) {
      fs::remove_all(path_);
      fs::create_directories(path_);
    }
    world().barrier();
  }
  ~SharedDir() {
    world().barrier();
    std::error_code ec;
    if (world().rank() == 0) fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::ostringstream g_log;

TrainResult run(const TrainConfig& config, const ag_test::TinyData& data, dist::Communicator& comm,
                std::function<void(Trainer&, int64_t)> on_step = nullptr,
                std::vector<std::pair<std::string, Tensor>>* params = nullptr) {
  TrainerHooks hooks = ag_test::tiny_hooks(data, &g_log);
  hooks.comm = &comm;
  Trainer* self = nullptr;
  if (on_step) hooks.on_step = [&](int64_t step) { on_step(*self, step); };
  Trainer trainer(config, hooks);
  self = &trainer;
  TrainResult r = trainer.run();
  if (params) *params = trainer.net().named_parameters();
  return r;
}

// The largest |a - b| over every parameter; the names must agree.
double max_difference(const std::vector<std::pair<std::string, Tensor>>& a,
                      const std::vector<std::pair<std::string, Tensor>>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].first == b[i].first);
    const std::vector<double> x = a[i].second.to_vector(), y = b[i].second.to_vector();
    REQUIRE(x.size() == y.size());
    for (size_t k = 0; k < x.size(); ++k) worst = std::max(worst, std::abs(x[k] - y[k]));
  }
  return worst;
}

TrainConfig tiny(const std::string& out) {
  TrainConfig c = ag_test::tiny_config(out);
  c.seed = 5;
  c.threads = 1;
  return c;
}

}  // namespace

TEST_CASE("2 ranks with sync batch norm follow one process with the same global batch") {
  const ag_test::TinyData data;
  SharedDir dir;
  OneRank one;
  TrainConfig single = tiny(dir.file("single_" + std::to_string(world().rank())));
  single.sync_bn = true;  // no effect in one process
  std::vector<std::pair<std::string, Tensor>> expected, got;
  run(single, data, one, nullptr, &expected);

  TrainConfig parallel = tiny(dir.file("parallel"));
  parallel.sync_bn = true;
  const TrainResult r = run(parallel, data, world(), nullptr, &got);
  CHECK(r.steps == 12);  // 48 images, global batch 8, 2 epochs: as in one process
  const double worst = max_difference(expected, got);
  MESSAGE("rank " << world().rank() << ": largest weight difference after 12 steps " << worst);
  CHECK(worst < 1e-6);  // measured 9e-8 (float32 weights of order 0.1-1)
  // Rank 0 wrote the run folder: its losses are the single process's, to rounding.
  if (world().rank() == 0) {
    const auto a = ag_test::read_metrics(single.out), b = ag_test::read_metrics(parallel.out);
    REQUIRE(a.size() == 2);
    REQUIRE(b.size() == 2);
    for (size_t e = 0; e < 2; ++e) {
      CHECK(b[e]["train_loss"].get<double>() ==
            doctest::Approx(a[e]["train_loss"].get<double>()).epsilon(1e-5));
      CHECK(b[e]["test_loss"].get<double>() ==
            doctest::Approx(a[e]["test_loss"].get<double>()).epsilon(1e-5));
      CHECK(b[e]["test_count"] == a[e]["test_count"]);
    }
  }
}

TEST_CASE("with sync batch norm a ResNet (residual forks, projection shortcuts) follows one process too") {
  // Two steps only. Sync batch norm computes the batch statistics in another order than the
  // single-process kernel, so its outputs differ in the last bit; where a value sits within
  // that of zero, the fused ReLU's mask differs and so does that element's gradient. Over 6
  // steps of this model the gradients jump apart once, most likely by such a flip: at step 4,
  // in one batch norm + ReLU layer (blocks.1.c1, bias gradient 2% off; every layer after it
  // in backward still agrees to 1e-6, every layer before it differs by ~1e-2 relative), and
  // training goes on from slightly different weights.
  const ag_test::TinyData data(16, 24, 16);
  SharedDir dir;
  OneRank one;
  auto config = [&](const std::string& out) {
    TrainConfig c = tiny(out);
    c.model = "resnet20:width=0.25";
    c.epochs = 1;
    c.sync_bn = true;
    return c;
  };
  std::vector<std::pair<std::string, Tensor>> expected, got;
  run(config(dir.file("single_" + std::to_string(world().rank()))), data, one, nullptr, &expected);
  run(config(dir.file("parallel")), data, world(), nullptr, &got);
  const double worst = max_difference(expected, got);
  MESSAGE("rank " << world().rank() << ": ResNet, largest weight difference after 2 steps " << worst);
  CHECK(worst < 1e-6);  // measured 6e-8
}

TEST_CASE("2 ranks without sync batch norm: per-shard statistics, close to one process but not equal") {
  const ag_test::TinyData data;
  SharedDir dir;
  OneRank one;
  std::vector<std::pair<std::string, Tensor>> expected, got;
  run(tiny(dir.file("single_" + std::to_string(world().rank()))), data, one, nullptr, &expected);
  run(tiny(dir.file("parallel")), data, world(), nullptr, &got);
  const double worst = max_difference(expected, got);
  MESSAGE("rank " << world().rank() << ": largest weight difference, per-rank BN " << worst);
  CHECK(worst > 1e-4);  // the shards' statistics are not the batch's
  CHECK(worst < 0.5);
}

TEST_CASE("two identical 2-rank runs give bit-identical weights") {
  const ag_test::TinyData data;
  SharedDir dir;
  std::vector<std::pair<std::string, Tensor>> a, b;
  run(tiny(dir.file("a")), data, world(), nullptr, &a);
  run(tiny(dir.file("b")), data, world(), nullptr, &b);
  ag_test::check_same_tensors(a, b);
  if (world().rank() == 0)
    CHECK(ag_test::read_metrics(dir.file("a")) == ag_test::read_metrics(dir.file("b")));
}

TEST_CASE("the replicas stay identical: rank 1's weights are rank 0's") {
  const ag_test::TinyData data;
  SharedDir dir;
  std::vector<std::pair<std::string, Tensor>> mine;
  run(tiny(dir.file("run")), data, world(), nullptr, &mine);
  for (auto& [name, p] : mine) {
    Tensor theirs = p.clone();
    world().broadcast(theirs, 0);
    INFO(name);
    CHECK(max_difference({{name, p}}, {{name, theirs}}) == 0);
  }
}

TEST_CASE("a 2-rank run stopped mid-epoch and resumed with 2 ranks equals the uninterrupted one") {
  const ag_test::TinyData data;
  SharedDir dir;
  std::vector<std::pair<std::string, Tensor>> straight, resumed;
  run(tiny(dir.file("straight")), data, world(), nullptr, &straight);
  TrainConfig split = tiny(dir.file("split"));
  // Only rank 1 asks: the stop is agreed over the ranks, so both stop at step 9.
  const TrainResult first = run(split, data, world(), [](Trainer& t, int64_t step) {
    if (step == 9 && world().rank() == 1) t.request_stop();
  });
  CHECK(first.status == TrainResult::Status::interrupted);
  CHECK(first.steps == 9);
  CHECK(read_checkpoint_state(split.out).step == 9);
  split.resume = true;
  const TrainResult second = run(split, data, world(), nullptr, &resumed);
  CHECK(second.steps == 12);
  ag_test::check_same_tensors(straight, resumed);
  if (world().rank() == 0)
    CHECK(ag_test::read_metrics(dir.file("straight")) == ag_test::read_metrics(dir.file("split")));
}

TEST_CASE("the sharded evaluation gives the single-process metrics") {
  // 22 test images, 4 per rank and batch: the last global batch (6 images) is split 3 + 3.
  // 3 images, 1 per rank and batch: rank 1 has no share of the last batch (one batch fewer).
  for (auto [test_images, per_rank] : {std::pair<int64_t, int64_t>{22, 4}, {3, 1}}) {
    CAPTURE(test_images);
    const ag_test::TinyData data(48, test_images, 8);
    SharedDir dir;
    OneRank one;
    TrainConfig c = tiny(dir.file("eval_single_" + std::to_string(world().rank())));
    c.eval_batch_size = per_rank;
    TrainerHooks hooks = ag_test::tiny_hooks(data, &g_log);
    hooks.comm = &one;
    Trainer single(c, hooks);  // the same seed: the same initial weights on every rank
    c.out = dir.file("eval_parallel");
    hooks.comm = &world();
    Trainer parallel(c, hooks);
    double loss_single = 0, loss_parallel = 0;
    const EvalResult a = single.evaluate(&loss_single), b = parallel.evaluate(&loss_parallel);
    CHECK(b.count == test_images);
    CHECK(a.count == b.count);
    CHECK(a.top1 == b.top1);
    CHECK(a.top5 == b.top5);
    CHECK(a.map == doctest::Approx(b.map).epsilon(1e-9));
    CHECK(a.confusion == b.confusion);
    CHECK(loss_parallel == doctest::Approx(loss_single).epsilon(1e-6));
  }
}

TEST_CASE("a batch the ranks cannot share equally is refused by name") {
  const ag_test::TinyData data;
  SharedDir dir;
  TrainConfig c = tiny(dir.file("odd"));
  c.batch_size = 7;
  TrainerHooks hooks = ag_test::tiny_hooks(data, &g_log);
  hooks.comm = &world();
  CHECK_THROWS_WITH_AS(Trainer(c, hooks), doctest::Contains("--batch-size 7 is the global batch"),
                       UsageError);
}

int main(int argc, char** argv) {
  dist::init(&argc, &argv);
  if (dist::world().size() < 2) {
    std::printf("skipped: run under mpirun -np 2 (tests/CMakeLists.txt does, when MPI is built)\n");
    dist::finalize();
    return 77;
  }
  doctest::Context context(argc, argv);
  const int status = context.run();
  // A rank whose checks failed must fail the job: the status of mpirun is the worst rank's.
  dist::finalize();
  return status;
}
