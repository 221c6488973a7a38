// The training loop (apps/lib/trainer.h) on a tiny image set made here: learning, run
// folder contents, checkpoint round trip, evaluation over several views (flip test-time
// augmentation), exact resume (at an epoch boundary and mid-epoch after a SIGINT, with 1
// and 2 loader workers), divergence, a full disk during a checkpoint, and truncated /
// foreign / mismatched checkpoints.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>

#include "apps/lib/checkpoint.h"
#include "apps/lib/embedding_stats.h"
#include "apps/lib/metrics_log.h"
#include "apps/lib/run_data.h"
#include "apps/lib/trainer.h"
#include "core/autograd.h"
#include "core/ops.h"
#include "core/profiler.h"
#include "core/serialize/atomic_file.h"
#include "core/serialize/safetensors.h"
#include "layers/module_io.h"
#include "test_trainer_util.h"

using namespace ag;
using namespace ag::train;
using ag_test::TempDir;

namespace {

// Trains c to the end (or the first stop) and returns the result.
TrainResult run_tiny(const TrainConfig& c, const ag_test::TinyData& data,
                     std::function<void(Trainer&, int64_t)> hook = {}) {
  std::ostringstream log;
  TrainerHooks hooks = ag_test::tiny_hooks(data, &log);
  Trainer* self = nullptr;
  if (hook) hooks.on_step = [&](int64_t step) { hook(*self, step); };
  Trainer trainer(c, hooks);
  self = &trainer;
  return trainer.run();
}

// Parameters, buffers and optimizer state of the run in dir, as saved.
serialize::NamedTensors saved_tensors(const std::string& dir) {
  return serialize::load_safetensors(dir + "/" + kCheckpointFile).tensors;
}

}  // namespace

TEST_CASE("trainer: a short run lowers the loss and fills the run folder") {
  TempDir tmp;
  const ag_test::TinyData data;
  TrainConfig c = ag_test::tiny_config(tmp.file("run"));
  c.epochs = 4;
  const TrainResult r = run_tiny(c, data);
  CHECK(r.status == TrainResult::Status::finished);
  REQUIRE(r.epochs.size() == 4);
  CHECK(r.steps == 4 * 6);  // 48 images, batch 8
  CHECK(r.epochs.back().train_loss < 0.7 * r.epochs.front().train_loss);
  CHECK(r.final_eval.top1 > 0.75);  // 4 classes: chance is 0.25
  CHECK(r.final_eval.count == 24);
  for (const char* f :
       {"config.json", "metrics.jsonl", "metrics.csv", "checkpoint.safetensors", "state.json"})
    CHECK(std::filesystem::exists(tmp.file(std::string("run/") + f)));
  const std::vector<nlohmann::json> m = ag_test::read_metrics(tmp.file("run"));
  REQUIRE(m.size() == 4);
  CHECK(m[3]["epoch"] == 4);
  CHECK(m[3]["per_class_accuracy"].size() == 4);
  CHECK(m[3]["test_top1"].get<double>() == doctest::Approx(r.final_eval.top1));
  const MetricsTable table = read_metrics_csv(tmp.file("run/metrics.csv"));
  CHECK(table.column("test_map").size() == 4);
  const TrainState st = read_checkpoint_state(tmp.file("run"));
  CHECK(st.epoch == 4);
  CHECK(st.step == 24);
  CHECK(st.extra["finished"] == true);
  CHECK(TrainConfig::from_json(st.config).to_json() == c.to_json());
}

TEST_CASE("trainer: class weights set fixed stay exactly as set, spread ones train (embed --class-weights)") {
  const ag_test::TinyData data;
  for (const char* mode : {"fixed", "spread"}) {
    CAPTURE(mode);
    TempDir tmp;
    TrainConfig c = ag_test::tiny_config(tmp.file("run"), "arcface");
    c.model = "convnet:width=4,features=2";
    c.wd = 5e-4;  // weight decay alone would move a weight the optimizer did not skip
    std::ostringstream log;
    Trainer trainer(c, ag_test::tiny_hooks(data, &log));
    REQUIRE(trainer.net().criterion().cosine_head() != nullptr);
    Tensor& weight = trainer.net().criterion().cosine_head()->weight();
    set_class_weights(weight, mode, false);
    const std::vector<double> set = weight.to_vector();
    const auto [name, backbone] = trainer.net().named_parameters().front();
    const std::vector<double> backbone_before = backbone.to_vector();
    CHECK(trainer.run().status == TrainResult::Status::finished);
    CAPTURE(name);
    CHECK(backbone.to_vector() != backbone_before);
    CHECK((weight.to_vector() == set) == (std::string(mode) == "fixed"));
    CHECK(load_trained_run(c.out, Device::cpu()).net->criterion().cosine_head()->weight().to_vector() ==
          weight.to_vector());
  }
}

TEST_CASE("trainer: profile writes profile.txt and profile.json of the training steps alone") {
  TempDir tmp;
  const ag_test::TinyData data;
  TrainConfig c = ag_test::tiny_config(tmp.file("run"));
  std::ostringstream log;
  TrainerHooks hooks = ag_test::tiny_hooks(data, &log);
  hooks.profile = true;
  Trainer trainer(c, hooks);
  const TrainResult r = trainer.run();
  CHECK(r.status == TrainResult::Status::finished);
  CHECK_FALSE(profiler::enabled());
  REQUIRE(std::filesystem::exists(tmp.file("run/profile.txt")));
  const nlohmann::json j = nlohmann::json::parse(std::ifstream(tmp.file("run/profile.json")));
  CHECK(j["steps"] == r.steps);
  std::map<std::string, double> calls;  // "phase op" -> calls per step
  for (const auto& row : j["by_op"])
    calls[row["phase"].get<std::string>() + " " + row["op"].get<std::string>()] = row["calls_per_step"];
  // The convnet has 3 convolutions: exactly 3 per step, so the evaluations were left out.
  CHECK(calls["forward conv2d"] == doctest::Approx(3.0));
  CHECK(calls["backward Conv2dBackward"] == doctest::Approx(3.0));
  CHECK(calls["other data loader wait"] >= 1.0);
  CHECK(calls["other optimizer step"] == doctest::Approx(1.0));
  CHECK(calls.count("forward allocate") == 1);
  bool layer_named = false;
  for (const auto& row : j["by_layer"]) layer_named |= row["layer"] == "model.c1.0 (Conv2d)";
  CHECK(layer_named);
  CHECK(log.str().find("per op type") != std::string::npos);
}

TEST_CASE("trainer: the checkpoint round trip gives the same weights and metrics") {
  TempDir tmp;
  const ag_test::TinyData data;
  const TrainConfig c = ag_test::tiny_config(tmp.file("run"), "arcface");
  std::ostringstream log;
  Trainer trainer(c, ag_test::tiny_hooks(data, &log));
  const TrainResult r = trainer.run();
  const TrainedRun loaded = load_trained_run(tmp.file("run"), Device::cpu());
  ag_test::check_same_tensors(serialize::module_state(trainer.net()), serialize::module_state(*loaded.net));
  CHECK(loaded.class_names == data.test->class_names());
  CHECK(loaded.config.loss.kind == "arcface");
  // The same file through its path, and the loaded model evaluates like the trained one.
  const TrainedRun again = load_trained_run(tmp.file("run/checkpoint.safetensors"), Device::cpu());
  CHECK(again.state.epoch == 2);
  LoaderOptions o;
  o.shuffle = false;
  o.num_workers = 0;
  DataLoader loader(data.test, eval_transform(loaded.stats), o);
  const EvalResult e = evaluate_classifier(*loaded.net, loader, Device::cpu());
  CHECK(e.top1 == r.final_eval.top1);
  CHECK(e.map == r.final_eval.map);
  CHECK(e.confusion == r.final_eval.confusion);
}

namespace {

// images: float32 [N, C, H, W]; the same, each row reversed (the mirror images).
Tensor mirrored_by_hand(const Tensor& images) {
  const int64_t rows = images.numel() / images.size(3), w = images.size(3);
  std::vector<double> v = images.to_vector();  // float -> double -> float: exact
  for (int64_t r = 0; r < rows; ++r) std::reverse(v.begin() + r * w, v.begin() + (r + 1) * w);
  return Tensor::from_vector(v, images.shape(), DType::f32);
}

}  // namespace

TEST_CASE(
    "evaluate_classifier_views: one view or twice the same is evaluate_classifier; image and mirror "
    "average their scores") {
  TempDir tmp;
  const ag_test::TinyData data;
  std::ostringstream log;
  Trainer trainer(ag_test::tiny_config(tmp.file("run"), "ce"), ag_test::tiny_hooks(data, &log));
  trainer.run();
  const TrainedRun run = load_trained_run(tmp.file("run"), Device::cpu());
  LoaderOptions o;
  o.shuffle = false;
  o.num_workers = 0;
  o.batch_size = 8;
  DataLoader plain(data.test, eval_transform(run.stats), o),
      plain_again(data.test, eval_transform(run.stats), o);
  DataLoader mirror(data.test, mirror_transform(run.stats), o);
  double one_loss = 0, twice_loss = 0;
  const EvalResult one = evaluate_classifier(*run.net, plain, Device::cpu(), &one_loss);
  const EvalResult twice =
      evaluate_classifier_views(*run.net, {&plain, &plain_again}, Device::cpu(), &twice_loss);
  CHECK(twice.top1 == one.top1);
  CHECK(twice.map == one.map);
  CHECK(twice.confusion == one.confusion);
  CHECK(twice_loss == doctest::Approx(one_loss).epsilon(1e-12));

  const EvalResult tta = evaluate_classifier_views(*run.net, {&plain, &mirror}, Device::cpu());
  ClassificationEvaluator want(4), mirror_only(4);
  run.net->eval();
  NoGradGuard no_grad;
  plain.start_epoch(0);
  while (auto batch = plain.next()) {
    const Tensor scores = run.net->criterion()(run.net->features(batch->images));
    const Tensor mirror_scores = run.net->criterion()(run.net->features(mirrored_by_hand(batch->images)));
    want.add(mul(add(scores, mirror_scores), 0.5), batch->labels);
    mirror_only.add(mirror_scores, batch->labels);
  }
  CHECK(tta.count == 24);
  CHECK(tta.top1 == want.topk(1));
  CHECK(tta.map == want.mean_average_precision());
  CHECK(tta.confusion == want.confusion());
  // The test can tell: a mirror swaps the quadrants that tell these classes apart.
  CHECK(mirror_only.topk(1) < one.top1 - 0.5);
  // Views that disagree on their samples are refused.
  DataLoader fewer(ag_test::quadrant_images(16, 2), eval_transform(run.stats), o);
  CHECK_THROWS_WITH(evaluate_classifier_views(*run.net, {&plain, &fewer}, Device::cpu()),
                    doctest::Contains("views differ in size"));
}

TEST_CASE("trainer: resume reproduces an uninterrupted run exactly") {
  const ag_test::TinyData data;
  for (int workers : {1, 2}) {
    for (bool mid_epoch : {false, true}) {
      CAPTURE(workers);
      CAPTURE(mid_epoch);
      TempDir tmp;
      TrainConfig straight = ag_test::tiny_config(tmp.file("straight"), "arcface");
      straight.workers = workers;
      straight.margin_warmup_epochs = 1;  // the margin's step-dependence must survive the resume too
      straight.loss.label_smoothing = 0.1;
      run_tiny(straight, data);

      TrainConfig split = straight;
      split.out = tmp.file("split");
      // At the end of epoch 1 through request_stop; in epoch 2 (step 9 of 12) through a real SIGINT.
      install_sigint_handler();
      const TrainResult first = run_tiny(split, data, [&](Trainer& t, int64_t step) {
        if (!mid_epoch && step == 6) t.request_stop();
        if (mid_epoch && step == 9) std::raise(SIGINT);
      });
      clear_sigint();
      CHECK(first.status == TrainResult::Status::interrupted);
      CHECK(read_checkpoint_state(split.out).step == (mid_epoch ? 9 : 6));
      split.resume = true;
      const TrainResult second = run_tiny(split, data);
      CHECK(second.status == TrainResult::Status::finished);
      CHECK(second.steps == 12);

      CHECK(ag_test::read_metrics(straight.out) == ag_test::read_metrics(split.out));
      ag_test::check_same_tensors(saved_tensors(straight.out), saved_tensors(split.out));
    }
  }
}

TEST_CASE("trainer: two identical runs of real models give identical weights (no timing-dependent sums)") {
  // 16x16 images reach the kernels' wide-row and depthwise paths, which accumulate per thread.
  const ag_test::TinyData data(32, 8, 16);
  for (const char* model : {"resnet20:width=0.5", "mobilenetv2:width=0.25,depth=0.25"}) {
    CAPTURE(model);
    TempDir tmp;
    TrainConfig a = ag_test::tiny_config(tmp.file("a"));
    a.model = model;
    a.epochs = 1;
    a.workers = 2;
    TrainConfig b = a;
    b.out = tmp.file("b");
    run_tiny(a, data);
    run_tiny(b, data);
    ag_test::check_same_tensors(saved_tensors(a.out), saved_tensors(b.out));
  }
}

TEST_CASE("trainer: resuming with another configuration or without a checkpoint is refused") {
  TempDir tmp;
  const ag_test::TinyData data;
  TrainConfig c = ag_test::tiny_config(tmp.file("run"));
  c.epochs = 1;
  run_tiny(c, data);
  std::ostringstream log;
  CHECK_THROWS_WITH_AS(Trainer(c, ag_test::tiny_hooks(data, &log)), doctest::Contains("already holds a run"),
                       UsageError);
  TrainConfig other = c;
  other.resume = true;
  other.lr = 0.5;
  CHECK_THROWS_WITH_AS(Trainer(other, ag_test::tiny_hooks(data, &log)),
                       doctest::Contains("--lr was 0.05, now 0.5"), Error);
  TrainConfig fresh = c;
  fresh.resume = true;
  fresh.out = tmp.file("nothing");
  CHECK_THROWS_WITH_AS(Trainer(fresh, ag_test::tiny_hooks(data, &log)), doctest::Contains("no checkpoint"),
                       UsageError);
  // A finished run resumed with more epochs continues (and says its schedule changed).
  TrainConfig longer = c;
  longer.resume = true;
  longer.epochs = 2;
  Trainer more(longer, ag_test::tiny_hooks(data, &log));
  CHECK(more.run().epochs_done == 2);
  CHECK(log.str().find("--epochs changed from 1 to 2") != std::string::npos);
}

TEST_CASE("trainer: a NaN loss stops training naming the step and keeps the last good checkpoint") {
  TempDir tmp;
  const ag_test::TinyData data;
  const TrainConfig c = ag_test::tiny_config(tmp.file("run"));
  serialize::NamedTensors after_epoch1;
  auto poison = [&](Trainer& t, int64_t step) {
    if (step != 7) return;  // epoch 1's checkpoint is written; poison the weights in epoch 2
    after_epoch1 = saved_tensors(c.out);
    NoGradGuard no_grad;
    t.net().named_parameters().back().second.fill_(std::nan(""));  // criterion.linear.bias
  };
  CHECK_THROWS_WITH_AS(run_tiny(c, data, poison), doctest::Contains("at step 8 (epoch 2, batch 2 of 6)"),
                       TrainingDiverged);
  const TrainState st = read_checkpoint_state(c.out);
  CHECK(st.epoch == 1);
  ag_test::check_same_tensors(saved_tensors(c.out), after_epoch1);
  CHECK(ag_test::read_metrics(c.out).size() == 1);
}

TEST_CASE("trainer: a huge learning rate diverges with the step named and no checkpoint") {
  TempDir tmp;
  const ag_test::TinyData data;
  TrainConfig c = ag_test::tiny_config(tmp.file("run"));
  c.lr = 1e30;
  c.epochs = 3;
  try {
    run_tiny(c, data);
    FAIL("no divergence");
  } catch (const TrainingDiverged& e) {
    const std::string msg = e.what();
    CHECK(msg.find(" at step ") != std::string::npos);
    // Either the loss or (at an epoch end) a parameter turned non-finite first.
    if (!checkpoint_exists(c.out)) CHECK(msg.find("No checkpoint was written") != std::string::npos);
  }
}

TEST_CASE("trainer: a full disk during a checkpoint leaves the previous one intact") {
  TempDir tmp;
  const ag_test::TinyData data;
  const TrainConfig c = ag_test::tiny_config(tmp.file("run"));
  serialize::NamedTensors after_epoch1;
  auto fill_disk = [&](Trainer&, int64_t step) {
    if (step != 12) return;  // the last step: the next write is epoch 2's checkpoint
    after_epoch1 = saved_tensors(c.out);
    serialize::set_simulate_disk_full(true);
  };
  CHECK_THROWS_WITH_AS(run_tiny(c, data, fill_disk), doctest::Contains("the previous checkpoint"), Error);
  serialize::set_simulate_disk_full(false);
  CHECK(read_checkpoint_state(c.out).epoch == 1);
  ag_test::check_same_tensors(saved_tensors(c.out), after_epoch1);
  CHECK(load_trained_run(c.out, Device::cpu()).state.step == 6);
  for (const auto& entry : std::filesystem::directory_iterator(c.out))  // no temporary file left behind
    CHECK(entry.path().filename().string().find(".tmp-") == std::string::npos);
}

TEST_CASE("trainer: truncated, foreign and mismatched checkpoints are rejected clearly") {
  TempDir tmp;
  const ag_test::TinyData data;
  TrainConfig c = ag_test::tiny_config(tmp.file("run"));
  c.epochs = 1;
  run_tiny(c, data);
  const std::string file = tmp.file("run/checkpoint.safetensors");
  const auto size = std::filesystem::file_size(file);

  SUBCASE("truncated") {
    std::filesystem::resize_file(file, size / 2);
    CHECK_THROWS_WITH_AS(load_trained_run(c.out, Device::cpu()), doctest::Contains("checkpoint.safetensors"),
                         Error);
  }
  SUBCASE("a safetensors file from elsewhere") {
    serialize::save_safetensors(file, {{"weight", Tensor::ones({2, 2})}});
    CHECK_THROWS_WITH_AS(load_trained_run(c.out, Device::cpu()),
                         doctest::Contains("not an arcgrad checkpoint"), Error);
  }
  SUBCASE("not a safetensors file at all") {
    ag_test::write_text(file, "this is a text file, not a checkpoint, and it is long enough");
    CHECK_THROWS_WITH_AS(load_trained_run(c.out, Device::cpu()), doctest::Contains("checkpoint.safetensors"),
                         Error);
  }
  SUBCASE("weights of another model") {
    TrainConfig wide = c;
    wide.model = "convnet:width=6";
    auto net = make_classifier(wide, 3, 4, 6);
    CHECK_THROWS_WITH_AS(load_checkpoint(c.out, *net, nullptr), doctest::Contains("model.c1.0.weight"),
                         Error);
  }
  SUBCASE("a run description that is not an image's") {
    const std::vector<std::pair<nlohmann::json, const char*>> bad = {
        {{3, 1e300, 8}, "not an array of whole numbers"},
        {{3, 0, 8}, "is not a plausible image"},
        {{1, 8, 8}, "its channel statistics have 3 channels"}};
    for (const auto& [shape, message] : bad) {
      CAPTURE(shape.dump());
      ag_test::edit_checkpoint_state(c.out, [&](nlohmann::json& s) { s["extra"]["image_shape"] = shape; });
      CHECK_THROWS_WITH_AS(load_trained_run(c.out, Device::cpu()), doctest::Contains(message), Error);
    }
  }
  SUBCASE("channel statistics that would divide by zero or overflow") {
    for (const nlohmann::json& std_dev : {nlohmann::json{0.2, 0.0, 0.2}, nlohmann::json{0.2, 1e300, 0.2}}) {
      CAPTURE(std_dev.dump());
      ag_test::edit_checkpoint_state(c.out, [&](nlohmann::json& s) { s["extra"]["stats"]["std"] = std_dev; });
      CHECK_THROWS_WITH_AS(load_trained_run(c.out, Device::cpu()), doctest::Contains("channel statistics"),
                           Error);
    }
  }
  SUBCASE("a partial epoch whose counts are not whole numbers") {
    ag_test::edit_checkpoint_state(c.out, [](nlohmann::json& s) {
      s["extra"]["partial"] = {
          {"batches", 1e300}, {"seen", 0}, {"correct", 0}, {"loss_sum", 0}, {"seconds", 0}};
    });
    TrainConfig again = c;
    again.resume = true;
    std::ostringstream log;
    CHECK_THROWS_WITH_AS(Trainer(again, ag_test::tiny_hooks(data, &log)),
                         doctest::Contains("its partial epoch: field 'batches' is 1e+300"), Error);
  }
  SUBCASE("a missing checkpoint") {
    CHECK_THROWS_WITH_AS(load_trained_run(tmp.file("nowhere"), Device::cpu()),
                         doctest::Contains("no checkpoint"), Error);
  }
}

TEST_CASE("classifier: one module tree with the backbone and the loss heads") {
  TrainConfig c = ag_test::tiny_config("unused", "joint");
  auto net = make_classifier(c, 3, 4, 10);
  std::vector<std::string> names;
  for (const auto& [n, _] : net->named_parameters()) names.push_back(n);
  CHECK(names.front() == "model.c1.0.weight");
  CHECK(std::find(names.begin(), names.end(), "criterion.linear.weight") != names.end());
  CHECK(std::find(names.begin(), names.end(), "criterion.cosine.weight") != names.end());
  const Tensor scores = (*net)(Tensor::zeros({2, 3, 8, 8}));
  CHECK(scores.shape() == Shape{2, 4});
  c.margin_warmup_epochs = 1.5;
  c.loss.kind = "arcface";
  CHECK(make_classifier(c, 3, 4, 10)->criterion().config().margin_warmup_steps == 15);
  CHECK(make_backbone("convnet:width=4,features=2", 1)->feature_dim() == 2);
  CHECK_THROWS_WITH_AS(make_backbone("convnet:depth=2", 3), doctest::Contains("unknown knob 'depth'"), Error);
  CHECK_THROWS_WITH_AS(make_backbone("nosuchnet", 3), doctest::Contains("unknown model"), Error);
}
