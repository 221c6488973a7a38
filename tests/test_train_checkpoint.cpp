// Checkpoints: exact round trip of weights, buffers, optimizer state, counters, generator
// states and config; rejection of missing, truncated, foreign and mismatched files; a
// failed save keeps the previous checkpoint.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "apps/lib/checkpoint.h"
#include "core/ops.h"
#include "core/optim/optimizer.h"
#include "core/serialize/atomic_file.h"
#include "layers/module_io.h"
#include "test_trainer_util.h"

using namespace ag;
using namespace ag::train;
using ag_test::TempDir;

namespace {
struct Net : Module {
  explicit Net(int64_t hidden = 4) {
    w1 = register_parameter("w1", Tensor::normal({hidden, 3}, 0, 0.5));
    b1 = register_parameter("b1", Tensor::normal({hidden}, 0, 0.1));
    w2 = register_parameter("w2", Tensor::normal({2, hidden}, 0, 0.5));
    register_buffer("seen", Tensor::zeros({1}));
  }
  Tensor forward(const Tensor& x) override { return linear(tanh(linear(x, w1, b1)), w2); }
  std::string type_name() const override { return "Net"; }
  Tensor w1, b1, w2;  // handles sharing the registered parameters
};

// A few SGD steps on random batches drawn from the global generator.
void train_steps(Net& net, optim::Optimizer& opt, int steps) {
  for (int i = 0; i < steps; ++i) {
    Tensor x = Tensor::normal({5, 3}, 0, 1);
    Tensor y = net(x);
    opt.zero_grad();
    mean(mul(y, y)).backward();
    opt.step();
    net.named_buffers()[0].second.fill_(opt.step_count());
  }
}

std::vector<std::vector<double>> snapshot(const Net& net, const optim::Optimizer& opt) {
  std::vector<std::vector<double>> out;
  for (auto& [_, t] : serialize::module_state(net)) out.push_back(t.to_vector());
  for (auto& [_, t] : opt.state()) out.push_back(t.to_vector());
  return out;
}

optim::SgdOptions sgd_options() {
  return {.lr = 0.1, .momentum = 0.9, .weight_decay = 1e-3, .nesterov = true};
}
}  // namespace

TEST_CASE("checkpoint: save, load and continue bit-exactly") {
  TempDir dir;
  manual_seed(11);
  Net a;
  optim::SGD opt_a(a.named_parameters(), sgd_options());
  train_steps(a, opt_a, 3);
  Generator loader(99);
  loader.next_u64();
  TrainState st;
  st.epoch = 2;
  st.step = opt_a.step_count();
  st.global_rng = global_generator().state();
  st.generators["train_loader"] = loader.state();
  st.config = {{"model", "net"}, {"lr", 0.1}};
  st.extra = {{"best_top1", 0.25}};
  save_checkpoint(dir.path(), a, &opt_a, st);
  CHECK(checkpoint_exists(dir.path()));

  // The reference run goes on uninterrupted.
  train_steps(a, opt_a, 2);
  const auto reference = snapshot(a, opt_a);

  // A fresh process: different init and generator, then resume.
  manual_seed(12345);
  Net b;
  optim::SGD opt_b(b.named_parameters(), sgd_options());
  TrainState back = load_checkpoint(dir.path(), b, &opt_b);
  CHECK(back.epoch == 2);
  CHECK(back.step == 3);
  CHECK(back.config == st.config);
  CHECK(back.extra == st.extra);
  CHECK(std::equal(back.global_rng.s, back.global_rng.s + 4, st.global_rng.s));
  REQUIRE(back.generators.count("train_loader"));
  Generator resumed_loader(0);
  resumed_loader.set_state(back.generators["train_loader"]);
  CHECK(resumed_loader.next_u64() == loader.next_u64());
  global_generator().set_state(back.global_rng);
  CHECK(opt_b.step_count() == 3);
  train_steps(b, opt_b, 2);
  CHECK(snapshot(b, opt_b) == reference);
}

TEST_CASE("checkpoint: the files are plain safetensors and JSON") {
  TempDir dir;
  manual_seed(1);
  Net a;
  optim::AdamW opt(a.named_parameters(), {});
  train_steps(a, opt, 1);
  save_checkpoint(dir.path(), a, &opt, TrainState{.epoch = 1, .step = 1});
  auto file = serialize::load_safetensors(dir.file(kCheckpointFile));
  std::vector<std::string> names;
  for (auto& [n, _] : file.tensors) names.push_back(n);
  CHECK(names[0] == "w1");
  CHECK(std::find(names.begin(), names.end(), "seen") != names.end());
  CHECK(std::find(names.begin(), names.end(), "optim/w1.exp_avg_sq") != names.end());
  CHECK(std::find(names.begin(), names.end(), "optim/step") != names.end());
  std::ifstream in(dir.file(kStateFile));
  const auto j = nlohmann::json::parse(in);
  CHECK(j["epoch"] == 1);
  CHECK(j["optimizer"] == "adamw");
  CHECK(j["global_rng"].size() == 4);
}

TEST_CASE("checkpoint: missing, truncated, foreign and mismatched files are rejected") {
  TempDir dir;
  manual_seed(2);
  Net a;
  optim::SGD opt(a.named_parameters(), sgd_options());
  train_steps(a, opt, 1);
  CHECK_THROWS_WITH_AS(load_checkpoint(dir.path(), a, &opt), doctest::Contains("no checkpoint in"), Error);

  save_checkpoint(dir.path(), a, &opt, {});
  const std::string path = dir.file(kCheckpointFile);
  {  // truncated: the last 10 bytes cut
    std::ifstream in(path, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
    bytes.resize(bytes.size() - 10);
    TempDir cut;
    ag_test::write_bytes(cut.file(kCheckpointFile), bytes);
    CHECK_THROWS_WITH_AS(load_checkpoint(cut.path(), a, &opt), doctest::Contains("lie outside"), Error);
    CHECK_THROWS_WITH_AS(load_checkpoint(cut.path(), a, &opt),
                         doctest::Contains(cut.file(kCheckpointFile).c_str()), Error);
  }
  {  // foreign: weights only (no checkpoint metadata), and a text file
    TempDir foreign;
    serialize::save_module(foreign.file(kCheckpointFile), a);
    CHECK_THROWS_WITH_AS(load_checkpoint(foreign.path(), a, &opt),
                         doctest::Contains("not an arcgrad checkpoint"), Error);
    ag_test::write_text(foreign.file(kCheckpointFile), "{\"epoch\": 3}\n");
    CHECK_THROWS_WITH_AS(load_checkpoint(foreign.path(), a, &opt),
                         doctest::Contains("not a safetensors file"), Error);
  }
  Net wider(5);
  CHECK_THROWS_WITH_AS(load_checkpoint(dir.path(), wider, nullptr), doctest::Contains("shape mismatch w1"),
                       Error);
  Net same;
  optim::AdamW adam(same.named_parameters(), {});
  CHECK_THROWS_WITH_AS(load_checkpoint(dir.path(), same, &adam),
                       doctest::Contains("holds 'sgd' optimizer state"), Error);
  CHECK_NOTHROW(load_checkpoint(dir.path(), same, nullptr));  // weights only
}

TEST_CASE("checkpoint: counters that are not whole numbers in range are rejected, naming the field") {
  TempDir dir;
  manual_seed(4);
  Net net;
  save_checkpoint(dir.path(), net, nullptr, {.epoch = 3, .step = 30});
  CHECK(read_checkpoint_state(dir.path()).step == 30);
  // 1e300 as an int64 was undefined behaviour (found by the fuzzer); 2.5 was truncated to 2.
  const std::vector<std::pair<const char*, nlohmann::json>> bad = {
      {"epoch", 1e300},  {"epoch", -1e300}, {"epoch", 2.5},
      {"step", 30.0},    {"step", "30"},    {"step", nlohmann::json::number_unsigned_t{1} << 63},
      {"epoch", nullptr}};
  for (const auto& [key, value] : bad) {
    CAPTURE(key);
    CAPTURE(value.dump());
    TempDir copy;
    save_checkpoint(copy.path(), net, nullptr, {.epoch = 3, .step = 30});
    ag_test::edit_checkpoint_state(copy.path(), [&](nlohmann::json& state) { state[key] = value; });
    const std::string message = std::string("field '") + key + "' is " + value.dump();
    CHECK_THROWS_WITH_AS(read_checkpoint_state(copy.path()), doctest::Contains(message.c_str()), Error);
  }
  ag_test::edit_checkpoint_state(dir.path(), [](nlohmann::json& state) { state.erase("step"); });
  CHECK_THROWS_WITH_AS(read_checkpoint_state(dir.path()), doctest::Contains("field 'step' is missing"),
                       Error);
}

TEST_CASE("checkpoint: a save that fails on a full disk keeps the previous one") {
  TempDir dir;
  manual_seed(3);
  Net a;
  optim::SGD opt(a.named_parameters(), sgd_options());
  train_steps(a, opt, 1);
  save_checkpoint(dir.path(), a, &opt, TrainState{.epoch = 1, .step = 1});
  const auto saved = snapshot(a, opt);
  train_steps(a, opt, 1);
  serialize::set_simulate_disk_full(true);
  CHECK_THROWS_WITH_AS(save_checkpoint(dir.path(), a, &opt, TrainState{.epoch = 2, .step = 2}),
                       doctest::Contains("No space left on device"), Error);
  serialize::set_simulate_disk_full(false);
  Net b;
  optim::SGD opt_b(b.named_parameters(), sgd_options());
  CHECK(load_checkpoint(dir.path(), b, &opt_b).epoch == 1);
  CHECK(snapshot(b, opt_b) == saved);
  std::ifstream in(dir.file(kStateFile));
  CHECK(nlohmann::json::parse(in)["epoch"] == 1);
  for (auto& entry : std::filesystem::directory_iterator(dir.path()))
    CHECK(entry.path().filename().string().find(".tmp") == std::string::npos);
}
