// The apps' command lines and configuration (apps/lib/train_config.h), subsets
// (apps/lib/run_data.h) and the sweep's grid and report (apps/lib/sweep.h).
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "apps/lib/run_data.h"
#include "apps/lib/sweep.h"
#include "apps/lib/train_config.h"

using namespace ag;
using namespace ag::train;

namespace {

TrainConfig parse(const std::vector<std::string>& args) {
  Flags flags("train", "test");
  add_train_flags(flags);
  flags.parse(args);
  return config_from_flags(flags);
}

}  // namespace

TEST_CASE("train flags: defaults, values and the JSON round trip") {
  const TrainConfig d = parse({});
  CHECK(d.to_json() == TrainConfig().to_json());
  const TrainConfig c = parse({"--dataset",
                               "cifar100",
                               "--model",
                               "mobilenetv2:width=0.5",
                               "--loss",
                               "cosface",
                               "--s",
                               "30",
                               "--m",
                               "0.35",
                               "--epochs=7",
                               "--optimizer",
                               "adamw",
                               "--lr",
                               "0.001",
                               "--no-augment",
                               "--train-subset",
                               "500",
                               "--subset",
                               "random",
                               "--seed",
                               "3",
                               "--margin-warmup",
                               "0.5",
                               "--head",
                               "cosine"});
  CHECK(c.dataset == "cifar100");
  CHECK(c.loss.kind == "cosface");
  CHECK(c.loss.s == 30);
  CHECK(c.loss.m == 0.35);
  CHECK(c.epochs == 7);
  CHECK(c.optimizer == "adamw");
  CHECK_FALSE(c.augment);
  CHECK(c.train_subset == 500);
  CHECK(c.seed == 3);
  CHECK(c.resolved_head() == "cosine");
  const TrainConfig back = TrainConfig::from_json(nlohmann::json::parse(c.to_json().dump()));
  CHECK(back.to_json() == c.to_json());
  CHECK_THROWS_WITH_AS(TrainConfig::from_json({{"epochs", "ten"}}), doctest::Contains("'epochs'"), Error);
}

TEST_CASE("train flags: every invalid flag or value is a usage error naming it") {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--bogus", "1"}, "unknown flag --bogus"},
      {{"--lr", "-1"}, "--lr"},
      {{"--lr", "fast"}, "--lr"},
      {{"--epochs", "0"}, "--epochs"},
      {{"--batch-size", "x"}, "--batch-size"},
      {{"--loss", "focal"}, "--loss"},
      {{"--dataset", "imagenet"}, "--dataset"},
      {{"--device", "tpu"}, "--device"},
      {{"--head", "linear", "--loss", "arcface"}, "--head linear does not fit --loss arcface"},
      {{"--head", "cosine", "--loss", "ce"}, "--loss normface"},
      {{"--loss", "arcface", "--m", "5"}, "--loss arcface"},
      {{"--loss", "arcface", "--s", "0"}, "--loss arcface"},
      {{"--loss", "sphereface", "--m", "1.5"}, "--loss sphereface"},
      {{"--loss", "joint", "--alpha", "2"}, "--loss joint"},
      {{"--warmup", "5", "--epochs", "2"}, "--warmup"},
      {{"--schedule", "onecycle", "--warmup", "0.5"}, "--warmup"},
      {{"--momentum", "0"}, "--nesterov"},
      {{"--train-subset", "-1"}, "--train-subset"},
      {{"--workers", "100"}, "--workers"},
      {{"--seed", "-2"}, "--seed"},
      {{"--wd", "-0.1"}, "--wd"},
      {{"--out", ""}, "--out"},
      {{"--margin-warmup", "-1"}, "--margin-warmup"},
      {{"--epochs"}, "--epochs"},
      {{"resnet20"}, "unexpected argument"},
  };
  for (const auto& [args, expected] : cases) {
    std::string joined;
    for (const std::string& a : args) joined += a + " ";
    CAPTURE(joined);
    CHECK_THROWS_WITH_AS(parse(args), doctest::Contains(expected.c_str()), UsageError);
  }
}

TEST_CASE("train flags: a resumed run may change only the harmless flags") {
  TrainConfig saved = parse({"--loss", "arcface", "--s", "16", "--lr", "0.2", "--out", "runs/x"});
  auto merge = [&](const std::vector<std::string>& args) {
    Flags flags("train", "test");
    add_train_flags(flags);
    flags.parse(args);
    return merge_resume_flags(saved, flags);
  };
  const TrainConfig c = merge({"--out", "runs/x", "--resume", "--epochs", "20", "--threads", "2"});
  CHECK(c.resume);
  CHECK(c.epochs == 20);
  CHECK(c.threads == 2);
  CHECK(c.loss.s == 16);
  CHECK(c.lr == 0.2);
  CHECK(merge({"--out", "runs/x", "--resume", "--lr", "0.2"}).lr == 0.2);  // the same value is fine
  CHECK_THROWS_WITH_AS(merge({"--out", "runs/x", "--resume", "--lr", "0.1"}),
                       doctest::Contains("--lr 0.1 differs"), UsageError);
  CHECK_THROWS_WITH_AS(merge({"--out", "runs/x", "--resume", "--loss", "ce"}), doctest::Contains("--loss"),
                       UsageError);
  CHECK(resume_conflict(saved, c) == "");
  TrainConfig other = saved;
  other.model = "resnet32";
  CHECK(resume_conflict(saved, other) == "--model was \"resnet20\", now \"resnet32\"");
}

TEST_CASE("subset_indices: first N, or N seeded-random distinct ones in order") {
  CHECK(subset_indices(5, 3, "first", 0) == std::vector<int64_t>{0, 1, 2});
  CHECK(subset_indices(5, 0, "random", 0) == std::vector<int64_t>{0, 1, 2, 3, 4});
  CHECK(subset_indices(5, 9, "random", 0).size() == 5);
  const std::vector<int64_t> a = subset_indices(1000, 100, "random", 7);
  CHECK(a == subset_indices(1000, 100, "random", 7));
  CHECK(a != subset_indices(1000, 100, "random", 8));
  CHECK(std::is_sorted(a.begin(), a.end()));
  CHECK(std::set<int64_t>(a.begin(), a.end()).size() == 100);
  CHECK(a.back() > 500);  // spread over the whole set, not the first 100
  CHECK_THROWS_AS(subset_indices(10, 2, "last", 0), Error);
}

TEST_CASE("sweep: the grid expands per loss and the report has the paper's layout") {
  SweepGrid grid;
  grid.datasets = {"cifar10"};
  grid.models = {"resnet20", "mobilenetv2:width=0.5"};
  grid.losses = {"ce", "normface", "arcface"};
  grid.s_values = {1, 16};
  grid.m_values = {0.1, 0.5};
  const std::vector<SweepPoint> points = expand_sweep(grid, MarginLossConfig{});
  CHECK(points.size() == 2 + 2 * 2 + 2 * 2 * 2);  // ce once per model; normface per s; arcface per (s, m)
  std::set<std::string> folders;
  for (const SweepPoint& p : points) folders.insert(p.folder);
  CHECK(folders.size() == points.size());
  CHECK(points[0].label == "cross-entropy");
  CHECK(points[0].folder == "cifar10/resnet20/ce");
  CHECK(points[1].folder == "cifar10/mobilenetv2_width0.5/ce");
  CHECK(points.back().label == "ArcFace s=16, m=0.5");
  CHECK(points.back().loss.s == 16);
  CHECK(points.back().loss.m == 0.5);

  std::vector<SweepEntry> entries;
  auto add = [&](size_t i, double top1, double map) {
    SweepEntry e;
    e.point = points[i];
    e.top1 = top1;
    e.map = map;
    entries.push_back(e);
  };
  add(0, 0.9, 0.95);    // resnet20 ce
  add(6, 0.91, 0.955);  // resnet20 arcface s=1 m=0.1
  add(8, 0.80, 0.85);   // resnet20 arcface s=1 m=0.5
  add(7, 0.5, 0.6);     // mobilenet arcface s=1 m=0.1
  entries.push_back(entries.back());
  entries.back().point = points[9];  // mobilenet arcface s=1 m=0.5: diverged
  entries.back().diverged = true;
  const std::string md = sweep_markdown(entries, "2 epochs");
  CHECK(md.find(
            "### cifar10\n\nTest top-1 / mAP (%), 2 epochs.\n\n| loss | resnet20 | mobilenetv2:width=0.5 |\n"
            "|---|---|---|\n") != std::string::npos);
  CHECK(md.find("| cross-entropy | 90.00 / 95.00 | - |\n") != std::string::npos);
  CHECK(md.find("| ArcFace s=1, m=0.1 | 91.00 / 95.50 | 50.00 / 60.00 |\n") != std::string::npos);
  CHECK(md.find("| ArcFace s=1, m=0.5 | 80.00 / 85.00 | diverged |\n") != std::string::npos);

  const std::vector<LineSeries> series = accuracy_vs_m_series(entries, "cifar10");
  REQUIRE(series.size() == 2);  // resnet20 ArcFace s=1 (two m values) + resnet20 cross-entropy
  CHECK(series[0].name == "resnet20 ArcFace s=1");
  CHECK(series[0].x == std::vector<double>{0.1, 0.5});
  CHECK(series[0].y[0] == doctest::Approx(91));
  CHECK(series[1].name == "resnet20 cross-entropy");
  CHECK(series[1].y == std::vector<double>{90, 90});

  CHECK(parse_number_list("1,16,0.5", "s-values") == std::vector<double>{1, 16, 0.5});
  CHECK_THROWS_WITH_AS(parse_number_list("1,x", "s-values"), doctest::Contains("--s-values: 'x'"),
                       UsageError);
  CHECK_THROWS_WITH_AS(split_list("a,,b", "models"), doctest::Contains("--models: empty item"), UsageError);
}

TEST_CASE("default_data_dir: $ARCGRAD_DATA when it holds the folder, else datasets/") {
  CHECK(default_data_dir("fashion-mnist").empty());
  ::unsetenv("ARCGRAD_DATA");
  CHECK(default_data_dir("cifar10") == "datasets/cifar-10-batches-bin");
  CHECK(default_data_dir("cifar100") == "datasets/cifar-100-binary");
}
